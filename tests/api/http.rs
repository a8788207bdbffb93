//! What HTTP gives every route: HEAD wherever GET, CORS preflights, compression.

use rapport::config::Config;
use rapport_http::CorsOrigins;
use reqwest::Method;
use serde_json::json;

use crate::helpers::TestApp;

both_backends!(head_answers_wherever_get_does_without_a_body);
async fn head_answers_wherever_get_does_without_a_body(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let company = app
        .create(token, "/v1/companies", json!({"name": "Customer Co"}))
        .await;
    let record = format!("/v1/companies/{}", company["id"].as_str().unwrap());

    for (path, authed) in [
        ("/health/live", false),
        ("/openapi.json", false),
        (record.as_str(), true),
        ("/v1/companies?limit=1", true),
    ] {
        let request = |method: Method| match authed {
            true => app.authed(method, path, token),
            false => app.request(method, path),
        };
        let get = app.send(request(Method::GET)).await;
        let head = app.send(request(Method::HEAD)).await;
        assert_eq!(get.status, 200, "GET {path}: {}", get.text);
        assert_eq!(head.status, 200, "HEAD {path}");
        assert!(head.text.is_empty(), "HEAD {path} sent a body");
        assert_eq!(
            head.header("content-type"),
            get.header("content-type"),
            "{path}"
        );
        assert_eq!(
            head.header("content-length"),
            Some(get.text.len().to_string().as_str()),
            "HEAD {path} announces the length GET sends"
        );
        assert!(head.header("x-request-id").is_some());
    }
    let get = app.get_as(&record, token).await;
    let head = app.send(app.authed(Method::HEAD, &record, token)).await;
    assert_eq!(head.header("etag"), get.header("etag"));

    // What GET refuses, HEAD refuses with the same status (and no body).
    let missing = "/v1/companies/00000000-0000-4000-8000-000000000000";
    let head = app.send(app.authed(Method::HEAD, missing, token)).await;
    assert_eq!(head.status, 404);
    assert!(head.text.is_empty());
    let head = app.send(app.request(Method::HEAD, "/v1/companies")).await;
    assert_eq!(head.status, 401);
    // A path that answers no GET answers no HEAD either; `Allow` lists HEAD beside GET.
    let head = app
        .send(app.authed(Method::HEAD, "/v1/companies/merge", token))
        .await;
    assert_eq!(head.status, 405);
    assert_eq!(head.header("allow"), Some("POST"));
    let post = app
        .send(app.authed(Method::DELETE, "/v1/companies/export", token))
        .await;
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

fn preflight(app: &TestApp, origin: &str) -> reqwest::RequestBuilder {
    app.request(Method::OPTIONS, "/v1/contacts")
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
}

both_backends!(a_preflight_without_configured_origins_is_told_which_setting_allows_it);
async fn a_preflight_without_configured_origins_is_told_which_setting_allows_it(app: TestApp) {
    let response = app.send(preflight(&app, "http://localhost:5173")).await;

    let problem = response.assert_problem(403, "cors_origin_not_allowed");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("RAPPORT_CORS_ORIGINS"), "{detail}");
    assert!(detail.contains("http://localhost:5173"), "{detail}");
    assert!(response.header("access-control-allow-origin").is_none());

    // An OPTIONS that is no preflight is still the 405 it always was.
    let response = app.send(app.request(Method::OPTIONS, "/v1/contacts")).await;
    response.assert_problem(405, "method_not_allowed");
}

fn one_origin(config: &mut Config) {
    config.cors_origins = CorsOrigins::List(vec!["http://localhost:5173".to_owned()]);
}

both_backends!(
    a_preflight_from_a_configured_origin_passes_and_others_are_told,
    super::one_origin
);
async fn a_preflight_from_a_configured_origin_passes_and_others_are_told(app: TestApp) {
    let allowed = app.send(preflight(&app, "http://localhost:5173")).await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );

    let other = app.send(preflight(&app, "https://elsewhere.example")).await;
    let problem = other.assert_problem(403, "cors_origin_not_allowed");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("RAPPORT_CORS_ORIGINS")
    );
    assert!(other.header("access-control-allow-origin").is_none());
}

both_backends!(responses_are_compressed_when_the_client_asks);
async fn responses_are_compressed_when_the_client_asks(app: TestApp) {
    let plain = app.get("/openapi.json").await;
    assert_eq!(plain.status, 200);
    assert!(plain.header("content-encoding").is_none());

    for (encoding, magic) in [("gzip", &[0x1f_u8, 0x8b][..]), ("br", &[][..])] {
        let response = app
            .request(Method::GET, "/openapi.json")
            .header("accept-encoding", encoding)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            response
                .headers()
                .get("content-encoding")
                .and_then(|v| v.to_str().ok()),
            Some(encoding)
        );
        let bytes = response.bytes().await.unwrap();
        assert!(bytes.starts_with(magic));
        assert!(
            bytes.len() * 4 < plain.text.len(),
            "{encoding}: {} bytes of {}",
            bytes.len(),
            plain.text.len()
        );
    }

    // The docs page's 1.5 MB script, which a browser asks for compressed.
    let script = app
        .request(Method::GET, "/docs/swagger-ui-bundle.js")
        .header("accept-encoding", "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(script.headers().get("content-encoding").is_some());
}
