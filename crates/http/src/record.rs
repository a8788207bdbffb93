//! What single-record endpoints share: `If-Match` in, `ETag` and `Location` out, and merge-patch
//! fields that tell "absent" from "null".

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::{ApiError, ErrorCode};

/// The version named by `If-Match` (`"3"`), or None when the header is absent or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfMatch(pub Option<i64>);

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_if_match(req))
    }
}

fn parse_if_match(req: &HttpRequest) -> Result<IfMatch, ApiError> {
    let Some(value) = req.headers().get(header::IF_MATCH) else {
        return Ok(IfMatch(None));
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(IfMatch(None));
    }
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .map(|version| IfMatch(Some(version)))
        .ok_or_else(|| {
            ApiError::invalid(
                "If-Match",
                "invalid_value",
                "must be the record's ETag, e.g. \"3\" (or *)",
            )
        })
}

/// The strong entity tag of a record version.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A 200 with the record and its `ETag`.
pub fn ok_record(version: i64, body: &impl Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

/// A 201 with the record, its `ETag` and `Location`.
pub fn created_record(location: String, version: i64, body: &impl Serialize) -> HttpResponse {
    HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::ETAG, etag(version)))
        .insert_header((header::LOCATION, location))
        .json(body)
}

/// Maps a store's version mismatch to 412 with the current version in the detail.
pub fn version_mismatch(current: i64) -> ApiError {
    ApiError::new(
        ErrorCode::VersionMismatch,
        format!(
            "The record is at version {current}; fetch it again and retry with If-Match: \"{current}\"."
        ),
    )
}

/// For merge-patch fields: absent → `None`, `null` → `Some(None)`, a value → `Some(Some(v))`.
/// Use with `#[serde(default, deserialize_with = "nullable")]`.
pub fn nullable<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
