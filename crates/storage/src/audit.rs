//! The audit log: sign-ins, failed sign-ins, keys, roles and activation changes. Entries are
//! written by the store methods that make the change, in the same transaction.

use async_trait::async_trait;
use rapport_domain::identity::{AuditEntry, AuditFilter};
use rapport_domain::page::{Cursor, Page, PageRequest};
use rapport_domain::store::AuditStore;
use rapport_domain::{AuthContext, ObjectType, StoreError};
use serde_json::Value;
use uuid::Uuid;

use crate::SqlStore;
use crate::rows::AuditRow;

pub(crate) const INSERT_AUDIT: &str = "insert into audit_log \
     (id, org_id, occurred_at, action, actor_id, api_key_id, target_type, target_id, ip, details) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// One audit entry to write.
pub(crate) struct AuditRecord {
    pub org_id: Uuid,
    pub action: &'static str,
    pub actor_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub target: Option<(ObjectType, Uuid)>,
    pub ip: Option<String>,
    pub details: Value,
}

impl AuditRecord {
    /// An entry for an action taken by the caller.
    pub fn by(ctx: &AuthContext, action: &'static str) -> AuditRecord {
        AuditRecord {
            org_id: ctx.org_id,
            action,
            actor_id: Some(ctx.user_id),
            api_key_id: ctx.api_key_id(),
            target: None,
            ip: ctx.ip.clone(),
            details: Value::Object(Default::default()),
        }
    }

    pub fn on(mut self, object: ObjectType, id: Uuid) -> AuditRecord {
        self.target = Some((object, id));
        self
    }

    pub fn details(mut self, details: Value) -> AuditRecord {
        self.details = details;
        self
    }
}

/// Writes an audit entry on a connection or transaction of either backend.
macro_rules! insert_audit {
    ($executor:expr, $record:expr) => {{
        let record: $crate::audit::AuditRecord = $record;
        sqlx::query($crate::audit::INSERT_AUDIT)
            .bind(uuid::Uuid::now_v7())
            .bind(record.org_id)
            .bind($crate::rows::now())
            .bind(record.action)
            .bind(record.actor_id)
            .bind(record.api_key_id)
            .bind(record.target.map(|(object, _)| object.as_str()))
            .bind(record.target.map(|(_, id)| id))
            .bind(record.ip)
            .bind(sqlx::types::Json(record.details))
            .execute($executor)
            .await
    }};
}

pub(crate) const AUDIT_SORT: &str = "-occurred_at";

#[async_trait]
impl AuditStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(
        &self,
        ctx: &AuthContext,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let after = match &page.after {
            Some(cursor) => Some((cursor_time(cursor)?, cursor.id)),
            None => None,
        };
        on_db!(&self.db, read, |pool| {
            let mut query = sqlx::QueryBuilder::new(concat!(
                "select ",
                audit_columns!(),
                " from audit_log where org_id = "
            ));
            query.push_bind(ctx.org_id);
            push_audit_filter(&mut query, filter);
            if let Some((at, id)) = after {
                query
                    .push(" and (occurred_at < ")
                    .push_bind(at)
                    .push(" or (occurred_at = ")
                    .push_bind(at)
                    .push(" and id < ")
                    .push_bind(id)
                    .push("))");
            }
            query
                .push(" order by occurred_at desc, id desc limit ")
                .push_bind(i64::from(page.limit) + 1);
            let rows: Vec<AuditRow> = query.build_query_as().fetch_all(pool).await?;
            let entries = rows
                .into_iter()
                .map(AuditEntry::try_from)
                .collect::<Result<Vec<_>, _>>()?;

            let total = if page.with_total {
                let mut count =
                    sqlx::QueryBuilder::new("select count(*) from audit_log where org_id = ");
                count.push_bind(ctx.org_id);
                push_audit_filter(&mut count, filter);
                Some(count.build_query_scalar::<i64>().fetch_one(pool).await?)
            } else {
                None
            };
            Ok(Page::from_rows(entries, page.limit, audit_cursor, total))
        })
    }
}

fn audit_cursor(entry: &AuditEntry) -> Cursor {
    Cursor::new(
        AUDIT_SORT,
        vec![Value::from(entry.occurred_at.to_rfc3339())],
        entry.id,
    )
}

fn cursor_time(cursor: &Cursor) -> Result<chrono::DateTime<chrono::Utc>, StoreError> {
    cursor
        .values
        .first()
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok_or(StoreError::InvalidReference {
            field: "cursor".into(),
        })
}

fn push_audit_filter<DB: sqlx::Database>(query: &mut sqlx::QueryBuilder<DB>, filter: &AuditFilter)
where
    for<'t> Uuid: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> String: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> chrono::DateTime<chrono::Utc>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    if let Some(actor) = filter.actor_id {
        query.push(" and actor_id = ").push_bind(actor);
    }
    if let Some(action) = &filter.action {
        query.push(" and action = ").push_bind(action.clone());
    }
    if let Some(after) = filter.after {
        query.push(" and occurred_at >= ").push_bind(after);
    }
    if let Some(before) = filter.before {
        query.push(" and occurred_at < ").push_bind(before);
    }
}
