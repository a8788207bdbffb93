//! Sign-up, sign-in, refresh and sign-out. Public: the body is the credential.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, post, web};
use chrono::{Duration, Utc};
use rapport_auth::{password, secret};
use rapport_domain::identity::{
    ClientInfo, NewRefreshToken, NewUser, Organization, RefreshOutcome, User, audit_action,
};
use rapport_domain::{Email, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::{client_info, meter};
use crate::error::{ApiError, ErrorCode};
use crate::extract::Json;
use crate::routes::organization::OrganizationBody;
use crate::routes::users::UserBody;
use crate::state::AppState;
use crate::validate::{self, Check};

/// Failed sign-ins per email that trigger the throttle, and the window they are counted in.
const LOGIN_FAILURES_ALLOWED: usize = 10;
const LOGIN_WINDOW_MINUTES: i64 = 15;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(signup)
        .service(login)
        .service(refresh)
        .service(logout);
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    #[schema(
        example = "Acme Trading Co.",
        min_length = 1,
        max_length = 200,
        pattern = r"\S"
    )]
    pub organization_name: String,
    #[schema(example = "王安", min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    #[schema(example = "wang.an@acme.example", format = Email, max_length = 254)]
    pub email: String,
    /// At least 10 characters, at most 1,024 bytes.
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
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token of the last sign-in or refresh.
    #[schema(example = "rrt_Vx2…")]
    pub refresh_token: String,
}

/// The answer to sign-up, sign-in and refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT for `Authorization: Bearer …`.
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: i64,
    /// Exchange it at `POST /v1/auth/refresh` for new tokens; each works once.
    pub refresh_token: String,
    pub user: UserBody,
    pub organization: OrganizationBody,
}

/// Issues an access token and a refresh token for a new session of `user`.
async fn start_session(
    state: &AppState,
    user: &User,
    organization: &Organization,
    client: &ClientInfo,
    audit: &str,
) -> Result<TokenResponse, ApiError> {
    let refresh_token = secret::new_refresh_token().map_err(ApiError::internal)?;
    let first = NewRefreshToken {
        hash: secret::storage_hash(&refresh_token),
        expires_at: Utc::now() + Duration::days(state.settings.refresh_token_ttl_days),
    };
    let session_id = state
        .store
        .auth()
        .start_session(user, first, client, audit)
        .await?;
    token_response(state, user, organization, session_id, refresh_token)
}

fn token_response(
    state: &AppState,
    user: &User,
    organization: &Organization,
    session_id: uuid::Uuid,
    refresh_token: String,
) -> Result<TokenResponse, ApiError> {
    let access_token = state
        .tokens
        .issue(
            user.id,
            user.org_id,
            user.role.as_str(),
            session_id,
            Utc::now(),
        )
        .map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: state.tokens.ttl_seconds(),
        refresh_token,
        user: UserBody::from(user.clone()),
        organization: OrganizationBody::from(organization.clone()),
    })
}

/// Runs argon2 off the async executor.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    web::block(f).await.map_err(ApiError::internal)
}

/// Create an organization and its owner
///
/// Creates an organization with you as its owner and signs you in. Closed when the
/// installation runs with `RAPPORT_SIGNUP=closed` (`403 signup_closed`).
#[utoipa::path(
    tag = "auth",
    operation_id = "signup",
    security(()),
    request_body = SignupRequest,
    responses(
        (status = 201, description = "The organization exists and you are signed in.", body = TokenResponse),
        (status = 403, response = crate::error::responses::SignupClosed),
        (status = 409, response = crate::error::responses::Conflict),
    ),
)]
#[post("/auth/signup")]
async fn signup(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<SignupRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = client_info(&req);
    meter(
        &req,
        &state,
        &format!("ip:{}", client.ip.as_deref().unwrap_or("unknown")),
    )?;
    if !state.settings.signup_open {
        return Err(ApiError::new(
            ErrorCode::SignupClosed,
            "This installation does not create organizations through the API; ask its operator.",
        ));
    }
    let body = body.0;
    let mut check = Check::new();
    let organization_name =
        check.field("organization_name", validate::name(&body.organization_name));
    let name = check.field("name", validate::name(&body.name));
    let email = check.field("email", Email::parse(&body.email));
    let policy = check.field("password", password::check_policy(&body.password));
    let (Some(organization_name), Some(name), Some(email), Some(())) =
        (organization_name, name, email, policy)
    else {
        return Err(check.into_error());
    };
    let plain = body.password;
    let password_hash = blocking(move || password::hash(&plain))
        .await?
        .map_err(ApiError::internal)?;
    let owner = NewUser {
        email,
        name,
        role: Role::Owner,
        team_id: None,
        password_hash,
        locale: None,
        timezone: None,
    };
    let (organization, user) = state
        .store
        .auth()
        .create_organization(organization_name, owner, &client)
        .await?;
    let tokens = start_session(&state, &user, &organization, &client, audit_action::SIGNUP).await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::LOCATION, "/v1/organization"))
        .json(tokens))
}

/// Sign in with email and password
///
/// An unknown email and a wrong password get the same answer. After 10 failed sign-ins for
/// one email within 15 minutes, further attempts get 429 until the oldest of them is 15
/// minutes old.
#[utoipa::path(
    tag = "auth",
    operation_id = "login",
    security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in.", body = TokenResponse),
        (status = 401, response = crate::error::responses::InvalidCredentials),
        (status = 429, response = crate::error::responses::LoginThrottled),
    ),
)]
#[post("/auth/login")]
async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = client_info(&req);
    meter(
        &req,
        &state,
        &format!("ip:{}", client.ip.as_deref().unwrap_or("unknown")),
    )?;
    let body = body.0;
    let email = Email::parse(&body.email)
        .map_err(|message| ApiError::invalid("email", "invalid_value", message))?;

    let now = Utc::now();
    let failures = state
        .store
        .auth()
        .login_failures_since(&email, now - Duration::minutes(LOGIN_WINDOW_MINUTES))
        .await?;
    if failures.len() >= LOGIN_FAILURES_ALLOWED {
        // Room for one more attempt when the oldest failure that keeps the count at the
        // limit leaves the window.
        let oldest_that_counts = failures[failures.len() - LOGIN_FAILURES_ALLOWED];
        let retry_after = (oldest_that_counts + Duration::minutes(LOGIN_WINDOW_MINUTES) - now)
            .num_seconds()
            .max(1);
        return Err(ApiError::new(
            ErrorCode::LoginThrottled,
            format!("Too many failed sign-ins for this email; retry in {retry_after} s."),
        )
        .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after)));
    }

    let candidate = state.store.auth().login_candidate(&email).await?;
    let plain = body.password;
    let verified = match &candidate {
        Some(candidate) if plain.len() <= password::MAX_BYTES => {
            let hash = candidate.password_hash.clone();
            blocking(move || password::verify(&plain, &hash)).await?
        }
        _ => {
            // Spend the time a real check costs, so that timing does not tell.
            blocking(move || password::verify_against_nothing(&plain)).await?;
            false
        }
    };
    let user = candidate.map(|c| c.user);
    match user {
        Some(user) if verified && user.active => {
            let organization = state.store.auth().organization_of(user.org_id).await?;
            let tokens =
                start_session(&state, &user, &organization, &client, audit_action::LOGIN).await?;
            Ok(HttpResponse::Ok().json(tokens))
        }
        user => {
            state
                .store
                .auth()
                .record_login_failure(&email, user.as_ref(), &client)
                .await?;
            Err(ApiError::new(
                ErrorCode::InvalidCredentials,
                "The email or password is wrong.",
            ))
        }
    }
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
    meter(
        &req,
        &state,
        &format!("ip:{}", client.ip.as_deref().unwrap_or("unknown")),
    )?;
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
    meter(
        &req,
        &state,
        &format!("ip:{}", client.ip.as_deref().unwrap_or("unknown")),
    )?;
    state
        .store
        .auth()
        .end_session(&secret::storage_hash(&body.refresh_token), &client)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
