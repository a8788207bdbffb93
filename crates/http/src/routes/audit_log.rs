//! The audit log (owners and admins): sign-ins, failed sign-ins, keys, roles, activation.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, Utc};
use rapport_domain::ObjectType;
use rapport_domain::identity::{AuditEntry, AuditFilter, audit_action};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{Read, Require, obj};
use crate::error::ApiError;
use crate::list::{ListQuery, PageParams};
use crate::state::AppState;

pub fn configure(config: &mut ServiceConfig) {
    config.service(list_audit_log);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntryBody {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// What happened, e.g. `auth.login`, `auth.login_failed`, `api_key.created`,
    /// `user.role_changed`, `user.deactivated`.
    #[schema(example = "auth.login")]
    pub action: String,
    /// The user who acted (for a failed sign-in: the user whose email was tried).
    pub actor_id: Option<Uuid>,
    /// The API key the actor used, if any.
    pub api_key_id: Option<Uuid>,
    pub target_type: Option<ObjectType>,
    pub target_id: Option<Uuid>,
    /// The client's address.
    #[schema(example = "203.0.113.7")]
    pub ip: Option<String>,
    /// What else is worth knowing (old and new role, user agent, …).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

impl From<AuditEntry> for AuditEntryBody {
    fn from(entry: AuditEntry) -> Self {
        AuditEntryBody {
            id: entry.id,
            occurred_at: entry.occurred_at,
            action: entry.action,
            actor_id: entry.actor_id,
            api_key_id: entry.api_key_id,
            target_type: entry.target_type,
            target_id: entry.target_id,
            ip: entry.ip,
            details: entry.details,
        }
    }
}

crate::list_envelope!(AuditLogList, AuditEntryBody);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilterParams {
    /// Only entries of this actor.
    pub actor_id: Option<Uuid>,
    /// Only this action, e.g. `auth.login_failed`.
    pub action: Option<String>,
    /// Only entries at or after this time.
    pub after: Option<DateTime<Utc>>,
    /// Only entries before this time.
    pub before: Option<DateTime<Utc>>,
}

/// Read the audit log
#[utoipa::path(
    tag = "audit-log",
    operation_id = "list_audit_log",
    params(PageParams, AuditFilterParams),
    responses((status = 200, description = "A page of entries, newest first.", body = AuditLogList)),
)]
#[get("/audit-log")]
async fn list_audit_log(
    auth: Require<Read<obj::AuditLog>>,
    state: web::Data<AppState>,
    query: ListQuery<AuditFilterParams>,
) -> Result<HttpResponse, ApiError> {
    query.expect_sort(crate::routes::audit_log::AUDIT_SORT)?;
    if let Some(action) = &query.filter.action
        && !audit_action::ALL.contains(&action.as_str())
    {
        return Err(ApiError::invalid(
            "action",
            "invalid_value",
            format!(
                "is not an audit action; known: {}",
                audit_action::ALL.join(", ")
            ),
        ));
    }
    let filter = AuditFilter {
        actor_id: query.filter.actor_id,
        action: query.filter.action.clone(),
        after: query.filter.after,
        before: query.filter.before,
    };
    let page = state
        .store
        .audit()
        .list(&auth.ctx, &filter, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(AuditLogList::from_page(page, AuditEntryBody::from)))
}

/// The sort of the audit log's cursors.
pub const AUDIT_SORT: &str = "-occurred_at";
