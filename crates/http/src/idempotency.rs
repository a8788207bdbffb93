//! `Idempotency-Key` on writes: a retry with the same key and the same request gets the first
//! response again (with `Idempotent-Replayed: true`); the same key with another request is
//! 422; a retry while the first attempt runs is 409. Keys are per credential and kept 24 h.
//!
//! The write's own transaction marks the key committed (the store does it when it appends the
//! write's events), so a retry after a crash between commit and answer knows the write
//! happened: it runs again with what was written at hand, and a create answers the record it
//! made instead of making another.

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpMessage, HttpResponse};
use chrono::{Duration, Utc};
use futures_util::StreamExt;
use rapport_domain::idempotency::{Claim, IdempotencyRef, StoredResponse};
use rapport_domain::{AuthContext, Credential};
use sha2::{Digest, Sha256};

use crate::auth::Authenticated;
use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub const KEY_HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// Kept instead of the body of a response that showed a secret once: where the record is.
const WITHHELD_HEADER: &str = "x-rapport-secret-withheld";

/// Marks a response that shows a secret once (a new API key, a webhook's signing secret, an
/// invitation's token): its body is never kept for replay. A retry with the same key answers
/// 409 `secret_not_replayed` naming `location`, the record that was made, instead.
#[derive(Debug, Clone)]
pub struct OneTimeSecret {
    pub location: String,
}

/// `response`, marked as showing a secret once (see [`OneTimeSecret`]).
pub fn one_time_secret(mut response: HttpResponse, location: String) -> HttpResponse {
    response.extensions_mut().insert(OneTimeSecret { location });
    response
}

/// Longest key accepted.
const MAX_KEY: usize = 255;

/// The headers of a response that are replayed with it.
const KEPT_HEADERS: [&str; 3] = ["content-type", "location", "etag"];

fn applies(req: &ServiceRequest, state: &AppState) -> bool {
    let writes = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    // Sign-up and sign-in answer tokens, which must never be kept; a method the path does not
    // answer is a 405 whatever the key.
    writes
        && req.path().starts_with("/v1/")
        && !req.path().starts_with("/v1/auth/")
        && state.routes.answers(req.method().as_str(), req.path())
}

fn parse_key(value: &HeaderValue) -> Result<String, ApiError> {
    let text = value.to_str().unwrap_or("");
    let valid = !text.is_empty()
        && text.len() <= MAX_KEY
        && text.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
    if valid {
        Ok(text.to_owned())
    } else {
        Err(ApiError::invalid(
            "Idempotency-Key",
            "invalid_value",
            format!("must be 1 to {MAX_KEY} printable ASCII characters (a UUID is a good key)"),
        ))
    }
}

fn credential_of(ctx: &AuthContext) -> String {
    match &ctx.credential {
        Credential::ApiKey { key_id, .. } => format!("key:{key_id}"),
        _ => format!("user:{}", ctx.user_id),
    }
}

/// What makes two requests the same: method, path with query, and body.
fn request_hash(req: &ServiceRequest, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(b" ");
    hasher.update(req.uri().path_and_query().map_or("", |p| p.as_str()));
    hasher.update(b"\n");
    hasher.update(body);
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Responses worth replaying: not 5xx (the server failed; a retry should run again) and not
/// an answer about the credential or its rate rather than the request.
fn keeps(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::UNAUTHORIZED
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS)
}

async fn read_body(req: &mut ServiceRequest, limit: usize) -> Result<Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("Could not read the request body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("The request body is larger than the limit of {limit} bytes."),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn replay(stored: StoredResponse) -> HttpResponse {
    if let Some((_, location)) = stored.headers.iter().find(|(n, _)| n == WITHHELD_HEADER) {
        let location = HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/"));
        let detail = format!(
            "The first request with this Idempotency-Key succeeded ({}) and showed a secret that \
             is shown only once and not kept. If it was lost, revoke or rotate what was made and \
             make a new one.",
            location.to_str().unwrap_or_default()
        );
        let error = ApiError::new(ErrorCode::SecretNotReplayed, detail)
            .with_header(header::LOCATION, location);
        return actix_web::ResponseError::error_response(&error);
    }
    let mut response = HttpResponse::build(
        StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
    );
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.insert_header((name, value));
        }
    }
    response.insert_header((
        HeaderName::from_static(REPLAYED_HEADER),
        HeaderValue::from_static("true"),
    ));
    response.body(stored.body)
}

fn in_progress() -> ApiError {
    ApiError::new(
        ErrorCode::IdempotencyRequestInProgress,
        "A request with this Idempotency-Key is still running; retry when it has answered.",
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
}

pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let header = req.headers().get(KEY_HEADER).cloned();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (Some(value), Some(state)) = (header, state) else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    if !applies(&req, &state) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let prepared = async {
        let key = parse_key(&value)?;
        let ctx = crate::auth::authenticate(req.request().clone()).await?;
        let body = read_body(
            &mut req,
            state.settings.body_limit.max(state.settings.upload_limit),
        )
        .await?;
        Ok::<_, ApiError>((key, ctx, body))
    }
    .await;
    let (key, mut ctx, body) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return Ok(req.error_response(error)),
    };
    let credential = credential_of(&ctx);
    let now = Utc::now();
    let stale_before = now - Duration::seconds(state.settings.idempotency_stale_seconds);
    let claim = state
        .store
        .idempotency()
        .claim(
            ctx.org_id,
            &credential,
            &key,
            &request_hash(&req, &body),
            now,
            stale_before,
        )
        .await;
    let recovered = match claim {
        Ok(Claim::Fresh) => Vec::new(),
        Ok(Claim::Recovered(written)) => written,
        Ok(Claim::Replay(stored)) => return Ok(req.into_response(replay(stored))),
        Ok(Claim::Mismatch) => {
            let error = ApiError::new(
                ErrorCode::IdempotencyKeyReused,
                "This Idempotency-Key was used with another request; use a new key for a new request.",
            );
            return Ok(req.error_response(error));
        }
        Ok(Claim::InProgress) => return Ok(req.error_response(in_progress())),
        Err(error) => return Ok(req.error_response(ApiError::from(error))),
    };
    ctx.idempotency = Some(IdempotencyRef {
        credential: credential.clone(),
        key: key.clone(),
        recovered,
    });
    req.extensions_mut().insert(Authenticated(ctx));
    req.set_payload(Payload::from(body));

    let response = match next.call(req).await {
        Ok(response) => response,
        Err(error) => {
            // Nothing was answered: let a retry run again.
            if let Err(e) = state.store.idempotency().release(&credential, &key).await {
                tracing::warn!(error = %e, "cannot release an idempotency key");
            }
            return Err(error);
        }
    };
    let status = response.status();
    let (request, response) = response.into_parts();
    let (response, body) = response.into_parts();
    let bytes = match body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(_) => Bytes::new(),
    };
    let withheld = response.extensions().get::<OneTimeSecret>().cloned();
    let kept = if let Some(OneTimeSecret { location }) = withheld {
        let stored = StoredResponse {
            status: status.as_u16(),
            headers: vec![(WITHHELD_HEADER.to_owned(), location)],
            body: Vec::new(),
        };
        state
            .store
            .idempotency()
            .complete(&credential, &key, &stored)
            .await
    } else if keeps(status) {
        let headers = KEPT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = response.headers().get(*name)?.to_str().ok()?;
                Some(((*name).to_owned(), value.to_owned()))
            })
            .collect();
        let stored = StoredResponse {
            status: status.as_u16(),
            headers,
            body: bytes.to_vec(),
        };
        state
            .store
            .idempotency()
            .complete(&credential, &key, &stored)
            .await
    } else {
        state.store.idempotency().release(&credential, &key).await
    };
    if let Err(error) = kept {
        tracing::warn!(%error, "cannot keep the idempotent response");
    }
    let response = response.set_body(BoxBody::new(bytes));
    Ok(ServiceResponse::new(request, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_printable_ascii_of_bounded_length() {
        assert!(parse_key(&HeaderValue::from_static("7f9c-abc")).is_ok());
        assert!(parse_key(&HeaderValue::from_static("")).is_err());
        assert!(parse_key(&HeaderValue::from_str(&"k".repeat(256)).unwrap()).is_err());
    }

    #[test]
    fn server_failures_and_credential_answers_are_not_kept() {
        assert!(keeps(StatusCode::CREATED));
        assert!(keeps(StatusCode::UNPROCESSABLE_ENTITY));
        assert!(keeps(StatusCode::CONFLICT));
        assert!(!keeps(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!keeps(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!keeps(StatusCode::TOO_MANY_REQUESTS));
        assert!(!keeps(StatusCode::UNAUTHORIZED));
    }
}
