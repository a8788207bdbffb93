//! Writes in batches: every create, update and upsert goes through the same path, one row or
//! a thousand, so that a batch reports every failing row and a single write behaves exactly
//! like a batch of one.

use uuid::Uuid;

use crate::StoreError;

/// How a batch row finds the record it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum IdProperty {
    Id,
    ExternalId,
    /// Contacts: the primary email, ignoring case.
    Email,
    /// Companies: the domain.
    Domain,
    /// Products.
    Sku,
    /// Orders: the order number.
    Number,
}

impl IdProperty {
    pub fn as_str(self) -> &'static str {
        match self {
            IdProperty::Id => "id",
            IdProperty::ExternalId => "external_id",
            IdProperty::Email => "email",
            IdProperty::Domain => "domain",
            IdProperty::Sku => "sku",
            IdProperty::Number => "number",
        }
    }
}

/// What a row does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowTarget {
    /// Always a new record.
    Create,
    /// The record with this id (which must exist), optionally at this version.
    Update {
        id: Uuid,
        expected_version: Option<i64>,
    },
    /// The record whose `property` has this value: updated when there is one, created (with
    /// the value) when there is none.
    Upsert { property: IdProperty, value: String },
}

#[derive(Debug, Clone)]
pub struct WriteRow<P> {
    pub target: RowTarget,
    pub patch: P,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RowStatus {
    Created,
    Updated,
    /// The row matched the record as it was: nothing written, no event.
    Unchanged,
    Deleted,
    Error,
}

/// One row's outcome, in input order.
#[derive(Debug)]
pub struct RowOutcome {
    pub result: Result<(RowStatus, Uuid), StoreError>,
}

impl RowOutcome {
    pub fn ok(status: RowStatus, id: Uuid) -> Self {
        RowOutcome {
            result: Ok((status, id)),
        }
    }

    pub fn error(error: StoreError) -> Self {
        RowOutcome { result: Err(error) }
    }
}

/// Most rows in one batch.
pub const MAX_BATCH: usize = 1000;

/// How a batch row is told that it was not written because another failed (all_or_none).
pub fn not_applied() -> StoreError {
    StoreError::NotApplied
}
