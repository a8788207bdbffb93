//! Rapport's domain: entities, value types that parse and validate, filter/sort/page types,
//! domain errors and the store traits. No I/O lives here: storage implements the traits, the
//! HTTP layer calls them.

pub mod error;
pub mod store;

pub use error::StoreError;
pub use store::{Backend, PoolStats, Readiness, Store};
