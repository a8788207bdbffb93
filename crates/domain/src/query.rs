//! The query language of lists and searches: a filter tree (`and`/`or`/`not` over conditions
//! with `eq neq lt lte gt gte in nin contains starts_with is_null between`), sort keys, and
//! the field catalog each object declares. Parsing checks structure and limits; `resolve`
//! checks fields, operators and value types against the catalog and custom fields. Every
//! problem names its place (`filter.and[1].value`).

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::custom_field::{CustomFieldDef, FieldType};
use crate::error::FieldIssue;
use crate::page::PageRequest;

pub const MAX_DEPTH: usize = 8;
pub const MAX_CONDITIONS: usize = 50;
pub const MAX_IN_VALUES: usize = 100;
pub const MAX_SORT_KEYS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Neq,
    Lt,
    Lte,
    Gt,
    Gte,
    In,
    Nin,
    Contains,
    StartsWith,
    IsNull,
    Between,
}

impl Op {
    pub const NAMES: &'static str =
        "eq, neq, lt, lte, gt, gte, in, nin, contains, starts_with, is_null, between";

    pub fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "eq" => Op::Eq,
            "neq" => Op::Neq,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "in" => Op::In,
            "nin" => Op::Nin,
            "contains" => Op::Contains,
            "starts_with" => Op::StartsWith,
            "is_null" => Op::IsNull,
            "between" => Op::Between,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Neq => "neq",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::In => "in",
            Op::Nin => "nin",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::IsNull => "is_null",
            Op::Between => "between",
        }
    }
}

/// A field as written in a filter or sort: `name`, `custom.region`, `company.industry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldPath {
    Standard(String),
    Custom(String),
    Related { relation: String, field: String },
}

impl FieldPath {
    pub fn parse(text: &str) -> FieldPath {
        if let Some(key) = text.strip_prefix("custom.") {
            return FieldPath::Custom(key.to_owned());
        }
        match text.split_once('.') {
            // `address.country` is a standard field of its own object.
            Some(("address", _)) => FieldPath::Standard(text.to_owned()),
            Some((relation, field)) => FieldPath::Related {
                relation: relation.to_owned(),
                field: field.to_owned(),
            },
            None => FieldPath::Standard(text.to_owned()),
        }
    }

    pub fn text(&self) -> String {
        match self {
            FieldPath::Standard(name) => name.clone(),
            FieldPath::Custom(key) => format!("custom.{key}"),
            FieldPath::Related { relation, field } => format!("{relation}.{field}"),
        }
    }
}

/// A condition as parsed, before it is checked against a catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct RawCondition {
    /// Where it sits in the request (`filter.and[0]`).
    pub at: String,
    pub field: FieldPath,
    pub op: Op,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node<C> {
    And(Vec<Node<C>>),
    Or(Vec<Node<C>>),
    Not(Box<Node<C>>),
    Condition(C),
}

pub type RawFilter = Node<RawCondition>;
pub type Filter = Node<Condition>;

/// Parses a filter tree from JSON; `at` is the path of `value` in the request.
pub fn parse_filter(value: &Value, at: &str) -> Result<RawFilter, Vec<FieldIssue>> {
    let mut count = 0;
    let mut issues = Vec::new();
    let node = parse_node(value, at, 1, &mut count, &mut issues);
    if count > MAX_CONDITIONS {
        issues.push(FieldIssue::new(
            at,
            "too_many_conditions",
            format!("has {count} conditions; at most {MAX_CONDITIONS}"),
        ));
    }
    match node {
        Some(node) if issues.is_empty() => Ok(node),
        _ => Err(issues),
    }
}

fn parse_node(
    value: &Value,
    at: &str,
    depth: usize,
    count: &mut usize,
    issues: &mut Vec<FieldIssue>,
) -> Option<RawFilter> {
    // Past the limit the answer is known; the rest of the tree is not read.
    if *count > MAX_CONDITIONS {
        return None;
    }
    if depth > MAX_DEPTH {
        issues.push(FieldIssue::new(
            at,
            "too_deep",
            format!("filters nest at most {MAX_DEPTH} levels"),
        ));
        return None;
    }
    let Some(object) = value.as_object() else {
        issues.push(FieldIssue::new(
            at,
            "invalid_type",
            "must be an object: {\"and\": […]}, {\"or\": […]}, {\"not\": …} or a condition",
        ));
        return None;
    };
    let group = |key: &str,
                 issues: &mut Vec<FieldIssue>,
                 count: &mut usize|
     -> Option<Vec<RawFilter>> {
        let path = format!("{at}.{key}");
        let Some(items) = object.get(key).and_then(Value::as_array) else {
            issues.push(FieldIssue::new(
                &path,
                "invalid_type",
                "must be an array of filters",
            ));
            return None;
        };
        if items.is_empty() {
            issues.push(FieldIssue::new(
                &path,
                "invalid_value",
                "must hold at least one filter",
            ));
            return None;
        }
        // Each item holds at least one condition: a longer group is refused before any item
        // is read.
        if items.len() > MAX_CONDITIONS {
            issues.push(FieldIssue::new(
                at,
                "too_many_conditions",
                format!(
                    "has {} filters; a filter has at most {MAX_CONDITIONS} conditions",
                    items.len()
                ),
            ));
            return None;
        }
        let nodes: Vec<Option<RawFilter>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_node(item, &format!("{path}[{i}]"), depth + 1, count, issues))
            .collect();
        nodes.into_iter().collect()
    };
    if object.contains_key("and") || object.contains_key("or") || object.contains_key("not") {
        if object.len() != 1 {
            issues.push(FieldIssue::new(
                at,
                "invalid_value",
                "a group has exactly one key: and, or or not",
            ));
            return None;
        }
        if object.contains_key("and") {
            return group("and", issues, count).map(Node::And);
        }
        if object.contains_key("or") {
            return group("or", issues, count).map(Node::Or);
        }
        let inner = object.get("not")?;
        return parse_node(inner, &format!("{at}.not"), depth + 1, count, issues)
            .map(|n| Node::Not(Box::new(n)));
    }

    *count += 1;
    for key in object.keys() {
        if !matches!(key.as_str(), "field" | "op" | "value") {
            issues.push(FieldIssue::new(
                format!("{at}.{key}"),
                "unknown_field",
                "a condition has field, op and value (or is a group: and, or, not)",
            ));
        }
    }
    let field = match object.get("field").and_then(Value::as_str) {
        Some(field) if !field.is_empty() => Some(FieldPath::parse(field)),
        _ => {
            issues.push(FieldIssue::new(
                format!("{at}.field"),
                "required",
                "must name a field",
            ));
            None
        }
    };
    let op = match object.get("op").and_then(Value::as_str) {
        Some(text) => match Op::parse(text) {
            Some(op) => Some(op),
            None => {
                issues.push(FieldIssue::new(
                    format!("{at}.op"),
                    "invalid_value",
                    format!("`{text}` is not an operator; use one of {}", Op::NAMES),
                ));
                None
            }
        },
        None => {
            issues.push(FieldIssue::new(
                format!("{at}.op"),
                "required",
                format!("must be one of {}", Op::NAMES),
            ));
            None
        }
    };
    let value = object.get("value").cloned().unwrap_or(Value::Null);
    Some(Node::Condition(RawCondition {
        at: at.to_owned(),
        field: field?,
        op: op?,
        value,
    }))
}

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
                    let known: Vec<&str> = self.fields.iter().map(|f| f.name).collect();
                    format!(
                        "`{name}` is not a field; known: {}, custom.<key>",
                        known.join(", ")
                    )
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

fn ops_for(kind: FieldKind) -> &'static [Op] {
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

/// One key of a sort.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub target: Target,
    pub descending: bool,
}

/// Parses `-updated_at,name` (or the `sort` array of a search) against the catalog; only
/// sortable fields and custom fields of scalar types are accepted.
pub fn parse_sort(
    keys: &[(String, bool)],
    catalog: &Catalog<'_>,
    at: &str,
) -> Result<Vec<SortKey>, Vec<FieldIssue>> {
    let mut issues = Vec::new();
    if keys.len() > MAX_SORT_KEYS {
        issues.push(FieldIssue::new(
            at,
            "invalid_value",
            format!("at most {MAX_SORT_KEYS} sort keys"),
        ));
        return Err(issues);
    }
    let mut out = Vec::new();
    for (field, descending) in keys {
        let path = FieldPath::parse(field);
        let sortable = match catalog.target(&path) {
            Ok(Target::Standard(info)) if info.sortable => Some(Target::Standard(info)),
            Ok(Target::Custom { key, kind }) if !matches!(kind, FieldKind::Tags) => {
                Some(Target::Custom { key, kind })
            }
            _ => None,
        };
        match sortable {
            Some(target) => out.push(SortKey {
                target,
                descending: *descending,
            }),
            None => {
                let known: Vec<&str> = catalog
                    .fields
                    .iter()
                    .filter(|f| f.sortable)
                    .map(|f| f.name)
                    .collect();
                issues.push(FieldIssue::new(
                    at,
                    "invalid_value",
                    format!(
                        "cannot sort by `{field}`; sort by {} or custom.<key>",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(issues)
    }
}

/// `-updated_at,name` → [("updated_at", true), ("name", false)].
pub fn split_sort_param(text: &str) -> Vec<(String, bool)> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('-') {
            Some(field) => (field.to_owned(), true),
            None => (s.strip_prefix('+').unwrap_or(s).to_owned(), false),
        })
        .collect()
}

/// The canonical text of a sort, which a cursor remembers.
pub fn sort_signature(keys: &[SortKey]) -> String {
    keys.iter()
        .map(|k| {
            let name = match &k.target {
                Target::Standard(info) => info.name.to_owned(),
                Target::Custom { key, .. } => format!("custom.{key}"),
                Target::Related { relation, field } => format!("{relation}.{}", field.name),
            };
            if k.descending {
                format!("-{name}")
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A list or search request for one object.
#[derive(Debug, Clone)]
pub struct RecordQuery {
    pub filter: Option<Filter>,
    /// Substring search over names, emails, phones and related names.
    pub q: Option<String>,
    pub sort: Vec<SortKey>,
    pub page: PageRequest,
    /// List the deleted records (the trash) instead of the live ones.
    pub deleted: bool,
}

#[cfg(test)]
pub(crate) mod properties;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const FIELDS: &[FieldInfo] = &[
        FieldInfo {
            name: "name",
            kind: FieldKind::Text,
            sortable: true,
        },
        FieldInfo {
            name: "owner_id",
            kind: FieldKind::Uuid,
            sortable: false,
        },
        FieldInfo {
            name: "created_at",
            kind: FieldKind::Timestamp,
            sortable: true,
        },
        FieldInfo {
            name: "tier",
            kind: FieldKind::Enum(&["a", "b", "c"]),
            sortable: false,
        },
    ];
    const RELATIONS: &[RelationInfo] = &[RelationInfo {
        name: "company",
        fields: FIELDS,
    }];

    fn catalog() -> Catalog<'static> {
        Catalog {
            fields: FIELDS,
            relations: RELATIONS,
            custom: &[],
        }
    }

    fn issues(filter: Value) -> Vec<(String, String)> {
        let issues = match parse_filter(&filter, "filter") {
            Err(issues) => issues,
            Ok(raw) => resolve(&raw, &catalog()).err().unwrap_or_default(),
        };
        issues.into_iter().map(|i| (i.field, i.code)).collect()
    }

    #[test]
    fn a_valid_tree_resolves() {
        let raw = parse_filter(
            &json!({"and": [{"field": "name", "op": "contains", "value": "王"},
                            {"not": {"field": "company.tier", "op": "in", "value": ["a", "b"]}}]}),
            "filter",
        )
        .unwrap();
        let filter = resolve(&raw, &catalog()).unwrap();
        let Node::And(items) = filter else { panic!() };
        assert_eq!(items.len(), 2);
    }

    #[test]
    fn mistakes_are_named_by_path() {
        assert_eq!(
            issues(json!({"field": "nmae", "op": "eq", "value": "x"})),
            [("filter.field".into(), "unknown_field".into())]
        );
        assert_eq!(
            issues(json!({"field": "name", "op": "like", "value": "x"})),
            [("filter.op".into(), "invalid_value".into())]
        );
        assert_eq!(
            issues(json!({"field": "owner_id", "op": "contains", "value": "x"})),
            [("filter.op".into(), "invalid_value".into())]
        );
        assert_eq!(
            issues(json!({"and": [{"field": "created_at", "op": "gt", "value": 5}]})),
            [("filter.and[0].value".into(), "invalid_value".into())]
        );
        assert_eq!(
            issues(json!({"field": "tier", "op": "eq", "value": "z"})),
            [("filter.value".into(), "invalid_value".into())]
        );
        assert_eq!(
            issues(json!({"or": []})),
            [("filter.or".into(), "invalid_value".into())]
        );
        assert_eq!(
            issues(json!({"and": [], "or": []})),
            [("filter".into(), "invalid_value".into())]
        );
        assert_eq!(
            issues(json!([1])),
            [("filter".into(), "invalid_type".into())]
        );
        assert_eq!(
            issues(json!({"field": "custom.nope", "op": "eq", "value": 1})),
            [("filter.field".into(), "unknown_field".into())]
        );
        assert_eq!(
            issues(json!({"field": "deal.name", "op": "eq", "value": 1})),
            [("filter.field".into(), "unknown_field".into())]
        );
    }

    #[test]
    fn dotted_fields_of_the_object_itself_are_not_relations() {
        const DOTTED: &[FieldInfo] = &[FieldInfo {
            name: "consent.email",
            kind: FieldKind::Enum(&["opted_in", "opted_out", "unknown"]),
            sortable: false,
        }];
        let catalog = Catalog {
            fields: DOTTED,
            relations: RELATIONS,
            custom: &[],
        };
        let raw = parse_filter(
            &json!({"field": "consent.email", "op": "eq", "value": "opted_out"}),
            "filter",
        )
        .unwrap();
        let Node::Condition(condition) = resolve(&raw, &catalog).unwrap() else {
            panic!()
        };
        assert_eq!(condition.target, Target::Standard(DOTTED[0]));
    }

    #[test]
    fn depth_and_size_are_limited() {
        let mut deep = json!({"field": "name", "op": "eq", "value": "x"});
        for _ in 0..8 {
            deep = json!({"not": deep});
        }
        assert!(issues(deep).iter().any(|(_, code)| code == "too_deep"));
        let many: Vec<Value> = (0..51)
            .map(|_| json!({"field": "name", "op": "eq", "value": "x"}))
            .collect();
        assert!(
            issues(json!({"or": many}))
                .iter()
                .any(|(_, code)| code == "too_many_conditions")
        );
    }

    #[test]
    fn an_oversized_filter_is_refused_once_without_reading_the_rest() {
        // 10,000 conditions in one group: one issue about the group, none about its items.
        let bad = json!({"field": "name", "op": "like", "value": "x"});
        let found = issues(json!({"and": vec![bad.clone(); 10_000]}));
        assert_eq!(
            found,
            [("filter".to_owned(), "too_many_conditions".to_owned())]
        );
        // 60 groups of one bad condition each: the count stops the walk after the limit.
        let groups: Vec<Value> = (0..30)
            .map(|_| json!({"or": [bad.clone(), bad.clone()]}))
            .collect();
        let found = issues(json!({"and": [{"and": groups}]}));
        assert!(found.len() <= MAX_CONDITIONS + 2, "{} issues", found.len());
        assert!(found.iter().any(|(_, code)| code == "too_many_conditions"));
    }

    #[test]
    fn sorts_parse_and_sign() {
        let keys = parse_sort(&split_sort_param("-created_at,name"), &catalog(), "sort").unwrap();
        assert_eq!(sort_signature(&keys), "-created_at,name");
        assert!(parse_sort(&split_sort_param("owner_id"), &catalog(), "sort").is_err());
        assert!(parse_sort(&split_sort_param("a,b,c,d"), &catalog(), "sort").is_err());
    }
}
