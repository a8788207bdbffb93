//! Operators' endpoints: liveness, readiness and Prometheus metrics. Public: no credential.

use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// How long readiness waits for the database before calling it unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

pub fn configure(config: &mut ServiceConfig) {
    config.service(live).service(ready).service(metrics);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// `sqlite` or `postgres`.
    #[schema(example = "postgres")]
    pub database: &'static str,
    /// The newest migration applied to the database.
    #[schema(example = 1)]
    pub schema_version: i64,
}

/// Liveness: the process is up and answering
///
/// Does not touch the database; use it to decide whether to restart the process.
#[utoipa::path(
    tag = "ops",
    operation_id = "health_live",
    security(()),
    responses((status = 200, description = "The process answers.", body = Live)),
)]
#[get("/health/live")]
async fn live() -> web::Json<Live> {
    web::Json(Live { status: "ok" })
}

/// Readiness: the database answers
///
/// Pings the database and reports which one it is and its schema version; 503 when it
/// cannot be reached. Use it to decide whether to send traffic here.
#[utoipa::path(
    tag = "ops",
    operation_id = "health_ready",
    security(()),
    responses(
        (status = 200, description = "The database answers.", body = Ready),
        (status = 503, response = crate::error::responses::ServiceUnavailable),
    ),
)]
#[get("/health/ready")]
async fn ready(state: web::Data<AppState>) -> Result<web::Json<Ready>, ApiError> {
    let readiness = tokio::time::timeout(READY_TIMEOUT, state.store.readiness())
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::ServiceUnavailable,
                "The database did not answer in time.",
            )
        })??;
    Ok(web::Json(Ready {
        status: "ok",
        database: readiness.backend.as_str(),
        schema_version: readiness.schema_version,
    }))
}

/// Metrics in the Prometheus text format
///
/// Request counts and latency histograms by method, route template and status; database
/// pool size and idle connections.
#[utoipa::path(
    tag = "ops",
    operation_id = "metrics",
    security(()),
    responses((
        status = 200,
        description = "Prometheus exposition format 0.0.4.",
        body = String,
        content_type = "text/plain; version=0.0.4",
    )),
)]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let text = state.metrics.render(&state.store.pool_stats());
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}
