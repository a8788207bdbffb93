//! Extractors that turn bad input into precise problem documents: a JSON body (strict media
//! type, size limit, parser position, the JSON path of a wrong value) and query parameters.

use std::ops::Deref;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use crate::error::{ApiError, ErrorCode, FieldError};
use crate::storable;

/// The largest request body accepted, in bytes (`RAPPORT_BODY_LIMIT`, default 1 MiB).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

impl Default for BodyLimit {
    fn default() -> Self {
        BodyLimit(1024 * 1024)
    }
}

/// A JSON request body. Unlike `actix_web::web::Json`, its errors say where: the parser's line
/// and column for malformed JSON (400), the JSON path for a value of the wrong type, a missing
/// or an unknown field (422).
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T> Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().copied().unwrap_or_default().0;
        let checked = check_json_content_type(req).and_then(|()| check_declared_length(req, limit));
        let mut payload = payload.take();
        Box::pin(async move {
            checked?;
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::new(
                        ErrorCode::BadRequest,
                        format!("Could not read the request body: {e}"),
                    )
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large(limit));
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(Json)
        })
    }
}

fn check_json_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let is_json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    if is_json {
        Ok(())
    } else if content_type.is_empty() {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "The request body must be JSON; send Content-Type: application/json.",
        ))
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("The request body must be JSON (application/json), not {content_type}."),
        ))
    }
}

fn check_declared_length(req: &HttpRequest, limit: usize) -> Result<(), ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("The request body is larger than the limit of {limit} bytes."),
    )
}

/// Parses a JSON document into `T`, classifying what went wrong.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorCode::MalformedJson,
            "The request body is empty; a JSON document is required.",
        ));
    }
    // Every request body is an object; serde would also read a struct from an array.
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first != Some(b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(error) => json_error(&serde_path_to_error::Track::new().path(), error),
                Ok(_) => {
                    ApiError::invalid("", "invalid_type", "the request body must be a JSON object")
                }
            },
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => value,
        Err(error) => {
            let path = error.path().clone();
            return Err(json_error(&path, error.into_inner()));
        }
    };
    deserializer
        .end()
        .map_err(|e| json_error(&serde_path_to_error::Track::new().path(), e))?;
    // Checked on every body at once rather than per field: no string of it reaches the
    // database with a character the database cannot store.
    if let Some(field) = storable::json_nul_path(body) {
        return Err(storable::refuse(field));
    }
    Ok(value)
}

/// Reads `T` from a JSON value already parsed (a batch row), naming the path of a bad value.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().clone();
        json_error(&path, error.into_inner())
    })
}

fn json_error(path: &serde_path_to_error::Path, error: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => ApiError::new(
            ErrorCode::MalformedJson,
            format!(
                "The request body is not valid JSON: {} (line {}, column {}).",
                message_without_position(&error),
                error.line(),
                error.column()
            ),
        )
        .with_position(error.line(), error.column()),
        Category::Data => {
            ApiError::validation(vec![field_error(path, &message_without_position(&error))])
        }
    }
}

/// serde_json appends " at line L column C"; the position is reported separately.
fn message_without_position(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Turns a serde message into a field error: which input, which kind of mistake.
fn field_error(path: &serde_path_to_error::Path, message: &str) -> FieldError {
    let location = path_string(path);
    if let Some(name) = between(message, "missing field `", "`") {
        return FieldError::new(join(&location, name), "required", "is required");
    }
    if let Some(name) = between(message, "unknown field `", "`") {
        let expected = message
            .split_once(", expected ")
            .map(|(_, rest)| format!("; expected {rest}"))
            .unwrap_or_default();
        // serde_path_to_error already ends the path with the unknown key.
        let field = if location.ends_with(name) {
            location.clone()
        } else {
            join(&location, name)
        };
        return FieldError::new(
            field,
            "unknown_field",
            format!("is not a known field{expected}"),
        );
    }
    let code = if message.starts_with("invalid type") {
        "invalid_type"
    } else if message.starts_with("invalid length") {
        "invalid_length"
    } else {
        "invalid_value"
    };
    FieldError::new(location, code, message.to_owned())
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

fn join(location: &str, name: &str) -> String {
    if location.is_empty() {
        name.to_owned()
    } else {
        format!("{location}.{name}")
    }
}

/// `address.country`, `phones[0].number`; the empty string for the document itself.
fn path_string(path: &serde_path_to_error::Path) -> String {
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push('?');
            }
        }
    }
    out
}

/// Query parameters. A value of the wrong type or an unknown parameter is a 422 naming it.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> Deref for Query<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().clone();
        let message = error.into_inner().to_string();
        let mut field = field_error(&path, &message);
        if field.field.is_empty() {
            field.field = "query".to_owned();
        }
        ApiError::validation(vec![field])
    })
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Address {
        country: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Person {
        name: String,
        age: Option<u32>,
        address: Option<Address>,
        phones: Option<Vec<Address>>,
    }

    fn field_of(body: &str) -> FieldError {
        let error = parse_json::<Person>(body.as_bytes()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::ValidationFailed, "{error}");
        error.errors()[0].clone()
    }

    #[test]
    fn a_wrong_type_names_its_path() {
        let e = field_of(r#"{"name": "A", "address": {"country": 7}}"#);
        assert_eq!(
            (e.field.as_str(), e.code.as_ref()),
            ("address.country", "invalid_type")
        );
        let e = field_of(r#"{"name": "A", "phones": [{"country": "CN"}, {"country": []}]}"#);
        assert_eq!(e.field, "phones[1].country");
    }

    #[test]
    fn a_missing_field_is_required() {
        let e = field_of(r#"{"age": 3}"#);
        assert_eq!((e.field.as_str(), e.code.as_ref()), ("name", "required"));
        let e = field_of(r#"{"name": "A", "address": {}}"#);
        assert_eq!(e.field, "address.country");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let e = field_of(r#"{"name": "A", "nmae": "B"}"#);
        assert_eq!(
            (e.field.as_str(), e.code.as_ref()),
            ("nmae", "unknown_field")
        );
        let e = field_of(r#"{"name": "A", "address": {"country": "CN", "zip": "1"}}"#);
        assert_eq!(e.field, "address.zip");
    }

    #[test]
    fn malformed_json_reports_the_position() {
        let error = parse_json::<Person>(b"{\n  \"name\": \"A\",\n  oops\n}").unwrap_err();
        assert_eq!(error.code(), ErrorCode::MalformedJson);
        assert!(error.to_string().contains("line 3, column 3"), "{error}");
        let error = parse_json::<Person>(br#"{"name": "A"} trailing"#).unwrap_err();
        assert_eq!(error.code(), ErrorCode::MalformedJson);
        let error = parse_json::<Person>(b"   ").unwrap_err();
        assert_eq!(error.code(), ErrorCode::MalformedJson);
        let error = parse_json::<Person>(b"[1, 2").unwrap_err();
        assert_eq!(error.code(), ErrorCode::MalformedJson);
    }

    #[test]
    fn a_nul_anywhere_in_a_body_is_refused_naming_its_path() {
        let error = parse_json::<Person>(br#"{"name": "A", "phones": [{"country": "C\u0000N"}]}"#)
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::ValidationFailed);
        assert_eq!(
            (
                error.errors()[0].field.as_str(),
                error.errors()[0].code.as_ref()
            ),
            ("phones[0].country", "invalid_character")
        );
    }

    #[test]
    fn a_body_must_be_an_object() {
        for body in [&b"[\"A\", 3]"[..], b"\"A\"", b"42", b"null"] {
            let error = parse_json::<Person>(body).unwrap_err();
            assert_eq!(error.code(), ErrorCode::ValidationFailed);
            assert_eq!(error.errors()[0].code, "invalid_type");
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Page {
        limit: Option<u32>,
        cursor: Option<String>,
    }

    #[test]
    fn a_bad_query_parameter_is_named() {
        let error = parse_query::<Page>("limit=ten").unwrap_err();
        assert_eq!(error.errors()[0].field, "limit");
        let error = parse_query::<Page>("limti=10").unwrap_err();
        assert_eq!(error.errors()[0].field, "limti");
        assert_eq!(error.errors()[0].code, "unknown_field");
        let page = parse_query::<Page>("limit=10&cursor=abc").unwrap();
        assert_eq!(page.limit, Some(10));
    }
}
