//! Browsers' cross-origin requests: the CORS middleware for the origins the operator allows
//! (`RAPPORT_CORS_ORIGINS`), and a problem document that says so for a preflight from an
//! origin that is not allowed — instead of the `405 OPTIONS is not allowed` (no origins
//! configured) or the bare text (an origin not listed) a browser developer would otherwise
//! read in the network tab.

use actix_cors::Cors;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web;

use crate::error::{ApiError, ErrorCode};
use crate::state::{AppState, CorsOrigins};

/// The headers a browser client may read from a cross-origin response.
const EXPOSED_HEADERS: [&str; 10] = [
    "x-request-id",
    "etag",
    "location",
    "retry-after",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "idempotent-replayed",
    "allow",
    "link",
];

/// The CORS middleware for the configured origins; None when no origin is allowed.
pub fn cors(origins: &CorsOrigins) -> Option<Cors> {
    let base = || {
        Cors::default()
            .allow_any_method()
            .allow_any_header()
            .expose_headers(EXPOSED_HEADERS)
            .max_age(3600)
    };
    match origins {
        CorsOrigins::None => None,
        CorsOrigins::Any => Some(base().allow_any_origin().send_wildcard()),
        CorsOrigins::List(list) => Some(
            list.iter()
                .fold(base(), |cors, origin| cors.allowed_origin(origin)),
        ),
    }
}

/// Whether the configuration lets `origin` make cross-origin requests.
fn allows(origins: &CorsOrigins, origin: &[u8]) -> bool {
    match origins {
        CorsOrigins::None => false,
        CorsOrigins::Any => true,
        CorsOrigins::List(list) => list.iter().any(|allowed| allowed.as_bytes() == origin),
    }
}

/// The refusal of a preflight from `origin`.
fn refusal(origins: &CorsOrigins, origin: &str) -> ApiError {
    let detail = match origins {
        CorsOrigins::None => format!(
            "This server allows no cross-origin browser requests, so the preflight from \
             {origin} is refused. Its operator can allow the origin with \
             RAPPORT_CORS_ORIGINS={origin} (a comma-separated list, or * for any)."
        ),
        _ => format!(
            "The origin {origin} is not among those RAPPORT_CORS_ORIGINS allows; the \
             operator can add it (a comma-separated list, or * for any)."
        ),
    };
    ApiError::new(ErrorCode::CorsOriginNotAllowed, detail)
}

/// Answers a browser's preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
/// from an origin that is not allowed with a `cors_origin_not_allowed` problem document; every
/// other request goes on (to the CORS middleware, when origins are configured).
pub async fn refuse_preflight(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let headers = req.headers();
    let preflight = req.method() == Method::OPTIONS
        && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight
        && let Some(origin) = headers.get(header::ORIGIN)
        && let Some(state) = req.app_data::<web::Data<AppState>>()
        && !allows(&state.settings.cors_origins, origin.as_bytes())
    {
        let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
        let error = refusal(&state.settings.cors_origins, &origin);
        return Ok(req.error_response(error));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configured_origins_are_allowed() {
        let listed = CorsOrigins::List(vec!["https://app.example".to_owned()]);
        assert!(allows(&listed, b"https://app.example"));
        assert!(!allows(&listed, b"https://app.example.evil"));
        assert!(!allows(&CorsOrigins::None, b"https://app.example"));
        assert!(allows(&CorsOrigins::Any, b"https://anywhere.example"));
    }

    #[test]
    fn the_refusal_names_the_setting_and_the_origin() {
        for origins in [
            CorsOrigins::None,
            CorsOrigins::List(vec!["https://app.example".to_owned()]),
        ] {
            let error = refusal(&origins, "http://localhost:5173");
            assert_eq!(error.code(), ErrorCode::CorsOriginNotAllowed);
            assert!(error.detail().contains("RAPPORT_CORS_ORIGINS"));
            assert!(error.detail().contains("http://localhost:5173"));
        }
    }
}
