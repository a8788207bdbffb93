//! Rows as the database returns them, and their conversion into domain entities. The same
//! structs decode on SQLite and PostgreSQL.

use chrono::{DateTime, SubsecRound, Utc};
use rapport_domain::access::OrganizationSettings;
use rapport_domain::identity::{ApiKey, AuditEntry, Organization, Team, User};
use rapport_domain::{Role, Scope, StoreError};
use sqlx::types::Json;
use uuid::Uuid;

/// Now, truncated to microseconds: what PostgreSQL keeps, so both backends agree.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::internal(format!("unreadable {what} in the database: {detail}"))
}

/// Column lists as literal macros, so queries are `concat!`-ed `&'static str`s.
macro_rules! organization_columns {
    () => {
        "id, name, settings, version, created_at, updated_at"
    };
}
macro_rules! user_columns {
    () => {
        "id, org_id, email, name, role, team_id, active, locale, timezone, last_login_at, \
         version, created_at, updated_at"
    };
}
macro_rules! team_columns {
    () => {
        "id, org_id, name, manager_id, version, created_at, updated_at"
    };
}
macro_rules! api_key_columns {
    () => {
        "id, org_id, user_id, name, prefix, scopes, expires_at, last_used_at, created_at"
    };
}
macro_rules! audit_columns {
    () => {
        "id, org_id, occurred_at, action, actor_id, api_key_id, target_type, target_id, ip, details"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct OrganizationRow {
    id: Uuid,
    name: String,
    settings: Json<OrganizationSettings>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<OrganizationRow> for Organization {
    fn from(row: OrganizationRow) -> Self {
        Organization {
            id: row.id,
            name: row.name,
            settings: row.settings.0,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    org_id: Uuid,
    email: String,
    name: String,
    role: String,
    team_id: Option<Uuid>,
    active: bool,
    locale: Option<String>,
    timezone: Option<String>,
    last_login_at: Option<DateTime<Utc>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            role: row.role.parse::<Role>().map_err(|e| corrupt("role", e))?,
            id: row.id,
            org_id: row.org_id,
            email: row.email,
            name: row.name,
            team_id: row.team_id,
            active: row.active,
            locale: row.locale,
            timezone: row.timezone,
            last_login_at: row.last_login_at,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub(crate) fn users(rows: Vec<UserRow>) -> Result<Vec<User>, StoreError> {
    rows.into_iter().map(User::try_from).collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct TeamRow {
    id: Uuid,
    org_id: Uuid,
    name: String,
    manager_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<TeamRow> for Team {
    fn from(row: TeamRow) -> Self {
        Team {
            id: row.id,
            org_id: row.org_id,
            name: row.name,
            manager_id: row.manager_id,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    id: Uuid,
    org_id: Uuid,
    user_id: Uuid,
    name: String,
    prefix: String,
    scopes: Json<Vec<String>>,
    expires_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

pub(crate) fn parse_scopes(scopes: &[String]) -> Result<Vec<Scope>, StoreError> {
    scopes
        .iter()
        .map(|s| s.parse::<Scope>().map_err(|e| corrupt("scope", e)))
        .collect()
}

pub(crate) fn scope_texts(scopes: &[Scope]) -> Json<Vec<String>> {
    Json(scopes.iter().map(ToString::to_string).collect())
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(row: ApiKeyRow) -> Result<Self, StoreError> {
        Ok(ApiKey {
            scopes: parse_scopes(&row.scopes.0)?,
            id: row.id,
            org_id: row.org_id,
            user_id: row.user_id,
            name: row.name,
            prefix: row.prefix,
            expires_at: row.expires_at,
            last_used_at: row.last_used_at,
            created_at: row.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AuditRow {
    id: Uuid,
    org_id: Uuid,
    occurred_at: DateTime<Utc>,
    action: String,
    actor_id: Option<Uuid>,
    api_key_id: Option<Uuid>,
    target_type: Option<String>,
    target_id: Option<Uuid>,
    ip: Option<String>,
    details: Json<serde_json::Value>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(row: AuditRow) -> Result<Self, StoreError> {
        Ok(AuditEntry {
            target_type: row
                .target_type
                .map(|t| t.parse().map_err(|e| corrupt("object type", e)))
                .transpose()?,
            id: row.id,
            org_id: row.org_id,
            occurred_at: row.occurred_at,
            action: row.action,
            actor_id: row.actor_id,
            api_key_id: row.api_key_id,
            target_id: row.target_id,
            ip: row.ip,
            details: row.details.0,
        })
    }
}
