//! Invitations: how someone joins an organization. Owners and admins invite an address; the
//! token, shown once, goes to the person (Rapport sends no mail); they accept it with their
//! own password. A login is global and a membership per organization, as in Slack or Twenty:
//! no organization sets another person's password, and inviting an address tells nothing
//! about other organizations.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};
use chrono::{DateTime, Duration, Utc};
use rapport_auth::{password, policy, secret};
use rapport_domain::identity::{Acceptance, IdentityRef, Invitation, NewInvitation, audit_action};
use rapport_domain::{Email, Role, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;
use validator::Validate;

use crate::auth::{Create, Delete, Read, Require, client_info, meter_address, obj};
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::extract::Json;
use crate::idempotency::one_time_secret;
use crate::list::{ListQuery, NoFilter, PageParams};
use crate::record::created_record;
use crate::signin::{TokenResponse, check_throttle, password_matches, refuse, start_session};
use crate::state::AppState;
use crate::validate::{self, Check};

/// How long an invitation can be accepted.
const VALID_DAYS: i64 = 7;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_invitations)
        .service(create_invitation)
        .service(get_invitation)
        .service(revoke_invitation)
        .service(accept_invitation);
}

/// An invitation to join the organization (without its token).
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationBody {
    pub id: Uuid,
    #[schema(example = "li.na@acme.example")]
    pub email: String,
    /// The name the member gets unless they give their own when accepting.
    #[schema(example = "李娜")]
    pub name: Option<String>,
    pub role: Role,
    pub team_id: Option<Uuid>,
    /// `pending`, `accepted`, `revoked` or `expired`.
    #[schema(example = "pending")]
    pub status: &'static str,
    /// The user who invited.
    pub invited_by: Uuid,
    pub expires_at: DateTime<Utc>,
    pub accepted_at: Option<DateTime<Utc>>,
    /// The user the invitation became, once accepted.
    pub user_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

impl From<Invitation> for InvitationBody {
    fn from(invitation: Invitation) -> Self {
        InvitationBody {
            status: invitation.status(Utc::now()).as_str(),
            id: invitation.id,
            email: invitation.email,
            name: invitation.name,
            role: invitation.role,
            team_id: invitation.team_id,
            invited_by: invitation.invited_by,
            expires_at: invitation.expires_at,
            accepted_at: invitation.accepted_at,
            user_id: invitation.user_id,
            created_at: invitation.created_at,
        }
    }
}

/// A new invitation with its token, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedInvitationBody {
    #[serde(flatten)]
    pub invitation: InvitationBody,
    /// Give it to the person: they accept with `POST /v1/invitations/{token}/accept`. It is
    /// not stored and cannot be shown again.
    #[schema(example = "rin_Vx2aQ9pLm3…")]
    pub token: String,
    /// Where the person accepts it.
    #[schema(example = "/v1/invitations/rin_Vx2aQ9pLm3…/accept")]
    pub accept_path: String,
}

crate::list_envelope!(InvitationList, InvitationBody);

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitationRequest {
    #[validate(custom(function = "crate::validate::rules::email"))]
    #[schema(example = "li.na@acme.example", format = Email, max_length = 254)]
    pub email: String,
    /// The member's name unless they give their own when accepting.
    #[validate(custom(function = "crate::validate::rules::name"))]
    #[schema(example = "李娜", min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// Only an owner may invite another owner.
    pub role: Role,
    pub team_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct AcceptInvitationRequest {
    /// For an address that has no account yet: the password of the new account (at least 10
    /// characters). For one that has: that account's password, which proves it is yours.
    #[schema(example = "correct horse battery staple", format = Password, min_length = 1, max_length = 1024)]
    pub password: String,
    /// Your name in this organization (default: the name the invitation gives, else the
    /// part of the email before `@`).
    #[validate(custom(function = "crate::validate::rules::name"))]
    #[schema(example = "李娜", min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
}

/// List invitations
///
/// Every invitation of the organization with where it stands, oldest first, without tokens.
#[utoipa::path(
    tag = "users",
    operation_id = "list_invitations",
    params(PageParams),
    responses((status = 200, description = "A page of invitations.", body = InvitationList)),
)]
#[get("/invitations")]
async fn list_invitations(
    auth: Require<Read<obj::User>>,
    state: web::Data<AppState>,
    query: ListQuery<NoFilter>,
) -> Result<HttpResponse, ApiError> {
    query.expect_sort("id")?;
    let page = state
        .store
        .invitations()
        .list(&auth.ctx, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(InvitationList::from_page(page, InvitationBody::from)))
}

/// Invite someone to the organization
///
/// Makes an invitation valid for 7 days and answers its token, this once: give it to the
/// person, who accepts it with their own password (Rapport sends no mail). Inviting an address
/// again replaces its open invitation. An address that is already a member here is 409; any
/// other address is answered alike, whether or not it has an account elsewhere. A retry with
/// the same `Idempotency-Key` answers 409 `secret_not_replayed` rather than the token again.
#[utoipa::path(
    tag = "users",
    operation_id = "create_invitation",
    request_body = CreateInvitationRequest,
    responses(
        (status = 201, description = "The invitation and, this once, its token.", body = CreatedInvitationBody),
        (status = 409, response = crate::error::responses::Conflict),
    ),
)]
#[post("/invitations")]
async fn create_invitation(
    auth: Require<Create<obj::User>>,
    state: web::Data<AppState>,
    body: Json<CreateInvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    if !policy::may_assign_role(auth.ctx.role, body.role, body.role) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            format!(
                "The {} role may not invite a user with the {} role.",
                auth.ctx.role, body.role
            ),
        ));
    }
    Check::validated(&body)?;
    let email = Email::parse(&body.email)
        .map_err(|message| ApiError::invalid("email", "invalid_value", message))?;
    let name = body.name.as_deref().map(|n| n.trim().to_owned());
    let token = secret::new_invitation_token().map_err(ApiError::internal)?;
    let invitation = NewInvitation {
        email,
        name,
        role: body.role,
        team_id: body.team_id,
        token_hash: secret::storage_hash(&token),
        expires_at: Utc::now() + Duration::days(VALID_DAYS),
    };
    let invitation = state
        .store
        .invitations()
        .create(&auth.ctx, invitation)
        .await
        .map_err(|error| match error {
            StoreError::Conflict { .. } => ApiError::new(
                ErrorCode::Conflict,
                "This address is already a member of your organization.",
            )
            .with_errors(vec![FieldError::new(
                "email",
                "taken",
                "is already a member of your organization",
            )]),
            other => ApiError::from(other),
        })?;
    let location = format!("/v1/invitations/{}", invitation.id);
    let response = created_record(
        location.clone(),
        1,
        &CreatedInvitationBody {
            accept_path: format!("/v1/invitations/{token}/accept"),
            token,
            invitation: InvitationBody::from(invitation),
        },
    );
    Ok(one_time_secret(response, location))
}

/// Read an invitation (without its token)
#[utoipa::path(
    tag = "users",
    operation_id = "get_invitation",
    params(("id" = Uuid, Path, description = "The invitation's id.")),
    responses((status = 200, description = "The invitation.", body = InvitationBody)),
)]
#[get("/invitations/{id}")]
async fn get_invitation(
    auth: Require<Read<obj::User>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let invitation = state.store.invitations().get(&auth.ctx, *id).await?;
    Ok(HttpResponse::Ok().json(InvitationBody::from(invitation)))
}

/// Revoke a pending invitation
///
/// Its token stops working at once. An invitation no longer pending is 404.
#[utoipa::path(
    tag = "users",
    operation_id = "revoke_invitation",
    params(("id" = Uuid, Path, description = "The invitation's id.")),
    responses((status = 204, description = "The invitation is revoked.")),
)]
#[delete("/invitations/{id}")]
async fn revoke_invitation(
    auth: Require<Delete<obj::User>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.store.invitations().revoke(&auth.ctx, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Accept an invitation
///
/// Public: the token is the credential. For an address with no account yet, `password`
/// becomes the new account's password; for one that has an account, it must be that
/// account's password (a wrong one is 401 and counts as a failed sign-in). Answers the tokens
/// of a session in the organization, as sign-in does. Each token works once (404
/// `invitation_invalid` after, and once expired or revoked).
#[utoipa::path(
    tag = "users",
    operation_id = "accept_invitation",
    security(()),
    params(("token" = String, Path, description = "The invitation's token (`rin_…`).", max_length = 100)),
    request_body = AcceptInvitationRequest,
    responses(
        (status = 200, description = "You are a member and signed in.", body = TokenResponse),
        (status = 401, response = crate::error::responses::InvalidCredentials),
        (status = 404, response = crate::error::responses::InvitationInvalid),
        (status = 409, response = crate::error::responses::Conflict),
        (status = 429, response = crate::error::responses::LoginThrottled),
        (status = 503, response = crate::error::responses::ServerBusy),
    ),
)]
#[post("/invitations/{token}/accept")]
async fn accept_invitation(
    req: HttpRequest,
    state: web::Data<AppState>,
    token: web::Path<String>,
    body: Json<AcceptInvitationRequest>,
) -> Result<HttpResponse, ApiError> {
    let client = client_info(&req);
    meter_address(&req, &state, &client)?;
    let body = body.0;
    let invalid = || {
        ApiError::new(
            ErrorCode::InvitationInvalid,
            "No pending invitation has this token: it may have expired, been used or been revoked.",
        )
    };
    let token_hash = secret::storage_hash(&token);
    let open = state
        .store
        .auth()
        .open_invitation(&token_hash)
        .await?
        .ok_or_else(invalid)?;
    let mut check = Check::new();
    check.validator(body.validate());
    let name = body.name.as_deref().map(|n| n.trim().to_owned());
    let email = Email::parse(&open.invitation.email).map_err(ApiError::internal)?;
    let identity = match open.identity {
        Some((identity_id, hash)) => {
            check.finish()?;
            check_throttle(&state, &email).await?;
            if !password_matches(&state, body.password, Some(hash)).await? {
                return Err(refuse(&state, &email, &[], &client).await);
            }
            IdentityRef::Existing(identity_id)
        }
        None => {
            check.field("password", password::check_policy(&body.password));
            check.finish()?;
            IdentityRef::New {
                password_hash: state.passwords.hash(body.password).await?,
                email: email.clone(),
            }
        }
    };
    let local_part = email.as_str().split('@').next().unwrap_or("member");
    let name = name
        .or(open.invitation.name.clone())
        .or_else(|| validate::name(local_part).ok())
        .unwrap_or_else(|| "Member".to_owned());
    let acceptance = Acceptance { identity, name };
    let (organization, user) = state
        .store
        .auth()
        .accept_invitation(&token_hash, acceptance, &client)
        .await
        .map_err(|error| match error {
            StoreError::NotFound => invalid(),
            StoreError::Conflict { .. } => ApiError::new(
                ErrorCode::Conflict,
                "This address became a member or got an account while the invitation was being accepted; sign in instead.",
            ),
            other => ApiError::from(other),
        })?;
    let tokens = start_session(&state, &user, &organization, &client, audit_action::LOGIN).await?;
    Ok(HttpResponse::Ok().json(tokens))
}
