//! What every customer-data object shares: change events (the one log behind history, the
//! change feed and webhooks), diffs, duplicates and merges.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::object::ObjectType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventAction {
    Created,
    Updated,
    Deleted,
    Restored,
    Merged,
}

impl EventAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Created => "created",
            EventAction::Updated => "updated",
            EventAction::Deleted => "deleted",
            EventAction::Restored => "restored",
            EventAction::Merged => "merged",
        }
    }

    pub fn parse(text: &str) -> Option<EventAction> {
        Some(match text {
            "created" => EventAction::Created,
            "updated" => EventAction::Updated,
            "deleted" => EventAction::Deleted,
            "restored" => EventAction::Restored,
            "merged" => EventAction::Merged,
            _ => return None,
        })
    }
}

impl fmt::Display for EventAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field's value before and after a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub old: Value,
    pub new: Value,
}

/// Changed fields by name.
pub type Changes = BTreeMap<String, Change>;

/// The fields that differ between two views of a record (its data fields as JSON).
pub fn diff(before: &Map<String, Value>, after: &Map<String, Value>) -> Changes {
    let mut changes = Changes::new();
    for (key, new) in after {
        let old = before.get(key).cloned().unwrap_or(Value::Null);
        if &old != new {
            changes.insert(
                key.clone(),
                Change {
                    old,
                    new: new.clone(),
                },
            );
        }
    }
    for (key, old) in before {
        if !after.contains_key(key) && !old.is_null() {
            changes.insert(
                key.clone(),
                Change {
                    old: old.clone(),
                    new: Value::Null,
                },
            );
        }
    }
    changes
}

/// One entry of the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordEvent {
    /// The organization's event sequence number: gapless, in commit order.
    pub seq: i64,
    pub object: ObjectType,
    pub object_id: Uuid,
    pub action: EventAction,
    pub changes: Changes,
    pub actor_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
    /// For `merged`: the records merged into this one.
    pub merged_ids: Vec<Uuid>,
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePage {
    pub events: Vec<RecordEvent>,
    pub has_more: bool,
    /// Where the next poll starts: the last event's sequence number, or — when every event
    /// up to now has been read — the newest one, so that a filtered feed moves on too.
    pub position: i64,
}

/// Why two records look like the same customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum DuplicateReason {
    SameEmail,
    SamePhone,
    SameNameAndCompany,
    SameDomain,
    SameName,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate<T> {
    pub record: T,
    pub reasons: Vec<DuplicateReason>,
}

/// The result of a merge (or of a dry run): the primary as it is (or would be) afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeOutcome<T> {
    pub merged: T,
    pub merged_ids: Vec<Uuid>,
    pub changes: Changes,
    pub dry_run: bool,
}

/// A customer's purchases: their paid and fulfilled orders.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purchases {
    pub first_order_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
    pub order_count: i64,
    /// The sum of the orders' totals in minor units (of whatever currency each order has).
    pub revenue_minor: i64,
}

/// Most duplicates one merge takes.
pub const MAX_MERGE_DUPLICATES: usize = 20;

/// A value that counts as "present" for merges: not null, not an empty string or list.
pub fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn diff_names_changed_added_and_cleared_fields() {
        let before = json!({"a": 1, "b": "x", "c": null})
            .as_object()
            .unwrap()
            .clone();
        let after = json!({"a": 1, "b": "y", "d": true})
            .as_object()
            .unwrap()
            .clone();
        let changes = diff(&before, &after);
        assert_eq!(changes.len(), 2);
        assert_eq!(
            changes["b"],
            Change {
                old: json!("x"),
                new: json!("y")
            }
        );
        assert_eq!(
            changes["d"],
            Change {
                old: Value::Null,
                new: json!(true)
            }
        );
    }
}
