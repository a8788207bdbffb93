//! The list parameters of an engine object, read from its declaration: paging, `sort`, `q`,
//! `tag` (for objects with tags), the created and updated windows, `deleted`, and an equality
//! filter per filterable field (`?category=tea&active=true`). Anything else is a 422
//! `unknown_field`, as for every other list.

use chrono::{DateTime, Utc};
use rapport_domain::kit::{FieldKind, ObjectSpec};
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

/// A filter parameter's text as its field's value.
fn filter_value(kind: FieldKind, text: &str) -> Result<Value, &'static str> {
    match kind {
        FieldKind::Boolean => text
            .parse::<bool>()
            .map(Value::from)
            .map_err(|_| "must be true or false"),
        FieldKind::Integer { .. } | FieldKind::Money => text
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "must be a whole number"),
        _ => Ok(Value::from(text)),
    }
}

/// The list request a query string asks for.
pub fn request(spec: &ObjectSpec, query: &str) -> Result<ListRequest, ApiError> {
    let mut rest = form_urlencoded::Serializer::new(String::new());
    let mut filters = Vec::new();
    let mut errors = Vec::new();
    for (key, text) in form_urlencoded::parse(query.as_bytes()) {
        match spec.field(&key).filter(|field| field.filterable) {
            Some(field) => match filter_value(field.kind, &text) {
                Ok(value) => filters.push(RecordListParams::eq(&key, value)),
                Err(message) => errors.push(FieldError::new(&*key, "invalid_value", message)),
            },
            None => {
                rest.append_pair(&key, &text);
            }
        }
    }
    let query = parse_list::<Common>(&rest.finish())?;
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
