//! The change feed: every committed change of the organization's records, in commit order,
//! resumable from a cursor. Webhooks deliver the same events in the same shape.

use std::collections::{BTreeMap, HashMap};

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Duration, Utc};
use rapport_domain::record::{EventAction, RecordEvent};
use rapport_domain::{Action, AuthContext, ObjectType, RecordFilter, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{Auth, check};
use crate::error::{ApiError, FieldError};
use crate::extract::Query;
use crate::objects::RecordBody;
use crate::routes::records::ChangeBody;
use crate::state::AppState;
use crate::validate::Check;

pub fn configure(config: &mut ServiceConfig) {
    config.service(list_changes);
}

/// Who made a change: the API key when one was used, else the user.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Origin {
    #[serde(rename = "type")]
    pub kind: OriginKind,
    pub id: Uuid,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OriginKind {
    ApiKey,
    User,
}

/// One committed change.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChangeEvent {
    /// This event's position; poll with `after=<cursor>` to read what follows it.
    #[schema(example = "1042")]
    pub cursor: String,
    #[schema(value_type = String, example = "contact")]
    pub object: String,
    pub id: Uuid,
    pub action: EventAction,
    /// `<object>.<action>`, the name webhooks subscribe to.
    #[schema(example = "contact.updated")]
    pub event: String,
    /// Changed fields with their old and new values.
    pub changed_fields: BTreeMap<String, ChangeBody>,
    /// For `merged`: the records merged into this one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged_ids: Vec<Uuid>,
    pub occurred_at: DateTime<Utc>,
    /// The user who made the change.
    pub actor: Option<Uuid>,
    /// The credential it came through: skip your own echoes by comparing with your API key's
    /// id.
    pub origin: Option<Origin>,
    /// The record as it is now (not as it was at the event); null once it is deleted or
    /// merged away.
    #[schema(value_type = Option<Object>)]
    pub record: Option<Value>,
}

/// A page of the feed. Unlike other lists, `next_cursor` is never null: it is where to poll
/// from next.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeFeed {
    pub data: Vec<ChangeEvent>,
    #[schema(example = "1042")]
    pub next_cursor: String,
    /// More events are waiting: poll again at once.
    pub has_more: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChangeParams {
    /// The `cursor` of the last event you processed (or a `next_cursor`); omit it to start at
    /// the oldest change kept.
    pub after: Option<String>,
    /// Events per page, 1 to 200 (default 100).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Only these objects, comma-separated singular names: `contact,company`. Default: every
    /// object you may read.
    pub objects: Option<String>,
}

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 200;

fn parse_params(
    params: &ChangeParams,
    ctx: &AuthContext,
) -> Result<(Option<i64>, u32, Vec<ObjectType>), ApiError> {
    let mut check = Check::new();
    let after = params.after.as_deref().and_then(|text| {
        let parsed = text.parse::<i64>().ok().filter(|seq| *seq >= 0);
        if parsed.is_none() {
            check.push(FieldError::new(
                "after",
                "invalid_value",
                "is not a cursor of this feed",
            ));
        }
        parsed
    });
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        check.push(FieldError::new(
            "limit",
            "out_of_range",
            format!("must be 1 to {MAX_LIMIT}"),
        ));
    }
    let mut objects = Vec::new();
    if let Some(list) = &params.objects {
        for name in list.split(',').map(str::trim) {
            match name.parse::<ObjectType>() {
                Ok(object) if rapport_domain::objects::event_objects().contains(&object) => {
                    objects.push(object)
                }
                _ => {
                    let known: Vec<&str> = rapport_domain::objects::event_objects()
                        .iter()
                        .map(|o| o.as_str())
                        .collect();
                    check.push(FieldError::new(
                        "objects",
                        "invalid_value",
                        format!("`{name}` is not one of {}", known.join(", ")),
                    ));
                }
            }
        }
    }
    check.finish()?;
    if objects.is_empty() {
        objects = rapport_domain::objects::event_objects()
            .into_iter()
            .filter(|o| check_read(ctx, *o).is_ok())
            .collect();
        if objects.is_empty() {
            return Err(ApiError::new(
                crate::error::ErrorCode::Forbidden,
                "This credential may read none of the objects the change feed carries.",
            ));
        }
    } else {
        for object in &objects {
            check_read(ctx, *object)?;
        }
    }
    Ok((after, limit, objects))
}

fn check_read(ctx: &AuthContext, object: ObjectType) -> Result<(), ApiError> {
    check(ctx, Action::Read, object)
}

/// Renders events as the feed and webhooks show them, with each record's current state.
/// Events of records the caller may not see are left out.
pub async fn render_events(
    store: &dyn Store,
    ctx: &AuthContext,
    events: Vec<RecordEvent>,
) -> Result<Vec<ChangeEvent>, StoreError> {
    let mut ids: BTreeMap<ObjectType, Vec<Uuid>> = BTreeMap::new();
    for event in &events {
        ids.entry(event.object).or_default().push(event.object_id);
    }
    let mut records: HashMap<(ObjectType, Uuid), (Value, bool)> = HashMap::new();
    for (object, mut list) in ids {
        list.sort_unstable();
        list.dedup();
        for (id, record) in records_of(store, ctx, object, &list).await? {
            records.insert((object, id), record);
        }
    }
    Ok(events
        .into_iter()
        .filter_map(|event| {
            let record = records.get(&(event.object, event.object_id));
            // A record the caller may not see: its events are not theirs either.
            if record.is_none() && ctx.record_filter(event.object) != RecordFilter::All {
                return None;
            }
            let origin = match (event.api_key_id, event.actor_id) {
                (Some(key), _) => Some(Origin {
                    kind: OriginKind::ApiKey,
                    id: key,
                }),
                (None, Some(user)) => Some(Origin {
                    kind: OriginKind::User,
                    id: user,
                }),
                (None, None) => None,
            };
            Some(ChangeEvent {
                cursor: event.seq.to_string(),
                object: event.object.as_str().to_owned(),
                id: event.object_id,
                action: event.action,
                event: format!("{}.{}", event.object, event.action),
                changed_fields: crate::routes::records::changes_body(event.changes),
                merged_ids: event.merged_ids,
                occurred_at: event.occurred_at,
                actor: event.actor_id,
                origin,
                record: record
                    .filter(|(_, deleted)| !deleted)
                    .map(|(body, _)| body.clone()),
            })
        })
        .collect())
}

async fn records_of(
    store: &dyn Store,
    ctx: &AuthContext,
    object: ObjectType,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, (Value, bool))>, StoreError> {
    fn shown<T: Serialize>(id: Uuid, deleted: bool, body: T) -> (Uuid, (Value, bool)) {
        (
            id,
            (serde_json::to_value(body).unwrap_or(Value::Null), deleted),
        )
    }
    Ok(match crate::objects::resource(object) {
        Some(resource) => store
            .records()
            .get_many(ctx, resource.0, ids)
            .await?
            .into_iter()
            .map(|r| shown(r.id, r.deleted_at.is_some(), RecordBody::from(r)))
            .collect(),
        None => Vec::new(),
    })
}

/// Read the change feed
///
/// Every committed change of companies, contacts, products and orders, in commit order:
/// poll with `after=<next_cursor>` and you see each change exactly once, also while many
/// writers commit at once. `next_cursor` is never null. Changes are kept for
/// `RAPPORT_CHANGE_RETENTION_DAYS` (30 by default); a cursor older than that is 410
/// `cursor_expired` (start again without `after`, and reconcile with a full list).
#[utoipa::path(
    tag = "changes",
    operation_id = "list_changes",
    params(ChangeParams),
    responses(
        (status = 200, description = "Changes after the cursor, oldest first.", body = ChangeFeed),
        (status = 410, response = crate::error::responses::CursorExpired),
    ),
)]
#[get("/changes")]
async fn list_changes(
    auth: Auth,
    state: web::Data<AppState>,
    params: Query<ChangeParams>,
) -> Result<HttpResponse, ApiError> {
    let ctx = &auth.0;
    let (after, limit, objects) = parse_params(&params, ctx)?;
    let kept_since = Utc::now() - Duration::days(i64::from(state.settings.change_retention_days));
    let page = state
        .store
        .changes()
        .changes(ctx, after, limit, &objects, kept_since)
        .await?;
    let data = render_events(state.store.as_ref(), ctx, page.events).await?;
    Ok(HttpResponse::Ok().json(ChangeFeed {
        data,
        next_cursor: page.position.to_string(),
        has_more: page.has_more,
    }))
}
