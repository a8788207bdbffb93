//! What the record routes share: text and tag parsing, the list parameters every object
//! takes, the search body, history, and the merge request.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rapport_domain::custom_field::MAX_FIELDS_PER_OBJECT;
use rapport_domain::page::{Cursor, MAX_LIMIT, PageRequest};
use rapport_domain::query::{FieldPath, Node, Op, RawCondition, RawFilter, parse_filter};
use rapport_domain::record::{Change, EventAction, RecordEvent};
use rapport_domain::store::ListRequest;
use rapport_domain::values;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::list::ListQuery;
use crate::validate::Check;

/// Longest names, titles and similar single-line texts.
pub const MAX_NAME: usize = 200;

/// An optional single-line text of at most `max` characters; empty means none.
pub fn optional_text(
    check: &mut Check,
    field: &str,
    value: &Option<String>,
    max: usize,
) -> Option<String> {
    value
        .as_deref()
        .and_then(|text| check.field(field, values::text(text, max)).flatten())
}

/// A nullable merge-patch text field.
pub fn patch_text(
    check: &mut Check,
    field: &str,
    value: &Option<Option<String>>,
    max: usize,
) -> Option<Option<String>> {
    value.as_ref().map(|v| {
        v.as_deref()
            .and_then(|text| check.field(field, values::text(text, max)).flatten())
    })
}

/// A nullable whole number that must not be negative.
pub fn non_negative(
    check: &mut Check,
    field: &str,
    value: Option<Option<i64>>,
) -> Option<Option<i64>> {
    if let Some(Some(n)) = value
        && n < 0
    {
        check.push(FieldError::new(
            field,
            "out_of_range",
            "must not be negative",
        ));
    }
    value
}

pub fn parse_tags(check: &mut Check, tags: &[String]) -> Vec<String> {
    if !within_limit(check, "tags", tags.len(), values::MAX_TAGS, "tags") {
        return Vec::new();
    }
    check.field("tags", values::tags(tags)).unwrap_or_default()
}

/// Whether a list of `len` items is within `max`; when not, notes a `too_many` problem that
/// names the field and the limit. Every list of a body is counted so before any of its items
/// is read, so that an oversized list costs nothing but its parsing.
pub fn within_limit(check: &mut Check, field: &str, len: usize, max: usize, what: &str) -> bool {
    if len <= max {
        return true;
    }
    check.push(too_many(field, len, max, what));
    false
}

/// The problem of a list over its limit: `tags: must hold at most 50 tags (it holds 51)`.
pub fn too_many(field: &str, len: usize, max: usize, what: &str) -> FieldError {
    FieldError::new(
        field,
        "too_many",
        format!("must hold at most {max} {what} (it holds {len})"),
    )
}

/// Custom values as sent: an object whose keys are checked against the definitions by the
/// store.
pub fn custom_object(
    check: &mut Check,
    value: &Option<Value>,
) -> Option<serde_json::Map<String, Value>> {
    match value {
        None => None,
        Some(Value::Object(map)) => {
            // An object has at most this many custom fields, so more keys are refused before
            // any is looked up.
            within_limit(check, "custom", map.len(), MAX_FIELDS_PER_OBJECT, "values")
                .then(|| map.clone())
        }
        Some(Value::Null) => {
            check.push(FieldError::new(
                "custom",
                "invalid_value",
                "cannot be null; set single keys to null to clear them",
            ));
            None
        }
        Some(_) => {
            check.push(FieldError::new(
                "custom",
                "invalid_type",
                "must be an object of custom values",
            ));
            None
        }
    }
}

/// The list parameters every customer-data object takes (see `record_list_params!`).
#[derive(Debug, Default)]
pub struct RecordListParams {
    pub sort: Option<String>,
    pub q: Option<String>,
    pub owner_id: Option<Uuid>,
    pub tag: Option<String>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
    pub deleted: Option<bool>,
}

fn condition(field: &str, op: Op, value: Value) -> RawFilter {
    Node::Condition(RawCondition {
        at: field.to_owned(),
        field: FieldPath::parse(field),
        op,
        value,
    })
}

fn time(t: DateTime<Utc>) -> Value {
    Value::from(t.to_rfc3339())
}

impl RecordListParams {
    /// The list request: the common parameters as conditions, plus the object's own.
    pub fn request<F>(&self, query: &ListQuery<F>, mut extra: Vec<RawFilter>) -> ListRequest {
        if let Some(owner) = self.owner_id {
            extra.push(condition(
                "owner_id",
                Op::Eq,
                Value::from(owner.to_string()),
            ));
        }
        if let Some(tag) = &self.tag {
            extra.push(condition("tags", Op::Contains, Value::from(tag.clone())));
        }
        for (value, field, op) in [
            (self.created_after, "created_at", Op::Gte),
            (self.created_before, "created_at", Op::Lt),
            (self.updated_after, "updated_at", Op::Gte),
            (self.updated_before, "updated_at", Op::Lt),
        ] {
            if let Some(at) = value {
                extra.push(condition(field, op, time(at)));
            }
        }
        ListRequest {
            filter: (!extra.is_empty()).then_some(Node::And(extra)),
            q: self.q.clone(),
            sort: self
                .sort
                .as_deref()
                .map(rapport_domain::query::split_sort_param)
                .unwrap_or_default(),
            page: query.page.clone(),
            deleted: self.deleted.unwrap_or(false),
        }
    }

    pub fn eq(field: &str, value: Value) -> RawFilter {
        condition(field, Op::Eq, value)
    }

    pub fn condition(field: &str, op: Op, value: Value) -> RawFilter {
        condition(field, op, value)
    }
}

/// One key of a search's sort.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SortItem {
    #[schema(example = "name")]
    pub field: String,
    /// `asc` (the default) or `desc`.
    pub direction: Option<SortDirection>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortDirection {
    Asc,
    Desc,
}

/// `POST /v1/<object>/search`: a filter tree over standard fields, `custom.<key>` and fields of
/// related records, with sort and keyset paging.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "filter": {"and": [
        {"field": "custom.region", "op": "eq", "value": "华东"},
        {"field": "company.industry", "op": "in", "value": ["retail", "food"]},
        {"not": {"field": "lifecycle_stage", "op": "eq", "value": "churned"}}
    ]},
    "sort": [{"field": "name", "direction": "asc"}],
    "limit": 50,
    "cursor": null
}))]
pub struct SearchRequest {
    /// The filter tree; no filter matches every record.
    #[schema(value_type = Option<crate::schema::FilterNode>)]
    pub filter: Option<Value>,
    /// At most 3 keys.
    #[schema(max_items = 3)]
    pub sort: Option<Vec<SortItem>>,
    /// 1 to 200, default 50.
    #[schema(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[schema(min_length = 1)]
    pub cursor: Option<String>,
    /// Also a substring search, as `q` of the list (up to 200 characters, not only spaces).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub q: Option<String>,
}

impl SearchRequest {
    pub fn request(&self) -> Result<ListRequest, ApiError> {
        let mut check = Check::new();
        let filter = match &self.filter {
            Some(value) => match parse_filter(value, "filter") {
                Ok(filter) => Some(filter),
                Err(issues) => {
                    for issue in issues {
                        check.push(FieldError::new(issue.field, issue.code, issue.message));
                    }
                    None
                }
            },
            None => None,
        };
        let mut page = PageRequest::default();
        if let Some(limit) = self.limit {
            if (1..=MAX_LIMIT).contains(&limit) {
                page.limit = limit;
            } else {
                check.push(FieldError::new(
                    "limit",
                    "out_of_range",
                    format!("must be 1 to {MAX_LIMIT}"),
                ));
            }
        }
        if let Some(cursor) = &self.cursor {
            page.after = check.field("cursor", Cursor::decode(cursor).map_err(|e| e.to_string()));
        }
        let sort = self
            .sort
            .iter()
            .flatten()
            .map(|item| {
                (
                    item.field.clone(),
                    matches!(item.direction, Some(SortDirection::Desc)),
                )
            })
            .collect();
        check.finish()?;
        Ok(ListRequest {
            filter,
            q: self.q.clone(),
            sort,
            page,
            deleted: false,
        })
    }
}

/// A field's value before and after a change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeBody {
    /// The value before, any JSON value (null when there was none).
    pub old: Value,
    /// The value after, any JSON value (null when cleared).
    pub new: Value,
}

/// One entry of a record's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventBody {
    /// The organization's event sequence number.
    pub seq: i64,
    pub action: EventAction,
    /// Changed fields (`email`, `address.city`, `custom.region`) with old and new values.
    pub changes: BTreeMap<String, ChangeBody>,
    /// For `merged`: the records merged into this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged_ids: Vec<Uuid>,
    /// The user who made the change.
    pub actor_id: Option<Uuid>,
    /// The API key they used, if any.
    pub api_key_id: Option<Uuid>,
    pub occurred_at: DateTime<Utc>,
}

fn change_body(change: Change) -> ChangeBody {
    ChangeBody {
        old: change.old,
        new: change.new,
    }
}

impl From<RecordEvent> for EventBody {
    fn from(event: RecordEvent) -> Self {
        EventBody {
            seq: event.seq,
            action: event.action,
            changes: event
                .changes
                .into_iter()
                .map(|(k, c)| (k, change_body(c)))
                .collect(),
            merged_ids: event.merged_ids,
            actor_id: event.actor_id,
            api_key_id: event.api_key_id,
            occurred_at: event.occurred_at,
        }
    }
}

crate::list_envelope!(HistoryList, EventBody);

/// The changes of a merge, by field.
pub fn changes_body(changes: rapport_domain::record::Changes) -> BTreeMap<String, ChangeBody> {
    changes
        .into_iter()
        .map(|(k, c)| (k, change_body(c)))
        .collect()
}

/// `POST /v1/<object>/merge`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The record that stays.
    pub primary_id: Uuid,
    /// The records merged into it (1 to 20); they are deleted with `merged_into`.
    #[schema(min_items = 1, max_items = 20)]
    pub duplicate_ids: Vec<Uuid>,
    /// Answer what the merge would do, and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}
