//! The OpenAPI document and the interactive reference at `/docs`.
//!
//! The reference is Swagger UI, bundled into the binary (utoipa-swagger-ui's `vendored`
//! build: no download at build time, no CDN at run time). The page itself is ours, with
//! absolute asset paths, so that `/docs` and `/docs/` both render it.

use std::sync::{Arc, LazyLock};

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_swagger_ui::Config;

use crate::error::ApiError;
use crate::state::AppState;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(openapi_json)
        .service(docs_page)
        .service(docs_asset);
}

/// The OpenAPI 3.1 document of this API
#[utoipa::path(
    tag = "docs",
    operation_id = "openapi_document",
    security(()),
    responses((status = 200, description = "The OpenAPI document.", body = Object, content_type = "application/json")),
)]
#[get("/openapi.json")]
async fn openapi_json(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.openapi_json.clone())
}

/// The interactive API reference
///
/// Swagger UI over `/openapi.json`; works without internet access.
#[utoipa::path(
    tag = "docs",
    operation_id = "docs_page",
    security(()),
    responses((status = 200, description = "The reference page.", body = String, content_type = "text/html")),
)]
#[get("/docs")]
async fn docs_page() -> HttpResponse {
    page()
}

/// A script, style sheet or image of the reference page
///
/// `/docs/` (no file) is the reference page itself.
#[utoipa::path(
    tag = "docs",
    operation_id = "docs_asset",
    security(()),
    params(("file" = String, Path, description = "The asset's file name, e.g. `swagger-ui-bundle.js`.")),
    responses(
        (status = 200, description = "The asset.", body = String, content_type = "application/octet-stream"),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/docs/{file:.*}")]
async fn docs_asset(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let name = file.into_inner();
    if name.is_empty() {
        return Ok(page());
    }
    // Our page replaces Swagger UI's own index and initializer.
    let served = (name != "index.html" && name != "swagger-initializer.js")
        .then(|| {
            utoipa_swagger_ui::serve(&name, SWAGGER_CONFIG.clone())
                .ok()
                .flatten()
        })
        .flatten();
    let Some(asset) = served else {
        return Err(ApiError::not_found(format!(
            "The reference has no file {name}."
        )));
    };
    let mut response = HttpResponse::Ok();
    response
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=86400"));
    if asset.gzpipped {
        response.insert_header((header::CONTENT_ENCODING, "gzip"));
    }
    Ok(response.body(asset.bytes.into_owned()))
}

static SWAGGER_CONFIG: LazyLock<Arc<Config<'static>>> =
    LazyLock::new(|| Arc::new(Config::from("/openapi.json")));

fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(PAGE)
}

const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Rapport API reference</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
  <style>body { margin: 0; } .swagger-ui .topbar { display: none; }</style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script src="/docs/swagger-ui-standalone-preset.js"></script>
  <script>
    window.addEventListener("load", function () {
      window.ui = SwaggerUIBundle({
        url: "/openapi.json",
        dom_id: "#swagger-ui",
        deepLinking: true,
        presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
        layout: "BaseLayout",
        validatorUrl: null,
        tryItOutEnabled: true,
        persistAuthorization: true,
        displayRequestDuration: true,
        filter: true
      });
    });
  </script>
</body>
</html>
"##;
