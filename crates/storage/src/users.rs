//! The organization's users: listing, creation, role/team/activation changes (with the
//! last-owner rule and revocation on deactivation), passwords, and ownership transfer.

use async_trait::async_trait;
use rapport_domain::identity::{TransferCounts, User, UserFilter, UserPatch, audit_action};
use rapport_domain::page::{Cursor, Page, PageRequest};
use rapport_domain::store::UserStore;
use rapport_domain::{AuthContext, ObjectType, Role, StoreError};
use serde_json::json;
use uuid::Uuid;

use rapport_domain::record::{Change, Changes, EventAction};

use crate::SqlStore;
use crate::audit::AuditRecord;
use crate::events::NewEvent;
use crate::owned::OWNED;
use crate::rows::{UserRow, now, users};

pub(crate) const USER_SORT: &str = "id";

const SELECT: &str = concat!(
    "select ",
    user_columns!(),
    " from users where org_id = $1 and id = $2"
);
const LOCK: &str = "update users set version = version where org_id = $1 and id = $2";
const UPDATE: &str = "update users set name = $3, role = $4, team_id = $5, active = $6, \
     locale = $7, timezone = $8, version = version + 1, updated_at = $9 \
     where org_id = $1 and id = $2";
const TEAM_EXISTS: &str = "select count(*) from teams where org_id = $1 and id = $2";
const OTHER_ACTIVE_OWNERS: &str = "select count(*) from users \
     where org_id = $1 and role = 'owner' and active and id <> $2";
const REVOKE_SESSIONS: &str = "update sessions set revoked_at = $3 \
     where org_id = $1 and user_id = $2 and revoked_at is null";
const REVOKE_KEYS: &str = "update api_keys set revoked_at = $3 \
     where org_id = $1 and user_id = $2 and revoked_at is null";
const SELECT_PASSWORD: &str = "select i.password_hash from users u \
     join identities i on i.id = u.identity_id where u.org_id = $1 and u.id = $2";
const UPDATE_PASSWORD: &str = "update identities set password_hash = $3, updated_at = $4 \
     where id = (select identity_id from users where org_id = $1 and id = $2)";
/// The sessions of every membership of the caller's identity, but `$3` (none: all).
const REVOKE_IDENTITY_SESSIONS: &str = "update sessions set revoked_at = $4 \
     where revoked_at is null and ($3 is null or id <> $3) and user_id in \
     (select id from users where identity_id = \
      (select identity_id from users where org_id = $1 and id = $2))";
const ACTIVE_USER_EXISTS: &str =
    "select count(*) from users where org_id = $1 and id = $2 and active";
const USER_EXISTS: &str = "select count(*) from users where org_id = $1 and id = $2";

fn user_cursor(user: &User) -> Cursor {
    Cursor::new(USER_SORT, Vec::new(), user.id)
}

#[async_trait]
impl UserStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(
        &self,
        ctx: &AuthContext,
        filter: &UserFilter,
        page: &PageRequest,
    ) -> Result<Page<User>, StoreError> {
        on_db!(&self.db, read, |pool| {
            let build = |count: bool| {
                let mut query = sqlx::QueryBuilder::new(if count {
                    "select count(*) from users where org_id = "
                } else {
                    concat!("select ", user_columns!(), " from users where org_id = ")
                });
                query.push_bind(ctx.org_id);
                if let Some(role) = filter.role {
                    query.push(" and role = ").push_bind(role.as_str());
                }
                if let Some(team) = filter.team_id {
                    query.push(" and team_id = ").push_bind(team);
                }
                if let Some(active) = filter.active {
                    query.push(" and active = ").push_bind(active);
                }
                query
            };
            let mut query = build(false);
            if let Some(after) = &page.after {
                query.push(" and id > ").push_bind(after.id);
            }
            query
                .push(" order by id limit ")
                .push_bind(i64::from(page.limit) + 1);
            let rows: Vec<UserRow> = query.build_query_as().fetch_all(pool).await?;
            let total = if page.with_total {
                Some(
                    build(true)
                        .build_query_scalar::<i64>()
                        .fetch_one(pool)
                        .await?,
                )
            } else {
                None
            };
            Ok(Page::from_rows(
                users(rows)?,
                page.limit,
                user_cursor,
                total,
            ))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, user = %id))]
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<User, StoreError> {
        on_db!(&self.db, read, |pool| {
            let row: UserRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(User::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, user = %id))]
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: UserPatch,
        expected_version: Option<i64>,
    ) -> Result<User, StoreError> {
        let at = now();
        let result = on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let locked = sqlx::query(LOCK)
                .bind(ctx.org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if locked == 0 {
                return Err(StoreError::NotFound.into());
            }
            let current: UserRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let current = User::try_from(current)?;
            if let Some(expected) = expected_version
                && expected != current.version
            {
                return Err(StoreError::VersionMismatch {
                    current: current.version,
                }
                .into());
            }

            let role = patch.role.unwrap_or(current.role);
            let active = patch.active.unwrap_or(current.active);
            let team_id = patch.team_id.unwrap_or(current.team_id);
            if let Some(team) = team_id
                && Some(team) != current.team_id
            {
                let found: i64 = sqlx::query_scalar(TEAM_EXISTS)
                    .bind(ctx.org_id)
                    .bind(team)
                    .fetch_one(&mut *tx)
                    .await?;
                if found == 0 {
                    return Err(StoreError::InvalidReference {
                        field: "team_id".into(),
                    }
                    .into());
                }
            }
            let loses_owner =
                current.role == Role::Owner && current.active && (role != Role::Owner || !active);
            if loses_owner {
                // Serialise owner changes per organization so that two concurrent demotions
                // cannot both see the other owner still active.
                sqlx::query(crate::organizations::LOCK)
                    .bind(ctx.org_id)
                    .execute(&mut *tx)
                    .await?;
                let others: i64 = sqlx::query_scalar(OTHER_ACTIVE_OWNERS)
                    .bind(ctx.org_id)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                if others == 0 {
                    return Err(StoreError::LastOwner.into());
                }
            }

            sqlx::query(UPDATE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(patch.name.as_ref().unwrap_or(&current.name))
                .bind(role.as_str())
                .bind(team_id)
                .bind(active)
                .bind(patch.locale.clone().unwrap_or(current.locale.clone()))
                .bind(patch.timezone.clone().unwrap_or(current.timezone.clone()))
                .bind(at)
                .execute(&mut *tx)
                .await?;

            if role != current.role {
                insert_audit!(
                    &mut *tx,
                    AuditRecord::by(ctx, audit_action::ROLE_CHANGED)
                        .on(ObjectType::User, id)
                        .details(json!({ "from": current.role.as_str(), "to": role.as_str() }))
                )?;
            }
            if active != current.active {
                if !active {
                    for revoke in [REVOKE_SESSIONS, REVOKE_KEYS] {
                        sqlx::query(revoke)
                            .bind(ctx.org_id)
                            .bind(id)
                            .bind(at)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                let action = if active {
                    audit_action::USER_ACTIVATED
                } else {
                    audit_action::USER_DEACTIVATED
                };
                insert_audit!(
                    &mut *tx,
                    AuditRecord::by(ctx, action).on(ObjectType::User, id)
                )?;
            }
            let row: UserRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(User::try_from(row)?)
        });
        // Who may do what just changed (or may have): answers kept from before are stale.
        self.principals.forget_all();
        result
    }

    async fn password_hash(&self, ctx: &AuthContext) -> Result<String, StoreError> {
        on_db!(&self.db, read, |pool| {
            let hash: String = sqlx::query_scalar(SELECT_PASSWORD)
                .bind(ctx.org_id)
                .bind(ctx.user_id)
                .fetch_one(pool)
                .await?;
            Ok(hash)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, user = %ctx.user_id))]
    async fn change_password(&self, ctx: &AuthContext, new_hash: String) -> Result<(), StoreError> {
        let at = now();
        let result = on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(UPDATE_PASSWORD)
                .bind(ctx.org_id)
                .bind(ctx.user_id)
                .bind(&new_hash)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            // Every other session of this person ends, in every organization; the one that
            // changed the password goes on.
            sqlx::query(REVOKE_IDENTITY_SESSIONS)
                .bind(ctx.org_id)
                .bind(ctx.user_id)
                .bind(ctx.session_id())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::PASSWORD_CHANGED)
                    .on(ObjectType::User, ctx.user_id)
            )?;
            tx.commit().await?;
            Ok(())
        });
        // Who may do what just changed (or may have): answers kept from before are stale.
        self.principals.forget_all();
        result
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, from = %from, to = %to))]
    async fn transfer_ownership(
        &self,
        ctx: &AuthContext,
        from: Uuid,
        to: Uuid,
        include: &[ObjectType],
    ) -> Result<TransferCounts, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let from_exists: i64 = sqlx::query_scalar(USER_EXISTS)
                .bind(ctx.org_id)
                .bind(from)
                .fetch_one(&mut *tx)
                .await?;
            if from_exists == 0 {
                return Err(StoreError::NotFound.into());
            }
            let to_active: i64 = sqlx::query_scalar(ACTIVE_USER_EXISTS)
                .bind(ctx.org_id)
                .bind(to)
                .fetch_one(&mut *tx)
                .await?;
            if to_active == 0 {
                return Err(StoreError::InvalidReference {
                    field: "to_user_id".into(),
                }
                .into());
            }
            let mut counts = TransferCounts::new();
            let mut moved_records: Vec<(ObjectType, Uuid)> = Vec::new();
            for owned in OWNED.iter().filter(|o| include.contains(&o.object)) {
                if let Some(select) = owned.owned_ids {
                    let ids: Vec<Uuid> = sqlx::query_scalar(select)
                        .bind(ctx.org_id)
                        .bind(from)
                        .fetch_all(&mut *tx)
                        .await?;
                    moved_records.extend(ids.into_iter().map(|id| (owned.object, id)));
                }
                let moved = sqlx::query(owned.reassign)
                    .bind(to)
                    .bind(ctx.org_id)
                    .bind(from)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                counts.insert(owned.object, moved);
            }
            let summary: serde_json::Map<String, serde_json::Value> = counts
                .iter()
                .map(|(object, n)| (object.as_str().to_owned(), json!(n)))
                .collect();
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::OWNERSHIP_TRANSFERRED)
                    .on(ObjectType::User, from)
                    .details(json!({ "to_user_id": to, "transferred": summary }))
            )?;
            // Each moved record of the event log gets its `updated` event.
            let changes = Changes::from([(
                "owner_id".to_owned(),
                Change {
                    old: json!(from),
                    new: json!(to),
                },
            )]);
            let events: Vec<NewEvent<'_>> = moved_records
                .iter()
                .map(|(object, id)| NewEvent {
                    object: *object,
                    id: *id,
                    action: EventAction::Updated,
                    changes: &changes,
                    merged_ids: &[],
                })
                .collect();
            sql::append_events(&mut tx, ctx, &events, at).await?;
            tx.commit().await?;
            Ok(counts)
        })
    }
}
