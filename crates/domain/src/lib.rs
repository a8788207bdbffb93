//! Rapport's domain: entities, value types that parse and validate, filter/sort/page types,
//! domain errors and the store traits. No I/O lives here: storage implements the traits, the
//! HTTP layer calls them.

pub mod access;
pub mod email;
pub mod error;
pub mod identity;
pub mod object;
pub mod page;
pub mod store;

pub use access::{Action, AuthContext, Credential, RecordFilter, Role, Scope, Visibility};
pub use email::Email;
pub use error::StoreError;
pub use object::ObjectType;
pub use page::{Cursor, Page, PageRequest};
pub use store::{Backend, PoolStats, Readiness, Store};
