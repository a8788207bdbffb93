//! Connecting, migrating, and the one-body-two-backends macro.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use rapport_domain::store::{
    ApiKeyStore, AuditStore, AuthStore, ChangeStore, CustomFieldStore, IdempotencyStore,
    ImportQueue, ImportStore, InvitationStore, OrganizationStore, RecordStore, TeamStore,
    UserStore, WebhookQueue, WebhookStore,
};
use rapport_domain::{Backend, PoolStats, Readiness, Store, StoreError};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::error::ConnectError;
use crate::url::DatabaseUrl;

pub(crate) static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// The native pools. SQLite allows one writer at a time, so writes go through a pool of one
/// connection (no SQLITE_BUSY between our own writers) and reads through a separate pool.
#[derive(Clone)]
pub(crate) enum Db {
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    Postgres(PgPool),
}

/// Expands one SQL body for each backend.
///
/// `on_db!(db, read, |pool| body)` runs `body` with `pool` bound to the backend's pool (the
/// reader on SQLite; `write` picks the single writer). Inside `body`, `?` converts both sqlx
/// and domain errors; the macro yields a `Result<_, StoreError>`.
macro_rules! on_db {
    // With the backend's helper module: `on_db!(db, write, |pool, sql| … sql::append_event(…) …)`.
    ($db:expr, read, |$pool:ident, $dialect:ident| $body:expr) => {
        on_db!(@dialect $db, reader, |$pool, $dialect| $body)
    };
    ($db:expr, write, |$pool:ident, $dialect:ident| $body:expr) => {
        on_db!(@dialect $db, writer, |$pool, $dialect| $body)
    };
    (@dialect $db:expr, $sqlite_pool:ident, |$pool:ident, $dialect:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite { $sqlite_pool: $pool, .. } => {
                #[allow(unused_imports)]
                use $crate::dialect::sqlite as $dialect;
                let result: ::std::result::Result<_, $crate::error::DbError> = async { $body }.await;
                result.map_err(::rapport_domain::StoreError::from)
            }
            $crate::db::Db::Postgres($pool) => {
                #[allow(unused_imports)]
                use $crate::dialect::postgres as $dialect;
                let result: ::std::result::Result<_, $crate::error::DbError> = async { $body }.await;
                result.map_err(::rapport_domain::StoreError::from)
            }
        }
    };
    ($db:expr, read, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite { reader: $pool, .. } => {
                let result: ::std::result::Result<_, $crate::error::DbError> =
                    async { $body }.await;
                result.map_err(::rapport_domain::StoreError::from)
            }
            $crate::db::Db::Postgres($pool) => {
                let result: ::std::result::Result<_, $crate::error::DbError> =
                    async { $body }.await;
                result.map_err(::rapport_domain::StoreError::from)
            }
        }
    };
    ($db:expr, write, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite { writer: $pool, .. } => {
                let result: ::std::result::Result<_, $crate::error::DbError> =
                    async { $body }.await;
                result.map_err(::rapport_domain::StoreError::from)
            }
            $crate::db::Db::Postgres($pool) => {
                let result: ::std::result::Result<_, $crate::error::DbError> =
                    async { $body }.await;
                result.map_err(::rapport_domain::StoreError::from)
            }
        }
    };
}

/// Runs a batch write in its own transaction and commits it unless it says not to (an
/// all-or-none batch with a failing row), retrying once when a concurrent writer took a unique
/// key first: the second run sees that row and reports it.
macro_rules! write_retrying {
    ($store:expr, $ctx:expr, |$tx:ident, $sql:ident, $at:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            let $at = $crate::rows::now();
            let result = on_db!(&$store.db, write, |pool, $sql| {
                let mut $tx = pool.begin().await?;
                let written: $crate::records::Written = $body;
                if written.commit {
                    // An import's progress commits with its rows.
                    if let Some(chunk) = &$ctx.import {
                        $sql::record_import_chunk(&mut $tx, $ctx, chunk, &written.outcomes, $at)
                            .await?;
                    }
                    $tx.commit().await?;
                }
                Ok(written.outcomes)
            });
            match result {
                Err(::rapport_domain::StoreError::Conflict { field: None }) if attempt == 0 => {
                    attempt += 1
                }
                other => break other,
            }
        }
    }};
}

/// Writes helper items once and compiles them for each backend, with concrete types:
/// `sqlite::f` and `postgres::f`, where the body sees `Db`, `Conn` and `BACKEND`. Call them
/// through the `dialect` alias of `on_db!`.
macro_rules! per_backend {
    ($($item:item)*) => {
        #[allow(dead_code)]
        pub(crate) mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::dialect::sqlite as sql;
            pub(crate) type Db = sqlx::Sqlite;
            pub(crate) type Conn = sqlx::SqliteConnection;
            pub(crate) const BACKEND: rapport_domain::Backend = rapport_domain::Backend::Sqlite;
            $($item)*
        }
        #[allow(dead_code)]
        pub(crate) mod postgres {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use crate::dialect::postgres as sql;
            pub(crate) type Db = sqlx::Postgres;
            pub(crate) type Conn = sqlx::PgConnection;
            pub(crate) const BACKEND: rapport_domain::Backend = rapport_domain::Backend::Postgres;
            $($item)*
        }
    };
}

/// Rapport's store over either database.
#[derive(Clone)]
pub struct SqlStore {
    pub(crate) db: Db,
    /// Credentials resolved a moment ago (see `principals`).
    pub(crate) principals: std::sync::Arc<crate::principals::PrincipalCache>,
}

/// How long a resolved credential is kept by default.
pub const DEFAULT_CREDENTIAL_CACHE: Duration = Duration::from_secs(1);

/// Opens the database the URL names: `sqlite://path` (created when missing) or `postgres://…`.
/// Does not migrate; call [`SqlStore::migrate`].
pub async fn connect(url: &DatabaseUrl) -> Result<SqlStore, ConnectError> {
    let db = match url.backend() {
        Backend::Sqlite => connect_sqlite(url.expose()).await?,
        Backend::Postgres => connect_postgres(url.expose()).await?,
    };
    let principals = std::sync::Arc::new(crate::principals::PrincipalCache::new(
        DEFAULT_CREDENTIAL_CACHE,
    ));
    Ok(SqlStore { db, principals })
}

async fn connect_sqlite(url: &str) -> Result<Db, ConnectError> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|e| ConnectError::InvalidUrl(e.to_string()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        .pragma("temp_store", "memory");
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    // The writer opens (and creates) the file first; readers need it to exist.
    // No ping before each acquire (sqlx's default): it doubles the round trips of every
    // query. A connection that broke fails its next query, which answers 503, and is dropped.
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(30))
        .connect_with(options.clone())
        .await
        .map_err(ConnectError::Open)?;
    let reader = if in_memory {
        // Each in-memory connection is its own database: the writer must serve reads too.
        writer.clone()
    } else {
        SqlitePoolOptions::new()
            .max_connections(4)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await
            .map_err(ConnectError::Open)?
    };
    Ok(Db::Sqlite { writer, reader })
}

async fn connect_postgres(url: &str) -> Result<Db, ConnectError> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| ConnectError::InvalidUrl(e.to_string()))?
        .application_name("rapport");
    // As for SQLite: no ping round trip before every query.
    let pool = PgPoolOptions::new()
        .max_connections(32)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(ConnectError::Open)?;
    Ok(Db::Postgres(pool))
}

impl SqlStore {
    /// Keeps resolved credentials for `ttl` (zero: every request asks the database).
    pub fn with_credential_cache(mut self, ttl: Duration) -> Self {
        self.principals = std::sync::Arc::new(crate::principals::PrincipalCache::new(ttl));
        self
    }

    /// Applies the embedded migrations that the database lacks. Safe to run from several nodes
    /// at once on PostgreSQL (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<(), ConnectError> {
        match &self.db {
            Db::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
        .map_err(ConnectError::Migrate)
    }

    /// Applies the migrations up to `version` only, for tests of a later migration on data
    /// written under the schema before it.
    pub async fn migrate_to(&self, version: i64) -> Result<(), ConnectError> {
        let until = |all: &Migrator| {
            Migrator::with_migrations(
                all.iter()
                    .filter(|m| m.version <= version)
                    .cloned()
                    .collect(),
            )
        };
        match &self.db {
            Db::Sqlite { writer, .. } => until(&SQLITE_MIGRATIONS).run(writer).await,
            Db::Postgres(pool) => until(&POSTGRES_MIGRATIONS).run(pool).await,
        }
        .map_err(ConnectError::Migrate)
    }

    /// The newest migration this binary carries.
    pub fn latest_schema_version(&self) -> i64 {
        let migrator = match self.db {
            Db::Sqlite { .. } => &SQLITE_MIGRATIONS,
            Db::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        migrator.iter().map(|m| m.version).max().unwrap_or(0)
    }
}

const SCHEMA_VERSION: &str = "select coalesce(max(version), 0) from _sqlx_migrations where success";

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    #[tracing::instrument(skip_all)]
    async fn readiness(&self) -> Result<Readiness, StoreError> {
        let backend = self.backend();
        let schema_version = on_db!(&self.db, read, |pool| {
            let version: i64 = sqlx::query_scalar(SCHEMA_VERSION).fetch_one(pool).await?;
            Ok(version)
        })?;
        Ok(Readiness {
            backend,
            schema_version,
        })
    }

    fn pool_stats(&self) -> Vec<PoolStats> {
        fn stats<DB: sqlx::Database>(name: &'static str, pool: &sqlx::Pool<DB>) -> PoolStats {
            PoolStats {
                name,
                size: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            }
        }
        match &self.db {
            Db::Sqlite { writer, reader } => {
                vec![stats("writer", writer), stats("reader", reader)]
            }
            Db::Postgres(pool) => vec![stats("primary", pool)],
        }
    }

    async fn close(&self) {
        match &self.db {
            Db::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres(pool) => pool.close().await,
        }
    }

    fn auth(&self) -> &dyn AuthStore {
        self
    }

    fn organizations(&self) -> &dyn OrganizationStore {
        self
    }

    fn users(&self) -> &dyn UserStore {
        self
    }

    fn teams(&self) -> &dyn TeamStore {
        self
    }

    fn invitations(&self) -> &dyn InvitationStore {
        self
    }

    fn api_keys(&self) -> &dyn ApiKeyStore {
        self
    }

    fn audit(&self) -> &dyn AuditStore {
        self
    }

    fn custom_fields(&self) -> &dyn CustomFieldStore {
        self
    }

    fn records(&self) -> &dyn RecordStore {
        self
    }

    fn idempotency(&self) -> &dyn IdempotencyStore {
        self
    }

    fn changes(&self) -> &dyn ChangeStore {
        self
    }

    fn webhooks(&self) -> &dyn WebhookStore {
        self
    }

    fn webhook_queue(&self) -> &dyn WebhookQueue {
        self
    }

    fn imports(&self) -> &dyn ImportStore {
        self
    }

    fn import_queue(&self) -> &dyn ImportQueue {
        self
    }
}
