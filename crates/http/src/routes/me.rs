//! The signed-in user: read and change their own profile and password.

use actix_web::{HttpResponse, get, patch, web};

use rapport_domain::identity::UserPatch;
use rapport_domain::{Action, Credential, ObjectType};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use crate::auth::Auth;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::extract::Json;
use crate::record::{IfMatch, nullable, ok_record};
use crate::routes::users::UserBody;
use crate::state::AppState;
use crate::validate::Check;

pub fn configure(config: &mut ServiceConfig) {
    config.service(get_me).service(update_me);
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeRequest {
    #[validate(custom(function = "crate::validate::rules::name"))]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// A language tag such as `zh-CN`; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[validate(custom(function = "crate::validate::rules::locale"))]
    #[schema(value_type = Option<String>, max_length = 35, pattern = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
    pub locale: Option<Option<String>>,
    /// An IANA time zone such as `Asia/Shanghai`; `null` clears it.
    #[serde(default, deserialize_with = "nullable")]
    #[validate(custom(function = "crate::validate::rules::timezone"))]
    #[schema(value_type = Option<String>, max_length = 64, pattern = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")]
    pub timezone: Option<Option<String>>,
    /// Required with `new_password`.
    #[schema(format = Password)]
    pub current_password: Option<String>,
    /// At least 10 characters. Other sessions are signed out.
    #[validate(custom(function = "crate::validate::rules::password"))]
    #[schema(format = Password, min_length = 10, max_length = 1024)]
    pub new_password: Option<String>,
}

/// Who am I
#[utoipa::path(
    tag = "me",
    operation_id = "get_me",
    responses((status = 200, description = "The signed-in user.", body = UserBody)),
)]
#[get("/me")]
async fn get_me(auth: Auth, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let ctx = auth.0;
    let user = state.store.users().get(&ctx, ctx.user_id).await?;
    Ok(ok_record(user.version, &UserBody::from(user)))
}

/// Change my name, locale, time zone or password
///
/// Changing the password needs `current_password` and signs out every other session; it is
/// refused to API keys (403), which change the profile only with `user:write` or `*`.
#[utoipa::path(
    tag = "me",
    operation_id = "update_me",
    params(("If-Match" = Option<String>, Header, description = "The ETag the change is based on.")),
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "The changed user.", body = UserBody),
        (status = 403, response = crate::error::responses::Forbidden),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/me")]
async fn update_me(
    auth: Auth,
    state: web::Data<AppState>,
    if_match: IfMatch,
    body: Json<UpdateMeRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = auth.0;
    let body = body.0;
    if let Credential::ApiKey { scopes, .. } = &ctx.credential {
        if body.current_password.is_some() || body.new_password.is_some() {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "A password changes only in a signed-in session, never with an API key.",
            ));
        }
        if !scopes
            .iter()
            .any(|scope| scope.allows(Action::Update, ObjectType::User))
        {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                "Changing your profile with an API key needs a write scope for it (`user:write` or `*`).",
            ));
        }
    }
    let mut check = Check::new();
    check.validator(body.validate());
    // Valid values, in their stored form.
    let name = body.name.as_deref().map(|n| n.trim().to_owned());
    let locale = body.locale.clone();
    let timezone = body.timezone.clone();
    match (&body.current_password, &body.new_password) {
        (_, Some(_)) => {
            if body.current_password.is_none() {
                check.push(FieldError::new(
                    "current_password",
                    "required",
                    "is required to change the password",
                ));
            }
        }
        (Some(_), None) => check.push(FieldError::new(
            "new_password",
            "required",
            "is required with current_password",
        )),
        (None, None) => {}
    }
    check.finish()?;

    if let (Some(current), Some(new)) = (body.current_password, body.new_password) {
        let stored = state.store.users().password_hash(&ctx).await?;
        if !state.passwords.verify(current, stored).await? {
            return Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "The current password is wrong.",
            ));
        }
        let hash = state.passwords.hash(new).await?;
        state.store.users().change_password(&ctx, hash).await?;
    }

    let patch = UserPatch {
        name,
        locale,
        timezone,
        ..UserPatch::default()
    };
    let user = state
        .store
        .users()
        .update(&ctx, ctx.user_id, patch, if_match.0)
        .await?;
    Ok(ok_record(user.version, &UserBody::from(user)))
}
