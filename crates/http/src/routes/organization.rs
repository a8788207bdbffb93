//! The caller's organization: its name and settings (record visibility, phone region).

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, patch, web};
use chrono::{DateTime, Utc};
use rapport_domain::access::VISIBILITY_OBJECTS;
use rapport_domain::identity::{Organization, OrganizationPatch};
use rapport_domain::{ObjectType, Visibility};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Read, Require, Update, obj};
use crate::error::{ApiError, FieldError};
use crate::extract::Json;
use crate::record::{IfMatch, nullable, ok_record};
use crate::state::AppState;
use crate::validate::Check;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(get_organization)
        .service(update_organization);
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SettingsBody {
    /// What sales and support users see of each owned object: `own` records, their `team`'s,
    /// or `all`. Managers see their teams' records when it is not `all`.
    #[schema(example = json!({"company": "all", "contact": "team", "deal": "own"}))]
    pub record_visibility: BTreeMap<ObjectType, Visibility>,
    /// ISO 3166-1 alpha-2 region for phone numbers written without a country code.
    #[schema(example = "CN")]
    pub default_phone_region: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrganizationBody {
    pub id: Uuid,
    #[schema(example = "Acme Trading Co.")]
    pub name: String,
    pub settings: SettingsBody,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Organization> for OrganizationBody {
    fn from(organization: Organization) -> Self {
        let settings = organization.settings.with_defaults();
        OrganizationBody {
            id: organization.id,
            name: organization.name,
            settings: SettingsBody {
                record_visibility: settings.record_visibility,
                default_phone_region: settings.default_phone_region,
            },
            version: organization.version,
            created_at: organization.created_at,
            updated_at: organization.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    /// Only the objects named change.
    pub record_visibility: Option<BTreeMap<ObjectType, Visibility>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::schema::Country>)]
    pub default_phone_region: Option<Option<String>>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganizationRequest {
    #[validate(custom(function = "crate::validate::rules::name"))]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    pub settings: Option<SettingsPatch>,
}

/// Read my organization
#[utoipa::path(
    tag = "organization",
    operation_id = "get_organization",
    responses((status = 200, description = "The organization.", body = OrganizationBody)),
)]
#[get("/organization")]
async fn get_organization(
    auth: Require<Read<obj::Organization>>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let organization = state.store.organizations().get(&auth.ctx).await?;
    Ok(ok_record(
        organization.version,
        &OrganizationBody::from(organization),
    ))
}

/// Rename my organization or change its settings
///
/// A merge: only what is sent changes, down to single objects of `record_visibility`.
#[utoipa::path(
    tag = "organization",
    operation_id = "update_organization",
    params(("If-Match" = Option<String>, Header, description = "The ETag the change is based on.")),
    request_body = UpdateOrganizationRequest,
    responses(
        (status = 200, description = "The changed organization.", body = OrganizationBody),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/organization")]
async fn update_organization(
    auth: Require<Update<obj::Organization>>,
    state: web::Data<AppState>,
    if_match: IfMatch,
    body: Json<UpdateOrganizationRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut check = Check::new();
    check.validator(body.validate());
    let name = body.name.as_deref().map(|n| n.trim().to_owned());
    if let Some(visibility) = body
        .settings
        .as_ref()
        .and_then(|s| s.record_visibility.as_ref())
    {
        for object in visibility.keys() {
            if !VISIBILITY_OBJECTS.contains(object) {
                let known: Vec<&str> = VISIBILITY_OBJECTS.iter().map(|o| o.as_str()).collect();
                check.push(FieldError::new(
                    format!("settings.record_visibility.{object}"),
                    "invalid_value",
                    format!(
                        "has no owner to restrict by; configurable: {}",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    let region = body
        .settings
        .as_ref()
        .and_then(|s| s.default_phone_region.clone())
        .map(|r| r.map(|r| check.field("settings.default_phone_region", region_code(&r))));
    check.finish()?;

    let patch = OrganizationPatch {
        name,
        record_visibility: body
            .settings
            .and_then(|s| s.record_visibility)
            .unwrap_or_default(),
        default_phone_region: region.map(Option::flatten),
    };
    let organization = state
        .store
        .organizations()
        .update(&auth.ctx, patch, if_match.0)
        .await?;
    Ok(ok_record(
        organization.version,
        &OrganizationBody::from(organization),
    ))
}

/// Two ASCII letters, stored upper case.
fn region_code(text: &str) -> Result<String, String> {
    if text.len() == 2 && text.chars().all(|c| c.is_ascii_alphabetic()) {
        Ok(text.to_ascii_uppercase())
    } else {
        Err("is not an ISO 3166-1 alpha-2 region such as CN or US".into())
    }
}
