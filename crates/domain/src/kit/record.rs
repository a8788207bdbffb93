//! A record of an object the engine serves: its standard values as JSON, keyed by field name,
//! read and checked through the object's declaration. Nothing here names an object.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::ObjectType;
use crate::error::FieldIssue;
use crate::kit::{FieldKind, FieldSpec, ObjectSpec};

pub use super::check::{also_by, check_input, check_lines, check_value};
use crate::query::{self, FieldInfo};
use crate::record::{Changes, diff};
use crate::values;

/// The fields every record has and Rapport keeps; a declaration lists those a body shows.
pub const SYSTEM_FIELDS: &[&str] = &[
    "id",
    "version",
    "created_at",
    "updated_at",
    "created_by",
    "deleted_at",
];

/// A record: its standard values (only the declared, writable fields; absent = null), its
/// custom values and what Rapport keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub object: ObjectType,
    pub id: Uuid,
    pub values: Map<String, Value>,
    pub custom: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
    /// The record it was merged into (it is deleted then).
    pub merged_into: Option<Uuid>,
}

/// A merge patch: the standard values it sets (null clears) and the custom values it merges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordPatch {
    pub values: Map<String, Value>,
    pub custom: Option<Map<String, Value>>,
}

/// The fields a client writes: declared, not read-only.
pub fn writable(spec: &ObjectSpec) -> impl Iterator<Item = &FieldSpec> {
    spec.fields.iter().filter(|field| !field.read_only)
}

/// The fields a record stores and shows: every declared field but the ones every record has
/// (`id`, `version`, the times) — the writable ones and those Rapport keeps (`order_count`).
pub fn stored(spec: &ObjectSpec) -> impl Iterator<Item = &FieldSpec> {
    spec.fields
        .iter()
        .filter(|field| !SYSTEM_FIELDS.contains(&field.name.as_ref()))
}

impl Record {
    /// The value of a standard field (null when it has none).
    pub fn value(&self, field: &str) -> &Value {
        self.values.get(field).unwrap_or(&Value::Null)
    }

    /// Its fields as history and events compare them: every field it stores and shows (null
    /// when empty) — those Rapport keeps, like a contact's `order_count`, too — and
    /// `custom.<key>`.
    pub fn fields(&self, spec: &ObjectSpec) -> Map<String, Value> {
        let mut map = Map::new();
        for field in stored(spec) {
            let value = self.value(&field.name);
            if field.kind == FieldKind::Address {
                // An address changes line by line (`address.city`).
                for line in crate::kit::ADDRESS_LINES {
                    let line_value = value.get(*line).cloned().unwrap_or(Value::Null);
                    map.insert(format!("{}.{line}", field.name), line_value);
                }
            } else if field.kind == FieldKind::Consent {
                // Consent changes channel by channel (`consent.email`: its status).
                for channel in crate::kit::CONSENT_CHANNELS {
                    let status = value.get(*channel).and_then(|c| c.get("status")).cloned();
                    map.insert(
                        format!("{}.{channel}", field.name),
                        status.unwrap_or(Value::Null),
                    );
                }
            } else {
                map.insert(field.name.to_string(), value.clone());
            }
        }
        for (key, value) in &self.custom {
            map.insert(format!("custom.{key}"), value.clone());
        }
        map
    }

    /// The record as the API shows it: `id`, the declared fields in their order, `custom`,
    /// and what Rapport keeps.
    pub fn to_json(&self, spec: &ObjectSpec) -> Value {
        let time = |t: &DateTime<Utc>| Value::from(values::timestamp(t));
        let mut body = Map::new();
        body.insert("id".into(), Value::from(self.id.to_string()));
        for field in stored(spec) {
            let value = match (field.kind, self.value(&field.name)) {
                (FieldKind::Tags | FieldKind::Emails | FieldKind::Phones, Value::Null) => {
                    Value::Array(Vec::new())
                }
                (_, value) => value.clone(),
            };
            body.insert(field.name.to_string(), value);
        }
        if spec.capabilities.custom_fields {
            body.insert("custom".into(), Value::Object(self.custom.clone()));
        }
        body.insert("version".into(), Value::from(self.version));
        body.insert("created_at".into(), time(&self.created_at));
        body.insert("updated_at".into(), time(&self.updated_at));
        body.insert(
            "created_by".into(),
            self.created_by
                .map_or(Value::Null, |id| Value::from(id.to_string())),
        );
        body.insert(
            "deleted_at".into(),
            self.deleted_at.as_ref().map_or(Value::Null, time),
        );
        Value::Object(body)
    }

    /// The lower-case text `q` searches: the searchable fields, space-separated.
    pub fn search_text(&self, spec: &ObjectSpec) -> String {
        search_text(spec, &self.values)
    }
}

/// What a write changes: every field of a new record, the differing ones of an existing one.
pub fn diff_fields(spec: &ObjectSpec, before: Option<&Record>, after: &Record) -> Changes {
    let old = before.map(|record| record.fields(spec)).unwrap_or_default();
    let new = after.fields(spec);
    diff(&old, &new)
}

/// The lower-case text `q` searches in these values: the searchable fields, and the
/// searchable fields of each line of a searchable list of lines.
pub fn search_text(spec: &ObjectSpec, values: &Map<String, Value>) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let mut digits: Vec<String> = Vec::new();
    for field in spec.fields.iter().filter(|field| field.searchable) {
        let value = values.get(field.name.as_ref());
        match (field.kind, value) {
            (FieldKind::Lines(line_fields), Some(Value::Array(lines))) => {
                for line in lines {
                    parts.extend(
                        line_fields
                            .iter()
                            .filter(|f| f.searchable)
                            .filter_map(|f| line.get(f.name.as_ref()).and_then(Value::as_str)),
                    );
                }
            }
            (FieldKind::Emails, Some(Value::Array(emails))) => {
                parts.extend(emails.iter().filter_map(Value::as_str));
            }
            (FieldKind::Phones, Some(Value::Array(phones))) => {
                for phone in phones {
                    if let Some(number) = phone.get("number").and_then(Value::as_str) {
                        parts.push(number);
                        digits.push(number.chars().filter(char::is_ascii_digit).collect());
                    }
                    parts.extend(phone.get("e164").and_then(Value::as_str));
                }
            }
            (FieldKind::Phone, Some(Value::String(number))) => {
                // A phone is found as written, by its digits and in E.164.
                parts.push(number);
                digits.push(number.chars().filter(char::is_ascii_digit).collect());
                let e164 = values.get(&format!("{}_e164", field.name));
                parts.extend(e164.and_then(Value::as_str));
            }
            _ => parts.extend(value.and_then(Value::as_str)),
        }
    }
    parts.extend(digits.iter().map(String::as_str));
    let extra = crate::objects::rules(spec.object).search_terms(values);
    parts.extend(extra.iter().map(String::as_str));
    parts.join(" ").to_lowercase()
}

impl RecordPatch {
    /// The values after this patch: `current`'s with the patch's laid over them.
    /// An object value (an address) is merged the same way, line by line (RFC 7396); an
    /// object left empty is no value.
    pub fn apply(&self, current: &Map<String, Value>) -> Map<String, Value> {
        let mut values = current.clone();
        merge(&mut values, &self.values);
        values
    }
}

fn merge(values: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match (value, values.get_mut(key)) {
            (Value::Null, _) => {
                values.remove(key);
            }
            (Value::Object(inner), Some(Value::Object(current))) => {
                merge(current, inner);
                if current.is_empty() {
                    values.remove(key);
                }
            }
            (Value::Object(inner), _) => {
                let mut fresh = Map::new();
                merge(&mut fresh, inner);
                if !fresh.is_empty() {
                    values.insert(key.clone(), Value::Object(fresh));
                }
            }
            (value, _) => {
                values.insert(key.clone(), value.clone());
            }
        }
    }
}

/// The required fields `values` lacks, as problems: those every record needs, and those
/// another field with a value needs (`currency` with an amount).
pub fn missing_required(spec: &ObjectSpec, values: &Map<String, Value>) -> Vec<FieldIssue> {
    let has = |name: &str| values.get(name).is_some_and(|value| !value.is_null());
    let mut issues: Vec<FieldIssue> = spec
        .fields
        .iter()
        .filter(|field| field.required && !has(&field.name))
        .map(|field| {
            FieldIssue::new(
                field.name.to_string(),
                "required",
                format!("a {} needs a {}", spec.object, field.name),
            )
        })
        .collect();
    for field in spec.fields.iter().filter(|field| has(&field.name)) {
        if let Some(other) = field.requires.filter(|other| !has(other)) {
            issues.push(FieldIssue::new(
                other,
                "required",
                format!("is required with {}", field.name),
            ));
        }
    }
    issues
}

/// The values and custom values of a merge's primary: its own where it has them, else the
/// first duplicate's (in order) — a field another requires comes with it (an amount with its
/// currency) —, tags united, custom values filled key by key. A reference to one of the merged
/// records (a duplicate as the primary's parent) is dropped; what Rapport keeps stays.
pub fn merge_values(
    spec: &ObjectSpec,
    primary: &Record,
    duplicates: &[Record],
) -> (Map<String, Value>, Map<String, Value>) {
    let mut values = primary.values.clone();
    let merged: Vec<String> = std::iter::once(primary.id)
        .chain(duplicates.iter().map(|d| d.id))
        .map(|id| id.to_string())
        .collect();
    let names_merged = |field: &FieldSpec, value: &Value| {
        field.kind == FieldKind::Reference(spec.object)
            && value
                .as_str()
                .is_some_and(|id| merged.iter().any(|m| m == id))
    };
    for field in writable(spec).filter(|f| !f.computed) {
        let name = field.name.as_ref();
        if values.get(name).is_some_and(|v| names_merged(field, v)) {
            values.remove(name);
        }
        for dup in duplicates {
            let Some(theirs) = dup.values.get(name).filter(|v| !names_merged(field, v)) else {
                continue;
            };
            match (field.kind, values.get_mut(name)) {
                (FieldKind::Tags, Some(Value::Array(tags))) => {
                    for tag in theirs.as_array().into_iter().flatten() {
                        if !tags.contains(tag) && tags.len() < values::MAX_TAGS {
                            tags.push(tag.clone());
                        }
                    }
                }
                (_, Some(_)) => {}
                (_, None) => {
                    values.insert(name.to_owned(), theirs.clone());
                    if let Some(other) = field.requires {
                        match dup.values.get(other) {
                            Some(value) => values.insert(other.to_owned(), value.clone()),
                            None => values.remove(other),
                        };
                    }
                }
            }
        }
    }
    let mut custom = primary.custom.clone();
    for dup in duplicates {
        for (key, value) in &dup.custom {
            custom.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    let others: Vec<&Map<String, Value>> = duplicates.iter().map(|d| &d.values).collect();
    crate::objects::rules(spec.object).merge(&mut values, &others);
    (values, custom)
}

/// The required fields each line of `values` lacks, as problems (`lines[3].product_id`); a
/// reference given by another name has its id by now, and one whose other name is among the
/// problems `already` found is not reported twice.
pub fn missing_in_lines(
    spec: &ObjectSpec,
    values: &Map<String, Value>,
    already: &[FieldIssue],
) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    for field in spec.fields.iter() {
        let (FieldKind::Lines(line_fields), Some(Value::Array(lines))) =
            (field.kind, values.get(field.name.as_ref()))
        else {
            continue;
        };
        for (i, line) in lines.iter().enumerate() {
            for required in line_fields.iter().filter(|f| f.required) {
                let reported = required.also_by.iter().any(|other| {
                    let path = format!("{}[{i}].{other}", field.name);
                    already.iter().any(|issue| issue.field == path)
                });
                if !reported && line.get(required.name.as_ref()).is_none_or(Value::is_null) {
                    let message = match required.also_by.first() {
                        Some(other) => format!("is required (or {other})"),
                        None => "is required".to_owned(),
                    };
                    issues.push(FieldIssue::new(
                        format!("{}[{i}].{}", field.name, required.name),
                        "required",
                        message,
                    ));
                }
            }
        }
    }
    issues
}

/// Gives each field with a default that has no value its default, for a write at `at`.
pub fn fill_defaults(spec: &ObjectSpec, values: &mut Map<String, Value>, at: &DateTime<Utc>) {
    fill_field_defaults(stored(spec), values, at);
}

pub(crate) fn fill_field_defaults<'f>(
    fields: impl Iterator<Item = &'f FieldSpec>,
    values: &mut Map<String, Value>,
    at: &DateTime<Utc>,
) {
    for field in fields {
        if let Some(default) = field.default {
            values
                .entry(field.name.to_string())
                .or_insert_with(|| default.value(at));
        }
    }
}

/// What filters and sorts may name: the declared fields of a kind filters compare, and
/// `created_by`. Names are `'static`: a declaration built at run time leaks its names once.
pub fn catalog(spec: &ObjectSpec) -> Vec<FieldInfo> {
    let name = |text: &std::borrow::Cow<'static, str>| -> &'static str {
        match text {
            std::borrow::Cow::Borrowed(text) => text,
            std::borrow::Cow::Owned(text) => Box::leak(text.clone().into_boxed_str()),
        }
    };
    let mut fields: Vec<FieldInfo> = spec
        .fields
        .iter()
        .filter(|field| matches!(field.kind, FieldKind::Address | FieldKind::Consent))
        .flat_map(|field| {
            let kind = match field.kind {
                FieldKind::Consent => query::FieldKind::Enum(values::ConsentStatus::NAMES),
                _ => query::FieldKind::Text,
            };
            field.columns().into_iter().map(move |line| FieldInfo {
                name: Box::leak(line.into_boxed_str()),
                kind,
                sortable: false,
            })
        })
        .collect();
    fields.extend(spec.fields.iter().filter_map(|field| {
        let kind = match field.kind {
            FieldKind::Id | FieldKind::Reference(_) => query::FieldKind::Uuid,
            FieldKind::Text { .. }
            | FieldKind::Url
            | FieldKind::Domain
            | FieldKind::Currency
            | FieldKind::Country
            | FieldKind::Email
            | FieldKind::Locale
            | FieldKind::TimeZone => query::FieldKind::Text,
            FieldKind::Enum(options) => query::FieldKind::Enum(options),
            FieldKind::Integer { .. } | FieldKind::Money => query::FieldKind::Integer,
            FieldKind::Boolean => query::FieldKind::Boolean,
            FieldKind::Date => query::FieldKind::Date,
            FieldKind::Timestamp => query::FieldKind::Timestamp,
            FieldKind::Tags => query::FieldKind::Tags,
            _ => return None,
        };
        Some(FieldInfo {
            name: name(&field.name),
            kind,
            sortable: field.sortable,
        })
    }));
    fields.push(FieldInfo {
        name: "created_by",
        kind: query::FieldKind::Uuid,
        sortable: false,
    });
    fields
}

#[cfg(test)]
mod tests;
