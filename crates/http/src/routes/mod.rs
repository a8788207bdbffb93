//! Every route, one file per resource. Routes are registered only through `.service()` on
//! utoipa-actix-web's config, so a route cannot exist undocumented.

use utoipa_actix_web::service_config::ServiceConfig;

pub mod docs;
pub mod ops;

pub fn configure(config: &mut ServiceConfig) {
    config.configure(ops::configure).configure(docs::configure);
}
