//! What sign-up, sign-in and accepting an invitation share: the failed sign-in throttle, the
//! password check of a login identity, and starting a session with its tokens.

use actix_web::http::header::{self, HeaderValue};
use chrono::{Duration, Utc};
use rapport_auth::{password, secret};
use rapport_domain::Email;
use rapport_domain::identity::{ClientInfo, NewRefreshToken, Organization, User};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ErrorCode};
use crate::routes::organization::OrganizationBody;
use crate::routes::users::UserBody;
use crate::state::AppState;

/// Failed sign-ins per email that trigger the throttle, and the window they are counted in.
const LOGIN_FAILURES_ALLOWED: usize = 10;
const LOGIN_WINDOW_MINUTES: i64 = 15;

/// The answer to sign-up, sign-in, refresh and accepting an invitation.
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

/// 429 `login_throttled` when `email` had too many failed sign-ins lately.
pub async fn check_throttle(state: &AppState, email: &Email) -> Result<(), ApiError> {
    let now = Utc::now();
    let failures = state
        .store
        .auth()
        .login_failures_since(email, now - Duration::minutes(LOGIN_WINDOW_MINUTES))
        .await?;
    if failures.len() < LOGIN_FAILURES_ALLOWED {
        return Ok(());
    }
    // Room for one more attempt when the oldest failure that keeps the count at the limit
    // leaves the window.
    let oldest_that_counts = failures[failures.len() - LOGIN_FAILURES_ALLOWED];
    let retry_after = (oldest_that_counts + Duration::minutes(LOGIN_WINDOW_MINUTES) - now)
        .num_seconds()
        .max(1);
    Err(ApiError::new(
        ErrorCode::LoginThrottled,
        format!("Too many failed sign-ins for this email; retry in {retry_after} s."),
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after)))
}

/// Whether `plain` is the password of `hash`; with no hash (an email nobody has) it spends the
/// time a check costs and answers false, so that timing tells nothing.
pub async fn password_matches(
    state: &AppState,
    plain: String,
    hash: Option<String>,
) -> Result<bool, ApiError> {
    match hash {
        Some(hash) if plain.len() <= password::MAX_BYTES => {
            state.passwords.verify(plain, hash).await
        }
        _ => {
            state.passwords.verify_against_nothing(plain).await?;
            Ok(false)
        }
    }
}

/// Records a failed sign-in for `email` (audited in each organization of `members`) and
/// answers what the client is told.
pub async fn refuse(
    state: &AppState,
    email: &Email,
    members: &[User],
    client: &ClientInfo,
) -> ApiError {
    if let Err(error) = state
        .store
        .auth()
        .record_login_failure(email, members, client)
        .await
    {
        return ApiError::from(error);
    }
    ApiError::new(
        ErrorCode::InvalidCredentials,
        "The email or password is wrong.",
    )
}

/// Issues an access token and a refresh token for a new session of `user`.
pub async fn start_session(
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

/// The tokens of `session_id`.
pub fn token_response(
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
