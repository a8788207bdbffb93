//! A record of an object the engine serves: its standard values as JSON, keyed by field name,
//! read and checked through the object's declaration. Nothing here names an object.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::ObjectType;
use crate::error::FieldIssue;
use crate::kit::{FieldKind, FieldSpec, MAX_LINES, ObjectSpec};
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

    /// Its fields as history and events compare them: every writable field (null when
    /// empty) and `custom.<key>`.
    pub fn fields(&self, spec: &ObjectSpec) -> Map<String, Value> {
        let mut map = Map::new();
        for field in writable(spec) {
            let value = self.value(&field.name);
            if field.kind == FieldKind::Address {
                // An address changes line by line (`address.city`).
                for line in crate::kit::ADDRESS_LINES {
                    let line_value = value.get(*line).cloned().unwrap_or(Value::Null);
                    map.insert(format!("{}.{line}", field.name), line_value);
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
                (FieldKind::Tags, Value::Null) => Value::Array(Vec::new()),
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

fn fill_field_defaults<'f>(
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

/// The reference a body property names another way (`contact_email` → `contact_id`).
pub fn also_by<'s>(fields: &'s [FieldSpec], name: &str) -> Option<&'s FieldSpec> {
    fields.iter().find(|field| {
        matches!(field.kind, FieldKind::Reference(_)) && field.also_by.iter().any(|n| n == name)
    })
}

/// The text a reference's other name is given as (an external id, an email, a sku).
fn check_also_by(name: &str, value: &Value) -> Result<Value, FieldIssue> {
    let text = value
        .as_str()
        .ok_or_else(|| FieldIssue::new(name, "invalid_type", "must be a string"))?;
    values::text(text, 255)
        .map_err(|message| FieldIssue::new(name, "invalid_value", message))?
        .map(Value::from)
        .ok_or_else(|| FieldIssue::new(name, "invalid_value", "must not be empty"))
}

/// Checks a body against the declaration: every property a writable field (or `custom`),
/// every value of its field's kind. Values come back in their stored form (trimmed text,
/// upper-case currency, empty text as null); every problem is reported at once.
pub fn check_input(
    spec: &ObjectSpec,
    body: &Map<String, Value>,
) -> Result<RecordPatch, Vec<FieldIssue>> {
    let mut patch = RecordPatch::default();
    let mut issues = Vec::new();
    for (key, value) in body {
        if key == "custom" && spec.capabilities.custom_fields {
            match value {
                Value::Object(map) => patch.custom = Some(map.clone()),
                _ => issues.push(FieldIssue::new(
                    "custom",
                    "invalid_type",
                    "must be an object of custom field values",
                )),
            }
            continue;
        }
        if also_by(&spec.fields, key).is_some_and(|field| !field.read_only) {
            match check_also_by(key, value) {
                Ok(value) => {
                    patch.values.insert(key.clone(), value);
                }
                Err(issue) => issues.push(issue),
            }
            continue;
        }
        let Some(field) = spec.field(key).filter(|field| !field.read_only) else {
            let issue = if spec.field(key).is_some() || SYSTEM_FIELDS.contains(&key.as_str()) {
                FieldIssue::new(key.clone(), "read_only", "is set by Rapport")
            } else {
                let known: Vec<&str> = writable(spec).map(|f| f.name.as_ref()).collect();
                FieldIssue::new(
                    key.chars().take(100).collect::<String>(),
                    "unknown_field",
                    format!("is not a field; the fields are {}", known.join(", ")),
                )
            };
            issues.push(issue);
            continue;
        };
        let checked = match field.kind {
            FieldKind::Lines(line_fields) => check_lines(field, line_fields, value),
            _ => check_value(field, value).map_err(|issue| vec![issue]),
        };
        match checked {
            Ok(Value::Null) if field.required => issues.push(FieldIssue::new(
                key.clone(),
                "required",
                "must not be empty",
            )),
            Ok(value) => {
                patch.values.insert(key.clone(), value);
            }
            Err(found) => issues.extend(found),
        }
    }
    if issues.is_empty() {
        Ok(patch)
    } else {
        Err(issues)
    }
}

/// A list of lines, each an object of the line's fields (a reference also by its other
/// names; the fields Rapport sets are taken and set again by the object's rules), at most
/// [`MAX_LINES`]; problems are named by path (`lines[2].quantity`). An empty list clears.
pub fn check_lines(
    field: &FieldSpec,
    line_fields: &[FieldSpec],
    value: &Value,
) -> Result<Value, Vec<FieldIssue>> {
    let items = match value {
        Value::Null => return Ok(Value::Null),
        Value::Array(items) => items,
        _ => {
            return Err(vec![invalid(
                field,
                "invalid_type",
                "must be a list of lines",
            )]);
        }
    };
    if items.len() > MAX_LINES {
        return Err(vec![too_many(field, items.len(), MAX_LINES, "lines")]);
    }
    if items.is_empty() {
        return Ok(Value::Null);
    }
    let mut issues = Vec::new();
    let mut lines = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = |name: &str| format!("{}[{i}].{name}", field.name);
        let Some(given) = item.as_object() else {
            issues.push(FieldIssue::new(
                format!("{}[{i}]", field.name),
                "invalid_type",
                "must be an object",
            ));
            continue;
        };
        let mut line = Map::new();
        for (key, value) in given {
            let checked = if also_by(line_fields, key).is_some() {
                check_also_by(key, value)
            } else if let Some(line_field) = line_fields.iter().find(|f| f.name == *key) {
                check_value(line_field, value)
            } else {
                let known: Vec<&str> = line_fields.iter().map(|f| f.name.as_ref()).collect();
                Err(FieldIssue::new(
                    key.chars().take(100).collect::<String>(),
                    "unknown_field",
                    format!(
                        "is not a field of a line; the fields are {}",
                        known.join(", ")
                    ),
                ))
            };
            match checked {
                Ok(Value::Null) => {}
                Ok(value) => {
                    line.insert(key.clone(), value);
                }
                Err(issue) => issues.push(FieldIssue {
                    field: at(&issue.field),
                    ..issue
                }),
            }
        }
        fill_field_defaults(line_fields.iter(), &mut line, &DateTime::<Utc>::MIN_UTC);
        lines.push(Value::Object(line));
    }
    if issues.is_empty() {
        Ok(Value::Array(lines))
    } else {
        Err(issues)
    }
}

/// A list longer than its field takes.
fn too_many(field: &FieldSpec, len: usize, max: usize, what: &str) -> FieldIssue {
    invalid(
        field,
        "too_many",
        format!("must hold at most {max} {what} (it holds {len})"),
    )
}

fn invalid(field: &FieldSpec, code: &str, message: impl Into<String>) -> FieldIssue {
    FieldIssue::new(field.name.to_string(), code, message)
}

fn text_of<'v>(field: &FieldSpec, value: &'v Value) -> Result<&'v str, FieldIssue> {
    value
        .as_str()
        .ok_or_else(|| invalid(field, "invalid_type", "must be a string"))
}

/// One value checked against its field's kind, in its stored form (null clears).
pub fn check_value(field: &FieldSpec, value: &Value) -> Result<Value, FieldIssue> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let bad = |message: String| invalid(field, "invalid_value", message);
    let optional_text = |text: &str, max: usize| {
        values::text(text, max).map_err(|message| invalid(field, "invalid_value", message))
    };
    Ok(match field.kind {
        FieldKind::Text { max_chars } => {
            optional_text(text_of(field, value)?, max_chars)?.map_or(Value::Null, Value::from)
        }
        FieldKind::Url | FieldKind::Domain | FieldKind::Currency | FieldKind::Country => {
            let text = text_of(field, value)?;
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            let checked = match field.kind {
                FieldKind::Url => values::url(text),
                FieldKind::Domain => values::domain(text),
                FieldKind::Currency => values::currency(text),
                _ => values::country(text),
            };
            Value::from(checked.map_err(bad)?)
        }
        FieldKind::Enum(options) => {
            let text = text_of(field, value)?;
            if !options.contains(&text) {
                return Err(bad(format!("must be one of {}", options.join(", "))));
            }
            Value::from(text)
        }
        FieldKind::Integer { min, max } => {
            let number = value
                .as_i64()
                .ok_or_else(|| invalid(field, "invalid_type", "must be an integer"))?;
            if number < min || number > max {
                return Err(bad(format!("must be from {min} to {max}")));
            }
            Value::from(number)
        }
        FieldKind::Money => {
            let number = value
                .as_i64()
                .ok_or_else(|| invalid(field, "invalid_type", "must be an integer"))?;
            if number < 0 {
                return Err(bad("must not be negative".into()));
            }
            Value::from(number)
        }
        FieldKind::Boolean => Value::from(
            value
                .as_bool()
                .ok_or_else(|| invalid(field, "invalid_type", "must be true or false"))?,
        ),
        FieldKind::Date => {
            let text = text_of(field, value)?;
            let date = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| bad("must be a date such as 2026-12-31".into()))?;
            Value::from(date.to_string())
        }
        FieldKind::Timestamp => {
            let text = text_of(field, value)?;
            let at = DateTime::parse_from_rfc3339(text)
                .map_err(|_| bad("must be an RFC 3339 time such as 2026-12-31T09:00:00Z".into()))?;
            Value::from(values::timestamp(&at.with_timezone(&Utc)))
        }
        FieldKind::Reference(object) => {
            let text = text_of(field, value)?;
            let id = Uuid::parse_str(text).map_err(|_| bad(format!("must be a {object} id")))?;
            Value::from(id.to_string())
        }
        FieldKind::Tags => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid(field, "invalid_type", "must be a list of strings"))?;
            if items.len() > values::MAX_TAGS {
                return Err(too_many(field, items.len(), values::MAX_TAGS, "tags"));
            }
            let texts: Vec<String> = items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| invalid(field, "invalid_type", "must be a list of strings"))?;
            Value::from(values::tags(&texts).map_err(bad)?)
        }
        FieldKind::Phone => {
            // Kept as written; its E.164 form is Rapport's (`<field>_e164`).
            let text = text_of(field, value)?;
            optional_text(text, crate::values::Phone::MAX_LEN)?.map_or(Value::Null, Value::from)
        }
        FieldKind::Address => {
            let lines = value.as_object().ok_or_else(|| {
                invalid(field, "invalid_type", "must be an object of address lines")
            })?;
            let mut checked = Map::new();
            for (line, text) in lines {
                let at = format!("{}.{line}", field.name);
                if !crate::kit::ADDRESS_LINES.contains(&line.as_str()) {
                    return Err(FieldIssue::new(
                        at,
                        "unknown_field",
                        format!(
                            "is not a line of an address; the lines are {}",
                            crate::kit::ADDRESS_LINES.join(", ")
                        ),
                    ));
                }
                let stored = match text {
                    Value::Null => Value::Null,
                    Value::String(text) if line == "country" && !text.trim().is_empty() => {
                        Value::from(
                            values::country(text)
                                .map_err(|m| FieldIssue::new(at, "invalid_value", m))?,
                        )
                    }
                    Value::String(text) => values::text(text, 200)
                        .map_err(|m| FieldIssue::new(at.clone(), "invalid_value", m))?
                        .map_or(Value::Null, Value::from),
                    _ => return Err(FieldIssue::new(at, "invalid_type", "must be a string")),
                };
                checked.insert(line.clone(), stored);
            }
            Value::Object(checked)
        }
        FieldKind::Id
        | FieldKind::Version
        | FieldKind::Email
        | FieldKind::Emails
        | FieldKind::Phones
        | FieldKind::Locale
        | FieldKind::TimeZone
        | FieldKind::Consent
        | FieldKind::Lines(_) => {
            return Err(invalid(
                field,
                "invalid_value",
                "is not a kind of field the engine writes yet",
            ));
        }
    })
}

/// Whether the engine stores and checks this kind of field (the others are still written by
/// hand-written stores).
pub fn engine_kind(kind: FieldKind) -> bool {
    !matches!(
        kind,
        FieldKind::Email
            | FieldKind::Emails
            | FieldKind::Phones
            | FieldKind::Locale
            | FieldKind::TimeZone
            | FieldKind::Consent
    )
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
        .filter(|field| field.kind == FieldKind::Address)
        .flat_map(|field| {
            field.columns().into_iter().map(|line| FieldInfo {
                name: Box::leak(line.into_boxed_str()),
                kind: query::FieldKind::Text,
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
            | FieldKind::Country => query::FieldKind::Text,
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
mod tests {
    use super::*;
    use crate::objects::competitor::SPEC;
    use serde_json::json;

    fn body(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn a_body_is_checked_field_by_field_and_every_problem_is_named() {
        let issues = check_input(
            &SPEC,
            &body(json!({
                "name": 7, "website": "not a url", "version": 3, "colour": "red",
                "tags": ["a", 1], "custom": []
            })),
        )
        .unwrap_err();
        let mut named: Vec<(&str, &str)> = issues
            .iter()
            .map(|i| (i.field.as_str(), i.code.as_str()))
            .collect();
        named.sort_unstable();
        assert_eq!(
            named,
            [
                ("colour", "unknown_field"),
                ("custom", "invalid_type"),
                ("name", "invalid_type"),
                ("tags", "invalid_type"),
                ("version", "read_only"),
                ("website", "invalid_value"),
            ]
        );
    }

    #[test]
    fn values_come_back_in_their_stored_form_and_empty_text_clears() {
        let patch = check_input(
            &SPEC,
            &body(json!({"name": "  Acme  ", "notes": "   ", "tags": ["b", "a", "b"]})),
        )
        .unwrap();
        assert_eq!(patch.values["name"], json!("Acme"));
        assert_eq!(patch.values["notes"], Value::Null);
        assert_eq!(patch.values["tags"], json!(["b", "a"]));
        let cleared = check_input(&SPEC, &body(json!({"name": ""}))).unwrap_err();
        assert_eq!(cleared[0].code, "required");
    }

    #[test]
    fn a_patch_lays_its_values_over_the_record_and_null_clears() {
        let current = body(json!({"name": "Acme", "notes": "old"}));
        let patch = RecordPatch {
            values: body(json!({"notes": null, "website": "https://acme.example"})),
            custom: None,
        };
        assert_eq!(
            Value::Object(patch.apply(&current)),
            json!({"name": "Acme", "website": "https://acme.example"})
        );
        assert!(missing_required(&SPEC, &body(json!({"notes": "x"})))[0].field == "name");
    }

    #[test]
    fn lines_are_checked_item_by_item_and_problems_are_named_by_path() {
        let order = &crate::objects::order::SPEC;
        let issues = check_input(
            order,
            &body(json!({"lines": [
                {"sku": "TEA-001", "quantity": 0},
                "not a line",
                {"product_id": "nope", "colour": "red", "discount_minor": -1}
            ], "contact_email": 7})),
        )
        .unwrap_err();
        let named: Vec<(&str, &str)> = issues
            .iter()
            .map(|i| (i.field.as_str(), i.code.as_str()))
            .collect();
        assert_eq!(
            named,
            [
                ("contact_email", "invalid_type"),
                ("lines[0].quantity", "invalid_value"),
                ("lines[1]", "invalid_type"),
                ("lines[2].colour", "unknown_field"),
                ("lines[2].discount_minor", "invalid_value"),
                ("lines[2].product_id", "invalid_value"),
            ]
        );
        let patch = check_input(
            order,
            &body(json!({"lines": [{"sku": " TEA-001 ", "quantity": 2}], "contact_email": "a@b.example"})),
        )
        .unwrap();
        // A line's defaults are set; another name of a reference is kept for the store.
        assert_eq!(
            patch.values["lines"],
            json!([{"sku": "TEA-001", "quantity": 2, "discount_minor": 0}])
        );
        assert_eq!(patch.values["contact_email"], json!("a@b.example"));
        let too_many = vec![json!({"sku": "A", "quantity": 1}); crate::kit::MAX_LINES + 1];
        let refused = check_input(order, &body(json!({ "lines": too_many }))).unwrap_err();
        assert_eq!(refused[0].code, "too_many");
    }

    #[test]
    fn lines_lacking_what_they_need_are_named_once() {
        let order = &crate::objects::order::SPEC;
        let values = body(json!({"lines": [{"quantity": 1}, {"product_id": "p", "quantity": 1}]}));
        let missing = missing_in_lines(order, &values, &[]);
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].field, "lines[0].product_id");
        let already = [FieldIssue::new("lines[0].sku", "not_found", "no such sku")];
        assert!(missing_in_lines(order, &values, &already).is_empty());
        assert_eq!(
            search_text(
                order,
                &body(json!({"number": "SO-1", "lines": [{"sku": "TEA-1"}, {"sku": "CUP"}]}))
            ),
            "so-1 tea-1 cup"
        );
    }

    #[test]
    fn the_catalog_offers_the_declared_fields_with_their_sortability() {
        let catalog = catalog(&SPEC);
        let name = catalog.iter().find(|f| f.name == "name").unwrap();
        assert!(name.sortable);
        assert_eq!(name.kind, query::FieldKind::Text);
        assert!(catalog.iter().any(|f| f.name == "tags"));
        assert!(catalog.iter().any(|f| f.name == "created_by"));
    }
}
