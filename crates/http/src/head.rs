//! `HEAD` wherever `GET` is answered (RFC 9110 §9.3.2): the request is routed and handled as
//! a `GET` — same status and headers, `Content-Length` included — and the connection sends no
//! body, because it remembers that the request was a `HEAD`. A 405's `Allow` lists `HEAD`
//! wherever it lists `GET`.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;

/// Turns a `HEAD` into the `GET` of the same path; logs and metrics, outside this
/// middleware, still name it `HEAD`.
pub async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == Method::HEAD {
        req.head_mut().method = Method::GET;
    }
    let mut response = next.call(req).await?;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = response.headers().get(header::ALLOW)
        && let Some(with_head) = allow.to_str().ok().and_then(with_head)
        && let Ok(value) = HeaderValue::from_str(&with_head)
    {
        response.headers_mut().insert(header::ALLOW, value);
    }
    Ok(response)
}

/// `GET, POST` → `GET, POST, HEAD`; None when `GET` is not there or `HEAD` already is.
fn with_head(allow: &str) -> Option<String> {
    let methods: Vec<&str> = allow.split(',').map(str::trim).collect();
    (methods.contains(&"GET") && !methods.contains(&"HEAD")).then(|| format!("{allow}, HEAD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_joins_get_in_allow() {
        assert_eq!(with_head("GET").as_deref(), Some("GET, HEAD"));
        assert_eq!(with_head("GET, POST").as_deref(), Some("GET, POST, HEAD"));
        assert_eq!(with_head("POST"), None);
        assert_eq!(with_head("GET, HEAD"), None);
    }
}
