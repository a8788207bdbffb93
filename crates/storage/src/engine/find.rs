//! How a write's row finds the record it changes: by id, external id or another natural key
//! (in its stored form), among the records the batch looked up — seen by the caller or not,
//! live, deleted or merged.

use std::collections::HashMap;

use rapport_domain::kit::record::{self, Record};
use rapport_domain::write::{IdProperty, RowTarget};
use rapport_domain::{FieldIssue, StoreError};
use serde_json::Value;
use uuid::Uuid;

use super::Layout;

/// The records a batch's targets found, and which of them the caller may see.
pub(crate) struct Existing<'a> {
    pub by_id: HashMap<Uuid, &'a Record>,
    pub by_external: HashMap<&'a str, &'a Record>,
    /// The live records with each natural key's value.
    pub by_key: HashMap<(IdProperty, String), Vec<&'a Record>>,
    pub visible: crate::records::Visible,
}

/// A natural key's value in its stored form (a domain in lower case), to find records by.
pub(crate) fn key_value(layout: &Layout, property: IdProperty, value: &str) -> String {
    layout
        .spec
        .field(property.as_str())
        .and_then(|field| record::check_value(field, &Value::from(value)).ok())
        .and_then(|stored| stored.as_str().map(str::to_owned))
        .unwrap_or_else(|| value.to_owned())
}

/// The record a row's target finds, or why it finds none. A record the caller may not see is
/// answered as one that does not exist (or, for a key that must stay unique, as a conflict
/// that names nothing); a merged one names the record it was merged into.
pub(crate) fn find<'a>(
    layout: &Layout,
    target: &RowTarget,
    existing: &Existing<'a>,
) -> Result<Option<&'a Record>, StoreError> {
    let seen = |record: &Record| existing.visible.contains(&record.id);
    let gone = |record: &Record| match record.merged_into {
        Some(into) if seen(record) => StoreError::Merged { into },
        _ => StoreError::NotFound,
    };
    let live = |record: Option<&'a Record>| match record {
        Some(record) if record.deleted_at.is_none() && seen(record) => Ok(Some(record)),
        Some(record) => Err(gone(record)),
        None => Err(StoreError::NotFound),
    };
    match target {
        RowTarget::Create => Ok(None),
        RowTarget::Update {
            id,
            expected_version,
        } => match live(existing.by_id.get(id).copied())? {
            Some(record) if expected_version.is_some_and(|v| v != record.version) => {
                Err(StoreError::VersionMismatch {
                    current: record.version,
                })
            }
            found => Ok(found),
        },
        RowTarget::Upsert {
            property: IdProperty::Id,
            value,
        } => live(
            Uuid::parse_str(value)
                .ok()
                .and_then(|id| existing.by_id.get(&id).copied()),
        ),
        RowTarget::Upsert {
            property: IdProperty::ExternalId,
            value,
        } => match existing.by_external.get(value.as_str()) {
            Some(record) if !seen(record) => Err(StoreError::Conflict {
                field: Some("external_id".into()),
            }),
            Some(record) if record.merged_into.is_some() => Err(gone(record)),
            found => Ok(found.copied()),
        },
        RowTarget::Upsert { property, value }
            if layout.keys.iter().any(|(k, _, _)| k == property) =>
        {
            let column = layout
                .keys
                .iter()
                .find(|(k, _, _)| k == property)
                .map_or("", |k| k.1);
            let value = layout.key_text(column, &key_value(layout, *property, value));
            match existing.by_key.get(&(*property, value)).map(Vec::as_slice) {
                // A hidden record holds it: taken, by whom is not told.
                Some([record]) if !seen(record) && layout.folds(column) => {
                    Err(StoreError::DuplicateEmail { existing_id: None })
                }
                Some([record]) if !seen(record) => Err(StoreError::Conflict {
                    field: Some(property.as_str().into()),
                }),
                Some([record]) => Ok(Some(*record)),
                Some([_, _, ..]) => Err(StoreError::Invalid(vec![FieldIssue::new(
                    property.as_str(),
                    "ambiguous",
                    format!(
                        "several {} have this {}; upsert them by id or external_id",
                        layout.spec.plural,
                        property.as_str()
                    ),
                )])),
                _ => Ok(None),
            }
        }
        RowTarget::Upsert { property, .. } => Err(StoreError::Invalid(vec![FieldIssue::new(
            "id_property",
            "invalid_value",
            format!(
                "{} records are not found by {}",
                layout.spec.object,
                property.as_str()
            ),
        )])),
    }
}
