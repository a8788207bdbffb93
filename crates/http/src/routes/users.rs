//! The organization's users (owners and admins): list, read, change role, team or activation,
//! and hand over what a user owns. Users join by invitation (`routes::invitations`).

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use rapport_auth::policy;
use rapport_domain::identity::{OWNED_OBJECTS, User, UserFilter, UserPatch};
use rapport_domain::{ObjectType, Role};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Read, Require, Update, obj};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::extract::Json;
use crate::list::{ListQuery, PageParams};
use crate::record::{IfMatch, nullable, ok_record};
use crate::routes::records::within_limit;
use crate::state::AppState;
use crate::validate::Check;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_users)
        .service(get_user)
        .service(update_user)
        .service(transfer_ownership);
}

/// A user of the organization.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserBody {
    pub id: Uuid,
    #[schema(example = "wang.an@acme.example")]
    pub email: String,
    #[schema(example = "王安")]
    pub name: String,
    pub role: Role,
    pub team_id: Option<Uuid>,
    /// Deactivated users cannot sign in; their sessions and keys are revoked.
    pub active: bool,
    #[schema(example = "zh-CN")]
    pub locale: Option<String>,
    #[schema(example = "Asia/Shanghai")]
    pub timezone: Option<String>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<User> for UserBody {
    fn from(user: User) -> Self {
        UserBody {
            id: user.id,
            email: user.email,
            name: user.name,
            role: user.role,
            team_id: user.team_id,
            active: user.active,
            locale: user.locale,
            timezone: user.timezone,
            last_login_at: user.last_login_at,
            version: user.version,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

crate::list_envelope!(UserList, UserBody);

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserFilterParams {
    /// Only users with this role.
    pub role: Option<Role>,
    /// Only members of this team.
    pub team_id: Option<Uuid>,
    /// Only active (true) or deactivated (false) users.
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema, Default, Validate)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    #[validate(custom(function = "crate::validate::rules::name"))]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// Only owners make or unmake owners.
    pub role: Option<Role>,
    /// `null` takes the user out of their team.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub team_id: Option<Option<Uuid>>,
    /// `false` deactivates: sessions and API keys are revoked at once.
    pub active: Option<bool>,
}

/// Most entries of a transfer's `include`: more than there are object types.
const MAX_INCLUDE: usize = 25;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The active user who takes over.
    pub to_user_id: Uuid,
    /// Which objects to hand over (default: all owned objects); at most 25 entries.
    #[schema(max_items = 25)]
    pub include: Option<Vec<ObjectType>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferResponse {
    pub from_user_id: Uuid,
    pub to_user_id: Uuid,
    /// Records reassigned, per object type.
    #[schema(example = json!({"team": 1}))]
    pub transferred: std::collections::BTreeMap<String, u64>,
}

/// List the organization's users
#[utoipa::path(
    tag = "users",
    operation_id = "list_users",
    params(PageParams, UserFilterParams),
    responses((status = 200, description = "A page of users, oldest first.", body = UserList)),
)]
#[get("/users")]
async fn list_users(
    auth: Require<Read<obj::User>>,
    state: web::Data<AppState>,
    query: ListQuery<UserFilterParams>,
) -> Result<HttpResponse, ApiError> {
    query.expect_sort("id")?;
    let filter = UserFilter {
        role: query.filter.role,
        team_id: query.filter.team_id,
        active: query.filter.active,
    };
    let page = state
        .store
        .users()
        .list(&auth.ctx, &filter, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(UserList::from_page(page, UserBody::from)))
}

/// Read a user
#[utoipa::path(
    tag = "users",
    operation_id = "get_user",
    params(("id" = Uuid, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "The user.", body = UserBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/users/{id}")]
async fn get_user(
    auth: Require<Read<obj::User>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let user = state.store.users().get(&auth.ctx, *id).await?;
    Ok(ok_record(user.version, &UserBody::from(user)))
}

/// Change a user's name, role, team or activation
///
/// Deactivating (`"active": false`) revokes the user's sessions and API keys at once. The last
/// active owner cannot be demoted or deactivated (409 `last_owner`). Send `If-Match` with the
/// ETag to avoid overwriting someone else's change (412 on mismatch).
#[utoipa::path(
    tag = "users",
    operation_id = "update_user",
    params(
        ("id" = Uuid, Path, description = "The user's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on."),
    ),
    request_body = UpdateUserRequest,
    responses(
        (status = 200, description = "The changed user.", body = UserBody),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 409, response = crate::error::responses::LastOwner),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/users/{id}")]
async fn update_user(
    auth: Require<Update<obj::User>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let current = state.store.users().get(&auth.ctx, *id).await?;
    let new_role = body.role.unwrap_or(current.role);
    let touches_role = body.role.is_some_and(|r| r != current.role)
        || body.active.is_some_and(|a| a != current.active);
    if (touches_role || current.role == Role::Owner)
        && !policy::may_assign_role(auth.ctx.role, current.role, new_role)
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "The {} role may not change this {} user that way.",
                auth.ctx.role, current.role
            ),
        ));
    }
    Check::validated(&body)?;
    let patch = UserPatch {
        name: body.name.as_deref().map(|n| n.trim().to_owned()),
        role: body.role,
        team_id: body.team_id,
        active: body.active,
        locale: None,
        timezone: None,
    };
    let user = state
        .store
        .users()
        .update(&auth.ctx, *id, patch, if_match.0)
        .await?;
    Ok(ok_record(user.version, &UserBody::from(user)))
}

/// Hand over everything a user owns to another user
///
/// For an employee who leaves: reassigns, in one transaction, every record the user owns of
/// the `include`d object types (all owned types by default) to `to_user_id`, and answers how
/// many of each moved.
#[utoipa::path(
    tag = "users",
    operation_id = "transfer_ownership",
    params(("id" = Uuid, Path, description = "The user whose records are handed over.")),
    request_body = TransferRequest,
    responses(
        (status = 200, description = "What moved.", body = TransferResponse),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[post("/users/{id}/transfer")]
async fn transfer_ownership(
    auth: Require<Update<obj::User>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: Json<TransferRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let include = body.include.unwrap_or_else(|| OWNED_OBJECTS.to_vec());
    let mut check = Check::new();
    let listed = within_limit(
        &mut check,
        "include",
        include.len(),
        MAX_INCLUDE,
        "object types",
    );
    for (index, object) in include.iter().enumerate().take_while(|_| listed) {
        if !OWNED_OBJECTS.contains(object) {
            let owned: Vec<&str> = OWNED_OBJECTS.iter().map(|o| o.as_str()).collect();
            check.push(FieldError::new(
                format!("include[{index}]"),
                "invalid_value",
                format!(
                    "{object} records have no owner; owned objects: {}",
                    owned.join(", ")
                ),
            ));
        }
    }
    if body.to_user_id == *id {
        check.push(FieldError::new(
            "to_user_id",
            "invalid_value",
            "must be another user",
        ));
    }
    check.finish()?;
    let counts = state
        .store
        .users()
        .transfer_ownership(&auth.ctx, *id, body.to_user_id, &include)
        .await?;
    Ok(HttpResponse::Ok().json(TransferResponse {
        from_user_id: *id,
        to_user_id: body.to_user_id,
        transferred: counts
            .into_iter()
            .map(|(object, n)| (object.as_str().to_owned(), n))
            .collect(),
    }))
}
