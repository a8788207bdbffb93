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
    pub const USER_INVITED: &str = "user.invited";
    pub const INVITATION_REVOKED: &str = "user.invitation_revoked";
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

    pub const ALL: [&str; 21] = [
        SIGNUP,
        LOGIN,
        LOGIN_FAILED,
        LOGOUT,
        REFRESH_REUSED,
        PASSWORD_CHANGED,
        USER_CREATED,
        USER_INVITED,
        INVITATION_REVOKED,
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

/// Whose login a new membership is: an identity that exists (its password already checked
/// by the caller) or a new one with the person's own password, already hashed.
#[derive(Debug, Clone)]
pub enum IdentityRef {
    Existing(Uuid),
    New { email: Email, password_hash: String },
}

/// A membership to create (a user of an organization) for a login identity.
#[derive(Debug, Clone)]
pub struct NewMember {
    pub identity: IdentityRef,
    pub name: String,
    pub role: Role,
    pub team_id: Option<Uuid>,
    pub locale: Option<String>,
    pub timezone: Option<String>,
}

/// A login identity found by its email: the password hash and every membership.
#[derive(Debug, Clone)]
pub struct IdentityLogin {
    pub identity_id: Uuid,
    pub password_hash: String,
    /// Active and deactivated, oldest first.
    pub memberships: Vec<Membership>,
}

/// A user of an organization, with the organization's name (to choose one at sign-in).
#[derive(Debug, Clone)]
pub struct Membership {
    pub user: User,
    pub organization_name: String,
}

/// An invitation to join an organization. Its token is never stored, only its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub id: Uuid,
    pub org_id: Uuid,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub team_id: Option<Uuid>,
    pub invited_by: Uuid,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// The membership it became.
    pub user_id: Option<Uuid>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Where an invitation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Revoked,
    Expired,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Accepted => "accepted",
            InvitationStatus::Revoked => "revoked",
            InvitationStatus::Expired => "expired",
        }
    }
}

impl Invitation {
    pub fn status(&self, now: DateTime<Utc>) -> InvitationStatus {
        if self.accepted_at.is_some() {
            InvitationStatus::Accepted
        } else if self.revoked_at.is_some() {
            InvitationStatus::Revoked
        } else if self.expires_at <= now {
            InvitationStatus::Expired
        } else {
            InvitationStatus::Pending
        }
    }
}

/// An invitation to store: only the token's hash is kept.
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub email: Email,
    pub name: Option<String>,
    pub role: Role,
    pub team_id: Option<Uuid>,
    pub token_hash: String,
    pub expires_at: DateTime<Utc>,
}

/// A pending invitation found by its token, with the login its address already has (id and
/// password hash), if any.
#[derive(Debug, Clone)]
pub struct OpenInvitation {
    pub invitation: Invitation,
    pub identity: Option<(Uuid, String)>,
}

/// Accepting an invitation: whose login, and the member's name.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub identity: IdentityRef,
    pub name: String,
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

/// How many records of each owned object a transfer moved.
pub type TransferCounts = std::collections::BTreeMap<ObjectType, u64>;

/// The objects that have an owner. `team` is owned by its manager.
pub const OWNED_OBJECTS: &[ObjectType] =
    &[ObjectType::Team, ObjectType::Company, ObjectType::Contact];
