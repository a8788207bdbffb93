//! Text the databases can store, checked once where input enters.
//!
//! PostgreSQL's `text` and `jsonb` cannot hold U+0000 (NUL): a NUL that reached a query was a
//! driver error (503 "database unavailable"), and on SQLite a NUL in a search was a 500. So
//! every string that comes in is refused with a 422 `validation_failed` whose error has the
//! code `invalid_character` and names the input: the JSON path in a body (`custom.note`,
//! `records[3].external_id`), the query parameter, the path parameter, the CSV column of an
//! import row.
//!
//! NUL is the only such character. JSON cannot carry a lone surrogate into a Rust string
//! (serde_json refuses `"\ud800"`: a 400 `malformed_json`), a raw control byte inside a JSON
//! string is malformed JSON, and other control characters are stored by both databases alike
//! (fields that must not hold them say so in their own checks). SQLite would store a NUL, but
//! its text functions stop at it, so it is refused there too: both backends answer alike.
//!
//! Each check has a fast path that costs a substring search over the raw input (`\u0000` in a
//! JSON body, `%00` in a query or path); only input that has it is read again to find where.

use std::fmt::Write as _;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use memchr::memmem;
use serde_json::Value;

use crate::error::{ApiError, FieldError};
use crate::state::AppState;

/// The code of the field error.
pub const INVALID_CHARACTER: &str = "invalid_character";

/// The field error of an input holding a NUL.
pub fn invalid_character(field: impl Into<String>) -> FieldError {
    FieldError::new(
        field,
        INVALID_CHARACTER,
        "must not contain the NUL character (U+0000), which the database cannot store",
    )
}

/// The 422 of an input holding a NUL.
pub fn refuse(field: impl Into<String>) -> ApiError {
    ApiError::validation(vec![invalid_character(field)])
}

/// Whether a text can be stored.
pub fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

/// A name as it may be shown in a field path: a NUL written as `\u0000`.
fn printable(name: &str) -> String {
    name.replace('\0', "\\u0000")
}

/// The JSON path of the first string or key holding a NUL in a JSON document (`""` for the
/// document itself), or None. A document without the escape `\u0000` holds none (JSON cannot
/// carry a raw NUL), and is not parsed again.
pub fn json_nul_path(body: &[u8]) -> Option<String> {
    memmem::find(body, br"\u0000")?;
    // `\\u0000` (an escaped backslash before `u0000`) also matches: read the document to know.
    let value: Value = serde_json::from_slice(body).ok()?;
    let mut path = String::new();
    nul_in_value(&value, &mut path).then_some(path)
}

/// Whether `value` holds a NUL; if so `path` ends at it (`a.b[2]`).
fn nul_in_value(value: &Value, path: &mut String) -> bool {
    match value {
        Value::String(text) => has_nul(text),
        Value::Array(items) => {
            let len = path.len();
            for (index, item) in items.iter().enumerate() {
                let _ = write!(path, "[{index}]");
                if nul_in_value(item, path) {
                    return true;
                }
                path.truncate(len);
            }
            false
        }
        Value::Object(map) => {
            let len = path.len();
            for (key, item) in map {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(&printable(key));
                if has_nul(key) || nul_in_value(item, path) {
                    return true;
                }
                path.truncate(len);
            }
            false
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// The name of the first query parameter whose name or value holds a NUL, or None.
pub fn query_nul_param(query: &str) -> Option<String> {
    memmem::find(query.as_bytes(), b"%00")?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, value)| has_nul(key) || has_nul(value))
        .map(|(key, _)| printable(&key))
}

/// The name of the path parameter that holds a NUL (`external_id`), when `path` is a route's
/// and one of its parameters holds one; else None.
pub fn path_nul_param(pattern: Option<&str>, path: &str) -> Option<String> {
    let at = path
        .split('/')
        .position(|segment| segment.contains("%00"))?;
    let pattern = pattern?;
    let segment = pattern.split('/').nth(at)?;
    let name = segment.strip_prefix('{')?.strip_suffix('}')?;
    Some(name.split(':').next().unwrap_or(name).to_owned())
}

/// Refuses a request whose query or path parameters hold a NUL, before any handler reads them.
pub async fn reject_nul(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let mut field = query_nul_param(req.query_string());
    if field.is_none() && memmem::find(req.path().as_bytes(), b"%00").is_some() {
        let routes = req.app_data::<web::Data<AppState>>().map(|s| &s.routes);
        let pattern = routes.and_then(|r| r.pattern(req.path()));
        field = path_nul_param(pattern, req.path());
    }
    match field {
        Some(field) => Ok(req.error_response(refuse(field))),
        None => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_in_a_body_is_found_by_its_json_path() {
        let path = |body: &str| json_nul_path(body.as_bytes());
        assert_eq!(
            path(r#"{"custom": {"note": "a\u0000b"}}"#).unwrap(),
            "custom.note"
        );
        assert_eq!(
            path(r#"{"records": [{}, {}, {}, {"external_id": "\u0000"}]}"#).unwrap(),
            "records[3].external_id"
        );
        assert_eq!(path(r#"{"tags": ["a", "b\u0000"]}"#).unwrap(), "tags[1]");
        assert_eq!(
            path(r#"{"custom": {"a\u0000b": 1}}"#).unwrap(),
            r"custom.a\u0000b"
        );
        assert_eq!(path(r#"{"note": "\u0000 and \u00001"}"#).unwrap(), "note");
    }

    #[test]
    fn bodies_without_a_nul_pass() {
        assert_eq!(
            json_nul_path(r#"{"first_name": "王安", "n": [1, null]}"#.as_bytes()),
            None
        );
        // An escaped backslash before `u0000` is the text `\u0000`, not a NUL.
        assert_eq!(json_nul_path(br#"{"path": "C:\\u0000"}"#), None);
        assert_eq!(json_nul_path(b"not json \\u0000"), None);
    }

    #[test]
    fn a_nul_in_the_query_names_its_parameter() {
        assert_eq!(query_nul_param("q=a%00b").unwrap(), "q");
        assert_eq!(query_nul_param("limit=5&tag=%00").unwrap(), "tag");
        assert_eq!(query_nul_param("q%00=1").unwrap(), r"q\u0000");
        assert_eq!(query_nul_param("q=a%2500b"), None);
        assert_eq!(query_nul_param("q=100%25"), None);
    }

    #[test]
    fn a_nul_in_the_path_names_the_route_parameter() {
        let pattern = Some("/v1/contacts/external/{external_id}");
        assert_eq!(
            path_nul_param(pattern, "/v1/contacts/external/a%00b").unwrap(),
            "external_id"
        );
        assert_eq!(
            path_nul_param(Some("/v1/docs/{file:.*}"), "/v1/docs/%00").unwrap(),
            "file"
        );
        assert_eq!(path_nul_param(None, "/v1/nowhere%00"), None);
        assert_eq!(path_nul_param(pattern, "/v1/contacts/external/ab"), None);
    }
}
