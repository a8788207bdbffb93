//! Rapport's store on SQLite and PostgreSQL.
//!
//! One portable SQL body serves both databases: every store method is written once and
//! expanded for each native pool by [`on_db!`]. Only what truly differs (text search, JSON field
//! access, upsert quirks) is written per backend. Migrations are embedded in the binary.

#[macro_use]
mod db;
mod error;
mod instance;
mod url;

pub use db::{SqlStore, connect};
pub use error::ConnectError;
pub use url::DatabaseUrl;
