//! API keys for scripts and integrations. A key acts as the user who made it, limited to its
//! scopes; its secret is shown once, at creation.

use actix_web::http::header;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use rapport_auth::secret;
use rapport_domain::identity::{ApiKey, NewApiKey};
use rapport_domain::{Credential, Scope, values};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{Create, Delete, Read, Require, obj};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::extract::Json;
use crate::idempotency::one_time_secret;
use crate::list::{ListQuery, NoFilter, PageParams};
use crate::routes::records::within_limit;
use crate::state::AppState;
use crate::validate::{self, Check};

/// Most scopes a key is created with: more than there are distinct scopes (`*`, `read`, and
/// read and write of each object), refused before any is read.
const MAX_SCOPES: usize = 100;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_api_keys)
        .service(create_api_key)
        .service(get_api_key)
        .service(revoke_api_key);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyBody {
    pub id: Uuid,
    #[schema(example = "ERP sync")]
    pub name: String,
    /// The key's first characters, to recognise it.
    #[schema(example = "rpk_Vx2aQ9pL")]
    pub prefix: String,
    /// `*`, `read`, `<object>:read` or `<object>:write`.
    #[schema(example = json!(["contact:write", "company:read"]))]
    pub scopes: Vec<String>,
    /// The user the key acts as.
    pub user_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<ApiKey> for ApiKeyBody {
    fn from(key: ApiKey) -> Self {
        ApiKeyBody {
            id: key.id,
            name: key.name,
            prefix: key.prefix,
            scopes: key.scopes.iter().map(ToString::to_string).collect(),
            user_id: key.user_id,
            expires_at: key.expires_at,
            last_used_at: key.last_used_at,
            created_at: key.created_at,
        }
    }
}

/// A new key with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKeyBody {
    #[serde(flatten)]
    pub key: ApiKeyBody,
    /// The key itself: send it as `Authorization: Bearer rpk_…`. It is not stored and cannot
    /// be shown again.
    #[schema(example = "rpk_Vx2aQ9pLm3…")]
    pub secret: String,
}

crate::list_envelope!(ApiKeyList, ApiKeyBody);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    #[schema(
        example = "ERP sync",
        min_length = 1,
        max_length = 200,
        pattern = r"\S"
    )]
    pub name: String,
    /// At least one scope: `*`, `read`, `<object>:read`, `<object>:write` (object names are
    /// singular: `contact:read`); at most 100, repeats dropped.
    #[schema(example = json!(["contact:write", "company:read"]), min_items = 1, max_items = 100)]
    pub scopes: Vec<String>,
    /// When the key stops working; none by default.
    pub expires_at: Option<DateTime<Utc>>,
}

/// List API keys
///
/// Owners and admins see every key of the organization; everyone else their own. Revoked
/// keys are not listed.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "list_api_keys",
    params(PageParams),
    responses((status = 200, description = "A page of keys, oldest first, without secrets.", body = ApiKeyList)),
)]
#[get("/api-keys")]
async fn list_api_keys(
    auth: Require<Read<obj::ApiKey>>,
    state: web::Data<AppState>,
    query: ListQuery<NoFilter>,
) -> Result<HttpResponse, ApiError> {
    query.expect_sort("id")?;
    let page = state.store.api_keys().list(&auth.ctx, &query.page).await?;
    Ok(HttpResponse::Ok().json(ApiKeyList::from_page(page, ApiKeyBody::from)))
}

/// Create an API key
///
/// The key acts as you, limited to the intersection of your role and its scopes. Made with an
/// API key, it needs that key's explicit `api_key:write` scope (`*` does not include it), has
/// no scope the maker lacks, and never outlives the maker (without `expires_at` it expires with
/// it). A user holds at most `RAPPORT_API_KEYS_PER_USER` live keys (50 by default; 409
/// `api_key_limit`). The secret is in this answer only: a retry with the same
/// `Idempotency-Key` answers 409 `secret_not_replayed` instead of showing it again.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "create_api_key",
    request_body = CreateApiKeyRequest,
    responses(
        (status = 201, description = "The key and, this once, its secret.", body = CreatedApiKeyBody),
        (status = 403, response = crate::error::responses::Forbidden),
        (status = 409, response = crate::error::responses::ApiKeyLimit),
    ),
)]
#[post("/api-keys")]
async fn create_api_key(
    auth: Require<Create<obj::ApiKey>>,
    state: web::Data<AppState>,
    body: Json<CreateApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut check = Check::new();
    let name = check.field("name", validate::name(&body.name));
    if body.scopes.is_empty() {
        check.push(FieldError::new(
            "scopes",
            "required",
            "must name at least one scope",
        ));
    }
    let mut scopes = Vec::new();
    let listed = within_limit(
        &mut check,
        "scopes",
        body.scopes.len(),
        MAX_SCOPES,
        "scopes",
    );
    for (index, text) in body.scopes.iter().enumerate().take_while(|_| listed) {
        if let Some(scope) = check.field(&format!("scopes[{index}]"), text.parse::<Scope>()) {
            scopes.push(scope);
        }
    }
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        check.push(FieldError::new(
            "expires_at",
            "invalid_value",
            "must be in the future",
        ));
    }
    let Some(name) = name else {
        return Err(check.into_error());
    };
    check.finish()?;
    let mut expires_at = body.expires_at;
    if let Credential::ApiKey {
        scopes: own,
        expires_at: own_expiry,
        ..
    } = &auth.ctx.credential
    {
        if !scopes
            .iter()
            .all(|wanted| own.iter().any(|have| have.covers(*wanted)))
        {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "An API key cannot create a key with scopes it does not have itself.",
            ));
        }
        // A key made by a key never outlives its maker: it expires with it unless it asks to
        // expire sooner.
        if let Some(own_expiry) = *own_expiry {
            match expires_at {
                Some(at) if at > own_expiry => {
                    return Err(ApiError::new(
                        ErrorCode::Forbidden,
                        format!(
                            "An API key cannot create a key that outlives it: this key expires at {}.",
                            own_expiry.to_rfc3339()
                        ),
                    ));
                }
                Some(_) => {}
                None => expires_at = Some(own_expiry),
            }
        }
    }
    let scopes = values::without_repeats(scopes);
    let secret = secret::new_api_key().map_err(ApiError::internal)?;
    let key = NewApiKey {
        name,
        prefix: secret::display_prefix(&secret),
        secret_hash: secret::storage_hash(&secret),
        scopes,
        expires_at,
    };
    let key = state
        .store
        .api_keys()
        .create(&auth.ctx, key, state.settings.api_keys_per_user)
        .await?;
    let location = format!("/v1/api-keys/{}", key.id);
    let response = HttpResponse::Created()
        .insert_header((header::LOCATION, location.clone()))
        .json(CreatedApiKeyBody {
            key: ApiKeyBody::from(key),
            secret,
        });
    Ok(one_time_secret(response, location))
}

/// Read an API key (without its secret)
#[utoipa::path(
    tag = "api-keys",
    operation_id = "get_api_key",
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses(
        (status = 200, description = "The key.", body = ApiKeyBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/api-keys/{id}")]
async fn get_api_key(
    auth: Require<Read<obj::ApiKey>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let key = state.store.api_keys().get(&auth.ctx, *id).await?;
    Ok(HttpResponse::Ok().json(ApiKeyBody::from(key)))
}

/// Revoke an API key
///
/// The key stops working at once.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "revoke_api_key",
    params(("id" = Uuid, Path, description = "The key's id.")),
    responses(
        (status = 204, description = "The key is revoked."),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[delete("/api-keys/{id}")]
async fn revoke_api_key(
    auth: Require<Delete<obj::ApiKey>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.store.api_keys().revoke(&auth.ctx, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}
