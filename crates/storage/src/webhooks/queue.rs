//! The delivery queue: dispatching new events into deliveries (a transactional outbox fed
//! from the event log), claiming due deliveries under a lease, and recording attempts.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rapport_domain::identity::audit_action;
use rapport_domain::record::{EventAction, RecordEvent};
use rapport_domain::store::WebhookQueue;
use rapport_domain::webhook::{Attempt, AttemptOutcome, DeliveryJob, DeliveryStatus, wants};
use rapport_domain::{AuthContext, Credential, ObjectType, Role, StoreError};
use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::audit::AuditRecord;
use crate::rows::now;

use super::patterns;

const ACTIVE_WEBHOOKS: &str = "select id, org_id, events, last_seq from webhooks \
     where active and id > $1 order by id limit 100";
const NEW_EVENTS: &str = "select seq, object_type, object_id, action from events \
     where org_id = $1 and seq > $2 order by seq limit 1000";
const ADVANCE: &str = "update webhooks set last_seq = $2 where id = $1 and last_seq < $2";
const INSERT_DELIVERY: &str = "insert into webhook_deliveries (id, org_id, webhook_id, event_seq, \
     event_type, object_type, object_id, status, attempts, next_attempt_at, created_at, updated_at) ";
/// Due deliveries whose record has no earlier delivery still to make, oldest first.
const DUE: &str = "select d.id from webhook_deliveries d join webhooks w on w.id = d.webhook_id \
     where w.active and ((d.status = 'pending' and d.next_attempt_at <= $1) \
     or (d.status = 'sending' and d.lease_until < $1)) \
     and not exists (select 1 from webhook_deliveries e where e.webhook_id = d.webhook_id \
     and e.object_id = d.object_id and e.event_seq < d.event_seq \
     and e.status in ('pending', 'sending')) \
     order by d.next_attempt_at, d.event_seq limit $2";
const CLAIMED: &str = "select d.id, d.org_id, d.webhook_id, w.url, w.secret, d.event_seq, \
     d.attempts from webhook_deliveries d join webhooks w on w.id = d.webhook_id where d.id in ";
const EVENTS_BY_SEQ: &str = "select seq, object_type, object_id, action, changes, merged_ids, \
     actor_id, api_key_id, occurred_at from events where org_id = ";
const INSERT_ATTEMPT: &str = "insert into webhook_attempts \
     (id, org_id, delivery_id, attempted_at, response_status, latency_ms, error) \
     values ($1, $2, $3, $4, $5, $6, $7)";
const FINISH_ATTEMPT: &str = "update webhook_deliveries set status = $2, attempts = attempts + 1, \
     next_attempt_at = $3, lease_until = null, last_status = $4, last_error = $5, updated_at = $6 \
     where id = $1 and status = 'sending'";
const DISABLE: &str = "update webhooks set active = false, disabled_reason = $2, \
     version = version + 1, updated_at = $3 where id = $1 and active";

/// An event as dispatching sees it.
#[derive(sqlx::FromRow)]
struct EventKey {
    seq: i64,
    object_type: String,
    object_id: Uuid,
    action: String,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    id: Uuid,
    org_id: Uuid,
    webhook_id: Uuid,
    url: String,
    secret: String,
    event_seq: i64,
    attempts: i64,
}

per_backend! {
    /// Makes the deliveries of one page of active webhooks; answers how many, and where the
    /// next page starts (None: done).
    pub(crate) async fn dispatch_page(
        conn: &mut Conn,
        after: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(u64, Option<Uuid>), crate::error::DbError> {
        let lock = if BACKEND == rapport_domain::Backend::Postgres { " for update skip locked" } else { "" };
        let statement = format!("{ACTIVE_WEBHOOKS}{lock}");
        let hooks: Vec<(Uuid, Uuid, Json<Vec<String>>, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(statement))
            .bind(after)
            .fetch_all(&mut *conn)
            .await?;
        let mut made = 0;
        for (id, org_id, events, last_seq) in &hooks {
            let wanted = patterns(&events.0)?;
            let new: Vec<EventKey> = sqlx::query_as(NEW_EVENTS)
                .bind(org_id)
                .bind(last_seq)
                .fetch_all(&mut *conn)
                .await?;
            let Some(newest) = new.last().map(|e| e.seq) else { continue };
            let matching: Vec<&EventKey> = new
                .iter()
                .filter(|e| {
                    let object = e.object_type.parse::<ObjectType>();
                    let action = EventAction::parse(&e.action);
                    matches!((object, action), (Ok(o), Some(a)) if wants(&wanted, o, a))
                })
                .collect();
            for chunk in matching.chunks(200) {
                let mut qb = sqlx::QueryBuilder::<Db>::new(INSERT_DELIVERY);
                qb.push_values(chunk, |mut row, event| {
                    row.push_bind(Uuid::now_v7())
                        .push_bind(*org_id)
                        .push_bind(*id)
                        .push_bind(event.seq)
                        .push_bind(format!("{}.{}", event.object_type, event.action))
                        .push_bind(event.object_type.clone())
                        .push_bind(event.object_id)
                        .push_bind("pending")
                        .push_bind(0_i64)
                        .push_bind(at)
                        .push_bind(at)
                        .push_bind(at);
                });
                made += qb.build().execute(&mut *conn).await?.rows_affected();
            }
            sqlx::query(ADVANCE).bind(id).bind(newest).execute(&mut *conn).await?;
        }
        let next = (hooks.len() == 100).then(|| hooks.last().map(|h| h.0)).flatten();
        Ok((made, next))
    }

    /// Claims due deliveries for `lease_until`.
    pub(crate) async fn claim_due(
        conn: &mut Conn,
        at: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<DeliveryJob>, crate::error::DbError> {
        let lock = if BACKEND == rapport_domain::Backend::Postgres { " for update of d skip locked" } else { "" };
        let due: Vec<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{DUE}{lock}")))
            .bind(at)
            .bind(i64::from(limit))
            .fetch_all(&mut *conn)
            .await?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new("update webhook_deliveries set status = 'sending', lease_until = ");
        qb.push_bind(lease_until).push(", updated_at = ").push_bind(at).push(" where id in ");
        sql::push_list(&mut qb, due.iter().copied());
        qb.build().execute(&mut *conn).await?;
        let mut query = sqlx::QueryBuilder::<Db>::new(CLAIMED);
        sql::push_list(&mut query, due.iter().copied());
        query.push(" order by d.next_attempt_at, d.event_seq");
        let rows: Vec<ClaimedRow> = query.build_query_as().fetch_all(&mut *conn).await?;
        Ok(rows
            .into_iter()
            .map(|r| DeliveryJob {
                id: r.id,
                org_id: r.org_id,
                webhook_id: r.webhook_id,
                url: r.url,
                secret: r.secret,
                event_seq: r.event_seq,
                attempts: u32::try_from(r.attempts).unwrap_or(u32::MAX),
            })
            .collect())
    }
}

#[async_trait]
impl WebhookQueue for SqlStore {
    async fn dispatch(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut made = 0;
        let mut after = Uuid::nil();
        loop {
            let (count, next) = on_db!(&self.db, write, |pool, sql| {
                let mut tx = pool.begin().await?;
                let page = sql::dispatch_page(&mut tx, after, now).await?;
                tx.commit().await?;
                Ok(page)
            })?;
            made += count;
            match next {
                Some(next) => after = next,
                None => return Ok(made),
            }
        }
    }

    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DeliveryJob>, StoreError> {
        let lease_until = now + lease;
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let jobs = sql::claim_due(&mut tx, now, lease_until, limit).await?;
            tx.commit().await?;
            Ok(jobs)
        })
    }

    async fn events(&self, org_id: Uuid, seqs: &[i64]) -> Result<Vec<RecordEvent>, StoreError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        on_db!(&self.db, read, |pool, sql| {
            let mut qb = sql::Builder::new(EVENTS_BY_SEQ);
            qb.push_bind(org_id).push(" and seq in ");
            sql::push_list(&mut qb, seqs.iter().copied());
            qb.push(" order by seq");
            let rows: Vec<crate::events::EventRow> = qb.build_query_as().fetch_all(pool).await?;
            Ok(rows
                .into_iter()
                .map(RecordEvent::try_from)
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    async fn record_attempt(
        &self,
        job: &DeliveryJob,
        attempt: &Attempt,
        outcome: &AttemptOutcome,
    ) -> Result<(), StoreError> {
        let at = now();
        let (status, next_at) = match outcome {
            AttemptOutcome::Succeeded => (DeliveryStatus::Succeeded, at),
            AttemptOutcome::Retry(next) => (DeliveryStatus::Pending, *next),
            AttemptOutcome::Failed | AttemptOutcome::Gone => (DeliveryStatus::Failed, at),
        };
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT_ATTEMPT)
                .bind(Uuid::now_v7())
                .bind(job.org_id)
                .bind(job.id)
                .bind(attempt.attempted_at)
                .bind(attempt.response_status.map(i64::from))
                .bind(attempt.latency_ms)
                .bind(&attempt.error)
                .execute(&mut *tx)
                .await?;
            sqlx::query(FINISH_ATTEMPT)
                .bind(job.id)
                .bind(status.as_str())
                .bind(next_at)
                .bind(attempt.response_status.map(i64::from))
                .bind(&attempt.error)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            if *outcome == AttemptOutcome::Gone {
                let reason = "the receiver answered 410 Gone";
                let disabled = sqlx::query(DISABLE)
                    .bind(job.webhook_id)
                    .bind(reason)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if disabled == 1 {
                    insert_audit!(
                        &mut *tx,
                        AuditRecord {
                            org_id: job.org_id,
                            action: audit_action::WEBHOOK_DISABLED,
                            actor_id: None,
                            api_key_id: None,
                            target: Some((ObjectType::Webhook, job.webhook_id)),
                            ip: None,
                            details: json!({"reason": reason, "url": job.url}),
                        }
                    )?;
                }
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn system_context(&self, org_id: Uuid) -> Result<AuthContext, StoreError> {
        let organization = rapport_domain::store::AuthStore::organization_of(self, org_id).await?;
        Ok(AuthContext {
            org_id,
            user_id: Uuid::nil(),
            role: Role::Owner,
            team_id: None,
            credential: Credential::System,
            settings: organization.settings,
            ip: None,
            idempotency: None,
            import: None,
        })
    }
}
