//! The errors a store reports, whichever database is behind it.

use std::error::Error as StdError;

/// One invalid input: where (a JSON path such as `custom.region` or `filter.and[0].op`),
/// a stable code, and a message for a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    pub field: String,
    pub code: String,
    pub message: String,
}

impl FieldIssue {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        FieldIssue {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// What went wrong in a store call, in terms the API can answer with.
///
/// Storage normalises driver errors into these (a missing row becomes `NotFound`, a unique
/// violation `Conflict`); anything it cannot classify is `Internal` and never reaches a client
/// beyond "internal error".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such record in the caller's organization (or no such record at all: the two are
    /// deliberately indistinguishable).
    #[error("record not found")]
    NotFound,
    /// The write would break a uniqueness rule; `field` names the input that collides when known.
    #[error("conflict{}", field.as_deref().map(|f| format!(" on {f}")).unwrap_or_default())]
    Conflict { field: Option<String> },
    /// The caller's expected version (If-Match) is not the record's; nothing was written.
    #[error("version mismatch: the record is at version {current}")]
    VersionMismatch { current: i64 },
    /// An id in the input names no record of the caller's organization.
    #[error("{field} names no record of this organization")]
    InvalidReference { field: String },
    /// The change would leave the organization without an active owner.
    #[error("the organization would have no active owner")]
    LastOwner,
    /// Input that only the store can judge (custom fields, filters on custom fields) is invalid.
    #[error("invalid input: {0:?}")]
    Invalid(Vec<FieldIssue>),
    /// Another live contact of the organization already has this email. `existing_id` names
    /// it only when the caller may see it: the id of a contact hidden by record visibility is
    /// never told.
    #[error("another contact already has this email")]
    DuplicateEmail { existing_id: Option<uuid::Uuid> },
    /// The write would give the record an owner whose records the caller does not see (record
    /// visibility `own` or `team`, or a manager's teams): it would be stored and at once
    /// hidden from its writer. Nothing is written.
    #[error("the caller may not give the record to this owner")]
    OwnerNotPermitted,
    /// The user already holds `limit` live API keys.
    #[error("the user already holds {limit} live API keys")]
    ApiKeyLimit { limit: u32 },
    /// The record was merged into another.
    #[error("the record was merged into {into}")]
    Merged { into: uuid::Uuid },
    /// A batch row that was valid but not written, because another row failed and the batch
    /// was all or none.
    #[error("not written: another row of the batch failed")]
    NotApplied,
    /// A change-feed cursor older than the feed's retention: changes after it are gone.
    #[error("the cursor is older than the change feed's retention")]
    CursorExpired,
    /// The database cannot be reached or the pool is closed: retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or an unexpected database state. Logged in full, answered generically.
    #[error("internal store error: {0}")]
    Internal(Box<dyn StdError + Send + Sync>),
}

impl StoreError {
    pub fn internal(error: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        StoreError::Internal(error.into())
    }
}
