//! What every worker shares: the store, the metrics, the generated API document.

use std::sync::Arc;

use actix_web::web::Bytes;
use rapport_domain::Store;

use crate::fallback::RouteTable;
use crate::metrics::Metrics;
use crate::openapi;

/// Which browser origins may call the API (CORS).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers at all: only same-origin pages and non-browser clients.
    #[default]
    None,
    /// Any origin (`*`).
    Any,
    /// Exactly these origins, e.g. `https://app.example.com`.
    List(Vec<String>),
}

/// The HTTP layer's part of the configuration.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The largest request body accepted, in bytes.
    pub body_limit: usize,
    pub cors_origins: CorsOrigins,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            body_limit: 1024 * 1024,
            cors_origins: CorsOrigins::None,
        }
    }
}

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub settings: HttpSettings,
    pub metrics: Metrics,
    /// `GET /openapi.json`, serialised once.
    pub openapi_json: Bytes,
    /// Which methods each documented path answers, for 405 and `Allow`.
    pub routes: RouteTable,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, settings: HttpSettings) -> Self {
        let document = openapi::document();
        let routes = RouteTable::from_document(&document);
        let openapi_json = Bytes::from(openapi::to_json(&document));
        AppState {
            store,
            settings,
            metrics: Metrics::default(),
            openapi_json,
            routes,
        }
    }
}
