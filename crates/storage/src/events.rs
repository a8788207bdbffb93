//! The event log: every write appends its events in the same transaction, numbered by the
//! organization's gapless sequence. History, the change feed and webhooks all read it.

use chrono::{DateTime, Utc};
use rapport_domain::page::{Cursor, Page, PageRequest};
use rapport_domain::record::{ChangePage, Changes, EventAction, RecordEvent};
use rapport_domain::{AuthContext, ObjectType, StoreError};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::error::DbError;

/// Takes `n` sequence numbers; the row lock it holds until commit orders the organization's
/// writers, which is why it runs last in a transaction.
const RESERVE: &str =
    "update event_sequences set last_seq = last_seq + $2 where org_id = $1 returning last_seq";
pub(crate) const CREATE_SEQUENCE: &str =
    "insert into event_sequences (org_id, last_seq) values ($1, 0)";
const HISTORY: &str = "select seq, object_type, object_id, action, changes, merged_ids, actor_id, \
     api_key_id, occurred_at from events \
     where org_id = $1 and object_type = $2 and object_id = $3 and seq < $4 \
     order by seq desc limit $5";

pub(crate) const HISTORY_SORT: &str = "-seq";

/// An event to append.
pub(crate) struct NewEvent<'a> {
    pub object: ObjectType,
    pub id: Uuid,
    pub action: EventAction,
    pub changes: &'a Changes,
    pub merged_ids: &'a [Uuid],
}

const FEED_COLUMNS: &str = "select seq, object_type, object_id, action, changes, merged_ids, \
     actor_id, api_key_id, occurred_at from events where org_id = ";
/// The first event after a cursor: when it is older than the retention, the cursor expired.
const NEXT_AFTER: &str =
    "select occurred_at from events where org_id = $1 and seq > $2 order by seq limit 1";
const NEWEST: &str = "select coalesce(max(seq), 0) from events where org_id = $1";
/// Where the feed starts without a cursor: just before the oldest event it keeps.
const START: &str = "select min(seq) from events where org_id = $1 and occurred_at >= $2";

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    seq: i64,
    object_type: String,
    object_id: Uuid,
    action: String,
    changes: Json<Changes>,
    merged_ids: Option<Json<Vec<Uuid>>>,
    actor_id: Option<Uuid>,
    api_key_id: Option<Uuid>,
    occurred_at: DateTime<Utc>,
}

impl TryFrom<EventRow> for RecordEvent {
    type Error = StoreError;
    fn try_from(row: EventRow) -> Result<Self, StoreError> {
        Ok(RecordEvent {
            seq: row.seq,
            object: row
                .object_type
                .parse()
                .map_err(|e| StoreError::internal(format!("event object type: {e}")))?,
            object_id: row.object_id,
            action: EventAction::parse(&row.action)
                .ok_or_else(|| StoreError::internal(format!("event action {}", row.action)))?,
            changes: row.changes.0,
            actor_id: row.actor_id,
            api_key_id: row.api_key_id,
            occurred_at: row.occurred_at,
            merged_ids: row.merged_ids.map(|j| j.0).unwrap_or_default(),
        })
    }
}

#[async_trait::async_trait]
impl rapport_domain::store::ChangeStore for crate::SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, after, limit))]
    async fn changes(
        &self,
        ctx: &AuthContext,
        after: Option<i64>,
        limit: u32,
        objects: &[ObjectType],
        kept_since: DateTime<Utc>,
    ) -> Result<ChangePage, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            // Read first: every event up to it has committed, so a feed that finds nothing
            // more of its objects may move on to it.
            let newest: i64 = sqlx::query_scalar(NEWEST)
                .bind(ctx.org_id)
                .fetch_one(pool)
                .await?;
            let after = match after {
                Some(after) if after > newest => {
                    return Err(StoreError::Invalid(vec![rapport_domain::FieldIssue::new(
                        "after",
                        "invalid_value",
                        "is ahead of this organization's feed: not a cursor it issued",
                    )])
                    .into());
                }
                Some(after) => {
                    let next: Option<DateTime<Utc>> = sqlx::query_scalar(NEXT_AFTER)
                        .bind(ctx.org_id)
                        .bind(after)
                        .fetch_optional(pool)
                        .await?;
                    if next.is_some_and(|at| at < kept_since) {
                        return Err(StoreError::CursorExpired.into());
                    }
                    after
                }
                None => {
                    let first: Option<i64> = sqlx::query_scalar(START)
                        .bind(ctx.org_id)
                        .bind(kept_since)
                        .fetch_one(pool)
                        .await?;
                    first.map_or(newest, |seq| seq - 1)
                }
            };
            let mut qb = sql::Builder::new(FEED_COLUMNS);
            qb.push_bind(ctx.org_id)
                .push(" and seq > ")
                .push_bind(after);
            if !objects.is_empty() {
                qb.push(" and object_type in ");
                sql::push_list(&mut qb, objects.iter().map(|o| o.as_str()));
            }
            qb.push(" order by seq limit ")
                .push_bind(i64::from(limit) + 1);
            let rows: Vec<EventRow> = qb.build_query_as().fetch_all(pool).await?;
            let has_more = rows.len() > limit as usize;
            let events = rows
                .into_iter()
                .take(limit as usize)
                .map(RecordEvent::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            let last = events.last().map_or(after, |e| e.seq);
            let position = if has_more { last } else { last.max(newest) };
            Ok(ChangePage {
                events,
                has_more,
                position,
            })
        })
    }
}

fn history_cursor(event: &RecordEvent) -> Cursor {
    Cursor::new(HISTORY_SORT, vec![Value::from(event.seq)], Uuid::nil())
}

per_backend! {
    /// Appends events as the last step of a writing transaction, and marks the request's
    /// `Idempotency-Key` (if any) committed with them.
    pub(crate) async fn append_events(
        conn: &mut Conn,
        ctx: &AuthContext,
        events: &[NewEvent<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        if events.is_empty() {
            return Ok(());
        }
        insert_events(&mut *conn, ctx, events, at).await?;
        if let Some(idempotency) = &ctx.idempotency {
            let written: Vec<_> = events.iter().map(|e| (e.object, e.id, e.action)).collect();
            sqlx::query(crate::idempotency::MARK_COMMITTED)
                .bind(&idempotency.credential)
                .bind(&idempotency.key)
                .bind(at)
                .bind(crate::idempotency::committed_json(&written))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    /// Appends events that follow the request's own (a related record's changed figures),
    /// after them in the feed; the request's idempotency record names only its own.
    pub(crate) async fn insert_events(
        conn: &mut Conn,
        ctx: &AuthContext,
        events: &[NewEvent<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        if events.is_empty() {
            return Ok(());
        }
        let count = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let last: i64 = sqlx::query_scalar(RESERVE)
            .bind(ctx.org_id)
            .bind(count)
            .fetch_one(&mut *conn)
            .await?;
        let first = last - count + 1;
        let numbered: Vec<(i64, &NewEvent<'_>)> = (first..).zip(events).collect();
        for chunk in numbered.chunks(500) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "insert into events (org_id, seq, object_type, object_id, action, changes, merged_ids, actor_id, api_key_id, occurred_at) ",
            );
            qb.push_values(chunk, |mut row, (seq, event)| {
                let merged = (!event.merged_ids.is_empty()).then(|| Json(event.merged_ids.to_vec()));
                row.push_bind(ctx.org_id)
                    .push_bind(*seq)
                    .push_bind(event.object.as_str())
                    .push_bind(event.id)
                    .push_bind(event.action.as_str())
                    .push_bind(Json(event.changes.clone()))
                    .push_bind(merged)
                    .push_bind(ctx.user_id)
                    .push_bind(ctx.api_key_id())
                    .push_bind(at);
            });
            qb.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// A record's events, newest first.
    pub(crate) async fn history(
        pool: &sqlx::Pool<Db>,
        org_id: Uuid,
        object: ObjectType,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<RecordEvent>, DbError> {
        let before = match &page.after {
            Some(cursor) if cursor.sort == HISTORY_SORT => cursor
                .values
                .first()
                .and_then(Value::as_i64)
                .ok_or_else(|| StoreError::Invalid(vec![rapport_domain::FieldIssue::new(
                    "cursor", "invalid_value", "is not a cursor of this history",
                )]))?,
            Some(_) => {
                return Err(StoreError::Invalid(vec![rapport_domain::FieldIssue::new(
                    "cursor", "invalid_value", "belongs to another list; start again without a cursor",
                )])
                .into())
            }
            None => i64::MAX,
        };
        let rows: Vec<EventRow> = sqlx::query_as(HISTORY)
            .bind(org_id)
            .bind(object.as_str())
            .bind(id)
            .bind(before)
            .bind(i64::from(page.limit) + 1)
            .fetch_all(pool)
            .await?;
        let events = rows
            .into_iter()
            .map(RecordEvent::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(events, page.limit, history_cursor, None))
    }
}
