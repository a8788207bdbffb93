//! What a write of any object shares: the outcome of a batch, the change an event records
//! for a deletion or restore, and the checks of a merge request.

use chrono::{DateTime, Utc};
use rapport_domain::record::{self, MAX_MERGE_DUPLICATES};
use rapport_domain::write::RowOutcome;
use rapport_domain::{FieldIssue, StoreError};
use serde_json::Value;
use uuid::Uuid;

/// A batch's outcomes, and whether its transaction should commit (not when all_or_none
/// failed).
pub(crate) struct Written {
    pub outcomes: Vec<RowOutcome>,
    pub commit: bool,
}

/// Refuses a merge that names no duplicate, too many, the primary itself, or one twice.
pub(crate) fn check_merge_ids(primary: Uuid, duplicates: &[Uuid]) -> Result<(), StoreError> {
    let mut issues = Vec::new();
    if duplicates.is_empty() || duplicates.len() > MAX_MERGE_DUPLICATES {
        issues.push(FieldIssue::new(
            "duplicate_ids",
            "invalid_value",
            format!("must name 1 to {MAX_MERGE_DUPLICATES} records"),
        ));
    }
    if duplicates.contains(&primary) {
        issues.push(FieldIssue::new(
            "duplicate_ids",
            "invalid_value",
            "must not include primary_id",
        ));
    }
    let mut sorted = duplicates.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != duplicates.len() {
        issues.push(FieldIssue::new(
            "duplicate_ids",
            "invalid_value",
            "lists a record twice",
        ));
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(issues))
    }
}

/// The `deleted_at` change an event records when a record is deleted (`new` set) or restored.
pub(crate) fn deleted_changes(
    old: Option<DateTime<Utc>>,
    new: Option<DateTime<Utc>>,
) -> record::Changes {
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or(Value::Null, |t| {
            Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        })
    };
    record::Changes::from([(
        "deleted_at".to_owned(),
        record::Change {
            old: time(old),
            new: time(new),
        },
    )])
}
