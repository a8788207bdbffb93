//! The query language of lists and searches: a filter tree (`and`/`or`/`not` over conditions
//! with `eq neq lt lte gt gte in nin contains starts_with is_null between`), sort keys, and
//! the field catalog each object declares. Parsing checks structure and limits; `resolve`
//! checks fields, operators and value types against the catalog and custom fields. Every
//! problem names its place (`filter.and[1].value`).

use serde_json::Value;

use crate::error::FieldIssue;

mod resolve;
mod sort;

pub use resolve::*;
pub use sort::*;

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

#[cfg(test)]
pub(crate) mod properties;

#[cfg(test)]
mod tests;
