//! Checking what a write gives against the declaration: every property a writable field (or
//! another name of a reference, or `custom`), every value of its field's kind, lines item by
//! item. Values come back in their stored form; every problem is reported at once.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::record::{RecordPatch, SYSTEM_FIELDS, fill_field_defaults, writable};
use crate::error::FieldIssue;
use crate::kit::{FieldKind, FieldSpec, MAX_LINES, ObjectSpec};
use crate::values;

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

/// Most emails or phones in a list of them.
pub const MAX_LIST: usize = 20;

/// One phone of a list: its number (as written) and kind; its E.164 form is Rapport's.
fn check_phone(field: &FieldSpec, i: usize, item: &Value) -> Result<Value, FieldIssue> {
    let at = |name: &str| format!("{}[{i}].{name}", field.name);
    let phone = item.as_object().ok_or_else(|| {
        FieldIssue::new(
            format!("{}[{i}]", field.name),
            "invalid_type",
            "must be an object",
        )
    })?;
    if let Some(key) = phone
        .keys()
        .find(|k| !["number", "kind", "e164"].contains(&k.as_str()))
    {
        return Err(FieldIssue::new(
            at(key),
            "unknown_field",
            "is not a field of a phone; the fields are number and kind",
        ));
    }
    let number = phone
        .get("number")
        .and_then(Value::as_str)
        .ok_or_else(|| FieldIssue::new(at("number"), "required", "is required"))?;
    let number = values::text(number, values::Phone::MAX_LEN)
        .map_err(|m| FieldIssue::new(at("number"), "invalid_value", m))?
        .ok_or_else(|| FieldIssue::new(at("number"), "invalid_value", "must not be empty"))?;
    let kind = match phone.get("kind") {
        None | Some(Value::Null) => values::PhoneKind::Other.as_str(),
        Some(Value::String(kind)) if values::PhoneKind::NAMES.contains(&kind.as_str()) => {
            values::PhoneKind::NAMES
                .iter()
                .find(|k| *k == kind)
                .copied()
                .unwrap_or("other")
        }
        Some(_) => {
            return Err(FieldIssue::new(
                at("kind"),
                "invalid_value",
                format!("must be one of {}", values::PhoneKind::NAMES.join(", ")),
            ));
        }
    };
    Ok(serde_json::json!({"number": number, "kind": kind}))
}

/// Consent changes by channel: `{"email": {"status": "opted_out", "changed_at": …}}`.
fn check_consent(field: &FieldSpec, value: &Value) -> Result<Value, FieldIssue> {
    let channels = value
        .as_object()
        .ok_or_else(|| invalid(field, "invalid_type", "must be an object of channels"))?;
    let mut checked = Map::new();
    for (channel, change) in channels {
        let at = |name: &str| format!("{}.{channel}{name}", field.name);
        if !crate::kit::CONSENT_CHANNELS.contains(&channel.as_str()) {
            return Err(FieldIssue::new(
                at(""),
                "unknown_field",
                format!(
                    "is not a channel; the channels are {}",
                    crate::kit::CONSENT_CHANNELS.join(", ")
                ),
            ));
        }
        let change = change.as_object().ok_or_else(|| {
            FieldIssue::new(at(""), "invalid_type", "must be an object with a status")
        })?;
        if let Some(key) = change
            .keys()
            .find(|k| !["status", "changed_at"].contains(&k.as_str()))
        {
            return Err(FieldIssue::new(
                at(&format!(".{key}")),
                "unknown_field",
                "is not a field of consent; the fields are status and changed_at",
            ));
        }
        let status = change
            .get("status")
            .and_then(Value::as_str)
            .filter(|s| values::ConsentStatus::NAMES.contains(s))
            .ok_or_else(|| {
                FieldIssue::new(
                    at(".status"),
                    "invalid_value",
                    format!("must be one of {}", values::ConsentStatus::NAMES.join(", ")),
                )
            })?;
        let mut line = Map::new();
        line.insert("status".into(), Value::from(status));
        match change.get("changed_at") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) => {
                let when = DateTime::parse_from_rfc3339(text).map_err(|_| {
                    FieldIssue::new(
                        at(".changed_at"),
                        "invalid_value",
                        "must be an RFC 3339 time",
                    )
                })?;
                line.insert(
                    "changed_at".into(),
                    Value::from(values::timestamp(&when.with_timezone(&Utc))),
                );
            }
            Some(_) => {
                return Err(FieldIssue::new(
                    at(".changed_at"),
                    "invalid_type",
                    "must be a string",
                ));
            }
        }
        checked.insert(channel.clone(), Value::Object(line));
    }
    Ok(Value::Object(checked))
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
        FieldKind::Email => {
            let text = text_of(field, value)?;
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            let email = crate::Email::parse(text).map_err(|m| bad(m.to_owned()))?;
            Value::from(email.as_str())
        }
        FieldKind::Locale | FieldKind::TimeZone => {
            let text = text_of(field, value)?.trim();
            if text.is_empty() {
                return Ok(Value::Null);
            }
            let checked = match field.kind {
                FieldKind::Locale => values::locale(text),
                _ => values::timezone(text),
            };
            Value::from(checked.map_err(bad)?)
        }
        FieldKind::Emails => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid(field, "invalid_type", "must be a list of emails"))?;
            if items.len() > MAX_LIST {
                return Err(too_many(field, items.len(), MAX_LIST, "emails"));
            }
            let mut seen = std::collections::HashSet::new();
            let mut emails = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let at = format!("{}[{i}]", field.name);
                let text = item.as_str().ok_or_else(|| {
                    FieldIssue::new(at.clone(), "invalid_type", "must be a string")
                })?;
                let email = crate::Email::parse(text)
                    .map_err(|m| FieldIssue::new(at.clone(), "invalid_value", m))?;
                if !seen.insert(email.normalized()) {
                    return Err(FieldIssue::new(at, "duplicate", "is listed twice"));
                }
                emails.push(Value::from(email.as_str()));
            }
            if emails.is_empty() {
                Value::Null
            } else {
                Value::Array(emails)
            }
        }
        FieldKind::Phones => {
            let items = value
                .as_array()
                .ok_or_else(|| invalid(field, "invalid_type", "must be a list of phones"))?;
            if items.len() > MAX_LIST {
                return Err(too_many(field, items.len(), MAX_LIST, "phones"));
            }
            let mut phones = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                phones.push(check_phone(field, i, item)?);
            }
            if phones.is_empty() {
                Value::Null
            } else {
                Value::Array(phones)
            }
        }
        FieldKind::Consent => check_consent(field, value)?,
        FieldKind::Id | FieldKind::Version | FieldKind::Lines(_) => {
            return Err(invalid(
                field,
                "invalid_value",
                "is not a kind of field the engine writes yet",
            ));
        }
    })
}
