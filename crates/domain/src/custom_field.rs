//! Custom field definitions per organization and object, and the validation of `custom`
//! values against them on every write.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::email::Email;
use crate::error::FieldIssue;
use crate::object::ObjectType;
use crate::values::{self, currency};

/// Longest text value (notes and the like): 100 KB.
pub const MAX_TEXT_BYTES: usize = 100 * 1024;
pub const MAX_OPTIONS: usize = 200;
pub const MAX_FIELDS_PER_OBJECT: usize = 200;

macro_rules! field_types {
    ($($variant:ident => $text:literal),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum FieldType { $($variant,)* }

        impl FieldType {
            pub fn as_str(self) -> &'static str {
                match self { $(FieldType::$variant => $text,)* }
            }
        }

        impl std::str::FromStr for FieldType {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(FieldType::$variant),)*
                    _ => Err(format!("`{s}` is not a field type")),
                }
            }
        }
    };
}

field_types! {
    Text => "text",
    Number => "number",
    Integer => "integer",
    Boolean => "boolean",
    Date => "date",
    Datetime => "datetime",
    Select => "select",
    MultiSelect => "multi_select",
    Url => "url",
    Email => "email",
    Phone => "phone",
    Money => "money",
}

impl FieldType {
    pub fn has_options(self) -> bool {
        matches!(self, FieldType::Select | FieldType::MultiSelect)
    }

    /// Types whose values can be compared for uniqueness.
    pub fn can_be_unique(self) -> bool {
        matches!(
            self,
            FieldType::Text
                | FieldType::Integer
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomFieldDef {
    pub id: Uuid,
    pub org_id: Uuid,
    pub object: ObjectType,
    pub key: String,
    pub label: String,
    pub field_type: FieldType,
    pub options: Vec<String>,
    pub required: bool,
    pub unique: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewCustomField {
    pub object: ObjectType,
    pub key: String,
    pub label: String,
    pub field_type: FieldType,
    pub options: Vec<String>,
    pub required: bool,
    pub unique: bool,
}

#[derive(Debug, Clone, Default)]
pub struct CustomFieldPatch {
    pub label: Option<String>,
    pub options: Option<Vec<String>>,
    pub required: Option<bool>,
    pub unique: Option<bool>,
}

/// A key: a lower-case letter, then up to 62 lower-case letters, digits or underscores.
pub fn key(text: &str) -> Result<String, String> {
    let valid = (1..=63).contains(&text.len())
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(text.to_owned())
    } else {
        Err("must start with a-z and hold only a-z, 0-9 and _ (at most 63)".into())
    }
}

/// Checks a definition's options against its type: selects need 1–200 distinct options.
/// The count is checked on the list as sent, before any option is read; repeats are found
/// with a hash set.
pub fn options(field_type: FieldType, options: &[String]) -> Result<Vec<String>, String> {
    if !field_type.has_options() {
        return if options.is_empty() {
            Ok(Vec::new())
        } else {
            Err(format!(
                "only select and multi_select fields have options, not {}",
                field_type.as_str()
            ))
        };
    }
    if options.is_empty() || options.len() > MAX_OPTIONS {
        return Err(format!(
            "a {} field needs 1 to {MAX_OPTIONS} options",
            field_type.as_str()
        ));
    }
    let mut seen: HashSet<&str> = HashSet::with_capacity(options.len());
    let mut out: Vec<String> = Vec::with_capacity(options.len());
    for option in options {
        let option = option.trim();
        if option.is_empty() || option.chars().count() > 200 {
            return Err("each option must be 1 to 200 characters".into());
        }
        if !seen.insert(option) {
            return Err(format!("the option `{option}` is listed twice"));
        }
        out.push(option.to_owned());
    }
    Ok(out)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The stored form of a value for `def`, or (code, message) when it does not fit.
pub fn normalize(def: &CustomFieldDef, value: &Value) -> Result<Value, (&'static str, String)> {
    let wrong = || {
        (
            "invalid_type",
            format!(
                "must be {} value, not {}",
                article(def.field_type),
                type_name(value)
            ),
        )
    };
    match def.field_type {
        FieldType::Text => {
            let text = value.as_str().ok_or_else(wrong)?;
            if text.len() > MAX_TEXT_BYTES {
                return Err((
                    "too_long",
                    format!("must be at most {MAX_TEXT_BYTES} bytes"),
                ));
            }
            Ok(Value::from(text))
        }
        FieldType::Number => {
            let number = value.as_f64().filter(|n| n.is_finite()).ok_or_else(wrong)?;
            Ok(serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number))
        }
        FieldType::Integer => value.as_i64().map(Value::from).ok_or_else(wrong),
        FieldType::Boolean => value.as_bool().map(Value::from).ok_or_else(wrong),
        FieldType::Date => {
            let text = value.as_str().ok_or_else(wrong)?;
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| Value::from(d.format("%Y-%m-%d").to_string()))
                .map_err(|_| {
                    (
                        "invalid_value",
                        "must be a date such as 2026-11-23".to_owned(),
                    )
                })
        }
        FieldType::Datetime => {
            let text = value.as_str().ok_or_else(wrong)?;
            DateTime::parse_from_rfc3339(text)
                .map(|t| {
                    Value::from(
                        t.with_timezone(&Utc)
                            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
                    )
                })
                .map_err(|_| {
                    (
                        "invalid_value",
                        "must be an RFC 3339 time such as 2026-11-23T08:00:00Z".to_owned(),
                    )
                })
        }
        FieldType::Select => {
            let text = value.as_str().ok_or_else(wrong)?;
            if def.options.iter().any(|o| o == text) {
                Ok(Value::from(text))
            } else {
                Err((
                    "invalid_option",
                    format!("`{text}` is not one of: {}", def.options.join(", ")),
                ))
            }
        }
        FieldType::MultiSelect => {
            let items = value.as_array().ok_or_else(wrong)?;
            // More choices than a field can have options hold repeats only; refused before
            // any is read.
            if items.len() > MAX_OPTIONS {
                return Err((
                    "too_many",
                    format!("must hold at most {MAX_OPTIONS} options"),
                ));
            }
            let mut chosen: Vec<&str> = Vec::with_capacity(items.len());
            for item in items {
                let text = item.as_str().ok_or_else(wrong)?;
                if !def.options.iter().any(|o| o == text) {
                    return Err((
                        "invalid_option",
                        format!("`{text}` is not one of: {}", def.options.join(", ")),
                    ));
                }
                chosen.push(text);
            }
            Ok(Value::Array(
                values::without_repeats(chosen)
                    .into_iter()
                    .map(Value::from)
                    .collect(),
            ))
        }
        FieldType::Url => {
            let text = value.as_str().ok_or_else(wrong)?;
            values::url(text)
                .map(Value::from)
                .map_err(|m| ("invalid_value", m))
        }
        FieldType::Email => {
            let text = value.as_str().ok_or_else(wrong)?;
            Email::parse(text)
                .map(|e| Value::from(e.as_str()))
                .map_err(|m| ("invalid_value", m.to_owned()))
        }
        FieldType::Phone => {
            let text = value.as_str().ok_or_else(wrong)?;
            let text = text.trim();
            if text.is_empty() || text.chars().count() > 64 {
                return Err((
                    "invalid_value",
                    "must be a phone number of 1 to 64 characters".into(),
                ));
            }
            Ok(Value::from(text))
        }
        FieldType::Money => {
            let object = value.as_object().ok_or_else(wrong)?;
            let amount = object.get("amount_minor").and_then(Value::as_i64);
            let code = object.get("currency").and_then(Value::as_str);
            match (amount, code, object.len()) {
                (Some(amount), Some(code), 2) => {
                    let code = currency(code).map_err(|m| ("invalid_value", m))?;
                    Ok(serde_json::json!({ "amount_minor": amount, "currency": code }))
                }
                _ => Err((
                    "invalid_value",
                    "must be {\"amount_minor\": <integer>, \"currency\": \"<ISO 4217>\"}"
                        .to_owned(),
                )),
            }
        }
    }
}

fn article(field_type: FieldType) -> String {
    match field_type {
        FieldType::Integer => "an integer".into(),
        FieldType::Email => "an email".into(),
        FieldType::Url => "a URL".into(),
        FieldType::MultiSelect => "a multi_select (array of options)".into(),
        other => format!("a {}", other.as_str()),
    }
}

/// Applies a `custom` merge patch (a key set to null is removed) to the current values and
/// validates the result against the definitions: unknown keys, wrong types, options not in
/// the list and missing required fields are reported, each under `custom.<key>`. The values
/// that passed come back with the issues, so that later checks (uniqueness) see them too.
pub fn apply_all(
    definitions: &[CustomFieldDef],
    current: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> (Map<String, Value>, Vec<FieldIssue>) {
    let mut values = current.clone();
    let mut issues = Vec::new();
    // An object has at most this many fields, so a longer patch is refused before any key is
    // looked up.
    if patch.len() > MAX_FIELDS_PER_OBJECT {
        issues.push(FieldIssue::new(
            "custom",
            "too_many",
            format!("must hold at most {MAX_FIELDS_PER_OBJECT} values"),
        ));
        return (values, issues);
    }
    for (key, value) in patch {
        let field = format!("custom.{key}");
        let Some(def) = definitions.iter().find(|d| &d.key == key) else {
            issues.push(FieldIssue::new(
                field,
                "unknown_field",
                "is not a custom field of this object; define it at /v1/custom-fields first",
            ));
            continue;
        };
        if value.is_null() {
            values.remove(key);
            continue;
        }
        match normalize(def, value) {
            Ok(normalized) => {
                values.insert(key.clone(), normalized);
            }
            Err((code, message)) => issues.push(FieldIssue::new(field, code, message)),
        }
    }
    // Values of definitions that were deleted are dropped rather than kept unseen.
    values.retain(|key, _| definitions.iter().any(|d| &d.key == key));
    for def in definitions.iter().filter(|d| d.required) {
        let present = values.get(&def.key).is_some_and(|v| !is_blank(v));
        if !present
            && !issues
                .iter()
                .any(|i| i.field == format!("custom.{}", def.key))
        {
            issues.push(FieldIssue::new(
                format!("custom.{}", def.key),
                "required",
                "is required",
            ));
        }
    }
    (values, issues)
}

/// [`apply_all`], as a result.
pub fn apply(
    definitions: &[CustomFieldDef],
    current: &Map<String, Value>,
    patch: &Map<String, Value>,
) -> Result<Map<String, Value>, Vec<FieldIssue>> {
    let (values, issues) = apply_all(definitions, current, patch);
    if issues.is_empty() {
        Ok(values)
    } else {
        Err(issues)
    }
}

fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(key: &str, field_type: FieldType, options: &[&str], required: bool) -> CustomFieldDef {
        CustomFieldDef {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            object: ObjectType::Contact,
            key: key.into(),
            label: key.into(),
            field_type,
            options: options.iter().map(|o| o.to_string()).collect(),
            required,
            unique: false,
            version: 1,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn patch(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn values_are_checked_and_normalised() {
        let defs = vec![
            def("region", FieldType::Select, &["华东", "华北"], false),
            def("score", FieldType::Integer, &[], false),
            def("met_at", FieldType::Datetime, &[], false),
            def("budget", FieldType::Money, &[], false),
            def("channels", FieldType::MultiSelect, &["web", "shop"], false),
        ];
        let values = apply(
            &defs,
            &Map::new(),
            &patch(json!({"region": "华东", "score": 7, "met_at": "2026-11-23T16:00:00+08:00",
                          "budget": {"amount_minor": 100, "currency": "cny"}, "channels": ["web", "web"]})),
        )
        .unwrap();
        assert_eq!(values["met_at"], "2026-11-23T08:00:00Z");
        assert_eq!(
            values["budget"],
            json!({"amount_minor": 100, "currency": "CNY"})
        );
        assert_eq!(values["channels"], json!(["web"]));
    }

    #[test]
    fn every_problem_names_its_field() {
        let defs = vec![
            def("region", FieldType::Select, &["华东"], false),
            def("score", FieldType::Integer, &[], false),
            def("vip_since", FieldType::Date, &[], true),
        ];
        let issues = apply(
            &defs,
            &Map::new(),
            &patch(json!({"region": "华南", "score": "high", "typo": 1})),
        )
        .unwrap_err();
        let found: Vec<(&str, &str)> = issues
            .iter()
            .map(|i| (i.field.as_str(), i.code.as_str()))
            .collect();
        assert!(found.contains(&("custom.region", "invalid_option")));
        assert!(found.contains(&("custom.score", "invalid_type")));
        assert!(found.contains(&("custom.typo", "unknown_field")));
        assert!(found.contains(&("custom.vip_since", "required")));
    }

    #[test]
    fn null_clears_and_untouched_values_stay() {
        let defs = vec![
            def("a", FieldType::Text, &[], false),
            def("b", FieldType::Text, &[], false),
        ];
        let current = patch(json!({"a": "x", "b": "y"}));
        let values = apply(&defs, &current, &patch(json!({"a": null}))).unwrap();
        assert_eq!(Value::Object(values), json!({"b": "y"}));
    }

    #[test]
    fn keys_and_options() {
        assert!(key("region_2").is_ok());
        assert!(
            key("Region").is_err() && key("2x").is_err() && key("").is_err() && key("a-b").is_err()
        );
        assert!(options(FieldType::Select, &[]).is_err());
        assert!(options(FieldType::Select, &["a".into(), "a".into()]).is_err());
        assert!(options(FieldType::Text, &["a".into()]).is_err());
    }

    #[test]
    fn over_long_lists_are_refused_before_their_items_are_read() {
        // 201 options, all blank: the count is what is refused, not the first blank.
        let blank = vec![String::new(); MAX_OPTIONS + 1];
        assert_eq!(
            options(FieldType::Select, &blank).unwrap_err(),
            format!("a select field needs 1 to {MAX_OPTIONS} options")
        );
        let defs = vec![def("channels", FieldType::MultiSelect, &["web"], false)];
        let (code, _) = normalize(&defs[0], &json!(vec!["nope"; MAX_OPTIONS + 1])).unwrap_err();
        assert_eq!(code, "too_many");
        let many: Map<String, Value> = (0..=MAX_FIELDS_PER_OBJECT)
            .map(|i| (format!("k{i}"), json!(1)))
            .collect();
        let issues = apply(&defs, &Map::new(), &many).unwrap_err();
        assert_eq!(
            (
                issues.len(),
                issues[0].field.as_str(),
                issues[0].code.as_str()
            ),
            (1, "custom", "too_many")
        );
    }
}
