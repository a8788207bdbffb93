//! Invitations: how a person joins an organization. An admin invites an address; whoever holds
//! the token accepts with their own password — the password of the login the address already
//! has, or a new one for an address nobody has yet. No organization ever sets or learns a
//! person's password, and inviting reveals nothing about other organizations.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::identity::{
    Acceptance, ClientInfo, IdentityRef, Invitation, NewInvitation, OpenInvitation, Organization,
    User, audit_action,
};
use rapport_domain::page::{Cursor, Page, PageRequest};
use rapport_domain::store::InvitationStore;
use rapport_domain::{AuthContext, ObjectType, Role, StoreError};
use serde_json::json;
use uuid::Uuid;

use crate::SqlStore;
use crate::audit::AuditRecord;
use crate::auth::{IDENTITY_EMAIL, INSERT_IDENTITY, INSERT_USER};
use crate::error::unique_on;
use crate::rows::{OrganizationRow, UserRow, now};

pub(crate) const INVITATION_SORT: &str = "id";

macro_rules! invitation_columns {
    () => {
        "id, org_id, email, name, role, team_id, invited_by, expires_at, accepted_at, user_id, \
         revoked_at, created_at"
    };
}

const SELECT: &str = concat!(
    "select ",
    invitation_columns!(),
    " from invitations where org_id = $1 and id = $2"
);
const LIST: &str = concat!(
    "select ",
    invitation_columns!(),
    " from invitations where org_id = $1 and ($2 or id > $3) order by id limit $4"
);
const COUNT: &str = "select count(*) from invitations where org_id = $1";
const INSERT: &str = "insert into invitations \
     (id, org_id, email, name, role, team_id, token_hash, invited_by, expires_at, created_at) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
const TEAM_EXISTS: &str = "select count(*) from teams where org_id = $1 and id = $2";
const MEMBER_EXISTS: &str =
    "select count(*) from users where org_id = $1 and lower(email) = lower($2)";
/// Open invitations of an address are replaced by a new one.
const REVOKE_OPEN_FOR_EMAIL: &str = "update invitations set revoked_at = $3 \
     where org_id = $1 and lower(email) = lower($2) and accepted_at is null and revoked_at is null";
const REVOKE: &str = "update invitations set revoked_at = $3 \
     where org_id = $1 and id = $2 and accepted_at is null and revoked_at is null";
const SELECT_OPEN: &str = concat!(
    "select ",
    invitation_columns!(),
    " from invitations where token_hash = $1 and accepted_at is null and revoked_at is null \
     and expires_at > $2"
);
const SELECT_BY_TOKEN: &str = concat!(
    "select ",
    invitation_columns!(),
    " from invitations where token_hash = $1"
);
/// Taking the invitation is the first write of an acceptance: of two at once, one wins.
const TAKE: &str = "update invitations set accepted_at = $2 \
     where token_hash = $1 and accepted_at is null and revoked_at is null and expires_at > $2";
const NOTE_MEMBER: &str = "update invitations set user_id = $2 where token_hash = $1";
const SELECT_IDENTITY: &str =
    "select id, password_hash from identities where lower(email) = lower($1)";
const SELECT_ORGANIZATION: &str = concat!(
    "select ",
    organization_columns!(),
    " from organizations where id = $1"
);
const SELECT_USER: &str = concat!("select ", user_columns!(), " from users where id = $1");

#[derive(sqlx::FromRow)]
struct InvitationRow {
    id: Uuid,
    org_id: Uuid,
    email: String,
    name: Option<String>,
    role: String,
    team_id: Option<Uuid>,
    invited_by: Uuid,
    expires_at: DateTime<Utc>,
    accepted_at: Option<DateTime<Utc>>,
    user_id: Option<Uuid>,
    revoked_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl TryFrom<InvitationRow> for Invitation {
    type Error = StoreError;
    fn try_from(row: InvitationRow) -> Result<Self, StoreError> {
        Ok(Invitation {
            role: row.role.parse::<Role>().map_err(StoreError::internal)?,
            id: row.id,
            org_id: row.org_id,
            email: row.email,
            name: row.name,
            team_id: row.team_id,
            invited_by: row.invited_by,
            expires_at: row.expires_at,
            accepted_at: row.accepted_at,
            user_id: row.user_id,
            revoked_at: row.revoked_at,
            created_at: row.created_at,
        })
    }
}

fn invitation_cursor(invitation: &Invitation) -> Cursor {
    Cursor::new(INVITATION_SORT, Vec::new(), invitation.id)
}

#[async_trait]
impl InvitationStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(
        &self,
        ctx: &AuthContext,
        page: &PageRequest,
    ) -> Result<Page<Invitation>, StoreError> {
        let after = page.after.as_ref().map(|c| c.id);
        on_db!(&self.db, read, |pool| {
            let rows: Vec<InvitationRow> = sqlx::query_as(LIST)
                .bind(ctx.org_id)
                .bind(after.is_none())
                .bind(after.unwrap_or_default())
                .bind(i64::from(page.limit) + 1)
                .fetch_all(pool)
                .await?;
            let total = if page.with_total {
                Some(
                    sqlx::query_scalar::<_, i64>(COUNT)
                        .bind(ctx.org_id)
                        .fetch_one(pool)
                        .await?,
                )
            } else {
                None
            };
            let invitations = rows
                .into_iter()
                .map(Invitation::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_rows(
                invitations,
                page.limit,
                invitation_cursor,
                total,
            ))
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, invitation = %id))]
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Invitation, StoreError> {
        on_db!(&self.db, read, |pool| {
            let row: InvitationRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(Invitation::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn create(
        &self,
        ctx: &AuthContext,
        invitation: NewInvitation,
    ) -> Result<Invitation, StoreError> {
        let id = Uuid::now_v7();
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            if let Some(team) = invitation.team_id {
                let found: i64 = sqlx::query_scalar(TEAM_EXISTS)
                    .bind(ctx.org_id)
                    .bind(team)
                    .fetch_one(&mut *tx)
                    .await?;
                if found == 0 {
                    return Err(StoreError::InvalidReference {
                        field: "team_id".into(),
                    }
                    .into());
                }
            }
            let members: i64 = sqlx::query_scalar(MEMBER_EXISTS)
                .bind(ctx.org_id)
                .bind(invitation.email.as_str())
                .fetch_one(&mut *tx)
                .await?;
            if members > 0 {
                return Err(StoreError::Conflict {
                    field: Some("email".into()),
                }
                .into());
            }
            sqlx::query(REVOKE_OPEN_FOR_EMAIL)
                .bind(ctx.org_id)
                .bind(invitation.email.as_str())
                .bind(at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(INSERT)
                .bind(id)
                .bind(ctx.org_id)
                .bind(invitation.email.as_str())
                .bind(&invitation.name)
                .bind(invitation.role.as_str())
                .bind(invitation.team_id)
                .bind(&invitation.token_hash)
                .bind(ctx.user_id)
                .bind(invitation.expires_at)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::USER_INVITED)
                    .details(json!({ "invitation_id": id, "email": invitation.email.as_str(), "role": invitation.role.as_str() }))
            )?;
            let row: InvitationRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Invitation::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, invitation = %id))]
    async fn revoke(&self, ctx: &AuthContext, id: Uuid) -> Result<(), StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let revoked = sqlx::query(REVOKE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if revoked == 0 {
                return Err(StoreError::NotFound.into());
            }
            insert_audit!(
                &mut *tx,
                AuditRecord::by(ctx, audit_action::INVITATION_REVOKED)
                    .details(json!({ "invitation_id": id }))
            )?;
            tx.commit().await?;
            Ok(())
        })
    }
}

/// The pending invitation with this token, and the login its address has.
pub(crate) async fn open(
    store: &SqlStore,
    token_hash: &str,
) -> Result<Option<OpenInvitation>, StoreError> {
    let at = now();
    on_db!(&store.db, read, |pool| {
        let row: Option<InvitationRow> = sqlx::query_as(SELECT_OPEN)
            .bind(token_hash)
            .bind(at)
            .fetch_optional(pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let invitation = Invitation::try_from(row)?;
        let identity: Option<(Uuid, String)> = sqlx::query_as(SELECT_IDENTITY)
            .bind(&invitation.email)
            .fetch_optional(pool)
            .await?;
        Ok(Some(OpenInvitation {
            invitation,
            identity,
        }))
    })
}

/// Takes the invitation and makes the membership (and the identity, when new).
pub(crate) async fn accept(
    store: &SqlStore,
    token_hash: &str,
    acceptance: Acceptance,
    client: &ClientInfo,
) -> Result<(Organization, User), StoreError> {
    let at = now();
    let user_id = Uuid::now_v7();
    on_db!(&store.db, write, |pool| {
        let mut tx = pool.begin().await?;
        let taken = sqlx::query(TAKE)
            .bind(token_hash)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken == 0 {
            return Err(StoreError::NotFound.into());
        }
        let invitation: InvitationRow = sqlx::query_as(SELECT_BY_TOKEN)
            .bind(token_hash)
            .fetch_one(&mut *tx)
            .await?;
        let invitation = Invitation::try_from(invitation)?;
        let identity_id = match &acceptance.identity {
            IdentityRef::Existing(id) => {
                let email: String = sqlx::query_scalar(IDENTITY_EMAIL)
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
                if !email.eq_ignore_ascii_case(&invitation.email) {
                    return Err(StoreError::NotFound.into());
                }
                *id
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
                id
            }
        };
        sqlx::query(INSERT_USER)
            .bind(user_id)
            .bind(invitation.org_id)
            .bind(&invitation.email)
            .bind(&acceptance.name)
            .bind(invitation.role.as_str())
            .bind(invitation.team_id)
            .bind(None::<String>)
            .bind(None::<String>)
            .bind(identity_id)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(unique_on("email"))?;
        sqlx::query(NOTE_MEMBER)
            .bind(token_hash)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let record = AuditRecord {
            org_id: invitation.org_id,
            action: audit_action::USER_CREATED,
            actor_id: Some(user_id),
            api_key_id: None,
            target: Some((ObjectType::User, user_id)),
            ip: client.ip.clone(),
            details: json!({
                "invitation_id": invitation.id,
                "invited_by": invitation.invited_by,
                "role": invitation.role.as_str(),
            }),
        };
        insert_audit!(&mut *tx, record)?;
        let organization: OrganizationRow = sqlx::query_as(SELECT_ORGANIZATION)
            .bind(invitation.org_id)
            .fetch_one(&mut *tx)
            .await?;
        let user: UserRow = sqlx::query_as(SELECT_USER)
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((Organization::from(organization), User::try_from(user)?))
    })
}
