//! Idempotency keys. A claim is one row per (credential, key); every step is a single
//! statement that compares before it changes, so two attempts racing for one key never both
//! run. The write's own transaction marks the row committed (see `events::append_events`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::idempotency::{Claim, CommittedEvent, StoredResponse, keep_for};
use rapport_domain::record::EventAction;
use rapport_domain::store::IdempotencyStore;
use rapport_domain::{ObjectType, StoreError};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;

const INSERT: &str = "insert into idempotency_keys \
     (credential, key, org_id, request_hash, locked_at, created_at, expires_at) \
     values ($1, $2, $3, $4, $5, $5, $6) on conflict (credential, key) do nothing";
const SELECT: &str = "select request_hash, locked_at, committed_at, committed_events, \
     response_status, response_headers, response_body, expires_at \
     from idempotency_keys where credential = $1 and key = $2";
const RENEW_EXPIRED: &str = "update idempotency_keys set org_id = $3, request_hash = $4, \
     locked_at = $5, committed_at = null, committed_events = null, response_status = null, \
     response_headers = null, response_body = null, created_at = $5, expires_at = $6 \
     where credential = $1 and key = $2 and expires_at <= $5";
const TAKE_OVER: &str = "update idempotency_keys set locked_at = $3 \
     where credential = $1 and key = $2 and locked_at = $4 and response_status is null";
const COMPLETE: &str = "update idempotency_keys set response_status = $3, \
     response_headers = $4, response_body = $5 where credential = $1 and key = $2";
const RELEASE_UNWRITTEN: &str = "delete from idempotency_keys \
     where credential = $1 and key = $2 and committed_at is null and response_status is null";
/// A committed attempt that failed to answer: unlock it, so that a retry recovers at once.
const UNLOCK_COMMITTED: &str = "update idempotency_keys set locked_at = $3 \
     where credential = $1 and key = $2 and committed_at is not null and response_status is null";
const PURGE: &str = "delete from idempotency_keys where expires_at < $1";

/// Marks the claim of the context's key committed; runs inside the write's transaction.
pub(crate) const MARK_COMMITTED: &str = "update idempotency_keys set committed_at = $3, \
     committed_events = $4 where credential = $1 and key = $2 and committed_at is null";

#[derive(sqlx::FromRow)]
struct KeyRow {
    request_hash: String,
    locked_at: DateTime<Utc>,
    committed_at: Option<DateTime<Utc>>,
    committed_events: Option<Json<Vec<Value>>>,
    response_status: Option<i64>,
    response_headers: Option<Json<Vec<(String, String)>>>,
    response_body: Option<Vec<u8>>,
    expires_at: DateTime<Utc>,
}

/// The JSON kept of what an attempt wrote.
pub(crate) fn committed_json(events: &[(ObjectType, Uuid, EventAction)]) -> Json<Vec<Value>> {
    Json(
        events
            .iter()
            .map(|(object, id, action)| {
                serde_json::json!({"object": object.as_str(), "id": id, "action": action.as_str()})
            })
            .collect(),
    )
}

fn committed_events(json: Option<Json<Vec<Value>>>) -> Vec<CommittedEvent> {
    json.map(|j| j.0)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| {
            Some(CommittedEvent {
                object: v["object"].as_str()?.parse().ok()?,
                id: v["id"].as_str()?.parse().ok()?,
                action: EventAction::parse(v["action"].as_str()?)?,
            })
        })
        .collect()
}

/// The earliest time a timestamp column holds: an unlocked claim.
fn unlocked() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

#[async_trait]
impl IdempotencyStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %org_id))]
    async fn claim(
        &self,
        org_id: Uuid,
        credential: &str,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
    ) -> Result<Claim, StoreError> {
        let expires_at = now + keep_for();
        on_db!(&self.db, write, |pool| {
            let inserted = sqlx::query(INSERT)
                .bind(credential)
                .bind(key)
                .bind(org_id)
                .bind(request_hash)
                .bind(now)
                .bind(expires_at)
                .execute(pool)
                .await?
                .rows_affected();
            if inserted == 1 {
                return Ok(Claim::Fresh);
            }
            let row: Option<KeyRow> = sqlx::query_as(SELECT)
                .bind(credential)
                .bind(key)
                .fetch_optional(pool)
                .await?;
            // Released between the insert and the read: another attempt is starting over.
            let Some(row) = row else {
                return Ok(Claim::InProgress);
            };
            if row.expires_at <= now {
                let renewed = sqlx::query(RENEW_EXPIRED)
                    .bind(credential)
                    .bind(key)
                    .bind(org_id)
                    .bind(request_hash)
                    .bind(now)
                    .bind(expires_at)
                    .execute(pool)
                    .await?
                    .rows_affected();
                return Ok(if renewed == 1 {
                    Claim::Fresh
                } else {
                    Claim::InProgress
                });
            }
            if row.request_hash != request_hash {
                return Ok(Claim::Mismatch);
            }
            if let Some(status) = row.response_status {
                return Ok(Claim::Replay(StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    headers: row.response_headers.map(|h| h.0).unwrap_or_default(),
                    body: row.response_body.unwrap_or_default(),
                }));
            }
            if row.locked_at > stale_before {
                return Ok(Claim::InProgress);
            }
            let taken = sqlx::query(TAKE_OVER)
                .bind(credential)
                .bind(key)
                .bind(now)
                .bind(row.locked_at)
                .execute(pool)
                .await?
                .rows_affected();
            Ok(match (taken, row.committed_at) {
                (0, _) => Claim::InProgress,
                (_, Some(_)) => Claim::Recovered(committed_events(row.committed_events)),
                (_, None) => Claim::Fresh,
            })
        })
    }

    async fn complete(
        &self,
        credential: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<(), StoreError> {
        on_db!(&self.db, write, |pool| {
            sqlx::query(COMPLETE)
                .bind(credential)
                .bind(key)
                .bind(i64::from(response.status))
                .bind(Json(&response.headers))
                .bind(&response.body)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    async fn release(&self, credential: &str, key: &str) -> Result<(), StoreError> {
        on_db!(&self.db, write, |pool| {
            sqlx::query(RELEASE_UNWRITTEN)
                .bind(credential)
                .bind(key)
                .execute(pool)
                .await?;
            sqlx::query(UNLOCK_COMMITTED)
                .bind(credential)
                .bind(key)
                .bind(unlocked())
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        on_db!(&self.db, write, |pool| {
            Ok(sqlx::query(PURGE)
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected())
        })
    }
}
