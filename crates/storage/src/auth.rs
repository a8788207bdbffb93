//! Authentication: organizations and their first owner, sign-in, sessions with rotating
//! refresh tokens, and resolving a credential to its user. These run before a request has an
//! `AuthContext`; everything after is tenant-first.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::access::OrganizationSettings;
use rapport_domain::identity::{
    Acceptance, ClientInfo, IdentityLogin, IdentityRef, KeyUse, Membership, NewMember,
    NewRefreshToken, OpenInvitation, Organization, Principal, RefreshOutcome, Rotated, User,
    audit_action,
};
use rapport_domain::store::AuthStore;
use rapport_domain::{Email, ObjectType, Role, StoreError};
use serde_json::json;
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::audit::AuditRecord;
use crate::error::unique_on;
use crate::rows::{OrganizationRow, UserRow, now, parse_scopes};

const SELECT_ORGANIZATION: &str = concat!(
    "select ",
    organization_columns!(),
    " from organizations where id = $1"
);
const SELECT_USER_BY_ID: &str = concat!("select ", user_columns!(), " from users where id = $1");
const INSERT_ORGANIZATION: &str = "insert into organizations \
     (id, name, settings, version, created_at, updated_at) values ($1, $2, $3, 1, $4, $4)";
/// A membership: `$9` is the login identity, `$3` its email.
pub(crate) const INSERT_USER: &str = "insert into users \
     (id, org_id, email, name, role, team_id, active, locale, timezone, identity_id, version, created_at, updated_at) \
     values ($1, $2, $3, $4, $5, $6, true, $7, $8, $9, 1, $10, $10)";
pub(crate) const INSERT_IDENTITY: &str = "insert into identities \
     (id, email, password_hash, created_at, updated_at) values ($1, $2, $3, $4, $4)";
pub(crate) const IDENTITY_EMAIL: &str = "select email from identities where id = $1";
const SELECT_IDENTITY: &str =
    "select id, password_hash from identities where lower(email) = lower($1)";
const SELECT_MEMBERSHIPS: &str = "select u.id, u.org_id, u.email, u.name, u.role, u.team_id, \
     u.active, u.locale, u.timezone, u.last_login_at, u.version, u.created_at, u.updated_at, \
     o.name as organization_name \
     from users u join organizations o on o.id = u.org_id where u.identity_id = $1 order by u.id";
const SELECT_FAILURES: &str =
    "select failed_at from login_failures where email = $1 and failed_at >= $2 order by failed_at";
const INSERT_FAILURE: &str = "insert into login_failures (email, failed_at) values ($1, $2)";
/// Failures older than a day no longer matter to the throttle.
const PRUNE_FAILURES: &str = "delete from login_failures where email = $1 and failed_at < $2";
const FORGET_FAILURES: &str = "delete from login_failures where email = $1";
const INSERT_SESSION: &str = "insert into sessions \
     (id, org_id, user_id, created_at, refreshed_at, ip, user_agent) values ($1, $2, $3, $4, $4, $5, $6)";
const INSERT_REFRESH: &str = "insert into refresh_tokens \
     (token_hash, org_id, session_id, issued_at, expires_at) values ($1, $2, $3, $4, $5)";
const NOTE_LOGIN: &str = "update users set last_login_at = $2 where id = $1";
const SELECT_SESSION_PRINCIPAL: &str = "select u.id, u.org_id, u.email, u.name, u.role, \
     u.team_id, u.active, u.locale, u.timezone, u.last_login_at, u.version, u.created_at, \
     u.updated_at, o.settings as org_settings \
     from sessions s join users u on u.id = s.user_id join organizations o on o.id = u.org_id \
     where s.id = $1 and u.id = $2 and u.org_id = $3 and s.revoked_at is null and u.active";
const SELECT_KEY_PRINCIPAL: &str = "select u.id, u.org_id, u.email, u.name, u.role, u.team_id, \
     u.active, u.locale, u.timezone, u.last_login_at, u.version, u.created_at, u.updated_at, \
     o.settings as org_settings, k.id as key_id, k.scopes as key_scopes, \
     k.expires_at as key_expires_at, k.last_used_at as key_last_used_at \
     from api_keys k join users u on u.id = k.user_id join organizations o on o.id = k.org_id \
     where k.secret_hash = $1 and k.revoked_at is null and u.active";
const TOUCH_KEY: &str = "update api_keys set last_used_at = $2 where id = $1";
const SELECT_PRESENTED: &str = "select t.session_id, t.expires_at, t.used_at, s.revoked_at, \
     s.org_id, s.user_id from refresh_tokens t join sessions s on s.id = t.session_id \
     where t.token_hash = $1";
const MARK_USED: &str =
    "update refresh_tokens set used_at = $2 where token_hash = $1 and used_at is null";
pub(crate) const REVOKE_SESSION: &str =
    "update sessions set revoked_at = $2 where id = $1 and revoked_at is null";
const NOTE_REFRESH: &str = "update sessions set refreshed_at = $2 where id = $1";
const SELECT_USER_PRINCIPAL: &str = "select u.id, u.org_id, u.email, u.name, u.role, \
     u.team_id, u.active, u.locale, u.timezone, u.last_login_at, u.version, u.created_at, \
     u.updated_at, o.settings as org_settings \
     from users u join organizations o on o.id = u.org_id where u.id = $1 and u.active";

#[derive(sqlx::FromRow)]
struct MembershipRow {
    #[sqlx(flatten)]
    user: UserRow,
    organization_name: String,
}

#[derive(sqlx::FromRow)]
struct PrincipalRow {
    #[sqlx(flatten)]
    user: UserRow,
    org_settings: Json<OrganizationSettings>,
}

impl TryFrom<PrincipalRow> for Principal {
    type Error = StoreError;
    fn try_from(row: PrincipalRow) -> Result<Self, StoreError> {
        Ok(Principal {
            user: User::try_from(row.user)?,
            settings: row.org_settings.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct KeyPrincipalRow {
    #[sqlx(flatten)]
    principal: PrincipalRow,
    key_id: Uuid,
    key_scopes: Json<Vec<String>>,
    key_expires_at: Option<DateTime<Utc>>,
    key_last_used_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct PresentedRow {
    session_id: Uuid,
    expires_at: DateTime<Utc>,
    used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    org_id: Uuid,
    user_id: Uuid,
}

fn login_audit(user: &User, action: &'static str, client: &ClientInfo) -> AuditRecord {
    AuditRecord {
        org_id: user.org_id,
        action,
        actor_id: Some(user.id),
        api_key_id: None,
        target: Some((ObjectType::User, user.id)),
        ip: client.ip.clone(),
        details: json!({ "user_agent": client.user_agent }),
    }
}

#[async_trait]
impl AuthStore for SqlStore {
    #[tracing::instrument(skip_all)]
    async fn create_organization(
        &self,
        name: String,
        owner: NewMember,
        client: &ClientInfo,
    ) -> Result<(Organization, User), StoreError> {
        let org_id = Uuid::now_v7();
        let user_id = Uuid::now_v7();
        let at = now();
        let settings = OrganizationSettings::default();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let (identity_id, email) = match &owner.identity {
                IdentityRef::Existing(id) => {
                    let email: String = sqlx::query_scalar(IDENTITY_EMAIL)
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?;
                    (*id, email)
                }
                IdentityRef::New {
                    email,
                    password_hash,
                } => {
                    let id = Uuid::now_v7();
                    sqlx::query(INSERT_IDENTITY)
                        .bind(id)
                        .bind(email.as_str())
                        .bind(password_hash)
                        .bind(at)
                        .execute(&mut *tx)
                        .await
                        .map_err(unique_on("email"))?;
                    (id, email.as_str().to_owned())
                }
            };
            sqlx::query(INSERT_ORGANIZATION)
                .bind(org_id)
                .bind(&name)
                .bind(Json(&settings))
                .bind(at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(crate::events::CREATE_SEQUENCE)
                .bind(org_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_USER)
                .bind(user_id)
                .bind(org_id)
                .bind(&email)
                .bind(&owner.name)
                .bind(Role::Owner.as_str())
                .bind(None::<Uuid>)
                .bind(&owner.locale)
                .bind(&owner.timezone)
                .bind(identity_id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(unique_on("email"))?;
            let organization: OrganizationRow = sqlx::query_as(SELECT_ORGANIZATION)
                .bind(org_id)
                .fetch_one(&mut *tx)
                .await?;
            let user: UserRow = sqlx::query_as(SELECT_USER_BY_ID)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await?;
            let user = User::try_from(user)?;
            insert_audit!(&mut *tx, login_audit(&user, audit_action::SIGNUP, client))?;
            tx.commit().await?;
            Ok((Organization::from(organization), user))
        })
    }

    #[tracing::instrument(skip_all)]
    async fn login_identity(&self, email: &Email) -> Result<Option<IdentityLogin>, StoreError> {
        on_db!(&self.db, read, |pool| {
            let identity: Option<(Uuid, String)> = sqlx::query_as(SELECT_IDENTITY)
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?;
            let Some((identity_id, password_hash)) = identity else {
                return Ok(None);
            };
            let rows: Vec<MembershipRow> = sqlx::query_as(SELECT_MEMBERSHIPS)
                .bind(identity_id)
                .fetch_all(pool)
                .await?;
            let memberships = rows
                .into_iter()
                .map(|row| {
                    Ok(Membership {
                        user: User::try_from(row.user)?,
                        organization_name: row.organization_name,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(Some(IdentityLogin {
                identity_id,
                password_hash,
                memberships,
            }))
        })
    }

    async fn open_invitation(
        &self,
        token_hash: &str,
    ) -> Result<Option<OpenInvitation>, StoreError> {
        crate::invitations::open(self, token_hash).await
    }

    async fn accept_invitation(
        &self,
        token_hash: &str,
        acceptance: Acceptance,
        client: &ClientInfo,
    ) -> Result<(Organization, User), StoreError> {
        let accepted = crate::invitations::accept(self, token_hash, acceptance, client).await;
        // A new member may act at once: answers kept from before are stale.
        self.principals.forget_all();
        accepted
    }

    #[tracing::instrument(skip_all)]
    async fn login_failures_since(
        &self,
        email: &Email,
        since: DateTime<Utc>,
    ) -> Result<Vec<DateTime<Utc>>, StoreError> {
        on_db!(&self.db, read, |pool| {
            let times: Vec<DateTime<Utc>> = sqlx::query_scalar(SELECT_FAILURES)
                .bind(email.normalized())
                .bind(since)
                .fetch_all(pool)
                .await?;
            Ok(times)
        })
    }

    #[tracing::instrument(skip_all)]
    async fn record_login_failure(
        &self,
        email: &Email,
        members: &[User],
        client: &ClientInfo,
    ) -> Result<(), StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(PRUNE_FAILURES)
                .bind(email.normalized())
                .bind(at - chrono::Duration::days(1))
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_FAILURE)
                .bind(email.normalized())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            for user in members {
                insert_audit!(
                    &mut *tx,
                    login_audit(user, audit_action::LOGIN_FAILED, client)
                )?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    #[tracing::instrument(skip_all, fields(user = %user.id))]
    async fn start_session(
        &self,
        user: &User,
        refresh: NewRefreshToken,
        client: &ClientInfo,
        audit: &str,
    ) -> Result<Uuid, StoreError> {
        let session_id = Uuid::now_v7();
        let at = now();
        let action = if audit == audit_action::SIGNUP {
            audit_action::SIGNUP
        } else {
            audit_action::LOGIN
        };
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query(INSERT_SESSION)
                .bind(session_id)
                .bind(user.org_id)
                .bind(user.id)
                .bind(at)
                .bind(&client.ip)
                .bind(&client.user_agent)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT_REFRESH)
                .bind(&refresh.hash)
                .bind(user.org_id)
                .bind(session_id)
                .bind(at)
                .bind(refresh.expires_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(NOTE_LOGIN)
                .bind(user.id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(FORGET_FAILURES)
                .bind(user.email.to_lowercase())
                .execute(&mut *tx)
                .await?;
            // Sign-up already audited the organization's creation.
            if action == audit_action::LOGIN {
                insert_audit!(&mut *tx, login_audit(user, action, client))?;
            }
            tx.commit().await?;
            Ok(session_id)
        })
    }

    async fn session_principal(
        &self,
        org_id: Uuid,
        user_id: Uuid,
        session_id: Uuid,
    ) -> Result<Option<Principal>, StoreError> {
        let key = (session_id, user_id, org_id);
        if let Some(principal) = self.principals.session(key) {
            return Ok(Some(principal));
        }
        let ticket = self.principals.ticket();
        let found = on_db!(&self.db, read, |pool| {
            let row: Option<PrincipalRow> = sqlx::query_as(SELECT_SESSION_PRINCIPAL)
                .bind(session_id)
                .bind(user_id)
                .bind(org_id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(Principal::try_from).transpose()?)
        })?;
        if let Some(principal) = &found {
            self.principals.keep_session(ticket, key, principal.clone());
        }
        Ok(found)
    }

    async fn api_key_principal(
        &self,
        secret_hash: &str,
    ) -> Result<Option<(Principal, KeyUse)>, StoreError> {
        if let Some(found) = self.principals.key(secret_hash) {
            return Ok(Some(found));
        }
        let ticket = self.principals.ticket();
        let found = on_db!(&self.db, read, |pool| {
            let row: Option<KeyPrincipalRow> = sqlx::query_as(SELECT_KEY_PRINCIPAL)
                .bind(secret_hash)
                .fetch_optional(pool)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let key = KeyUse {
                key_id: row.key_id,
                scopes: parse_scopes(&row.key_scopes.0)?,
                expires_at: row.key_expires_at,
                last_used_at: row.key_last_used_at,
            };
            Ok(Some((Principal::try_from(row.principal)?, key)))
        })?;
        if let Some(found) = &found {
            self.principals.keep_key(ticket, secret_hash, found.clone());
        }
        Ok(found)
    }

    async fn touch_api_key(&self, key_id: Uuid, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.principals.note_key_use(key_id, at);
        on_db!(&self.db, write, |pool| {
            sqlx::query(TOUCH_KEY)
                .bind(key_id)
                .bind(at)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    #[tracing::instrument(skip_all)]
    async fn rotate_refresh_token(
        &self,
        presented_hash: &str,
        next: NewRefreshToken,
        client: &ClientInfo,
    ) -> Result<RefreshOutcome, StoreError> {
        let at = now();
        let result = on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let presented: Option<PresentedRow> = sqlx::query_as(SELECT_PRESENTED)
                .bind(presented_hash)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(presented) = presented else {
                return Ok(RefreshOutcome::Invalid);
            };
            if presented.revoked_at.is_some() {
                return Ok(RefreshOutcome::Invalid);
            }
            let first_use = presented.used_at.is_none()
                && sqlx::query(MARK_USED)
                    .bind(presented_hash)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
            if !first_use {
                // A rotated token came back: someone else may hold the family. End it.
                sqlx::query(REVOKE_SESSION)
                    .bind(presented.session_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                let record = AuditRecord {
                    org_id: presented.org_id,
                    action: audit_action::REFRESH_REUSED,
                    actor_id: Some(presented.user_id),
                    api_key_id: None,
                    target: Some((ObjectType::User, presented.user_id)),
                    ip: client.ip.clone(),
                    details: json!({ "session_id": presented.session_id }),
                };
                insert_audit!(&mut *tx, record)?;
                tx.commit().await?;
                return Ok(RefreshOutcome::Reused);
            }
            if presented.expires_at < at {
                return Ok(RefreshOutcome::Invalid);
            }
            let principal: Option<PrincipalRow> = sqlx::query_as(SELECT_USER_PRINCIPAL)
                .bind(presented.user_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(principal) = principal else {
                return Ok(RefreshOutcome::Invalid);
            };
            sqlx::query(INSERT_REFRESH)
                .bind(&next.hash)
                .bind(presented.org_id)
                .bind(presented.session_id)
                .bind(at)
                .bind(next.expires_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(NOTE_REFRESH)
                .bind(presented.session_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let organization: OrganizationRow = sqlx::query_as(SELECT_ORGANIZATION)
                .bind(presented.org_id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(RefreshOutcome::Rotated(Box::new(Rotated {
                session_id: presented.session_id,
                principal: Principal::try_from(principal)?,
                organization: Organization::from(organization),
            })))
        });
        // Who may do what just changed (or may have): answers kept from before are stale.
        self.principals.forget_all();
        result
    }

    #[tracing::instrument(skip_all)]
    async fn end_session(&self, refresh_hash: &str, client: &ClientInfo) -> Result<(), StoreError> {
        let at = now();
        let result = on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let presented: Option<PresentedRow> = sqlx::query_as(SELECT_PRESENTED)
                .bind(refresh_hash)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(presented) = presented {
                let revoked = sqlx::query(REVOKE_SESSION)
                    .bind(presented.session_id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if revoked == 1 {
                    let record = AuditRecord {
                        org_id: presented.org_id,
                        action: audit_action::LOGOUT,
                        actor_id: Some(presented.user_id),
                        api_key_id: None,
                        target: Some((ObjectType::User, presented.user_id)),
                        ip: client.ip.clone(),
                        details: json!({ "session_id": presented.session_id }),
                    };
                    insert_audit!(&mut *tx, record)?;
                }
            }
            tx.commit().await?;
            Ok(())
        });
        // Who may do what just changed (or may have): answers kept from before are stale.
        self.principals.forget_all();
        result
    }

    async fn organization_of(&self, org_id: Uuid) -> Result<Organization, StoreError> {
        on_db!(&self.db, read, |pool| {
            let row: OrganizationRow = sqlx::query_as(SELECT_ORGANIZATION)
                .bind(org_id)
                .fetch_one(pool)
                .await?;
            Ok(Organization::from(row))
        })
    }
}
