//! The outermost middleware: gives every request its id, makes sure every error leaves as a
//! problem document, and writes one log line and the metrics for each request.

use std::time::Instant;

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::InternalError;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use crate::auth::rate_limit_headers;
use crate::error::{ApiError, ErrorCode, PROBLEM_JSON};
use crate::ratelimit::RateLimitInfo;
use crate::request_id::{self, RequestId};
use crate::state::AppState;

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = RequestId::from_headers(req.headers());
    req.extensions_mut().insert(id.clone());
    let state = req.app_data::<web::Data<AppState>>().cloned();
    // Only owned data may be kept across the call: routing needs the request to itself.
    let method = req.method().as_str().to_owned();

    let outcome = request_id::scope(id.clone(), async move { next.call(req).await }).await;
    let response = match outcome {
        Ok(response) => response.map_into_boxed_body(),
        // Handlers turn their errors into responses, so only a middleware's error gets here.
        // Render it now, as a problem document with our id, for actix to send as it is.
        Err(error) => {
            let mut rendered = request_id::sync_scope(id.clone(), || {
                ApiError::internal(format!("middleware error: {error}")).error_response()
            });
            rendered.headers_mut().insert(
                HeaderName::from_static(request_id::HEADER),
                HeaderValue::from_str(id.as_str()).unwrap_or(HeaderValue::from_static("invalid")),
            );
            tracing::warn!(target: "rapport::request", method, status = 500, request_id = %id, "request");
            return Err(InternalError::from_response(error.to_string(), rendered).into());
        }
    };
    let mut response = ensure_problem(response, &id).await;
    let metered = response
        .request()
        .extensions()
        .get::<RateLimitInfo>()
        .copied();
    if let Some(info) = metered {
        rate_limit_headers(&info, response.headers_mut());
    }

    response.headers_mut().insert(
        HeaderName::from_static(request_id::HEADER),
        HeaderValue::from_str(id.as_str()).unwrap_or(HeaderValue::from_static("invalid")),
    );

    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let route = response
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    if let Some(state) = state {
        state.metrics.observe(&method, &route, status, elapsed);
    }
    let latency_ms = elapsed.as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(target: "rapport::request", method, route, status, latency_ms, request_id = %id, "request");
    } else {
        tracing::info!(target: "rapport::request", method, route, status, latency_ms, request_id = %id, "request");
    }
    Ok(response)
}

/// Replaces an error response that is not a problem document (one made by a library rather
/// than by us) with the problem document for its status, keeping its headers.
async fn ensure_problem(
    response: ServiceResponse<BoxBody>,
    id: &RequestId,
) -> ServiceResponse<BoxBody> {
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let (request, original) = response.into_parts();
    let (head, body) = original.into_parts();
    let text = body::to_bytes_limited(body, 4096)
        .await
        .ok()
        .and_then(Result::ok)
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .unwrap_or_default();
    let code = ErrorCode::for_status(status);
    let error = if status.is_server_error() {
        ApiError::internal(if text.is_empty() {
            status.to_string()
        } else {
            text
        })
    } else if text.trim().is_empty() {
        ApiError::new(
            code,
            status
                .canonical_reason()
                .unwrap_or("Request refused")
                .to_owned(),
        )
    } else {
        ApiError::new(code, text)
    };
    let mut rendered = request_id::sync_scope(id.clone(), || error.error_response());
    for (name, value) in head.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rendered.headers_mut().insert(name.clone(), value.clone());
        }
    }
    ServiceResponse::new(request, rendered.map_into_boxed_body())
}
