//! The caller's organization: its name and settings.

use async_trait::async_trait;
use rapport_domain::identity::{Organization, OrganizationPatch, audit_action};
use rapport_domain::store::OrganizationStore;
use rapport_domain::{AuthContext, ObjectType, StoreError};
use serde_json::json;
use sqlx::types::Json;

use crate::SqlStore;
use crate::audit::AuditRecord;
use crate::rows::{OrganizationRow, now};

const SELECT: &str = concat!(
    "select ",
    organization_columns!(),
    " from organizations where id = $1"
);
/// A no-op update that takes the row's write lock (PostgreSQL) for a read-modify-write; on
/// SQLite the single writer already serialises it.
pub(crate) const LOCK: &str = "update organizations set version = version where id = $1";
const UPDATE: &str = "update organizations set name = $2, settings = $3, version = version + 1, \
     updated_at = $4 where id = $1";

#[async_trait]
impl OrganizationStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn get(&self, ctx: &AuthContext) -> Result<Organization, StoreError> {
        on_db!(&self.db, read, |pool| {
            let row: OrganizationRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .fetch_one(pool)
                .await?;
            Ok(Organization::from(row))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn update(
        &self,
        ctx: &AuthContext,
        patch: OrganizationPatch,
        expected_version: Option<i64>,
    ) -> Result<Organization, StoreError> {
        let at = now();
        let result = on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(LOCK).bind(ctx.org_id).execute(&mut *tx).await?;
            let current: OrganizationRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .fetch_one(&mut *tx)
                .await?;
            let current = Organization::from(current);
            if let Some(expected) = expected_version
                && expected != current.version
            {
                return Err(StoreError::VersionMismatch {
                    current: current.version,
                }
                .into());
            }
            let name = patch.name.clone().unwrap_or_else(|| current.name.clone());
            let mut settings = current.settings.clone();
            settings
                .record_visibility
                .extend(patch.record_visibility.iter().map(|(o, v)| (*o, *v)));
            if let Some(region) = &patch.default_phone_region {
                settings.default_phone_region = region.clone();
            }
            sqlx::query(UPDATE)
                .bind(ctx.org_id)
                .bind(&name)
                .bind(Json(&settings))
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let mut changed = Vec::new();
            if name != current.name {
                changed.push("name");
            }
            if settings != current.settings {
                changed.push("settings");
            }
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::ORGANIZATION_UPDATED)
                    .on(ObjectType::Organization, ctx.org_id)
                    .details(json!({ "changed": changed }))
            )?;
            let updated: OrganizationRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Organization::from(updated))
        });
        // Who may do what just changed (or may have): answers kept from before are stale.
        self.principals.forget_all();
        result
    }
}
