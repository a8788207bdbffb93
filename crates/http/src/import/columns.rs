//! Which columns an import may fill and how each cell becomes a JSON value, read from the
//! object's declaration and its custom field definitions.

use std::collections::HashMap;

use rapport_domain::ObjectType;
use rapport_domain::custom_field::{CustomFieldDef, FieldType};
use rapport_domain::import::ImportJob;
use rapport_domain::kit::{FieldKind, FieldSpec};
use rapport_domain::values::PhoneKind;
use rapport_domain::write::IdProperty;
use serde_json::{Map, Value};

/// How a cell becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    /// `a; b; c`.
    List,
    /// Numbers separated by `;`.
    Phones,
    /// A consent status (`opted_in`), for `consent.<channel>`.
    Consent,
    /// `12900 CNY`.
    Money,
    /// JSON, as an export writes a list of lines.
    Json,
}

/// The columns an import may fill for an object's standard fields, and how each cell is
/// read: read from the object's declaration (writable fields, their other names, one column
/// per address line, consent channel and line field).
pub(super) fn standard_fields(object: ObjectType) -> Vec<(String, Kind)> {
    let mut columns = Vec::new();
    if let Some(spec) = rapport_domain::objects::spec(object) {
        for field in spec.fields.iter().filter(|f| !f.read_only) {
            field_columns(field, "", &mut columns);
        }
    }
    columns
}

pub(super) fn field_columns(field: &FieldSpec, prefix: &str, columns: &mut Vec<(String, Kind)>) {
    let name = format!("{prefix}{}", field.name);
    match field.kind {
        FieldKind::Address | FieldKind::Consent => {
            let kind = if field.kind == FieldKind::Consent {
                Kind::Consent
            } else {
                Kind::Text
            };
            columns.extend(field.columns().into_iter().map(|column| (column, kind)));
        }
        FieldKind::Lines(line) => {
            // All lines as the JSON an export writes, or one line per row.
            columns.push((name, Kind::Json));
            for part in line {
                // One line per row: `line.sku`, `line.quantity`…
                field_columns(part, "line.", columns);
            }
        }
        kind => {
            let read_as = match kind {
                FieldKind::Integer { .. } | FieldKind::Money => Kind::Integer,
                FieldKind::Boolean => Kind::Boolean,
                FieldKind::Emails | FieldKind::Tags => Kind::List,
                FieldKind::Phones => Kind::Phones,
                _ => Kind::Text,
            };
            columns.push((name, read_as));
        }
    }
    columns.extend(
        field
            .also_by
            .iter()
            .map(|other| (format!("{prefix}{other}"), Kind::Text)),
    );
}

pub(super) fn custom_kind(def: &CustomFieldDef) -> Kind {
    match def.field_type {
        FieldType::Integer => Kind::Integer,
        FieldType::Number => Kind::Number,
        FieldType::Boolean => Kind::Boolean,
        FieldType::MultiSelect => Kind::List,
        FieldType::Money => Kind::Money,
        _ => Kind::Text,
    }
}

/// The kind of a field path an import may fill, or None.
pub(super) fn kind_of(
    object: ObjectType,
    field: &str,
    definitions: &[CustomFieldDef],
    id_property: Option<IdProperty>,
) -> Option<Kind> {
    if field == "id" {
        return (id_property == Some(IdProperty::Id)).then_some(Kind::Text);
    }
    if let Some(key) = field.strip_prefix("custom.") {
        return definitions.iter().find(|d| d.key == key).map(custom_kind);
    }
    standard_fields(object)
        .into_iter()
        .find(|(name, _)| name == field)
        .map(|(_, kind)| kind)
}

/// Whether a column is one an export writes but no write sets — a read-only field, or `id`
/// unless rows are found by it — which an import without a mapping leaves out (the job's
/// mapping lists the columns it reads), so that an export imports back unchanged.
pub(super) fn exported_only(
    object: ObjectType,
    column: &str,
    id_property: Option<IdProperty>,
) -> bool {
    if column == "id" {
        return id_property != Some(IdProperty::Id);
    }
    rapport_domain::objects::spec(object).is_some_and(|spec| {
        spec.fields
            .iter()
            .any(|field| field.read_only && field.columns().iter().any(|c| c == column))
    })
}

pub(super) fn cell_value(kind: Kind, text: &str) -> Result<Value, &'static str> {
    let list = || {
        text.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::from(s.to_owned()))
            .collect::<Vec<_>>()
    };
    Ok(match kind {
        Kind::Text => Value::from(text),
        Kind::Integer => Value::from(text.parse::<i64>().map_err(|_| "must be a whole number")?),
        Kind::Number => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or("must be a number")?,
        Kind::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "y" => Value::Bool(true),
            "false" | "no" | "0" | "n" => Value::Bool(false),
            _ => return Err("must be true or false"),
        },
        Kind::List => Value::Array(list()),
        Kind::Phones => Value::Array(list().into_iter().map(phone).collect()),
        Kind::Consent => serde_json::json!({ "status": text }),
        Kind::Json => serde_json::from_str(text).map_err(|_| "must be JSON")?,
        Kind::Money => {
            let (amount, currency) = text
                .split_once(' ')
                .ok_or("must be an amount in minor units and a currency: 12900 CNY")?;
            let amount = amount
                .trim()
                .parse::<i64>()
                .map_err(|_| "must be an amount in minor units and a currency: 12900 CNY")?;
            serde_json::json!({ "amount_minor": amount, "currency": currency.trim() })
        }
    })
}

/// Puts `value` at a dotted path; `line.<field>` fills the order's single line.
pub(super) fn set_path(row: &mut Map<String, Value>, path: &str, value: Value) {
    if let Some(field) = path.strip_prefix("line.") {
        let lines = row
            .entry("lines")
            .or_insert_with(|| Value::Array(vec![Value::Object(Map::new())]));
        if let Some(Value::Object(line)) = lines.as_array_mut().and_then(|l| l.first_mut()) {
            line.insert(field.to_owned(), value);
        }
        return;
    }
    match path.split_once('.') {
        Some((head, rest)) => {
            let inner = row.entry(head).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                set_path(inner, rest, value);
            }
        }
        None => {
            row.insert(path.to_owned(), value);
        }
    }
}

/// A mapped column: where it is, what it is called, which field it fills and how its cells
/// read.
pub(super) struct Column {
    pub(super) index: usize,
    pub(super) header: String,
    pub(super) field: String,
    pub(super) kind: Kind,
}

/// Where each mapped column is and how its cells read.
pub(super) fn columns(
    job: &ImportJob,
    headers: &[String],
    definitions: &[CustomFieldDef],
) -> Result<Vec<Column>, String> {
    let positions: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(index, header)| (header.as_str(), index))
        .collect();
    job.mapping
        .iter()
        .map(|(header, field)| {
            let index = *positions
                .get(header.as_str())
                .ok_or_else(|| format!("the file has no column `{header}`"))?;
            let kind = kind_of(job.object, field, definitions, job.id_property)
                .ok_or_else(|| format!("`{field}` is no longer a field an import can fill"))?;
            Ok(Column {
                index,
                header: header.clone(),
                field: field.clone(),
                kind,
            })
        })
        .collect()
}

/// A phone as an export writes it: `+86 138 0013 8000 (mobile)`, or the number alone. A
/// parenthesis that names no phone kind (`+1 555 0100 (ext 12)`) is part of the number.
fn phone(item: Value) -> Value {
    let text = item.as_str().unwrap_or_default();
    let kind = text
        .strip_suffix(')')
        .and_then(|rest| rest.rsplit_once(" ("));
    match kind {
        Some((number, kind)) if kind.parse::<PhoneKind>().is_ok() => {
            serde_json::json!({ "number": number.trim_end(), "kind": kind })
        }
        _ => serde_json::json!({ "number": text }),
    }
}
