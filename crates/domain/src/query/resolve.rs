//! Checking a parsed filter against the fields an object offers (its catalog) and its custom
//! fields: each condition's field, operator and value type.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::{FieldPath, Filter, MAX_IN_VALUES, Node, Op, RawFilter};
use crate::custom_field::{CustomFieldDef, FieldType};
use crate::error::FieldIssue;

/// The kind of values a field holds, which decides its operators and value types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Compared case-insensitively.
    Text,
    Uuid,
    Integer,
    Number,
    Timestamp,
    Date,
    Boolean,
    /// One of a fixed list of strings.
    Enum(&'static [&'static str]),
    /// A set of strings; `contains` asks for one of them.
    Tags,
    /// A money value, compared by its amount in minor units.
    Money,
}

/// A field an object offers to filters and sorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    pub name: &'static str,
    pub kind: FieldKind,
    pub sortable: bool,
}

/// A relation an object offers to filters: `company.industry` on contacts.
#[derive(Debug, Clone, Copy)]
pub struct RelationInfo {
    pub name: &'static str,
    pub fields: &'static [FieldInfo],
}

/// A value checked against its field's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Uuid(Uuid),
    Integer(i64),
    Number(f64),
    Timestamp(DateTime<Utc>),
    Boolean(bool),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    One(Scalar),
    Many(Vec<Scalar>),
    Range(Scalar, Scalar),
    /// `is_null`: true asks for missing values, false for present ones.
    Null(bool),
}

/// Which field a checked condition is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Standard(FieldInfo),
    Custom {
        key: String,
        kind: FieldKind,
    },
    Related {
        relation: &'static str,
        field: FieldInfo,
    },
}

impl Target {
    pub fn kind(&self) -> FieldKind {
        match self {
            Target::Standard(info) | Target::Related { field: info, .. } => info.kind,
            Target::Custom { kind, .. } => *kind,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub target: Target,
    pub op: Op,
    pub operand: Operand,
}

/// What an object offers: its fields, its relations, and its custom field definitions.
#[derive(Debug, Clone, Copy)]
pub struct Catalog<'a> {
    pub fields: &'static [FieldInfo],
    pub relations: &'static [RelationInfo],
    pub custom: &'a [CustomFieldDef],
}

pub fn custom_kind(field_type: FieldType) -> FieldKind {
    match field_type {
        FieldType::Text
        | FieldType::Url
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Select => FieldKind::Text,
        FieldType::Number => FieldKind::Number,
        FieldType::Integer => FieldKind::Integer,
        FieldType::Boolean => FieldKind::Boolean,
        FieldType::Date => FieldKind::Date,
        FieldType::Datetime => FieldKind::Timestamp,
        FieldType::MultiSelect => FieldKind::Tags,
        FieldType::Money => FieldKind::Money,
    }
}

impl Catalog<'_> {
    /// The field a path names, or why it names none.
    pub fn target(&self, path: &FieldPath) -> Result<Target, String> {
        match path {
            FieldPath::Standard(name) => self
                .fields
                .iter()
                .find(|f| f.name == name)
                .map(|f| Target::Standard(*f))
                .ok_or_else(|| {
                    let mut known: Vec<String> =
                        self.fields.iter().map(|f| f.name.to_owned()).collect();
                    known.push("custom.<key>".to_owned());
                    // Relations: `company.<field>` follows a reference.
                    known.extend(self.relations.iter().map(|r| format!("{}.<field>", r.name)));
                    format!("`{name}` is not a field; known: {}", known.join(", "))
                }),
            FieldPath::Custom(key) => self
                .custom
                .iter()
                .find(|d| &d.key == key)
                .map(|d| Target::Custom {
                    key: key.clone(),
                    kind: custom_kind(d.field_type),
                })
                .ok_or_else(|| format!("`custom.{key}` is not a custom field of this object")),
            FieldPath::Related { relation, field } => {
                // A dotted field of the object itself (`consent.email`) is no relation.
                let dotted = format!("{relation}.{field}");
                if let Some(info) = self.fields.iter().find(|f| f.name == dotted) {
                    return Ok(Target::Standard(*info));
                }
                let Some(rel) = self.relations.iter().find(|r| r.name == relation) else {
                    return Err(format!(
                        "`{relation}.{field}`: `{relation}` is not a relation of this object"
                    ));
                };
                rel.fields
                    .iter()
                    .find(|f| f.name == field)
                    .map(|f| Target::Related {
                        relation: rel.name,
                        field: *f,
                    })
                    .ok_or_else(|| format!("`{relation}.{field}` is not a field of {relation}"))
            }
        }
    }
}

pub(super) fn ops_for(kind: FieldKind) -> &'static [Op] {
    use Op::*;
    match kind {
        FieldKind::Text => &[
            Eq, Neq, In, Nin, Contains, StartsWith, IsNull, Lt, Lte, Gt, Gte, Between,
        ],
        FieldKind::Uuid => &[Eq, Neq, In, Nin, IsNull],
        FieldKind::Integer
        | FieldKind::Number
        | FieldKind::Timestamp
        | FieldKind::Date
        | FieldKind::Money => &[Eq, Neq, Lt, Lte, Gt, Gte, In, Nin, Between, IsNull],
        FieldKind::Boolean => &[Eq, Neq, IsNull],
        FieldKind::Enum(_) => &[Eq, Neq, In, Nin, IsNull],
        FieldKind::Tags => &[Contains, IsNull],
    }
}

fn scalar(kind: FieldKind, value: &Value) -> Result<Scalar, String> {
    let bad = |expected: &str| format!("must be {expected}, not {value}");
    match kind {
        FieldKind::Text | FieldKind::Tags => value
            .as_str()
            .map(|s| Scalar::Text(s.to_owned()))
            .ok_or_else(|| bad("a string")),
        FieldKind::Enum(allowed) => match value.as_str() {
            Some(s) if allowed.contains(&s) => Ok(Scalar::Text(s.to_owned())),
            Some(s) => Err(format!("`{s}` is not one of {}", allowed.join(", "))),
            None => Err(bad("a string")),
        },
        FieldKind::Uuid => value
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .map(Scalar::Uuid)
            .ok_or_else(|| bad("a UUID")),
        FieldKind::Integer | FieldKind::Money => value
            .as_i64()
            .map(Scalar::Integer)
            .ok_or_else(|| bad("an integer")),
        FieldKind::Number => value
            .as_f64()
            .filter(|n| n.is_finite())
            .map(Scalar::Number)
            .ok_or_else(|| bad("a number")),
        FieldKind::Boolean => value
            .as_bool()
            .map(Scalar::Boolean)
            .ok_or_else(|| bad("true or false")),
        FieldKind::Timestamp => value
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| Scalar::Timestamp(t.with_timezone(&Utc)))
            .ok_or_else(|| bad("an RFC 3339 time such as 2026-11-23T08:00:00Z")),
        FieldKind::Date => value
            .as_str()
            .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
            .map(|d| Scalar::Text(d.format("%Y-%m-%d").to_string()))
            .ok_or_else(|| bad("a date such as 2026-11-23")),
    }
}

fn operand(kind: FieldKind, op: Op, value: &Value) -> Result<Operand, String> {
    match op {
        Op::IsNull => value
            .as_bool()
            .map(Operand::Null)
            .ok_or_else(|| "must be true or false".to_owned()),
        Op::In | Op::Nin => {
            let items = value.as_array().ok_or("must be an array of values")?;
            if items.is_empty() || items.len() > MAX_IN_VALUES {
                return Err(format!("must hold 1 to {MAX_IN_VALUES} values"));
            }
            items
                .iter()
                .map(|v| scalar(kind, v))
                .collect::<Result<Vec<_>, _>>()
                .map(Operand::Many)
        }
        Op::Between => match value.as_array().map(Vec::as_slice) {
            Some([low, high]) => Ok(Operand::Range(scalar(kind, low)?, scalar(kind, high)?)),
            _ => Err("must be an array of two values: [low, high]".into()),
        },
        Op::Contains | Op::StartsWith => match value.as_str() {
            Some(text) if !text.is_empty() => Ok(Operand::One(Scalar::Text(text.to_owned()))),
            _ => Err("must be a non-empty string".into()),
        },
        _ => scalar(kind, value).map(Operand::One),
    }
}

/// Checks a parsed filter against a catalog: every field exists, every operator suits its
/// field, every value has the field's type.
pub fn resolve(filter: &RawFilter, catalog: &Catalog<'_>) -> Result<Filter, Vec<FieldIssue>> {
    let mut issues = Vec::new();
    let resolved = resolve_node(filter, catalog, &mut issues);
    match resolved {
        Some(node) if issues.is_empty() => Ok(node),
        _ => Err(issues),
    }
}

fn resolve_node(
    node: &RawFilter,
    catalog: &Catalog<'_>,
    issues: &mut Vec<FieldIssue>,
) -> Option<Filter> {
    match node {
        Node::And(items) => items
            .iter()
            .map(|n| resolve_node(n, catalog, issues))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(Node::And),
        Node::Or(items) => items
            .iter()
            .map(|n| resolve_node(n, catalog, issues))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .map(Node::Or),
        Node::Not(inner) => resolve_node(inner, catalog, issues).map(|n| Node::Not(Box::new(n))),
        Node::Condition(raw) => {
            let target = match catalog.target(&raw.field) {
                Ok(target) => target,
                Err(message) => {
                    issues.push(FieldIssue::new(
                        format!("{}.field", raw.at),
                        "unknown_field",
                        message,
                    ));
                    return None;
                }
            };
            let kind = target.kind();
            if !ops_for(kind).contains(&raw.op) {
                let allowed: Vec<&str> = ops_for(kind).iter().map(|o| o.as_str()).collect();
                issues.push(FieldIssue::new(
                    format!("{}.op", raw.at),
                    "invalid_value",
                    format!(
                        "`{}` does not apply to {}; use {}",
                        raw.op.as_str(),
                        raw.field.text(),
                        allowed.join(", ")
                    ),
                ));
                return None;
            }
            match operand(kind, raw.op, &raw.value) {
                Ok(operand) => Some(Node::Condition(Condition {
                    target,
                    op: raw.op,
                    operand,
                })),
                Err(message) => {
                    issues.push(FieldIssue::new(
                        format!("{}.value", raw.at),
                        "invalid_value",
                        message,
                    ));
                    None
                }
            }
        }
    }
}
