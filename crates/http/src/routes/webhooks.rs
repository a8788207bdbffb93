//! Webhooks: signed deliveries of the change feed's events to your URL, with retries and a
//! record of every attempt. Owners and admins manage them.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use rapport_auth::secret;
use rapport_domain::record::EventAction;
use rapport_domain::values;
use rapport_domain::webhook::target::{TargetError, TargetPolicy};
use rapport_domain::webhook::{
    Attempt, Delivery, DeliveryStatus, EventPattern, NewWebhook, Webhook, WebhookPatch,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Create, Delete, Read, Require, Update, obj};
use crate::error::{ApiError, FieldError};
use crate::extract::Json;
use crate::idempotency::one_time_secret;
use crate::list::{ListQuery, NoFilter, PageParams};
use crate::record::{IfMatch, created_record, nullable, ok_record};
use crate::state::AppState;
use crate::validate::Check;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_webhooks)
        .service(create_webhook)
        .service(get_webhook)
        .service(update_webhook)
        .service(delete_webhook)
        .service(rotate_webhook_secret)
        .service(list_deliveries)
        .service(retry_delivery);
}

/// A webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookBody {
    pub id: Uuid,
    #[schema(example = "https://erp.example.com/rapport/events")]
    pub url: String,
    /// `<object>.<action>`, `<object>.*` or `*`.
    #[schema(example = json!(["contact.created", "order.*"]))]
    pub events: Vec<String>,
    pub description: Option<String>,
    pub active: bool,
    /// Why Rapport switched the webhook off (the receiver answered 410 Gone); cleared when
    /// you switch it on again.
    pub disabled_reason: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
}

impl From<&Webhook> for WebhookBody {
    fn from(webhook: &Webhook) -> Self {
        WebhookBody {
            id: webhook.id,
            url: webhook.url.clone(),
            events: webhook.events.iter().map(ToString::to_string).collect(),
            description: webhook.description.clone(),
            active: webhook.active,
            disabled_reason: webhook.disabled_reason.clone(),
            version: webhook.version,
            created_at: webhook.created_at,
            updated_at: webhook.updated_at,
            created_by: webhook.created_by,
        }
    }
}

crate::list_envelope!(WebhookList, WebhookBody);

/// A webhook with its signing secret: answered only at creation and on rotation.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: WebhookBody,
    /// The HMAC-SHA256 key of `Rapport-Signature`; keep it, it is not shown again.
    #[schema(example = "whsec_3q2-7wEXAMPLEbmJ0cnVzdCBtZSwgSSdtIGEgc2VjcmV0")]
    pub secret: String,
}

fn with_secret(webhook: &Webhook) -> WebhookWithSecret {
    WebhookWithSecret {
        webhook: WebhookBody::from(webhook),
        secret: webhook.secret.clone(),
    }
}

/// A webhook to create (`url` and `events` required), or a JSON merge patch of one.
#[derive(Debug, Default, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://erp.example.com/rapport/events", "events": ["contact.*", "order.created"], "description": "ERP sync"}))]
pub struct WebhookInput {
    /// An `http` or `https` URL without a user name or password. Unless the operator allows
    /// private targets, it must not name a loopback, private, link-local or reserved address
    /// (in any spelling) or `localhost`, and a host name must resolve to public addresses
    /// when a delivery is sent.
    #[schema(max_length = 2048, pattern = r"^\s*https?://[^\s/?#@]+([/?#]\S*)?\s*$")]
    pub url: Option<String>,
    /// 1 to 50 patterns: `contact.created`, `contact.*`, `*`.
    #[validate(length(
        min = 1,
        max = 50,
        code = "invalid_value",
        message = "must name 1 to 50 event patterns"
    ))]
    #[schema(min_items = 1, max_items = 50)]
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 500)]
    pub description: Option<Option<String>>,
    /// Default `true`. Switching a webhook on again delivers the events from then on.
    pub active: Option<bool>,
}

const MAX_PATTERNS: usize = 50;

/// A URL the policy accepts; the answer names what is wrong with it otherwise.
fn target_url(text: &str, targets: &TargetPolicy) -> Result<String, FieldError> {
    let url =
        values::url(text).map_err(|message| FieldError::new("url", "invalid_value", message))?;
    targets.check_url(&url).map_err(|error| {
        let code = match error {
            TargetError::NotHttp => "invalid_value",
            TargetError::Credentials => "credentials_not_allowed",
            TargetError::NotAllowed => "address_not_allowed",
        };
        FieldError::new("url", code, error.to_string())
    })?;
    Ok(url)
}

impl WebhookInput {
    fn parse(&self, targets: &TargetPolicy) -> Result<WebhookPatch, ApiError> {
        let mut check = Check::new();
        check.validator(self.validate());
        let url = self
            .url
            .as_deref()
            .and_then(|u| match target_url(u, targets) {
                Ok(url) => Some(url),
                Err(error) => {
                    check.push(error);
                    None
                }
            });
        let events = self.events.as_ref().map(|list| {
            let mut patterns: Vec<EventPattern> = Vec::new();
            for (i, text) in list.iter().enumerate().take(MAX_PATTERNS) {
                if let Some(pattern) =
                    check.field(&format!("events[{i}]"), EventPattern::parse(text))
                    && !patterns.contains(&pattern)
                {
                    patterns.push(pattern);
                }
            }
            patterns
        });
        let description = self.description.as_ref().map(|d| {
            d.as_deref().and_then(|text| {
                check
                    .field("description", values::text(text, 500))
                    .flatten()
            })
        });
        check.finish()?;
        Ok(WebhookPatch {
            url,
            events,
            description,
            active: self.active,
        })
    }
}

/// One attempt at a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptBody {
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; null when it did not answer.
    pub response_status: Option<u16>,
    pub latency_ms: i64,
    /// Why the attempt failed; null on success. `connection failed` (the receiver could not
    /// be reached: which network error it was is only logged on the server), `no answer
    /// within 10 s`, `the receiver answered HTTP 503`, or `the target address is not
    /// allowed` (the URL names an address the operator does not allow).
    #[schema(example = "connection failed")]
    pub error: Option<String>,
}

impl From<Attempt> for AttemptBody {
    fn from(attempt: Attempt) -> Self {
        AttemptBody {
            attempted_at: attempt.attempted_at,
            response_status: attempt.response_status,
            latency_ms: attempt.latency_ms,
            error: attempt.error,
        }
    }
}

/// One event for one webhook, and every attempt to deliver it.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryBody {
    pub id: Uuid,
    pub webhook_id: Uuid,
    /// The event's change-feed cursor.
    #[schema(example = "1042")]
    pub cursor: String,
    #[schema(example = "contact.updated")]
    pub event: String,
    #[schema(value_type = String, example = "contact")]
    pub object: String,
    pub object_id: Uuid,
    pub action: EventAction,
    pub status: DeliveryStatus,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub attempts: Vec<AttemptBody>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Delivery> for DeliveryBody {
    fn from(delivery: Delivery) -> Self {
        DeliveryBody {
            id: delivery.id,
            webhook_id: delivery.webhook_id,
            cursor: delivery.event_seq.to_string(),
            event: format!("{}.{}", delivery.object, delivery.action),
            object: delivery.object.as_str().to_owned(),
            object_id: delivery.object_id,
            action: delivery.action,
            status: delivery.status,
            next_attempt_at: delivery.next_attempt_at,
            attempts: delivery
                .attempts
                .into_iter()
                .map(AttemptBody::from)
                .collect(),
            created_at: delivery.created_at,
            updated_at: delivery.updated_at,
        }
    }
}

crate::list_envelope!(DeliveryList, DeliveryBody);

fn new_secret() -> Result<String, ApiError> {
    secret::new_webhook_secret().map_err(ApiError::internal)
}

/// List webhooks
#[utoipa::path(
    tag = "webhooks",
    operation_id = "list_webhooks",
    params(PageParams),
    responses((status = 200, description = "A page of webhooks (without secrets).", body = WebhookList)),
)]
#[get("/webhooks")]
async fn list_webhooks(
    auth: Require<Read<obj::Webhook>>,
    state: web::Data<AppState>,
    query: ListQuery<NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = state.store.webhooks().list(&auth.ctx, &query.page).await?;
    Ok(HttpResponse::Ok().json(WebhookList::from_page(page, |w| WebhookBody::from(&w))))
}

/// Create a webhook
///
/// Rapport generates the signing secret and shows it in this answer only. The webhook gets
/// the events committed from now on. Each delivery is a POST of the event as the change feed
/// shows it, plus `delivery_id` and `webhook_id`, with `Rapport-Signature: t=<unix seconds>,
/// v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`, `Rapport-Event` and `Rapport-Delivery`.
/// Any 2xx within 10 s is success; anything else is retried with exponential backoff and
/// jitter for about 29 hours (10 attempts); 410 Gone switches the webhook off. Redirects are
/// not followed (a 3xx is a failed attempt).
///
/// Unless the operator allows private targets, a delivery goes only to public addresses: a
/// `url` naming a loopback, private, link-local or reserved address or `localhost` is 422
/// (`address_not_allowed`), and a host name that resolves to such addresses when a delivery
/// is sent fails that attempt with `connection failed`. A `url` with a user name or password
/// is always 422 (`credentials_not_allowed`).
#[utoipa::path(
    tag = "webhooks",
    operation_id = "create_webhook",
    request_body = WebhookInput,
    responses((status = 201, description = "The webhook, with its secret.", body = WebhookWithSecret)),
)]
#[post("/webhooks")]
async fn create_webhook(
    auth: Require<Create<obj::Webhook>>,
    state: web::Data<AppState>,
    body: Json<WebhookInput>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.parse(&state.settings.webhook_targets)?;
    let (Some(url), Some(events)) = (patch.url, patch.events) else {
        let mut errors = Vec::new();
        if body.url.is_none() {
            errors.push(FieldError::new("url", "required", "is required"));
        }
        if body.events.is_none() {
            errors.push(FieldError::new("events", "required", "is required"));
        }
        return Err(ApiError::validation(errors));
    };
    let webhook = NewWebhook {
        url,
        events,
        description: patch.description.flatten(),
        active: patch.active.unwrap_or(true),
    };
    let created = state
        .store
        .webhooks()
        .create(&auth.ctx, webhook, new_secret()?)
        .await?;
    let location = format!("/v1/webhooks/{}", created.id);
    let response = created_record(location.clone(), created.version, &with_secret(&created));
    Ok(one_time_secret(response, location))
}

/// Read a webhook
#[utoipa::path(
    tag = "webhooks",
    operation_id = "get_webhook",
    params(("id" = Uuid, Path, description = "The webhook's id.")),
    responses(
        (status = 200, description = "The webhook (without its secret).", body = WebhookBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/webhooks/{id}")]
async fn get_webhook(
    auth: Require<Read<obj::Webhook>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let webhook = state.store.webhooks().get(&auth.ctx, *id).await?;
    Ok(ok_record(webhook.version, &WebhookBody::from(&webhook)))
}

/// Change a webhook (JSON merge patch)
///
/// A new `url` is checked as at creation: never a user name or password, and (unless the
/// operator allows private targets) no loopback, private, link-local or reserved address.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "update_webhook",
    params(
        ("id" = Uuid, Path, description = "The webhook's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on."),
    ),
    request_body = WebhookInput,
    responses(
        (status = 200, description = "The changed webhook.", body = WebhookBody),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/webhooks/{id}")]
async fn update_webhook(
    auth: Require<Update<obj::Webhook>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<WebhookInput>,
) -> Result<HttpResponse, ApiError> {
    let patch = body.parse(&state.settings.webhook_targets)?;
    let webhook = state
        .store
        .webhooks()
        .update(&auth.ctx, *id, patch, if_match.0)
        .await?;
    Ok(ok_record(webhook.version, &WebhookBody::from(&webhook)))
}

/// Delete a webhook
///
/// Final: the webhook and its deliveries are removed (webhooks are configuration).
#[utoipa::path(
    tag = "webhooks",
    operation_id = "delete_webhook",
    params(("id" = Uuid, Path, description = "The webhook's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[delete("/webhooks/{id}")]
async fn delete_webhook(
    auth: Require<Delete<obj::Webhook>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.store.webhooks().delete(&auth.ctx, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a webhook's secret
///
/// The new secret signs every delivery from now on; the old one stops at once.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "rotate_webhook_secret",
    params(("id" = Uuid, Path, description = "The webhook's id.")),
    responses(
        (status = 200, description = "The webhook with its new secret.", body = WebhookWithSecret),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[post("/webhooks/{id}/rotate-secret")]
async fn rotate_webhook_secret(
    auth: Require<Update<obj::Webhook>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let webhook = state
        .store
        .webhooks()
        .rotate_secret(&auth.ctx, *id, new_secret()?)
        .await?;
    let response = ok_record(webhook.version, &with_secret(&webhook));
    Ok(one_time_secret(
        response,
        format!("/v1/webhooks/{}", webhook.id),
    ))
}

/// A webhook's deliveries
///
/// Newest first, each with every attempt: when, the receiver's status, latency and error.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "list_webhook_deliveries",
    params(("id" = Uuid, Path, description = "The webhook's id."), PageParams),
    responses(
        (status = 200, description = "A page of deliveries.", body = DeliveryList),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/webhooks/{id}/deliveries")]
async fn list_deliveries(
    auth: Require<Read<obj::Webhook>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: ListQuery<NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .webhooks()
        .deliveries(&auth.ctx, *id, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(DeliveryList::from_page(page, DeliveryBody::from)))
}

/// Send a delivery again
///
/// Queues another attempt now, whether the delivery failed, is waiting for its next attempt
/// or succeeded.
#[utoipa::path(
    tag = "webhooks",
    operation_id = "retry_webhook_delivery",
    params(
        ("id" = Uuid, Path, description = "The webhook's id."),
        ("delivery_id" = Uuid, Path, description = "The delivery's id."),
    ),
    responses(
        (status = 202, description = "The delivery, queued.", body = DeliveryBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[post("/webhooks/{id}/deliveries/{delivery_id}/retry")]
async fn retry_delivery(
    auth: Require<Update<obj::Webhook>>,
    state: web::Data<AppState>,
    path: web::Path<(Uuid, Uuid)>,
) -> Result<HttpResponse, ApiError> {
    let (webhook_id, delivery_id) = path.into_inner();
    let delivery = state
        .store
        .webhooks()
        .retry_delivery(&auth.ctx, webhook_id, delivery_id)
        .await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED).json(DeliveryBody::from(delivery)))
}
