//! API keys: stored as hashes, listed without secrets, revoked rather than deleted. Admins see
//! every key of the organization; everyone else their own.

use async_trait::async_trait;
use rapport_domain::identity::{ApiKey, NewApiKey, audit_action};
use rapport_domain::page::{Cursor, Page, PageRequest};
use rapport_domain::store::ApiKeyStore;
use rapport_domain::{AuthContext, ObjectType, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::SqlStore;
use crate::audit::AuditRecord;
use crate::rows::{ApiKeyRow, now, scope_texts};

pub(crate) const API_KEY_SORT: &str = "id";

// In every query `$2` is true for admins (every key) and `$3` is the caller otherwise.
const COUNT: &str = "select count(*) from api_keys \
     where org_id = $1 and revoked_at is null and ($2 or user_id = $3)";
const SELECT: &str = concat!(
    "select ",
    api_key_columns!(),
    " from api_keys where org_id = $1 and revoked_at is null and ($2 or user_id = $3) and id = $4"
);
const LIST: &str = concat!(
    "select ",
    api_key_columns!(),
    " from api_keys where org_id = $1 and revoked_at is null and ($2 or user_id = $3) \
     and ($4 or id > $5) order by id limit $6"
);
const INSERT: &str = "insert into api_keys \
     (id, org_id, user_id, name, prefix, secret_hash, scopes, expires_at, created_at) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
/// The caller's row, locked so that two keys made at once are counted one after the other.
const LOCK_USER: &str = "update users set version = version where org_id = $1 and id = $2";
const LIVE_KEYS_OF_USER: &str = "select count(*) from api_keys where org_id = $1 \
     and user_id = $2 and revoked_at is null and (expires_at is null or expires_at > $3)";
const REVOKE: &str = "update api_keys set revoked_at = $5 \
     where org_id = $1 and revoked_at is null and ($2 or user_id = $3) and id = $4";

fn key_cursor(key: &ApiKey) -> Cursor {
    Cursor::new(API_KEY_SORT, Vec::new(), key.id)
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(
        &self,
        ctx: &AuthContext,
        page: &PageRequest,
    ) -> Result<Page<ApiKey>, StoreError> {
        let after = page.after.as_ref().map(|c| c.id);
        let all = ctx.role.is_admin();
        on_db!(&self.db, read, |pool| {
            let rows: Vec<ApiKeyRow> = sqlx::query_as(LIST)
                .bind(ctx.org_id)
                .bind(all)
                .bind(ctx.user_id)
                .bind(after.is_none())
                .bind(after.unwrap_or_default())
                .bind(i64::from(page.limit) + 1)
                .fetch_all(pool)
                .await?;
            let total = if page.with_total {
                let count: i64 = sqlx::query_scalar(COUNT)
                    .bind(ctx.org_id)
                    .bind(all)
                    .bind(ctx.user_id)
                    .fetch_one(pool)
                    .await?;
                Some(count)
            } else {
                None
            };
            let keys = rows
                .into_iter()
                .map(ApiKey::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_rows(keys, page.limit, key_cursor, total))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, key = %id))]
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<ApiKey, StoreError> {
        on_db!(&self.db, read, |pool| {
            let row: ApiKeyRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(ctx.role.is_admin())
                .bind(ctx.user_id)
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(ApiKey::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn create(
        &self,
        ctx: &AuthContext,
        key: NewApiKey,
        max_live: u32,
    ) -> Result<ApiKey, StoreError> {
        let id = Uuid::now_v7();
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK_USER)
                .bind(ctx.org_id)
                .bind(ctx.user_id)
                .execute(&mut *tx)
                .await?;
            let live: i64 = sqlx::query_scalar(LIVE_KEYS_OF_USER)
                .bind(ctx.org_id)
                .bind(ctx.user_id)
                .bind(at)
                .fetch_one(&mut *tx)
                .await?;
            if live >= i64::from(max_live) {
                return Err(StoreError::ApiKeyLimit { limit: max_live }.into());
            }
            sqlx::query(INSERT)
                .bind(id)
                .bind(ctx.org_id)
                .bind(ctx.user_id)
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(&key.secret_hash)
                .bind(scope_texts(&key.scopes))
                .bind(key.expires_at)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let scopes: Vec<String> = key.scopes.iter().map(ToString::to_string).collect();
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::API_KEY_CREATED)
                    .on(ObjectType::ApiKey, id)
                    .details(json!({ "name": key.name, "prefix": key.prefix, "scopes": scopes }))
            )?;
            let row: ApiKeyRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(true)
                .bind(ctx.user_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(ApiKey::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, key = %id))]
    async fn revoke(&self, ctx: &AuthContext, id: Uuid) -> Result<(), StoreError> {
        let at = now();
        let result = on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let revoked = sqlx::query(REVOKE)
                .bind(ctx.org_id)
                .bind(ctx.role.is_admin())
                .bind(ctx.user_id)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if revoked == 0 {
                return Err(StoreError::NotFound.into());
            }
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::API_KEY_REVOKED).on(ObjectType::ApiKey, id)
            )?;
            tx.commit().await?;
            Ok(())
        });
        // Who may do what just changed (or may have): answers kept from before are stale.
        self.principals.forget_all();
        result
    }
}
