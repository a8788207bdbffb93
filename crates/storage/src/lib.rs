//! Rapport's store on SQLite and PostgreSQL.
//!
//! One portable SQL body serves both databases: every store method is written once and
//! expanded for each native pool by `on_db!`. Only what truly differs (text search, JSON field
//! access, upsert quirks) is written per backend. Migrations are embedded in the binary.

// Macro order matters: `on_db!`, the column lists and `insert_audit!` are used below them.
#[macro_use]
mod db;
#[macro_use]
mod rows;
#[macro_use]
mod audit;
mod api_keys;
mod auth;
mod custom_fields;
mod dialect;
mod engine;
mod error;
mod events;
mod idempotency;
mod imports;
mod instance;
mod invitations;
mod organizations;
mod owned;
mod principals;
mod records;
mod rules;
mod teams;
mod url;
mod users;
mod webhooks;

pub use db::{DEFAULT_CREDENTIAL_CACHE, SqlStore, connect};
pub use error::ConnectError;
pub use url::DatabaseUrl;
