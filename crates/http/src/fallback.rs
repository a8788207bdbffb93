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
                    // HEAD wherever GET (see `head`).
                    ("HEAD", item.head.is_some() || item.get.is_some()),
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

    /// The methods that `path` answers, when it is a known path. Where a literal route and a
    /// parameterised one both match (`/v1/contacts/export` and `/v1/contacts/{id}`), the
    /// literal one wins, as it does in routing: `export` is not a contact id.
    pub fn allowed(&self, path: &str) -> Option<Vec<&'static str>> {
        let mut found: Option<(usize, Vec<&'static str>)> = None;
        for (def, methods) in &self.routes {
            if !def.is_match(path) {
                continue;
            }
            let params = def.pattern().map_or(0, |p| p.matches('{').count());
            match &mut found {
                Some((fewest, _)) if params > *fewest => {}
                Some((fewest, all)) if params == *fewest => {
                    for method in methods {
                        if !all.contains(method) {
                            all.push(method);
                        }
                    }
                }
                _ => found = Some((params, methods.clone())),
            }
        }
        found.map(|(_, methods)| methods)
    }

    /// The pattern of the route that takes `path` (`/v1/contacts/{id}`); the literal one
    /// where several match, as in [`RouteTable::allowed`].
    pub fn pattern(&self, path: &str) -> Option<&str> {
        self.routes
            .iter()
            .filter(|(def, _)| def.is_match(path))
            .filter_map(|(def, _)| def.pattern())
            .min_by_key(|pattern| pattern.matches('{').count())
    }

    /// Whether a route answers `method` on `path`.
    pub fn answers(&self, method: &str, path: &str) -> bool {
        self.allowed(path)
            .is_some_and(|methods| methods.contains(&method))
    }
}

/// 405 with `Allow` for a known path, or None for an unknown one.
pub fn method_not_allowed(routes: &RouteTable, req: &HttpRequest) -> Option<ApiError> {
    let methods = routes.allowed(req.path())?;
    let allow = methods.join(", ");
    let detail = format!(
        "{} is not allowed on {}; allowed: {allow}.",
        req.method(),
        req.path()
    );
    let value = HeaderValue::from_str(&allow).unwrap_or(HeaderValue::from_static("GET"));
    Some(ApiError::new(ErrorCode::MethodNotAllowed, detail).with_header(header::ALLOW, value))
}

/// The app's default service.
pub async fn not_routed(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    Err(method_not_allowed(&state.routes, &req).unwrap_or_else(|| {
        ApiError::not_found(format!(
            "There is no route {} {}.",
            req.method(),
            req.path()
        ))
    }))
}
