//! Rapport's domain: entities, value types that parse and validate, filter/sort/page types,
//! domain errors and the store traits. No I/O lives here: storage implements the traits, the
//! HTTP layer calls them.

pub mod access;
pub mod custom_field;
pub mod email;
pub mod error;
pub mod idempotency;
pub mod identity;
pub mod import;
pub mod iso;
pub mod kit;
pub mod object;
pub mod objects;
pub mod page;
pub mod query;
pub mod record;
pub mod store;
pub mod values;
pub mod webhook;
pub mod write;

pub use access::{Action, AuthContext, Credential, RecordFilter, Role, Scope, Visibility};
pub use email::Email;
pub use error::{FieldIssue, StoreError};
pub use object::ObjectType;
pub use page::{Cursor, Page, PageRequest};
pub use store::{Backend, PoolStats, Readiness, Store};
