//! What every worker shares: the store, the metrics, the generated API document.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web::Bytes;
use rapport_auth::Tokens;
use rapport_domain::Store;
use rapport_domain::webhook::target::TargetPolicy;

use crate::client_ip::TrustedProxies;
use crate::fallback::RouteTable;
use crate::metrics::Metrics;
use crate::passwords::{PasswordWork, PasswordWorkSettings};
use crate::ratelimit::{RateLimiter, RejectedKeys};

/// Which browser origins may call the API (CORS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all: only same-origin pages and non-browser clients.
    #[default]
    None,
    /// Any origin (`*`).
    Any,
    /// Exactly these origins, e.g. `https://app.example.com`.
    List(Vec<String>),
}

/// The HTTP layer's part of the configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    pub cors_origins: CorsOrigins,
    /// Whether `POST /v1/auth/signup` creates organizations.
    pub signup_open: bool,
    /// Requests per minute per user (all their keys and sessions together).
    pub rate_limit_per_minute: u32,
    /// Requests per minute per organization (all its users together).
    pub org_rate_limit_per_minute: u32,
    /// Requests per minute per client address without a valid credential: sign-up, sign-in,
    /// refresh, invitations, and credentials that turn out wrong.
    pub auth_rate_limit_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Live API keys a user may hold.
    pub api_keys_per_user: u32,
    /// Threads and queue of password hashing.
    pub password_work: PasswordWorkSettings,
    /// How long a refresh token stays valid without being used.
    pub refresh_token_ttl_days: i64,
    /// The largest file upload (CSV imports), in bytes.
    pub upload_limit: usize,
    /// An attempt with an idempotency key that has not answered after this many seconds is
    /// taken for crashed: a retry takes it over.
    pub idempotency_stale_seconds: i64,
    /// Days the change feed serves.
    pub change_retention_days: u32,
    /// Which webhook URLs are accepted (the delivery worker applies the same policy to the
    /// addresses it connects to).
    pub webhook_targets: TargetPolicy,
    /// How long a request body may send nothing before the request is answered 408.
    pub body_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            body_limit: 1024 * 1024,
            cors_origins: CorsOrigins::None,
            signup_open: true,
            rate_limit_per_minute: 6000,
            org_rate_limit_per_minute: 60_000,
            auth_rate_limit_per_minute: 60,
            trusted_proxies: TrustedProxies::default(),
            api_keys_per_user: 50,
            password_work: PasswordWorkSettings::default(),
            refresh_token_ttl_days: 30,
            upload_limit: 100 * 1024 * 1024,
            idempotency_stale_seconds: 60,
            change_retention_days: 30,
            webhook_targets: TargetPolicy::public_only(),
            body_timeout: Duration::from_secs(60),
        }
    }
}

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: HttpSettings,
    /// Issues and verifies access tokens.
    pub tokens: Tokens,
    /// Per user.
    pub limiter: RateLimiter,
    /// Per organization.
    pub org_limiter: RateLimiter,
    /// Per client address, for what comes without a valid credential.
    pub address_limiter: RateLimiter,
    /// API keys found unknown a moment ago.
    pub rejected_keys: RejectedKeys,
    /// Where passwords are hashed and checked.
    pub passwords: PasswordWork,
    pub metrics: Metrics,
    /// `GET /openapi.json`, serialised once.
    pub openapi_json: Bytes,
    /// Which methods each documented path answers, for 405 and `Allow`.
    pub routes: RouteTable,
}

/// The OpenAPI document as served, and the routes it lists.
pub struct ServedDocument {
    pub json: Bytes,
    pub routes: RouteTable,
}

impl AppState {
    /// `document` is what `GET /openapi.json` serves and what answers 405 (see
    /// [`crate::openapi::served`]); the state is built below the routes and the document.
    pub fn new(
        store: Arc<dyn Store>,
        settings: HttpSettings,
        tokens: Tokens,
        document: ServedDocument,
    ) -> Self {
        let ServedDocument {
            json: openapi_json,
            routes,
        } = document;
        AppState {
            store,
            limiter: RateLimiter::new(settings.rate_limit_per_minute),
            org_limiter: RateLimiter::new(settings.org_rate_limit_per_minute),
            address_limiter: RateLimiter::new(settings.auth_rate_limit_per_minute),
            rejected_keys: RejectedKeys::default(),
            passwords: PasswordWork::new(settings.password_work),
            settings,
            tokens,
            metrics: Metrics::default(),
            openapi_json,
            routes,
        }
    }
}
