//! The list parameters of an engine object, read from its declaration: paging, `sort`, `q`,
//! `tag` (for objects with tags), the created and updated windows, `deleted`, and an equality
//! filter per filterable field (`?category=tea&active=true`). Anything else is a 422
//! `unknown_field`, as for every other list.

use chrono::{DateTime, Utc};
use rapport_domain::kit::{FieldKind, FieldSpec, ObjectSpec};
use rapport_domain::query::Op;
use rapport_domain::store::ListRequest;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ApiError, FieldError};
use crate::list::parse_list;
use crate::routes::records::RecordListParams;

/// The list parameters every engine object takes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Common {
    sort: Option<String>,
    q: Option<String>,
    tag: Option<String>,
    created_after: Option<DateTime<Utc>>,
    created_before: Option<DateTime<Utc>>,
    updated_after: Option<DateTime<Utc>>,
    updated_before: Option<DateTime<Utc>>,
    deleted: Option<bool>,
}

/// Whether lists of this object take `tag`.
pub fn has_tags(spec: &ObjectSpec) -> bool {
    spec.fields
        .iter()
        .any(|field| field.kind == FieldKind::Tags)
}

/// The parameters of a filterable time field's window (`ordered_after` and `ordered_before`
/// for `ordered_at`); None for a field filtered by equality.
pub fn window(field: &FieldSpec) -> Option<(String, String)> {
    if !matches!(field.kind, FieldKind::Timestamp | FieldKind::Date) {
        return None;
    }
    let base = field.name.strip_suffix("_at").unwrap_or(&field.name);
    Some((format!("{base}_after"), format!("{base}_before")))
}

/// A filter parameter's text as its field's value.
fn filter_value(kind: FieldKind, text: &str) -> Result<Value, String> {
    match kind {
        FieldKind::Reference(object) => uuid::Uuid::parse_str(text)
            .map(|id| Value::from(id.to_string()))
            .map_err(|_| format!("must be a {object} id")),
        FieldKind::Enum(options) if !options.contains(&text) => {
            Err(format!("must be one of {}", options.join(", ")))
        }
        FieldKind::Timestamp => DateTime::parse_from_rfc3339(text)
            .map(|at| Value::from(rapport_domain::values::timestamp(&at.with_timezone(&Utc))))
            .map_err(|_| "must be an RFC 3339 time such as 2026-12-31T09:00:00Z".to_owned()),
        FieldKind::Boolean => text
            .parse::<bool>()
            .map(Value::from)
            .map_err(|_| "must be true or false".to_owned()),
        FieldKind::Integer { .. } | FieldKind::Money => text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "must be a whole number".to_owned()),
        _ => Ok(Value::from(text)),
    }
}

/// The list request a query string asks for.
pub fn request(spec: &ObjectSpec, query: &str) -> Result<ListRequest, ApiError> {
    request_with(spec, query, Vec::new())
}

/// The list request of the records whose reference `field` names `parent`.
pub fn request_under(
    spec: &ObjectSpec,
    query: &str,
    field: &str,
    parent: uuid::Uuid,
) -> Result<ListRequest, ApiError> {
    request_with(
        spec,
        query,
        vec![RecordListParams::eq(field, Value::from(parent.to_string()))],
    )
}

fn request_with(
    spec: &ObjectSpec,
    query: &str,
    mut filters: Vec<rapport_domain::query::RawFilter>,
) -> Result<ListRequest, ApiError> {
    let mut rest = form_urlencoded::Serializer::new(String::new());
    let mut errors = Vec::new();
    for (key, text) in form_urlencoded::parse(query.as_bytes()) {
        let filter = spec
            .fields
            .iter()
            .filter(|f| f.filterable)
            .find_map(|field| match window(field) {
                Some((after, _)) if after == key => Some((field, Op::Gte)),
                Some((_, before)) if before == key => Some((field, Op::Lt)),
                Some(_) => None,
                None => (field.name == key).then_some((field, Op::Eq)),
            });
        match filter {
            Some((field, op)) => match filter_value(field.kind, &text) {
                Ok(value) => filters.push(RecordListParams::condition(&field.name, op, value)),
                Err(message) => errors.push(FieldError::new(&*key, "invalid_value", message)),
            },
            None => {
                rest.append_pair(&key, &text);
            }
        }
    }
    let query = parse_list::<Common>(&rest.finish()).map_err(|error| {
        // The object's own filter parameters are options too.
        let own: Vec<String> = spec
            .fields
            .iter()
            .filter(|f| f.filterable)
            .flat_map(|field| match window(field) {
                Some((after, before)) => vec![after, before],
                None => vec![field.name.to_string()],
            })
            .collect();
        let errors = error
            .errors()
            .iter()
            .cloned()
            .map(|mut e| {
                if e.code == "unknown_field" {
                    for name in &own {
                        e.message.push_str(&format!(", `{name}`"));
                    }
                }
                e
            })
            .collect();
        ApiError::validation(errors)
    })?;
    let common = &query.filter;
    if common.tag.is_some() && !has_tags(spec) {
        errors.push(FieldError::new(
            "tag",
            "unknown_field",
            format!("{} have no tags", spec.plural),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(RecordListParams {
        sort: common.sort.clone(),
        q: common.q.clone(),
        tag: common.tag.clone(),
        created_after: common.created_after,
        created_before: common.created_before,
        updated_after: common.updated_after,
        updated_before: common.updated_before,
        deleted: common.deleted,
        ..RecordListParams::default()
    }
    .request(&query, filters))
}
