//! Idempotent retries: a write request may carry an `Idempotency-Key`; the first response is
//! kept and answered again to a retry with the same key and body, per credential.

use chrono::Duration;
use uuid::Uuid;

use crate::ObjectType;
use crate::record::EventAction;

/// How long a key and its response are kept.
pub fn keep_for() -> Duration {
    Duration::hours(24)
}

/// The key a request came with, carried in its `AuthContext` so that the write's transaction
/// records, atomically with the write, that the attempt committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRef {
    /// `key:<api key id>` or `user:<user id>`.
    pub credential: String,
    pub key: String,
    /// For a retry of an attempt that committed but never answered: what that attempt wrote.
    pub recovered: Vec<CommittedEvent>,
}

impl IdempotencyRef {
    /// The record of `object` a recovered attempt created, so that the retry answers it
    /// instead of creating another.
    pub fn recovered_creation(&self, object: ObjectType) -> Option<Uuid> {
        self.recovered
            .iter()
            .find(|e| e.object == object && e.action == EventAction::Created)
            .map(|e| e.id)
    }
}

/// One record an attempt changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedEvent {
    pub object: ObjectType,
    pub id: Uuid,
    pub action: EventAction,
}

/// A response as kept for replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    /// The headers worth replaying (`content-type`, `location`, `etag`), lower-case names.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or its earlier attempt failed before writing): run the request.
    Fresh,
    /// The same request already answered: send this again.
    Replay(StoredResponse),
    /// The key was used with another request.
    Mismatch,
    /// An attempt with this key is running.
    InProgress,
    /// An earlier attempt committed its writes but never answered (the process stopped):
    /// run the request again, knowing what it wrote.
    Recovered(Vec<CommittedEvent>),
}
