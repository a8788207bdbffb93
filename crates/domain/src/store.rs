//! The store traits: what the HTTP layer may ask of the database, tenant first.

use std::fmt;

use async_trait::async_trait;

use crate::StoreError;

/// Which database engine serves the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer of a readiness check: the database answered and its schema is this version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    pub backend: Backend,
    /// The newest migration applied to the database.
    pub schema_version: i64,
}

/// Size and idle connections of one connection pool, for `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolStats {
    /// `primary` on PostgreSQL; `writer` and `reader` on SQLite.
    pub name: &'static str,
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// The whole store. Each group of records is reached through its own accessor, so that a
/// handler reads `store.contacts().get(&ctx, id)`.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Pings the database and reads the schema version.
    async fn readiness(&self) -> Result<Readiness, StoreError>;

    fn pool_stats(&self) -> Vec<PoolStats>;

    /// Closes the pools after in-flight queries finish; later calls fail with `Unavailable`.
    async fn close(&self);
}
