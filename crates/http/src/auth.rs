//! Authentication and authorisation in the handler's signature: `Auth` resolves the bearer
//! credential (access token or API key) to an `AuthContext` and meters it; `Require<P>` adds
//! the permission policy and the key's scopes. Handlers never read the header themselves.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use chrono::Utc;
use rapport_auth::{TokenError, policy, secret};
use rapport_domain::identity::ClientInfo;
use rapport_domain::{Action, AuthContext, Credential, ObjectType};

use crate::client_ip::client_ip;
use crate::error::{ApiError, ErrorCode};
use crate::ratelimit::{Limited, RateLimitInfo};
use crate::state::AppState;

/// A key's `last_used_at` is written at most this often.
const TOUCH_EVERY_SECONDS: i64 = 60;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth(pub AuthContext);

fn unauthenticated(detail: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, detail)
        .with_header(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))
}

/// The bearer token of the request, or why there is none.
fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        unauthenticated("This endpoint needs a credential: send Authorization: Bearer <access token or API key>.")
    })?;
    let value = value
        .to_str()
        .map_err(|_| unauthenticated("The Authorization header is not readable text."))?;
    let (scheme, token) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| unauthenticated("The Authorization header must be `Bearer <token>`."))?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(unauthenticated(
            "The Authorization header must be `Bearer <token>`.",
        ));
    }
    Ok(token.to_owned())
}

/// The client's address and user agent, for sessions, the audit log and the address limits.
pub fn client_info(req: &HttpRequest) -> ClientInfo {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|state| &state.settings.trusted_proxies);
    let ip = match trusted {
        Some(trusted) => client_ip(req, trusted),
        None => req.peer_addr().map(|addr| addr.ip()),
    };
    ClientInfo {
        ip: ip.map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
    }
}

fn limited(limited: Limited, who: &str) -> ApiError {
    ApiError::new(
        ErrorCode::RateLimited,
        format!(
            "{who} made more than {} requests in a minute; retry in {} s.",
            limited.info.limit, limited.retry_after
        ),
    )
    .with_header(header::RETRY_AFTER, HeaderValue::from(limited.retry_after))
}

/// Takes one request from the budget of the client's address for requests without a valid
/// credential (sign-up, sign-in, refresh, invitations): the headers go on the response, or it
/// is a 429.
pub fn meter_address(
    req: &HttpRequest,
    state: &AppState,
    client: &ClientInfo,
) -> Result<(), ApiError> {
    let key = format!("ip:{}", client.ip.as_deref().unwrap_or("unknown"));
    match state.address_limiter.check(&key) {
        Ok(info) => {
            req.extensions_mut().insert(info);
            Ok(())
        }
        Err(refused) => {
            req.extensions_mut().insert(refused.info);
            Err(limited(refused, "This address"))
        }
    }
}

/// Takes one request from the user's budget (shared by all their keys and sessions) and one
/// from the organization's; the tighter of the two is told in the headers.
fn meter_caller(req: &HttpRequest, state: &AppState, ctx: &AuthContext) -> Result<(), ApiError> {
    let user = state.limiter.check(&format!("user:{}", ctx.user_id));
    let user = match user {
        Ok(info) => info,
        Err(refused) => {
            req.extensions_mut().insert(refused.info);
            return Err(limited(refused, "This user"));
        }
    };
    match state.org_limiter.check(&format!("org:{}", ctx.org_id)) {
        Ok(org) => {
            let tighter = if org.remaining < user.remaining {
                org
            } else {
                user
            };
            req.extensions_mut().insert(tighter);
            Ok(())
        }
        Err(refused) => {
            req.extensions_mut().insert(refused.info);
            Err(limited(refused, "This organization"))
        }
    }
}

/// Adds `RateLimit-*` headers to a response from what the meters noted on the request.
pub fn rate_limit_headers(info: &RateLimitInfo, headers: &mut header::HeaderMap) {
    for (name, value) in [
        ("ratelimit-limit", u64::from(info.limit)),
        ("ratelimit-remaining", u64::from(info.remaining)),
        ("ratelimit-reset", info.reset),
    ] {
        headers.insert(
            header::HeaderName::from_static(name),
            HeaderValue::from(value),
        );
    }
}

/// A caller already authenticated by a middleware (the idempotency layer), for the
/// extractors to take instead of authenticating again.
#[derive(Debug, Clone)]
pub struct Authenticated(pub AuthContext);

/// A credential that names nothing (an unknown key, a forged token): it costs its address a
/// request of the budget for unauthenticated requests, so that guessing keys or tokens is as
/// slow as guessing passwords.
fn refuse(state: &AppState, address: &str, detail: &str) -> ApiError {
    let _ = state.address_limiter.check(address);
    unauthenticated(detail)
}

pub(crate) async fn authenticate(req: HttpRequest) -> Result<AuthContext, ApiError> {
    if let Some(Authenticated(ctx)) = req.extensions().get::<Authenticated>() {
        return Ok(ctx.clone());
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal("AppState is not registered"))?;
    let token = bearer(&req)?;
    let ip = client_info(&req).ip;
    let address = format!("bad:{}", ip.as_deref().unwrap_or("unknown"));

    if token.starts_with(secret::API_KEY_PREFIX) {
        let hash = secret::storage_hash(&token);
        // A key found wrong a moment ago is answered from memory: a client stuck on a revoked
        // key costs neither a lookup nor its address's budget.
        if state.rejected_keys.contains(&hash) {
            return Err(unauthenticated(
                "The API key is unknown, revoked or expired.",
            ));
        }
        // An address that keeps presenting new unknown keys (guessing) gets no more lookups
        // for a while.
        if let Err(retry_after) = state.address_limiter.room(&address) {
            return Err(ApiError::new(
                ErrorCode::RateLimited,
                format!(
                    "Too many unknown credentials from this address; retry in {retry_after} s."
                ),
            )
            .with_header(header::RETRY_AFTER, HeaderValue::from(retry_after)));
        }
        let Some((principal, key)) = state.store.auth().api_key_principal(&hash).await? else {
            state.rejected_keys.insert(&hash);
            return Err(refuse(
                &state,
                &address,
                "The API key is unknown or has been revoked.",
            ));
        };
        let now = Utc::now();
        if key.expires_at.is_some_and(|at| at <= now) {
            state.rejected_keys.insert(&hash);
            return Err(refuse(&state, &address, "The API key has expired."));
        }
        let stale = key
            .last_used_at
            .is_none_or(|at| (now - at).num_seconds() >= TOUCH_EVERY_SECONDS);
        if stale {
            // Best effort: a failed note of use must not fail the request.
            if let Err(error) = state.store.auth().touch_api_key(key.key_id, now).await {
                tracing::warn!(%error, "cannot note the API key's use");
            }
        }
        let ctx = AuthContext {
            org_id: principal.user.org_id,
            user_id: principal.user.id,
            role: principal.user.role,
            team_id: principal.user.team_id,
            credential: Credential::ApiKey {
                key_id: key.key_id,
                scopes: key.scopes,
                expires_at: key.expires_at,
            },
            settings: principal.settings,
            ip,
            idempotency: None,
            import: None,
        };
        meter_caller(&req, &state, &ctx)?;
        return Ok(ctx);
    }

    let claims = match state.tokens.verify(&token) {
        Ok(claims) => claims,
        // An expired token is a normal turn of a client's life, not a guess.
        Err(TokenError::Expired) => {
            return Err(unauthenticated("The access token has expired; refresh it."));
        }
        Err(_) => return Err(refuse(&state, &address, "The access token is not valid.")),
    };
    let principal = state
        .store
        .auth()
        .session_principal(claims.org, claims.sub, claims.sid)
        .await?
        .ok_or_else(|| {
            unauthenticated(
                "The session has ended or the user has been deactivated; sign in again.",
            )
        })?;
    let ctx = AuthContext {
        org_id: principal.user.org_id,
        user_id: principal.user.id,
        role: principal.user.role,
        team_id: principal.user.team_id,
        credential: Credential::Session {
            session_id: claims.sid,
        },
        settings: principal.settings,
        ip,
        idempotency: None,
        import: None,
    };
    meter_caller(&req, &state, &ctx)?;
    Ok(ctx)
}

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(req).await.map(Auth) })
    }
}

/// A permission: an action on an object type.
pub trait Permission {
    const ACTION: Action;
    const OBJECT: ObjectType;
}

/// Marker types naming object types in signatures: `Require<Read<obj::User>>`.
pub mod obj {
    use rapport_domain::ObjectType;

    pub trait Object {
        const TYPE: ObjectType;
    }

    macro_rules! objects {
        ($($name:ident),*) => {
            $(
                pub struct $name;
                impl Object for $name {
                    const TYPE: ObjectType = ObjectType::$name;
                }
            )*
        };
    }

    objects!(
        Organization,
        User,
        Team,
        ApiKey,
        AuditLog,
        CustomField,
        Contact,
        Company,
        Product,
        Order,
        Webhook,
        Import,
        Export
    );
}

pub struct Read<O>(PhantomData<O>);
pub struct Create<O>(PhantomData<O>);
pub struct Update<O>(PhantomData<O>);
pub struct Delete<O>(PhantomData<O>);

macro_rules! actions {
    ($($marker:ident => $action:ident),*) => {
        $(
            impl<O: obj::Object> Permission for $marker<O> {
                const ACTION: Action = Action::$action;
                const OBJECT: ObjectType = O::TYPE;
            }
        )*
    };
}

actions!(Read => Read, Create => Create, Update => Update, Delete => Delete);

/// The authenticated caller, allowed `P` by the policy and, for an API key, by its scopes.
pub struct Require<P: Permission> {
    pub ctx: AuthContext,
    permission: PhantomData<P>,
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "delete",
    }
}

/// Whether the context may do `action` on `object`: the role's policy, then the key's scopes.
pub fn check(ctx: &AuthContext, action: Action, object: ObjectType) -> Result<(), ApiError> {
    if !policy::permits(ctx.role, action, object) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "The {} role may not {} {object} records.",
                ctx.role,
                action_name(action)
            ),
        ));
    }
    if let Credential::ApiKey { scopes, .. } = &ctx.credential
        && !scopes.iter().any(|scope| scope.allows(action, object))
    {
        let granted: Vec<String> = scopes.iter().map(ToString::to_string).collect();
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "This API key's scopes ({}) do not allow {} on {object}.",
                granted.join(", "),
                action_name(action)
            ),
        ));
    }
    Ok(())
}

impl<P: Permission + 'static> FromRequest for Require<P> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let ctx = authenticate(req).await?;
            check(&ctx, P::ACTION, P::OBJECT)?;
            Ok(Require {
                ctx,
                permission: PhantomData,
            })
        })
    }
}
