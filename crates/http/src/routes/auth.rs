//! Sign-up, sign-in, refresh and sign-out. Public: the body is the credential.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{Duration, Utc};
use rapport_auth::secret;
use rapport_domain::Email;
use rapport_domain::Role;
use rapport_domain::identity::{
    IdentityRef, NewMember, NewRefreshToken, RefreshOutcome, audit_action,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{client_info, meter_address};
use crate::error::{ApiError, ErrorCode, FieldError, OrganizationChoice};
use crate::extract::Json;
use crate::signin::{
    TokenResponse, check_throttle, password_matches, refuse, start_session, token_response,
};
use crate::state::AppState;
use crate::validate::Check;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(signup)
        .service(login)
        .service(refresh)
        .service(logout);
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[validate(custom(function = "crate::validate::rules::name"))]
    #[schema(
        example = "Acme Trading Co.",
        min_length = 1,
        max_length = 200,
        pattern = r"\S"
    )]
    pub organization_name: String,
    #[validate(custom(function = "crate::validate::rules::name"))]
    #[schema(example = "王安", min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    #[validate(custom(function = "crate::validate::rules::email"))]
    #[schema(example = "wang.an@acme.example", format = Email, max_length = 254)]
    pub email: String,
    /// At least 10 characters, at most 1,024 bytes.
    #[validate(custom(function = "crate::validate::rules::password"))]
    #[schema(example = "correct horse battery staple", format = Password, min_length = 10, max_length = 1024)]
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(example = "wang.an@acme.example", format = Email, max_length = 254)]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
    /// Which of your organizations to sign in to; needed only when you belong to several
    /// (without it, such a sign-in answers 422 `organization_required` listing them).
    pub organization_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token of the last sign-in or refresh.
    #[schema(example = "rrt_Vx2…")]
    pub refresh_token: String,
}

/// Create an organization and its owner
///
/// Creates an organization with you as its owner and signs you in. An email that already has
/// an account signs up only with that account's password (the new organization joins the
/// organizations you sign in to); with another password it is 409 `account_exists`, and counts
/// as a failed sign-in. Closed when the installation runs with `RAPPORT_SIGNUP=closed` (`403
/// signup_closed`).
#[utoipa::path(
    tag = "auth",
    operation_id = "signup",
    security(()),
    request_body = SignupRequest,
    responses(
        (status = 201, description = "The organization exists and you are signed in.", body = TokenResponse),
        (status = 403, response = crate::error::responses::SignupClosed),
        (status = 409, response = crate::error::responses::AccountExists),
        (status = 429, response = crate::error::responses::LoginThrottled),
        (status = 503, response = crate::error::responses::ServerBusy),
    ),
)]
#[post("/auth/signup")]
async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = client_info(&req);
    meter_address(&req, &state, &client)?;
    if !state.settings.signup_open {
        return Err(ApiError::new(
            ErrorCode::SignupClosed,
            "This installation does not create organizations through the API; ask its operator.",
        ));
    }
    let body = body.0;
    Check::validated(&body)?;
    // Valid: what follows only puts the values in their stored form.
    let organization_name = body.organization_name.trim().to_owned();
    let name = body.name.trim().to_owned();
    let email = Email::parse(&body.email)
        .map_err(|message| ApiError::invalid("email", "invalid_value", message))?;
    let identity = match state.store.auth().login_identity(&email).await? {
        // An address with an account: its owner proves it with the account's password.
        Some(account) => {
            check_throttle(&state, &email).await?;
            let hash = Some(account.password_hash.clone());
            if !password_matches(&state, body.password, hash).await? {
                let members: Vec<_> = account.memberships.into_iter().map(|m| m.user).collect();
                let refused = refuse(&state, &email, &members, &client).await;
                if refused.code() != ErrorCode::InvalidCredentials {
                    return Err(refused);
                }
                return Err(ApiError::new(
                    ErrorCode::AccountExists,
                    "An account with this email exists. Sign in; or, to create another \
                     organization with it, sign up with that account's password.",
                ));
            }
            IdentityRef::Existing(account.identity_id)
        }
        None => IdentityRef::New {
            password_hash: state.passwords.hash(body.password).await?,
            email,
        },
    };
    let owner = NewMember {
        identity,
        name,
        role: Role::Owner,
        team_id: None,
        locale: None,
        timezone: None,
    };
    let (organization, user) = state
        .store
        .auth()
        .create_organization(organization_name, owner, &client)
        .await
        .map_err(|error| match error {
            // Someone took the address between the check and the write.
            rapport_domain::StoreError::Conflict { .. } => ApiError::new(
                ErrorCode::AccountExists,
                "An account with this email exists. Sign in; or, to create another \
                 organization with it, sign up with that account's password.",
            ),
            other => ApiError::from(other),
        })?;
    let tokens = start_session(&state, &user, &organization, &client, audit_action::SIGNUP).await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::LOCATION, "/v1/organization"))
        .json(tokens))
}

/// Sign in with email and password
///
/// An unknown email and a wrong password get the same answer. After 10 failed sign-ins for
/// one email within 15 minutes, further attempts get 429 until the oldest of them is 15
/// minutes old. A person who belongs to several organizations names one with
/// `organization_id`; without it the answer is 422 `organization_required` with the
/// `organizations` to choose from.
#[utoipa::path(
    tag = "auth",
    operation_id = "login",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 401, response = crate::error::responses::InvalidCredentials),
        (status = 422, response = crate::error::responses::OrganizationRequired),
        (status = 429, response = crate::error::responses::LoginThrottled),
        (status = 503, response = crate::error::responses::ServerBusy),
    ),
)]
#[post("/auth/login")]
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = client_info(&req);
    meter_address(&req, &state, &client)?;
    let body = body.0;
    let email = Email::parse(&body.email)
        .map_err(|message| ApiError::invalid("email", "invalid_value", message))?;
    check_throttle(&state, &email).await?;

    let account = state.store.auth().login_identity(&email).await?;
    let hash = account.as_ref().map(|a| a.password_hash.clone());
    let verified = password_matches(&state, body.password, hash).await?;
    let memberships = account.map(|a| a.memberships).unwrap_or_default();
    if !verified {
        let members: Vec<_> = memberships.into_iter().map(|m| m.user).collect();
        return Err(refuse(&state, &email, &members, &client).await);
    }
    // The password is right: what follows is told only to its owner.
    let mut active: Vec<_> = memberships.into_iter().filter(|m| m.user.active).collect();
    let chosen = match body.organization_id {
        Some(org_id) => match active.iter().position(|m| m.user.org_id == org_id) {
            Some(at) => active.swap_remove(at),
            None => {
                return Err(ApiError::invalid(
                    "organization_id",
                    "not_found",
                    "you are not an active member of this organization",
                ));
            }
        },
        None if active.len() == 1 => active.remove(0),
        None if active.is_empty() => {
            // Deactivated everywhere: as good as no account.
            return Err(refuse(&state, &email, &[], &client).await);
        }
        None => {
            let choices = active
                .iter()
                .map(|m| OrganizationChoice {
                    id: m.user.org_id,
                    name: m.organization_name.clone(),
                    role: m.user.role.as_str().to_owned(),
                })
                .collect();
            return Err(ApiError::new(
                ErrorCode::OrganizationRequired,
                "You belong to several organizations: sign in again with `organization_id`, one of `organizations`.",
            )
            .with_errors(vec![FieldError::new(
                "organization_id",
                "required",
                "is required when you belong to several organizations",
            )])
            .with_organizations(choices));
        }
    };
    let user = chosen.user;
    let organization = state.store.auth().organization_of(user.org_id).await?;
    let tokens = start_session(&state, &user, &organization, &client, audit_action::LOGIN).await?;
    Ok(HttpResponse::Ok().json(tokens))
}

/// Exchange a refresh token for new tokens
///
/// Each refresh token works once: the answer carries its successor. Presenting a token that
/// was already exchanged revokes its whole session (someone may have copied it).
#[utoipa::path(
    tag = "auth",
    operation_id = "refresh",
    security(()),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens; the presented refresh token no longer works.", body = TokenResponse),
        (status = 401, response = crate::error::responses::Unauthenticated),
    ),
)]
#[post("/auth/refresh")]
async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = client_info(&req);
    meter_address(&req, &state, &client)?;
    let next_token = secret::new_refresh_token().map_err(ApiError::internal)?;
    let next = NewRefreshToken {
        hash: secret::storage_hash(&next_token),
        expires_at: Utc::now() + Duration::days(state.settings.refresh_token_ttl_days),
    };
    let outcome = state
        .store
        .auth()
        .rotate_refresh_token(&secret::storage_hash(&body.refresh_token), next, &client)
        .await?;
    match outcome {
        RefreshOutcome::Rotated(rotated) => {
            let tokens = token_response(
                &state,
                &rotated.principal.user,
                &rotated.organization,
                rotated.session_id,
                next_token,
            )?;
            Ok(HttpResponse::Ok().json(tokens))
        }
        RefreshOutcome::Reused => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "This refresh token was already used; its session has been revoked. Sign in again.",
        )),
        RefreshOutcome::Invalid => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "The refresh token is unknown, expired or revoked. Sign in again.",
        )),
    }
}

/// Sign out: end the session of a refresh token
///
/// Revokes the session (the refresh token's family) at once: its refresh tokens and access
/// tokens stop working. Other sessions of the user go on. Answers 204 also for a token that is
/// unknown or already revoked.
#[utoipa::path(
    tag = "auth",
    operation_id = "logout",
    security(()),
    request_body = RefreshRequest,
    responses((status = 204, description = "The session is revoked.")),
)]
#[post("/auth/logout")]
async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = client_info(&req);
    meter_address(&req, &state, &client)?;
    state
        .store
        .auth()
        .end_session(&secret::storage_hash(&body.refresh_token), &client)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
