//! Organizations, users, teams, sessions, API keys and the audit log.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::access::{OrganizationSettings, Role, Scope};
use crate::email::Email;
use crate::object::ObjectType;

#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    pub settings: OrganizationSettings,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub team_id: Option<Uuid>,
    pub active: bool,
    pub locale: Option<String>,
    pub timezone: Option<String>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Team {
    pub id: Uuid,
    pub org_id: Uuid,
    pub name: String,
    pub manager_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: Uuid,
    pub org_id: Uuid,
    /// The user the key acts as.
    pub user_id: Uuid,
    pub name: String,
    /// The first characters of the secret, to recognise a key without revealing it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: Uuid,
    pub org_id: Uuid,
    pub occurred_at: DateTime<Utc>,
    pub action: String,
    /// The user who acted (for a failed sign-in: the user whose email was tried).
    pub actor_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub target_type: Option<ObjectType>,
    pub target_id: Option<Uuid>,
    pub ip: Option<String>,
    pub details: Value,
}

/// The audit actions Rapport records.
pub mod audit_action {
    pub const SIGNUP: &str = "auth.signup";
    pub const LOGIN: &str = "auth.login";
    pub const LOGIN_FAILED: &str = "auth.login_failed";
    pub const LOGOUT: &str = "auth.logout";
    pub const REFRESH_REUSED: &str = "auth.refresh_reused";
    pub const PASSWORD_CHANGED: &str = "user.password_changed";
    pub const USER_CREATED: &str = "user.created";
    pub const ROLE_CHANGED: &str = "user.role_changed";
    pub const USER_DEACTIVATED: &str = "user.deactivated";
    pub const USER_ACTIVATED: &str = "user.activated";
    pub const OWNERSHIP_TRANSFERRED: &str = "user.ownership_transferred";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REVOKED: &str = "api_key.revoked";
    pub const ORGANIZATION_UPDATED: &str = "organization.updated";
    pub const WEBHOOK_CREATED: &str = "webhook.created";
    pub const WEBHOOK_UPDATED: &str = "webhook.updated";
    pub const WEBHOOK_DELETED: &str = "webhook.deleted";
    pub const WEBHOOK_SECRET_ROTATED: &str = "webhook.secret_rotated";
    /// By Rapport: the receiver answered 410 Gone.
    pub const WEBHOOK_DISABLED: &str = "webhook.disabled";

    pub const ALL: [&str; 19] = [
        SIGNUP,
        LOGIN,
        LOGIN_FAILED,
        LOGOUT,
        REFRESH_REUSED,
        PASSWORD_CHANGED,
        USER_CREATED,
        ROLE_CHANGED,
        USER_DEACTIVATED,
        USER_ACTIVATED,
        OWNERSHIP_TRANSFERRED,
        API_KEY_CREATED,
        API_KEY_REVOKED,
        ORGANIZATION_UPDATED,
        WEBHOOK_CREATED,
        WEBHOOK_UPDATED,
        WEBHOOK_DELETED,
        WEBHOOK_SECRET_ROTATED,
        WEBHOOK_DISABLED,
    ];
}

/// A user to create; the password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub team_id: Option<Uuid>,
    pub password_hash: String,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

/// Changes to a user; `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub team_id: Option<Option<Uuid>>,
    pub active: Option<bool>,
    pub locale: Option<Option<String>>,
    pub timezone: Option<Option<String>>,
}

#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub team_id: Option<Uuid>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct NewTeam {
    pub name: String,
    pub manager_id: Option<Uuid>,
}

#[derive(Debug, Clone, Default)]
pub struct TeamPatch {
    pub name: Option<String>,
    pub manager_id: Option<Option<Uuid>>,
}

/// Changes to the organization, merged into the current settings in the store's transaction.
#[derive(Debug, Clone, Default)]
pub struct OrganizationPatch {
    pub name: Option<String>,
    /// Only the objects named change.
    pub record_visibility: std::collections::BTreeMap<ObjectType, crate::access::Visibility>,
    /// `Some(None)` clears the region.
    pub default_phone_region: Option<Option<String>>,
}

/// A key to store: only the hash of the secret is kept.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub prefix: String,
    pub secret_hash: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor_id: Option<Uuid>,
    pub action: Option<String>,
    pub after: Option<DateTime<Utc>>,
    pub before: Option<DateTime<Utc>>,
}

/// A refresh token to store: its hash and when it stops working.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub hash: String,
    pub expires_at: DateTime<Utc>,
}

/// Where a session starts, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// The user behind a valid credential, with what the request context needs.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub settings: OrganizationSettings,
}

/// A valid API key's facts, checked by the caller.
#[derive(Debug, Clone)]
pub struct KeyUse {
    pub key_id: Uuid,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A successful rotation: the session and its user and organization.
#[derive(Debug, Clone)]
pub struct Rotated {
    pub session_id: Uuid,
    pub principal: Principal,
    pub organization: Organization,
}

/// What presenting a refresh token led to.
#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    /// Rotated: the new token is stored; here is the session and its user.
    Rotated(Box<Rotated>),
    /// The token had already been rotated: its whole family is now revoked.
    Reused,
    /// Unknown, expired, or its session or user is no longer valid.
    Invalid,
}

/// A login attempt's user and password hash.
#[derive(Debug, Clone)]
pub struct LoginCandidate {
    pub user: User,
    pub password_hash: String,
}

/// How many records of each owned object a transfer moved.
pub type TransferCounts = std::collections::BTreeMap<ObjectType, u64>;

/// The objects that have an owner. `team` is owned by its manager.
pub const OWNED_OBJECTS: &[ObjectType] =
    &[ObjectType::Team, ObjectType::Company, ObjectType::Contact];
