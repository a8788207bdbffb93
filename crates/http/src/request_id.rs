//! The request id: echoed from `X-Request-Id` when the client sent a sane one, generated
//! otherwise; on every response, in every problem document and in every log line.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use actix_web::http::header::HeaderMap;

pub const HEADER: &str = "x-request-id";

/// At most this many characters are echoed; longer ids are replaced, not truncated.
const MAX_LEN: usize = 128;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(Arc<str>);

tokio::task_local! {
    static CURRENT: RequestId;
}

impl RequestId {
    pub fn generate() -> Self {
        RequestId(uuid::Uuid::now_v7().to_string().into())
    }

    /// The client's id when it is 1–128 visible ASCII characters without separators that
    /// could split a log line or a header; a fresh one otherwise.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        headers
            .get(HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_acceptable(id))
            .map(|id| RequestId(id.into()))
            .unwrap_or_else(RequestId::generate)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Runs `future` with `id` as the current request id.
pub async fn scope<F: Future>(id: RequestId, future: F) -> F::Output {
    CURRENT.scope(id, future).await
}

/// Runs `f` with `id` as the current request id.
pub fn sync_scope<R>(id: RequestId, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(id, f)
}

/// The id of the request being handled. Outside a request (which does not happen for
/// responses the app renders) a fresh id, so that a problem document always has one.
pub fn current() -> RequestId {
    CURRENT
        .try_with(RequestId::clone)
        .unwrap_or_else(|_| RequestId::generate())
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn with_header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            HEADER.parse().unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        headers
    }

    #[test]
    fn a_sane_client_id_is_kept() {
        let id = RequestId::from_headers(&with_header("req-42.abc:9"));
        assert_eq!(id.as_str(), "req-42.abc:9");
    }

    #[test]
    fn ids_with_spaces_quotes_or_excess_length_are_replaced() {
        for bad in ["a b", "x\"y", "", &"a".repeat(129)] {
            let id = RequestId::from_headers(&with_header(bad));
            assert_ne!(id.as_str(), bad);
            assert!(uuid::Uuid::parse_str(id.as_str()).is_ok());
        }
    }

    #[tokio::test]
    async fn the_scope_sets_the_current_id() {
        let id = RequestId("fixed".into());
        let seen = scope(id.clone(), async { current() }).await;
        assert_eq!(seen, id);
    }
}
