//! Webhooks: subscriptions, their deliveries (a transactional outbox fed from the event log)
//! and attempts. Several server processes may share the queue: dispatching locks each
//! webhook's row and claiming skips deliveries another process holds (PostgreSQL), or runs on
//! the single writer (SQLite).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::identity::audit_action;
use rapport_domain::page::{Cursor, Page, PageRequest};
use rapport_domain::record::EventAction;
use rapport_domain::store::WebhookStore;
use rapport_domain::webhook::{
    Attempt, Delivery, DeliveryStatus, EventPattern, NewWebhook, Webhook, WebhookPatch,
};
use rapport_domain::{AuthContext, ObjectType, StoreError};
use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::audit::AuditRecord;
use crate::rows::now;

pub(crate) mod queue;

const WEBHOOK_SORT: &str = "id";
const DELIVERY_SORT: &str = "-id";

macro_rules! webhook_columns {
    () => {
        "id, org_id, url, events, description, active, disabled_reason, secret, version, \
         created_at, updated_at, created_by"
    };
}

const SELECT: &str = concat!(
    "select ",
    webhook_columns!(),
    " from webhooks where org_id = $1 and id = $2"
);
const LIST: &str = concat!(
    "select ",
    webhook_columns!(),
    " from webhooks where org_id = $1 and ($2 or id > $3) order by id limit $4"
);
const COUNT: &str = "select count(*) from webhooks where org_id = $1";
/// A new webhook starts after the newest event committed so far.
const INSERT: &str = "insert into webhooks (id, org_id, url, events, description, active, \
     secret, disabled_reason, last_seq, version, created_at, updated_at, created_by) \
     values ($1, $2, $3, $4, $5, $6, $7, null, \
     (select coalesce(max(seq), 0) from events where org_id = $2), 1, $8, $8, $9)";
const UPDATE: &str = "update webhooks set url = $3, events = $4, description = $5, active = $6, \
     disabled_reason = $7, version = version + 1, updated_at = $8 where org_id = $1 and id = $2";
/// Switched on again: deliver what is committed from now on.
const RESTART: &str = "update webhooks set last_seq = \
     (select coalesce(max(seq), 0) from events where org_id = $1) where org_id = $1 and id = $2";
const ROTATE: &str = "update webhooks set secret = $3, version = version + 1, updated_at = $4 \
     where org_id = $1 and id = $2";
const DELETE_ATTEMPTS: &str = "delete from webhook_attempts where org_id = $1 and delivery_id in \
     (select id from webhook_deliveries where org_id = $1 and webhook_id = $2)";
const DELETE_DELIVERIES: &str =
    "delete from webhook_deliveries where org_id = $1 and webhook_id = $2";
const DELETE: &str = "delete from webhooks where org_id = $1 and id = $2";

macro_rules! delivery_columns {
    () => {
        "id, webhook_id, event_seq, event_type, object_id, status, next_attempt_at, created_at, \
         updated_at"
    };
}

const DELIVERIES: &str = concat!(
    "select ",
    delivery_columns!(),
    " from webhook_deliveries where org_id = $1 and webhook_id = $2 and ($3 or id < $4) \
     order by id desc limit $5"
);
const DELIVERY: &str = concat!(
    "select ",
    delivery_columns!(),
    " from webhook_deliveries where org_id = $1 and webhook_id = $2 and id = $3"
);
const ATTEMPTS_OF: &str = "select delivery_id, attempted_at, response_status, latency_ms, error \
     from webhook_attempts where org_id = ";
const RETRY: &str = "update webhook_deliveries set status = 'pending', next_attempt_at = $4, \
     lease_until = null, updated_at = $4 where org_id = $1 and webhook_id = $2 and id = $3";

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: Uuid,
    org_id: Uuid,
    url: String,
    events: Json<Vec<String>>,
    description: Option<String>,
    active: bool,
    disabled_reason: Option<String>,
    secret: String,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    created_by: Option<Uuid>,
}

fn patterns(texts: &[String]) -> Result<Vec<EventPattern>, StoreError> {
    texts
        .iter()
        .map(|t| EventPattern::parse(t).map_err(StoreError::internal))
        .collect()
}

fn pattern_texts(patterns: &[EventPattern]) -> Json<Vec<String>> {
    Json(patterns.iter().map(ToString::to_string).collect())
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = StoreError;
    fn try_from(row: WebhookRow) -> Result<Self, StoreError> {
        Ok(Webhook {
            id: row.id,
            org_id: row.org_id,
            url: row.url,
            events: patterns(&row.events.0)?,
            description: row.description,
            active: row.active,
            disabled_reason: row.disabled_reason,
            secret: row.secret,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: row.created_by,
        })
    }
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: Uuid,
    webhook_id: Uuid,
    event_seq: i64,
    event_type: String,
    object_id: Uuid,
    status: String,
    next_attempt_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct AttemptRow {
    delivery_id: Uuid,
    attempted_at: DateTime<Utc>,
    response_status: Option<i64>,
    latency_ms: i64,
    error: Option<String>,
}

fn delivery(row: DeliveryRow, attempts: &[AttemptRow]) -> Result<Delivery, StoreError> {
    let bad = || StoreError::internal(format!("delivery event type {}", row.event_type));
    let (object, action) = row.event_type.split_once('.').ok_or_else(bad)?;
    let status = DeliveryStatus::parse(&row.status)
        .ok_or_else(|| StoreError::internal(format!("delivery status {}", row.status)))?;
    Ok(Delivery {
        id: row.id,
        webhook_id: row.webhook_id,
        event_seq: row.event_seq,
        object: object.parse().map_err(|_| bad())?,
        object_id: row.object_id,
        action: EventAction::parse(action).ok_or_else(bad)?,
        status,
        next_attempt_at: (status == DeliveryStatus::Pending).then_some(row.next_attempt_at),
        attempts: attempts
            .iter()
            .filter(|a| a.delivery_id == row.id)
            .map(|a| Attempt {
                attempted_at: a.attempted_at,
                response_status: a.response_status.and_then(|s| u16::try_from(s).ok()),
                latency_ms: a.latency_ms,
                error: a.error.clone(),
            })
            .collect(),
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

fn webhook_cursor(webhook: &Webhook) -> Cursor {
    Cursor::new(WEBHOOK_SORT, Vec::new(), webhook.id)
}

fn delivery_cursor(delivery: &Delivery) -> Cursor {
    Cursor::new(DELIVERY_SORT, Vec::new(), delivery.id)
}

#[async_trait]
impl WebhookStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(
        &self,
        ctx: &AuthContext,
        page: &PageRequest,
    ) -> Result<Page<Webhook>, StoreError> {
        let after = page.after.as_ref().map(|c| c.id);
        on_db!(&self.db, read, |pool| {
            let rows: Vec<WebhookRow> = sqlx::query_as(LIST)
                .bind(ctx.org_id)
                .bind(after.is_none())
                .bind(after.unwrap_or_default())
                .bind(i64::from(page.limit) + 1)
                .fetch_all(pool)
                .await?;
            let total = if page.with_total {
                Some(
                    sqlx::query_scalar::<_, i64>(COUNT)
                        .bind(ctx.org_id)
                        .fetch_one(pool)
                        .await?,
                )
            } else {
                None
            };
            let hooks = rows
                .into_iter()
                .map(Webhook::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_rows(hooks, page.limit, webhook_cursor, total))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, webhook = %id))]
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Webhook, StoreError> {
        on_db!(&self.db, read, |pool| {
            let row: WebhookRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(Webhook::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn create(
        &self,
        ctx: &AuthContext,
        webhook: NewWebhook,
        secret: String,
    ) -> Result<Webhook, StoreError> {
        let id = Uuid::now_v7();
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT)
                .bind(id)
                .bind(ctx.org_id)
                .bind(&webhook.url)
                .bind(pattern_texts(&webhook.events))
                .bind(&webhook.description)
                .bind(webhook.active)
                .bind(&secret)
                .bind(at)
                .bind(ctx.user_id)
                .execute(&mut *tx)
                .await?;
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::WEBHOOK_CREATED)
                    .on(ObjectType::Webhook, id)
                    .details(
                        json!({"url": webhook.url, "events": pattern_texts(&webhook.events).0})
                    )
            )?;
            let row: WebhookRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Webhook::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, webhook = %id))]
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: WebhookPatch,
        expected_version: Option<i64>,
    ) -> Result<Webhook, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let row: WebhookRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let current = Webhook::try_from(row)?;
            if let Some(expected) = expected_version
                && expected != current.version
            {
                return Err(StoreError::VersionMismatch {
                    current: current.version,
                }
                .into());
            }
            let active = patch.active.unwrap_or(current.active);
            let restarted = active && !current.active;
            let disabled_reason = if active {
                None
            } else {
                current.disabled_reason.clone()
            };
            let events = patch
                .events
                .clone()
                .unwrap_or_else(|| current.events.clone());
            sqlx::query(UPDATE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(patch.url.as_ref().unwrap_or(&current.url))
                .bind(pattern_texts(&events))
                .bind(
                    patch
                        .description
                        .clone()
                        .unwrap_or(current.description.clone()),
                )
                .bind(active)
                .bind(disabled_reason)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            if restarted {
                sqlx::query(RESTART)
                    .bind(ctx.org_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::WEBHOOK_UPDATED)
                    .on(ObjectType::Webhook, id)
                    .details(json!({"url": patch.url, "events": patch.events.as_deref().map(|e| pattern_texts(e).0), "active": patch.active}))
            )?;
            let row: WebhookRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Webhook::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, webhook = %id))]
    async fn delete(&self, ctx: &AuthContext, id: Uuid) -> Result<(), StoreError> {
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(DELETE_ATTEMPTS)
                .bind(ctx.org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(DELETE_DELIVERIES)
                .bind(ctx.org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query(DELETE)
                .bind(ctx.org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted == 0 {
                return Err(StoreError::NotFound.into());
            }
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::WEBHOOK_DELETED).on(ObjectType::Webhook, id)
            )?;
            tx.commit().await?;
            Ok(())
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, webhook = %id))]
    async fn rotate_secret(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        secret: String,
    ) -> Result<Webhook, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(ROTATE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(&secret)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound.into());
            }
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::WEBHOOK_SECRET_ROTATED)
                    .on(ObjectType::Webhook, id)
            )?;
            let row: WebhookRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Webhook::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, webhook = %webhook_id))]
    async fn deliveries(
        &self,
        ctx: &AuthContext,
        webhook_id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, StoreError> {
        let before = page.after.as_ref().map(|c| c.id);
        on_db!(&self.db, read, |pool, sql| {
            sqlx::query_scalar::<_, Uuid>("select id from webhooks where org_id = $1 and id = $2")
                .bind(ctx.org_id)
                .bind(webhook_id)
                .fetch_one(pool)
                .await?;
            let rows: Vec<DeliveryRow> = sqlx::query_as(DELIVERIES)
                .bind(ctx.org_id)
                .bind(webhook_id)
                .bind(before.is_none())
                .bind(before.unwrap_or_default())
                .bind(i64::from(page.limit) + 1)
                .fetch_all(pool)
                .await?;
            let mut attempts: Vec<AttemptRow> = Vec::new();
            if !rows.is_empty() {
                let mut qb = sql::Builder::new(ATTEMPTS_OF);
                qb.push_bind(ctx.org_id).push(" and delivery_id in ");
                sql::push_list(&mut qb, rows.iter().map(|r| r.id));
                qb.push(" order by attempted_at");
                attempts = qb.build_query_as().fetch_all(pool).await?;
            }
            let list = rows
                .into_iter()
                .map(|r| delivery(r, &attempts))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_rows(list, page.limit, delivery_cursor, None))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, webhook = %webhook_id, delivery = %delivery_id))]
    async fn retry_delivery(
        &self,
        ctx: &AuthContext,
        webhook_id: Uuid,
        delivery_id: Uuid,
    ) -> Result<Delivery, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(RETRY)
                .bind(ctx.org_id)
                .bind(webhook_id)
                .bind(delivery_id)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 0 {
                return Err(StoreError::NotFound.into());
            }
            let row: DeliveryRow = sqlx::query_as(DELIVERY)
                .bind(ctx.org_id)
                .bind(webhook_id)
                .bind(delivery_id)
                .fetch_one(&mut *tx)
                .await?;
            let attempts: Vec<AttemptRow> = sqlx::query_as(
                "select delivery_id, attempted_at, response_status, latency_ms, error from webhook_attempts \
                 where org_id = $1 and delivery_id = $2 order by attempted_at",
            )
            .bind(ctx.org_id)
            .bind(delivery_id)
            .fetch_all(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(delivery(row, &attempts)?)
        })
    }
}
