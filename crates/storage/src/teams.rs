//! Teams: a name and an optional manager; a user belongs to at most one team.

use async_trait::async_trait;
use rapport_domain::identity::{NewTeam, Team, TeamPatch};
use rapport_domain::page::{Cursor, Page, PageRequest};
use rapport_domain::store::TeamStore;
use rapport_domain::{AuthContext, StoreError};
use uuid::Uuid;

use crate::SqlStore;
use crate::error::unique_on;
use crate::rows::{TeamRow, now};

pub(crate) const TEAM_SORT: &str = "id";

const SELECT: &str = concat!(
    "select ",
    team_columns!(),
    " from teams where org_id = $1 and id = $2"
);
const LIST: &str = concat!(
    "select ",
    team_columns!(),
    " from teams where org_id = $1 and ($2 or id > $3) order by id limit $4"
);
const COUNT: &str = "select count(*) from teams where org_id = $1";
const INSERT: &str = "insert into teams (id, org_id, name, manager_id, version, created_at, updated_at) \
     values ($1, $2, $3, $4, 1, $5, $5)";
const LOCK: &str = "update teams set version = version where org_id = $1 and id = $2";
const UPDATE: &str = "update teams set name = $3, manager_id = $4, version = version + 1, \
     updated_at = $5 where org_id = $1 and id = $2";
const DELETE: &str = "delete from teams where org_id = $1 and id = $2";
const ACTIVE_USER_EXISTS: &str =
    "select count(*) from users where org_id = $1 and id = $2 and active";

fn team_cursor(team: &Team) -> Cursor {
    Cursor::new(TEAM_SORT, Vec::new(), team.id)
}

#[async_trait]
impl TeamStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(&self, ctx: &AuthContext, page: &PageRequest) -> Result<Page<Team>, StoreError> {
        let after = page.after.as_ref().map(|c| c.id);
        on_db!(&self.db, read, |pool| {
            let rows: Vec<TeamRow> = sqlx::query_as(LIST)
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
            let teams = rows.into_iter().map(Team::from).collect();
            Ok(Page::from_rows(teams, page.limit, team_cursor, total))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, team = %id))]
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Team, StoreError> {
        on_db!(&self.db, read, |pool| {
            let row: TeamRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(Team::from(row))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn create(&self, ctx: &AuthContext, team: NewTeam) -> Result<Team, StoreError> {
        let id = Uuid::now_v7();
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(manager) = team.manager_id {
                let found: i64 = sqlx::query_scalar(ACTIVE_USER_EXISTS)
                    .bind(ctx.org_id)
                    .bind(manager)
                    .fetch_one(&mut *tx)
                    .await?;
                if found == 0 {
                    return Err(StoreError::InvalidReference {
                        field: "manager_id".into(),
                    }
                    .into());
                }
            }
            sqlx::query(INSERT)
                .bind(id)
                .bind(ctx.org_id)
                .bind(&team.name)
                .bind(team.manager_id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(unique_on("name"))?;
            let row: TeamRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Team::from(row))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, team = %id))]
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: TeamPatch,
        expected_version: Option<i64>,
    ) -> Result<Team, StoreError> {
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
            let current: TeamRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let current = Team::from(current);
            if let Some(expected) = expected_version
                && expected != current.version
            {
                return Err(StoreError::VersionMismatch {
                    current: current.version,
                }
                .into());
            }
            let manager_id = patch.manager_id.unwrap_or(current.manager_id);
            if let Some(manager) = manager_id
                && Some(manager) != current.manager_id
            {
                let found: i64 = sqlx::query_scalar(ACTIVE_USER_EXISTS)
                    .bind(ctx.org_id)
                    .bind(manager)
                    .fetch_one(&mut *tx)
                    .await?;
                if found == 0 {
                    return Err(StoreError::InvalidReference {
                        field: "manager_id".into(),
                    }
                    .into());
                }
            }
            sqlx::query(UPDATE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(patch.name.as_ref().unwrap_or(&current.name))
                .bind(manager_id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(unique_on("name"))?;
            let row: TeamRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Team::from(row))
        });
        // Who may do what just changed (or may have): answers kept from before are stale.
        self.principals.forget_all();
        result
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, team = %id))]
    async fn delete(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let result = on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let current: Option<TeamRow> = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(current) = current.map(Team::from) else {
                return Err(StoreError::NotFound.into());
            };
            if let Some(expected) = expected_version
                && expected != current.version
            {
                return Err(StoreError::VersionMismatch {
                    current: current.version,
                }
                .into());
            }
            // Members keep their accounts and lose the team (on delete set null).
            sqlx::query(DELETE)
                .bind(ctx.org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        });
        // Who may do what just changed (or may have): answers kept from before are stale.
        self.principals.forget_all();
        result
    }
}
