//! A read timeout on every request body (`RAPPORT_BODY_TIMEOUT`, 60 s by default).
//!
//! A client that sends its headers and then stops sending the body (a multipart upload
//! without its closing boundary, a `Content-Length` larger than what follows) would hold a
//! worker's request open for as long as the connection lives. The request's payload is wrapped
//! here, before anything reads it (the JSON extractor, the idempotency middleware, multipart
//! and CSV uploads alike): when no byte of the body arrives for the timeout, reading it fails,
//! and whatever the handler made of that failure is replaced by a 408 `request_timeout`
//! problem document, sent with `Connection: close`.
//!
//! As nginx's `client_body_timeout`, the time counts between two reads, not for the whole
//! body, so a large upload on a slow link is not cut off while bytes keep coming. Actix's own
//! timers are separate and unchanged: `client_request_timeout` (5 s) bounds the request head,
//! keep-alive (5 s) the idle time between requests; neither applies to a body.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, ResponseError};
use futures_util::Stream;
use tokio::time::Sleep;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// What a request's payload is made of when it is not the connection's own.
type BoxedStream = Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>;

/// A payload that fails when no chunk arrives for `idle`.
struct Deadline {
    inner: Payload,
    idle: Duration,
    /// Runs while the reader waits for the next chunk; None while it is not waiting.
    timer: Option<Pin<Box<Sleep>>>,
    expired: Rc<Cell<bool>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(item) = Pin::new(&mut this.inner).poll_next(cx) {
            this.timer = None;
            return Poll::Ready(item);
        }
        let idle = this.idle;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.set(true);
                Poll::Ready(Some(Err(PayloadError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no byte of the body arrived for {idle:?}"),
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn timed_out(idle: Duration) -> ApiError {
    ApiError::new(
        ErrorCode::RequestTimeout,
        format!(
            "The request body stopped arriving: no byte of it for {} seconds. Send the whole body (a multipart body ends with its closing boundary) and retry.",
            idle.as_secs()
        ),
    )
}

/// Puts the read timeout on the request's body; answers 408 when it ran out.
pub async fn body_timeout(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let idle = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.settings.body_timeout);
    let payload = req.take_payload();
    let (Some(idle), false) = (idle, matches!(payload, Payload::None)) else {
        req.set_payload(payload);
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let expired = Rc::new(Cell::new(false));
    let deadline = Deadline {
        inner: payload,
        idle,
        timer: None,
        expired: expired.clone(),
    };
    req.set_payload(Payload::from(Box::pin(deadline) as BoxedStream));
    let response = next.call(req).await?;
    if !expired.get() {
        return Ok(response.map_into_boxed_body());
    }
    let (request, _) = response.into_parts();
    let mut answer = timed_out(idle).error_response();
    answer.head_mut().set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(request, answer))
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn deadline(inner: Payload, idle: Duration) -> (Deadline, Rc<Cell<bool>>) {
        let expired = Rc::new(Cell::new(false));
        let stream = Deadline {
            inner,
            idle,
            timer: None,
            expired: expired.clone(),
        };
        (stream, expired)
    }

    #[tokio::test]
    async fn a_body_that_keeps_coming_is_read_whole() {
        let (mut stream, expired) = deadline(
            Payload::from(Bytes::from_static(b"{}")),
            Duration::from_secs(1),
        );
        assert_eq!(stream.next().await.unwrap().unwrap(), "{}");
        assert!(stream.next().await.is_none());
        assert!(!expired.get());
    }

    #[tokio::test]
    async fn a_body_that_stops_arriving_fails_and_says_so() {
        let silent: BoxedStream = Box::pin(futures_util::stream::pending());
        let (mut stream, expired) = deadline(Payload::from(silent), Duration::from_millis(20));
        let error = stream.next().await.unwrap().unwrap_err();
        assert!(error.to_string().contains("no byte of the body"), "{error}");
        assert!(expired.get());
        assert!(stream.next().await.is_none());
    }
}
