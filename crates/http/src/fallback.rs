//! Requests no route takes: 405 with `Allow` when the path exists for other methods, 404
//! otherwise. The table comes from the OpenAPI document, so it knows every route there is.

use actix_web::dev::ResourceDef;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::openapi::OpenApi;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

pub struct RouteTable {
    routes: Vec<(ResourceDef, Vec<&'static str>)>,
}

impl RouteTable {
    pub fn from_document(document: &OpenApi) -> Self {
        let routes = document
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("PUT", item.put.is_some()),
                    ("POST", item.post.is_some()),
                    ("DELETE", item.delete.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("HEAD", item.head.is_some()),
                    ("OPTIONS", item.options.is_some()),
                ]
                .into_iter()
                .filter_map(|(method, present)| present.then_some(method))
                .collect();
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        RouteTable { routes }
    }

    /// The methods that `path` answers, when it is a known path.
    pub fn allowed(&self, path: &str) -> Option<Vec<&'static str>> {
        let mut found: Option<Vec<&'static str>> = None;
        for (def, methods) in &self.routes {
            if def.is_match(path) {
                let all = found.get_or_insert_with(Vec::new);
                for method in methods {
                    if !all.contains(method) {
                        all.push(method);
                    }
                }
            }
        }
        found
    }
}

/// The app's default service.
pub async fn not_routed(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Err(match state.routes.allowed(req.path()) {
        Some(methods) => {
            let allow = methods.join(", ");
            let detail = format!(
                "{} is not allowed on {}; allowed: {allow}.",
                req.method(),
                req.path()
            );
            let value = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("GET"));
            ApiError::new(ErrorCode::MethodNotAllowed, detail).with_header(header::ALLOW, value)
        }
        None => ApiError::not_found(format!(
            "There is no route {} {}.",
            req.method(),
            req.path()
        )),
    })
}
