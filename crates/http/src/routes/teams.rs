//! Teams: everyone reads them; owners and admins shape them. Membership is a user's `team_id`.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use rapport_domain::identity::{NewTeam, Team, TeamPatch};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{Create, Delete, Read, Require, Update, obj};
use crate::error::ApiError;
use crate::extract::Json;
use crate::list::{ListQuery, NoFilter, PageParams};
use crate::record::{IfMatch, created_record, nullable, ok_record};
use crate::state::AppState;
use crate::validate::{self, Check};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_teams)
        .service(create_team)
        .service(get_team)
        .service(update_team)
        .service(delete_team);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TeamBody {
    pub id: Uuid,
    #[schema(example = "East China sales")]
    pub name: String,
    /// The user who manages the team; a manager sees the team's records.
    pub manager_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Team> for TeamBody {
    fn from(team: Team) -> Self {
        TeamBody {
            id: team.id,
            name: team.name,
            manager_id: team.manager_id,
            version: team.version,
            created_at: team.created_at,
            updated_at: team.updated_at,
        }
    }
}

crate::list_envelope!(TeamList, TeamBody);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeamRequest {
    /// Unique in the organization (ignoring case).
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: String,
    pub manager_id: Option<Uuid>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTeamRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub name: Option<String>,
    /// `null` leaves the team without a manager.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub manager_id: Option<Option<Uuid>>,
}

/// List teams
#[utoipa::path(
    tag = "teams",
    operation_id = "list_teams",
    params(PageParams),
    responses((status = 200, description = "A page of teams, oldest first.", body = TeamList)),
)]
#[get("/teams")]
async fn list_teams(
    auth: Require<Read<obj::Team>>,
    state: web::Data<AppState>,
    query: ListQuery<NoFilter>,
) -> Result<HttpResponse, ApiError> {
    query.expect_sort("id")?;
    let page = state.store.teams().list(&auth.ctx, &query.page).await?;
    Ok(HttpResponse::Ok().json(TeamList::from_page(page, TeamBody::from)))
}

/// Create a team
#[utoipa::path(
    tag = "teams",
    operation_id = "create_team",
    request_body = CreateTeamRequest,
    responses(
        (status = 201, description = "The team.", body = TeamBody),
        (status = 409, response = crate::error::responses::Conflict),
    ),
)]
#[post("/teams")]
async fn create_team(
    auth: Require<Create<obj::Team>>,
    state: web::Data<AppState>,
    body: Json<CreateTeamRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut check = Check::new();
    let name = check.field("name", validate::name(&body.name));
    let Some(name) = name else {
        return Err(check.into_error());
    };
    let team = NewTeam {
        name,
        manager_id: body.manager_id,
    };
    let team = state.store.teams().create(&auth.ctx, team).await?;
    Ok(created_record(
        format!("/v1/teams/{}", team.id),
        team.version,
        &TeamBody::from(team),
    ))
}

/// Read a team
#[utoipa::path(
    tag = "teams",
    operation_id = "get_team",
    params(("id" = Uuid, Path, description = "The team's id.")),
    responses(
        (status = 200, description = "The team.", body = TeamBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/teams/{id}")]
async fn get_team(
    auth: Require<Read<obj::Team>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let team = state.store.teams().get(&auth.ctx, *id).await?;
    Ok(ok_record(team.version, &TeamBody::from(team)))
}

/// Rename a team or change its manager
#[utoipa::path(
    tag = "teams",
    operation_id = "update_team",
    params(
        ("id" = Uuid, Path, description = "The team's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on."),
    ),
    request_body = UpdateTeamRequest,
    responses(
        (status = 200, description = "The changed team.", body = TeamBody),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 409, response = crate::error::responses::Conflict),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/teams/{id}")]
async fn update_team(
    auth: Require<Update<obj::Team>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<UpdateTeamRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut check = Check::new();
    let name = body
        .name
        .as_deref()
        .map(|n| check.field("name", validate::name(n)));
    check.finish()?;
    let patch = TeamPatch {
        name: name.flatten(),
        manager_id: body.manager_id,
    };
    let team = state
        .store
        .teams()
        .update(&auth.ctx, *id, patch, if_match.0)
        .await?;
    Ok(ok_record(team.version, &TeamBody::from(team)))
}

/// Delete a team
///
/// Its members stay and are left without a team. Teams are configuration, not customer data:
/// the deletion is final.
#[utoipa::path(
    tag = "teams",
    operation_id = "delete_team",
    params(
        ("id" = Uuid, Path, description = "The team's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on."),
    ),
    responses(
        (status = 204, description = "The team is gone."),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[delete("/teams/{id}")]
async fn delete_team(
    auth: Require<Delete<obj::Team>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    state
        .store
        .teams()
        .delete(&auth.ctx, *id, if_match.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
