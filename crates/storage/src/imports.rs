//! Import jobs. A job's file stays in its row until the job ends; each chunk of rows is
//! written in one transaction together with the job's progress and the chunk's row errors
//! (see `write_retrying!`), so a worker that stops mid-job leaves no half-written chunk and its
//! successor resumes at `processed`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::import::{
    ClaimedImport, ImportChunk, ImportCounts, ImportJob, ImportRowError, ImportStatus, NewImport,
};
use rapport_domain::page::{Cursor, Page, PageRequest};
use rapport_domain::store::{AuthStore, ImportQueue, ImportStore};
use rapport_domain::write::{IdProperty, RowOutcome, RowStatus};
use rapport_domain::{AuthContext, Credential, Role, StoreError};
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::rows::now;

const IMPORT_SORT: &str = "-id";
const ERROR_SORT: &str = "row";

macro_rules! import_columns {
    () => {
        "id, org_id, object, id_property, mapping, file_name, status, total, processed, created, \
         updated, unchanged, failed, error, user_id, api_key_id, created_at, updated_at, finished_at"
    };
}

// `$2` is true for admins (every job of the organization), `$3` the caller otherwise.
const SELECT: &str = concat!(
    "select ",
    import_columns!(),
    " from imports where org_id = $1 and ($2 or user_id = $3) and id = $4"
);
const LIST: &str = concat!(
    "select ",
    import_columns!(),
    " from imports where org_id = $1 and ($2 or user_id = $3) and ($4 or id < $5) \
     order by id desc limit $6"
);
const INSERT: &str = "insert into imports (id, org_id, object, id_property, mapping, file_name, \
     status, total, processed, created, updated, unchanged, failed, content, user_id, api_key_id, \
     created_at, updated_at) \
     values ($1, $2, $3, $4, $5, $6, 'queued', $7, 0, 0, 0, 0, 0, $8, $9, $10, $11, $11)";
const ERRORS: &str = "select row, line, field, code, message from import_errors \
     where org_id = $1 and import_id = $2 and row > $3 order by row, field limit $4";
const INSERT_ERROR: &str =
    "insert into import_errors (import_id, org_id, row, line, field, code, message) ";
const PROGRESS: &str = "update imports set processed = $3, created = created + $4, \
     updated = updated + $5, unchanged = unchanged + $6, failed = failed + $7, updated_at = $8 \
     where org_id = $1 and id = $2";
// A job whose lease is free, of an organization with no job under a live lease, served least
// recently first (a queued job's `updated_at` is its creation; a running one's, its last chunk).
const DUE: &str = "select id from imports as due where status in ('queued', 'running') \
     and (lease_until is null or lease_until < $1) \
     and not exists (select 1 from imports as busy where busy.org_id = due.org_id \
     and busy.status = 'running' and busy.lease_until >= $1) \
     order by updated_at, id limit 1";
const TAKE: &str = "update imports set status = 'running', lease_until = $2, updated_at = $3 \
     where id = $1";
const CLAIMED: &str = concat!(
    "select ",
    import_columns!(),
    ", content from imports where id = $1"
);
const RENEW: &str = "update imports set lease_until = $2 where id = $1 and status = 'running'";
const RELEASE: &str = "update imports set lease_until = null where id = $1 and status = 'running'";
const FINISH: &str = "update imports set status = $2, error = $3, lease_until = null, \
     content = $4, finished_at = $5, updated_at = $5 where id = $1";
const RUNNER: &str = "select role, team_id, active from users where org_id = $1 and id = $2";

#[derive(sqlx::FromRow)]
struct ImportRow {
    id: Uuid,
    org_id: Uuid,
    object: String,
    id_property: Option<String>,
    mapping: Json<Vec<(String, String)>>,
    file_name: Option<String>,
    status: String,
    total: i64,
    processed: i64,
    created: i64,
    updated: i64,
    unchanged: i64,
    failed: i64,
    error: Option<String>,
    user_id: Uuid,
    api_key_id: Option<Uuid>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct ClaimedRow {
    #[sqlx(flatten)]
    job: ImportRow,
    content: Vec<u8>,
}

fn id_property(text: &str) -> Option<IdProperty> {
    serde_json::from_value(serde_json::Value::from(text)).ok()
}

impl TryFrom<ImportRow> for ImportJob {
    type Error = StoreError;
    fn try_from(row: ImportRow) -> Result<Self, StoreError> {
        Ok(ImportJob {
            id: row.id,
            org_id: row.org_id,
            object: row
                .object
                .parse()
                .map_err(|_| StoreError::internal(format!("import object {}", row.object)))?,
            id_property: row.id_property.as_deref().and_then(id_property),
            mapping: row.mapping.0,
            file_name: row.file_name,
            status: ImportStatus::parse(&row.status)
                .ok_or_else(|| StoreError::internal(format!("import status {}", row.status)))?,
            counts: ImportCounts {
                total: row.total,
                processed: row.processed,
                created: row.created,
                updated: row.updated,
                unchanged: row.unchanged,
                failed: row.failed,
            },
            error: row.error,
            user_id: row.user_id,
            api_key_id: row.api_key_id,
            created_at: row.created_at,
            updated_at: row.updated_at,
            finished_at: row.finished_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ErrorRow {
    row: i64,
    line: i64,
    field: Option<String>,
    code: String,
    message: String,
}

/// Where a store error shows in an import's error list: field, code, message.
fn problems_of(error: &StoreError) -> Vec<(Option<String>, String, String)> {
    match error {
        StoreError::Invalid(issues) => issues
            .iter()
            .map(|i| (Some(i.field.clone()), i.code.clone(), i.message.clone()))
            .collect(),
        StoreError::Conflict { field } => vec![(
            field.clone(),
            "taken".into(),
            "is already taken by another record".into(),
        )],
        StoreError::DuplicateEmail { existing_id } => vec![(
            Some("email".into()),
            "duplicate_email".into(),
            match existing_id {
                Some(id) => format!("belongs to contact {id}"),
                None => "belongs to another live contact".into(),
            },
        )],
        StoreError::OwnerNotPermitted => vec![(
            Some("owner_id".into()),
            "owner_not_permitted".into(),
            "is not an owner whose records you see".into(),
        )],
        StoreError::InvalidReference { field } => vec![(
            Some(field.clone()),
            "not_found".into(),
            "names no record of your organization".into(),
        )],
        StoreError::NotFound => vec![(None, "not_found".into(), "no such record".into())],
        StoreError::Merged { into } => vec![(
            None,
            "record_merged".into(),
            format!("the record was merged into {into}"),
        )],
        StoreError::VersionMismatch { current } => vec![(
            None,
            "version_mismatch".into(),
            format!("the record is at version {current}"),
        )],
        other => vec![(None, "error".into(), other.to_string())],
    }
}

fn job_cursor(job: &ImportJob) -> Cursor {
    Cursor::new(IMPORT_SORT, Vec::new(), job.id)
}

fn error_cursor(error: &ImportRowError) -> Cursor {
    Cursor::new(
        ERROR_SORT,
        vec![serde_json::Value::from(error.row)],
        Uuid::nil(),
    )
}

per_backend! {
    /// How a claim locks the job it takes: PostgreSQL skips jobs another process holds;
    /// SQLite has one writer anyway.
    pub(crate) fn import_claim_lock() -> &'static str {
        if BACKEND == rapport_domain::Backend::Postgres { " for update skip locked" } else { "" }
    }

    /// Records a chunk's progress and errors; `outcomes` are the store's, one per row it got.
    pub(crate) async fn record_import_chunk(
        conn: &mut Conn,
        ctx: &AuthContext,
        chunk: &ImportChunk,
        outcomes: &[RowOutcome],
        at: DateTime<Utc>,
    ) -> Result<(), crate::error::DbError> {
        let mut errors: Vec<ImportRowError> = chunk.errors.clone();
        let (mut created, mut updated, mut unchanged) = (0_i64, 0_i64, 0_i64);
        for (outcome, (row, line)) in outcomes.iter().zip(&chunk.rows) {
            match &outcome.result {
                Ok((RowStatus::Created, _)) => created += 1,
                Ok((RowStatus::Updated, _)) => updated += 1,
                Ok(_) => unchanged += 1,
                Err(error) => {
                    for (field, code, message) in problems_of(error) {
                        errors.push(ImportRowError { row: *row, line: *line, field, code, message });
                    }
                }
            }
        }
        let mut failed_rows: Vec<i64> = errors.iter().map(|e| e.row).collect();
        failed_rows.dedup();
        for batch in errors.chunks(500) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(INSERT_ERROR);
            qb.push_values(batch, |mut row, e| {
                row.push_bind(chunk.import_id)
                    .push_bind(ctx.org_id)
                    .push_bind(e.row)
                    .push_bind(e.line)
                    .push_bind(e.field.clone())
                    .push_bind(e.code.clone())
                    .push_bind(e.message.clone());
            });
            qb.build().execute(&mut *conn).await?;
        }
        sqlx::query(PROGRESS)
            .bind(ctx.org_id)
            .bind(chunk.import_id)
            .bind(chunk.processed_to)
            .bind(created)
            .bind(updated)
            .bind(unchanged)
            .bind(i64::try_from(failed_rows.len()).unwrap_or(i64::MAX))
            .bind(at)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl ImportStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn create(&self, ctx: &AuthContext, import: NewImport) -> Result<ImportJob, StoreError> {
        let id = Uuid::now_v7();
        let at = now();
        let id_property = import.id_property.map(|p| p.as_str());
        on_db!(&self.db, write, |pool| {
            // One transaction: a worker cannot claim the job before it is read back as queued.
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT)
                .bind(id)
                .bind(ctx.org_id)
                .bind(import.object.as_str())
                .bind(id_property)
                .bind(Json(&import.mapping))
                .bind(&import.file_name)
                .bind(import.total)
                .bind(&import.content)
                .bind(ctx.user_id)
                .bind(ctx.api_key_id())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let row: ImportRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(true)
                .bind(ctx.user_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(ImportJob::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, import = %id))]
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<ImportJob, StoreError> {
        on_db!(&self.db, read, |pool| {
            let row: ImportRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(ctx.role.is_admin())
                .bind(ctx.user_id)
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(ImportJob::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(
        &self,
        ctx: &AuthContext,
        page: &PageRequest,
    ) -> Result<Page<ImportJob>, StoreError> {
        let before = page.after.as_ref().map(|c| c.id);
        on_db!(&self.db, read, |pool| {
            let rows: Vec<ImportRow> = sqlx::query_as(LIST)
                .bind(ctx.org_id)
                .bind(ctx.role.is_admin())
                .bind(ctx.user_id)
                .bind(before.is_none())
                .bind(before.unwrap_or_default())
                .bind(i64::from(page.limit) + 1)
                .fetch_all(pool)
                .await?;
            let jobs = rows
                .into_iter()
                .map(ImportJob::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_rows(jobs, page.limit, job_cursor, None))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, import = %id))]
    async fn errors(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<ImportRowError>, StoreError> {
        // The job must be the caller's to see.
        self.get(ctx, id).await?;
        let after = match &page.after {
            Some(cursor) if cursor.sort == ERROR_SORT => cursor
                .values
                .first()
                .and_then(serde_json::Value::as_i64)
                .unwrap_or(0),
            Some(_) => {
                return Err(StoreError::Invalid(vec![rapport_domain::FieldIssue::new(
                    "cursor",
                    "invalid_value",
                    "belongs to another list; start again without a cursor",
                )]));
            }
            None => 0,
        };
        on_db!(&self.db, read, |pool| {
            let rows: Vec<ErrorRow> = sqlx::query_as(ERRORS)
                .bind(ctx.org_id)
                .bind(id)
                .bind(after)
                .bind(i64::from(page.limit) + 1)
                .fetch_all(pool)
                .await?;
            // A page ends at a row boundary, so that no row's errors are split.
            let mut errors: Vec<ImportRowError> = rows
                .into_iter()
                .map(|r| ImportRowError {
                    row: r.row,
                    line: r.line,
                    field: r.field,
                    code: r.code,
                    message: r.message,
                })
                .collect();
            if errors.len() > page.limit as usize {
                let last_row = errors[page.limit as usize].row;
                if errors
                    .iter()
                    .take(page.limit as usize)
                    .any(|e| e.row != last_row)
                {
                    let keep = errors
                        .iter()
                        .position(|e| e.row == last_row)
                        .unwrap_or(errors.len());
                    errors.truncate(keep);
                    let next = errors.last().map(error_cursor);
                    return Ok(Page {
                        items: errors,
                        next,
                        total: None,
                    });
                }
            }
            Ok(Page::from_rows(errors, page.limit, error_cursor, None))
        })
    }

    async fn record_chunk(&self, ctx: &AuthContext, chunk: &ImportChunk) -> Result<(), StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            sql::record_import_chunk(&mut tx, ctx, chunk, &[], at).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}

#[async_trait]
impl ImportQueue for SqlStore {
    async fn claim(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Option<ClaimedImport>, StoreError> {
        let claimed: Option<ClaimedRow> = on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let lock = sql::import_claim_lock();
            let due: Option<Uuid> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("{DUE}{lock}")))
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(id) = due else { return Ok(None) };
            sqlx::query(TAKE)
                .bind(id)
                .bind(lease_until)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let row: ClaimedRow = sqlx::query_as(CLAIMED).bind(id).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(Some(row))
        })?;
        let Some(claimed) = claimed else {
            return Ok(None);
        };
        let job = ImportJob::try_from(claimed.job)?;
        let organization = self.organization_of(job.org_id).await?;
        let runner: Option<(String, Option<Uuid>, bool)> = on_db!(&self.db, read, |pool| {
            Ok(sqlx::query_as(RUNNER)
                .bind(job.org_id)
                .bind(job.user_id)
                .fetch_optional(pool)
                .await?)
        })?;
        let (role, team_id) = match runner {
            Some((role, team_id, true)) => {
                (role.parse::<Role>().map_err(StoreError::internal)?, team_id)
            }
            _ => (Role::Viewer, None),
        };
        let credential = match job.api_key_id {
            Some(key_id) => Credential::ApiKey {
                key_id,
                scopes: Vec::new(),
                expires_at: None,
            },
            None => Credential::System,
        };
        let ctx = AuthContext {
            org_id: job.org_id,
            user_id: job.user_id,
            role,
            team_id,
            credential,
            settings: organization.settings,
            ip: None,
            idempotency: None,
            import: None,
        };
        Ok(Some(ClaimedImport {
            job,
            content: claimed.content,
            ctx,
        }))
    }

    async fn renew(&self, id: Uuid, lease_until: DateTime<Utc>) -> Result<bool, StoreError> {
        on_db!(&self.db, write, |pool| {
            Ok(sqlx::query(RENEW)
                .bind(id)
                .bind(lease_until)
                .execute(pool)
                .await?
                .rows_affected()
                == 1)
        })
    }

    async fn release(&self, id: Uuid) -> Result<(), StoreError> {
        on_db!(&self.db, write, |pool| {
            sqlx::query(RELEASE).bind(id).execute(pool).await?;
            Ok(())
        })
    }

    async fn analyze(&self, object: rapport_domain::ObjectType) -> Result<(), StoreError> {
        let Some(table) = crate::custom_fields::table_of(object) else {
            return Ok(());
        };
        match &self.db {
            crate::db::Db::Postgres(pool) => {
                let statement = format!("analyze {table}, record_keys, events");
                sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                    .execute(pool)
                    .await
                    .map_err(crate::error::DbError::from)?;
            }
            crate::db::Db::Sqlite { writer, .. } => {
                sqlx::raw_sql("pragma optimize")
                    .execute(writer)
                    .await
                    .map_err(crate::error::DbError::from)?;
            }
        }
        Ok(())
    }

    async fn finish(
        &self,
        id: Uuid,
        status: ImportStatus,
        error: Option<String>,
    ) -> Result<(), StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool| {
            sqlx::query(FINISH)
                .bind(id)
                .bind(status.as_str())
                .bind(&error)
                .bind(Vec::<u8>::new())
                .bind(at)
                .execute(pool)
                .await?;
            Ok(())
        })
    }
}
