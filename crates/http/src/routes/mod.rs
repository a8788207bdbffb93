//! Every route, one file per resource. Routes are registered only through `.service()` on
//! utoipa-actix-web's config, so a route cannot exist undocumented.

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

pub mod api_keys;
pub mod audit_log;
pub mod auth;
pub mod changes;
pub mod custom_fields;
pub mod docs;
pub mod exports;
pub mod imports;
pub mod invitations;
pub mod me;
pub mod ops;
pub mod organization;
pub mod records;
pub mod teams;
pub mod users;
pub mod webhooks;
pub mod writes;

pub fn configure(config: &mut ServiceConfig) {
    config
        .configure(ops::configure)
        .configure(docs::configure)
        .service(
            scope::scope("/v1")
                .configure(auth::configure)
                .configure(me::configure)
                .configure(organization::configure)
                .configure(users::configure)
                .configure(invitations::configure)
                .configure(teams::configure)
                .configure(api_keys::configure)
                .configure(audit_log::configure)
                .configure(custom_fields::configure)
                .configure(changes::configure)
                .configure(webhooks::configure)
                .configure(imports::configure)
                .configure(|config| {
                    config.map(|config| {
                        crate::objects::configure(config);
                        config
                    });
                }),
        );
}
