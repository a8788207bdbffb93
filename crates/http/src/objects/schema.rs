//! The JSON schemas of an engine object's records, inputs and filter parameters, read from
//! its declaration (see [`super::document`]).

use rapport_domain::kit::record::writable;
use rapport_domain::kit::{FieldKind, FieldSpec, ObjectSpec};
use serde_json::{Map, Value, json};

/// A field's value schema (without null), with what the declaration says of it.
fn value_schema(field: &FieldSpec) -> Value {
    let mut schema = kind_schema(field);
    let mut about: Vec<String> = schema
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .into_iter()
        .collect();
    about.extend(field.about.map(str::to_owned));
    if field.computed {
        about.push(
            "Computed by Rapport; a value sent must agree with it (422 `mismatch`).".to_owned(),
        );
    }
    if field.unique {
        about.push("Unique among the organization's live records.".to_owned());
    }
    if !about.is_empty() {
        schema["description"] = Value::from(about.join(" "));
    }
    schema
}

/// The schema of a field's kind.
fn kind_schema(field: &FieldSpec) -> Value {
    match field.kind {
        // Blank text is no value: a required field must have something.
        FieldKind::Text { max_chars } if field.required => {
            json!({"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": "\\S"})
        }
        FieldKind::Text { max_chars } => json!({"type": "string", "maxLength": max_chars}),
        FieldKind::Url => json!({"type": "string", "format": "uri", "maxLength": 2048}),
        FieldKind::Domain => json!({"type": "string", "example": "acme.example"}),
        FieldKind::Currency => {
            json!({"type": "string", "pattern": "^[A-Za-z]{3}$", "example": "CNY"})
        }
        FieldKind::Country => {
            json!({"type": "string", "pattern": "^[A-Za-z]{2}$", "example": "CN"})
        }
        FieldKind::Enum(options) => json!({"type": "string", "enum": options}),
        FieldKind::Integer { min, max } => {
            json!({"type": "integer", "format": "int64", "minimum": min, "maximum": max})
        }
        FieldKind::Money => json!({"type": "integer", "format": "int64", "minimum": 0,
        "description": match field.requires {
            Some(currency) => format!("Minor units of `{currency}`, which it requires."),
            None => "Minor units of the currency.".to_owned(),
        }}),
        FieldKind::Boolean => json!({"type": "boolean"}),
        FieldKind::Date => json!({"type": "string", "format": "date"}),
        FieldKind::Timestamp => json!({"type": "string", "format": "date-time"}),
        FieldKind::Reference(_) | FieldKind::Id => json!({"type": "string", "format": "uuid"}),
        FieldKind::Tags => json!({"type": "array", "items": {"type": "string"}, "maxItems": 50}),
        FieldKind::Phone => json!({"type": "string", "maxLength": 64}),
        FieldKind::Email => json!({"type": "string", "format": "email", "maxLength": 254}),
        FieldKind::Emails => json!({"type": "array", "maxItems": 20,
            "items": {"type": "string", "format": "email", "maxLength": 254}}),
        FieldKind::Phones => json!({"type": "array", "maxItems": 20, "items": {
        "type": "object", "required": ["number"], "additionalProperties": false, "properties": {
            "number": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "\\S", "example": "+86 138 0013 8000"},
            "kind": {"type": "string", "enum": rapport_domain::values::PhoneKind::NAMES, "default": "other"},
            "e164": {"type": ["string", "null"], "readOnly": true, "description": "E.164, null when the number cannot be read."},
        }}}),
        FieldKind::Locale => json!({"type": "string", "maxLength": 35,
            "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", "example": "zh-CN"}),
        FieldKind::TimeZone => json!({"type": "string", "maxLength": 64,
            "pattern": "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$", "example": "Asia/Shanghai"}),
        FieldKind::Consent => {
            let channel = json!({"type": "object", "required": ["status"], "additionalProperties": false, "properties": {
                "status": {"type": "string", "enum": rapport_domain::values::ConsentStatus::NAMES},
                "changed_at": {"type": ["string", "null"], "format": "date-time",
                    "description": "When the customer gave or withdrew it; default: the time of the write that changes the status."},
            }});
            json!({"type": "object", "additionalProperties": false,
                "description": "Per channel; a write changes the channels it names.",
                "properties": {"email": channel, "sms": channel, "phone": channel}})
        }
        FieldKind::Address => {
            let line = json!({"type": ["string", "null"], "maxLength": 200});
            json!({"type": "object", "additionalProperties": false,
                "description": "A merge patch changes the lines it names; null clears a line, or the whole address.",
                "properties": {
                "street": line, "city": line, "region": line, "postal_code": line,
                "country": {"type": ["string", "null"], "pattern": "^[A-Za-z]{2}$", "example": "CN"},
            }})
        }
        FieldKind::Lines(line_fields) => {
            let mut properties = Map::new();
            // A field Rapport sets that is also another name of a reference (a line's `sku`)
            // is written too.
            let also_written = |name: &str| {
                line_fields
                    .iter()
                    .any(|f| f.also_by.iter().any(|o| o == name))
            };
            for line_field in line_fields {
                let mut schema = value_schema(line_field);
                if also_written(&line_field.name) {
                    let about = format!(
                        "{} A write may name the line's {} by it instead.",
                        schema["description"].as_str().unwrap_or_default(),
                        rapport_domain::kit::record::also_by(line_fields, &line_field.name)
                            .map_or("record".to_owned(), |f| format!("`{}`", f.name)),
                    );
                    schema["description"] = Value::from(about.trim().to_owned());
                } else if line_field.read_only {
                    schema["readOnly"] = json!(true);
                }
                if let Some(default) = line_field.default.and_then(|d| d.constant()) {
                    schema["default"] = default;
                }
                properties.insert(line_field.name.to_string(), schema);
                for other in line_field.also_by.iter() {
                    if !line_fields.iter().any(|f| f.name == *other) {
                        properties.insert(other.to_string(), also_by_schema(line_field, other));
                    }
                }
            }
            let required: Vec<&str> = line_fields
                .iter()
                .filter(|f| f.required && f.also_by.is_empty())
                .map(|f| f.name.as_ref())
                .collect();
            json!({"type": "array", "minItems": 1, "maxItems": rapport_domain::kit::MAX_LINES,
                "items": {"type": "object", "properties": properties, "required": required}})
        }
        _ => json!({}),
    }
}

/// The schema of another name a write may give a reference by (`contact_email`).
fn also_by_schema(field: &FieldSpec, name: &str) -> Value {
    let FieldKind::Reference(target) = field.kind else {
        return json!({"type": "string"});
    };
    json!({"type": "string", "minLength": 1, "maxLength": 255, "writeOnly": true,
    "description": format!(
        "Sets `{}` to the live {target} whose {} this is.",
        field.name,
        field.also_by_column(name)
    )})
}

/// The schema of a filter parameter: any value of the field's type (a longer text than the
/// field holds matches nothing, and is no error).
pub(super) fn filter_schema(kind: FieldKind) -> Value {
    match kind {
        FieldKind::Boolean => json!({"type": "boolean"}),
        FieldKind::Integer { .. } | FieldKind::Money => {
            json!({"type": "integer", "format": "int64"})
        }
        FieldKind::Enum(options) => json!({"type": "string", "enum": options}),
        FieldKind::Reference(_) => json!({"type": "string", "format": "uuid"}),
        _ => json!({"type": "string"}),
    }
}

/// The same schema, or null.
fn nullable(mut schema: Value) -> Value {
    if let Some(kind) = schema.get("type").cloned()
        && kind.is_string()
        && kind != "array"
    {
        schema["type"] = json!([kind, "null"]);
    }
    schema
}

pub(super) fn input_schema(spec: &ObjectSpec, create: bool) -> Value {
    let mut properties = Map::new();
    for field in writable(spec) {
        properties.insert(field.name.to_string(), input_field(field));
        for other in field.also_by.iter() {
            properties.insert(other.to_string(), also_by_schema(field, other));
        }
    }
    if spec.capabilities.custom_fields {
        properties.insert(
            "custom".into(),
            json!({"type": "object", "description": "Custom field values by key, merged into the record's."}),
        );
    }
    let required: Vec<&str> = writable(spec)
        .filter(|field| create && field.required)
        .map(|field| field.name.as_ref())
        .collect();
    let about = if create {
        format!("A {} to create.", spec.object)
    } else {
        format!(
            "A JSON merge patch of a {}: the fields it names change, null clears.",
            spec.object
        )
    };
    let mut schema = json!({
        "type": "object", "description": about, "properties": properties,
        "additionalProperties": false,
    });
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// A field's schema in a create or patch: what it takes, and what null does.
fn input_field(field: &FieldSpec) -> Value {
    let mut schema = if field.required {
        value_schema(field)
    } else {
        nullable(value_schema(field))
    };
    if let Some(default) = field.default {
        let about = match default.constant() {
            Some(value) => {
                schema["default"] = value.clone();
                format!("Default {value}; null sets the default.")
            }
            None => "Default: the time of the write; null sets it.".to_owned(),
        };
        schema["description"] = match schema.get("description").and_then(Value::as_str) {
            Some(text) => Value::from(format!("{text} {about}")),
            None => Value::from(about),
        };
    }
    schema
}

pub(super) fn body_schema(spec: &ObjectSpec) -> Value {
    let mut properties = Map::new();
    properties.insert("id".into(), json!({"type": "string", "format": "uuid"}));
    let mut required = vec!["id".to_owned()];
    for field in rapport_domain::kit::record::stored(spec) {
        let schema = match field.kind {
            FieldKind::Tags => value_schema(field),
            _ if field.required || field.default.is_some() || field.computed => value_schema(field),
            _ => nullable(value_schema(field)),
        };
        properties.insert(field.name.to_string(), schema);
        required.push(field.name.to_string());
    }
    if spec.capabilities.custom_fields {
        properties.insert("custom".into(), json!({"type": "object"}));
        required.push("custom".into());
    }
    for (name, schema) in [
        ("version", json!({"type": "integer", "format": "int64"})),
        (
            "created_at",
            json!({"type": "string", "format": "date-time"}),
        ),
        (
            "updated_at",
            json!({"type": "string", "format": "date-time"}),
        ),
        (
            "created_by",
            json!({"type": ["string", "null"], "format": "uuid"}),
        ),
        (
            "deleted_at",
            json!({"type": ["string", "null"], "format": "date-time"}),
        ),
    ] {
        properties.insert(name.into(), schema);
        required.push(name.into());
    }
    json!({"type": "object", "description": spec.about, "properties": properties, "required": required})
}
