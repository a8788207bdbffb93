//! Rapport's REST API on actix-web: routes (one file per resource), extractors, middleware,
//! problem documents, the OpenAPI document and the `/docs` page.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Compress, Condition, from_fn};
use actix_web::{App, web};
use utoipa_actix_web::AppExt;

pub mod auth;
pub mod body_timeout;
pub mod client_ip;
pub mod cors;
pub mod error;
pub mod extract;
pub mod fallback;
pub mod formula;
pub mod head;
pub mod idempotency;
pub mod import;
pub mod list;
pub mod metrics;
pub mod objects;
pub mod observe;
pub mod openapi;
pub mod passwords;
pub mod ratelimit;
pub mod record;
pub mod request_id;
pub mod routes;
pub mod schema;
pub mod signin;
pub mod state;
pub mod storable;
pub mod validate;

pub use error::{ApiError, ErrorCode, FieldError, Problem};
pub use state::{AppState, CorsOrigins, HttpSettings};

/// The whole application, for one worker.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let (app, _document) = App::new()
        .into_utoipa_app()
        .configure(routes::configure)
        .split_for_parts();
    let body_limit = state.settings.body_limit;
    let cors = cors::cors(&state.settings.cors_origins);
    app.app_data(extract::BodyLimit(body_limit))
        .app_data(web::PayloadConfig::new(body_limit))
        .app_data(web::PathConfig::default().error_handler(|_error, req| {
            // A literal route's path with another method (`DELETE /v1/contacts/export`) reaches
            // the `{id}` route of that method: 405, as for any method a path does not answer.
            let routes = req.app_data::<web::Data<AppState>>().map(|s| &s.routes);
            if let Some(routes) = routes.filter(|r| !r.answers(req.method().as_str(), req.path()))
                && let Some(error) = fallback::method_not_allowed(routes, req)
            {
                return error.into();
            }
            // An id that cannot be one names nothing: 404, like an id that never existed. The
            // parser's own words (`UUID parsing failed: invalid character…`) stay inside.
            ApiError::not_found(format!(
                "There is nothing at {}: a record's id is a UUID (e.g. 0193a1d2-6c1f-7c3e-9a4b-2f6d8e0c1b5a).",
                req.path()
            ))
            .into()
        }))
        .app_data(state)
        .default_service(web::to(fallback::not_routed))
        .wrap(from_fn(idempotency::idempotency))
        // Outside idempotency, which reads the body; inside CORS, so that errors carry its
        // headers.
        .wrap(from_fn(body_timeout::body_timeout))
        .wrap(from_fn(storable::reject_nul))
        .wrap(from_fn(head::head_as_get))
        .wrap(Condition::new(cors.is_some(), cors.unwrap_or_default()))
        .wrap(from_fn(cors::refuse_preflight))
        .wrap(from_fn(observe::observe))
        // Outermost: compresses whatever leaves, problem documents included, when the client
        // asks for it (`Accept-Encoding: gzip` or `br`).
        .wrap(Compress::default())
}
