//! The OpenAPI document and the offline `/docs` reference.

use std::process::Command;

use crate::helpers::TestApp;

const COMMITTED: &str = include_str!("../../openapi/openapi.json");

both_backends!(the_served_document_is_the_committed_one);
async fn the_served_document_is_the_committed_one(app: TestApp) {
    let response = app.get("/openapi.json").await;

    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(
        response.text == COMMITTED,
        "openapi/openapi.json is stale: run `make openapi` and commit the result"
    );
    let document = response.json();
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "Rapport");
    assert_eq!(document["info"]["license"]["identifier"], "Apache-2.0");
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["bearer_jwt"]["bearerFormat"], "JWT");
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
}

both_backends!(docs_and_docs_slash_serve_the_reference_with_bundled_assets);
async fn docs_and_docs_slash_serve_the_reference_with_bundled_assets(app: TestApp) {
    for path in ["/docs", "/docs/"] {
        let page = app.get(path).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(page.text.contains("/docs/swagger-ui-bundle.js"));
        assert!(page.text.contains("\"/openapi.json\""));
        assert!(
            !page.text.contains("https://"),
            "the page must not load anything remote"
        );
    }
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
        "swagger-ui.css",
    ] {
        let response = app.get(&format!("/docs/{asset}")).await;
        assert_eq!(response.status, 200, "{asset}");
        assert!(response.text.len() > 1000, "{asset} is suspiciously small");
    }
}

both_backends!(the_reference_renders_in_a_browser_without_network);
async fn the_reference_renders_in_a_browser_without_network(app: TestApp) {
    let Some(chromium) = chromium() else { return };
    let profile = std::env::temp_dir().join(format!(
        "rapport-chromium-{}",
        uuid::Uuid::now_v7().simple()
    ));
    let url = app.url("/docs");

    // Every host but the loopback address is unresolvable: a CDN fetch would fail and leave
    // the page blank, so operations rendering proves the page needs nothing remote.
    let output = tokio::task::spawn_blocking(move || {
        Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                "--virtual-time-budget=20000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("--dump-dom")
            .arg(url)
            .output()
    })
    .await
    .unwrap()
    .expect("chromium runs");
    let dom = String::from_utf8_lossy(&output.stdout);

    assert!(
        dom.contains("opblock-summary-path") && dom.contains("data-path=\"/health/live\""),
        "no operations rendered; stderr: {}\nDOM: {dom:.2000}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dom.contains("data-path=\"/health/ready\""));
    assert!(dom.contains("Rapport"));
    assert!(!dom.contains("Failed to load API definition"));
}

/// Chromium's path, or None (and a loud line) when it is missing; `REQUIRE_CHROMIUM=1`
/// makes a missing browser a failure.
fn chromium() -> Option<&'static str> {
    for candidate in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if std::path::Path::new(candidate).exists() {
            return Some(candidate);
        }
    }
    if std::env::var("REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
        panic!("REQUIRE_CHROMIUM is set but chromium is not installed (make setup installs it)");
    }
    eprintln!(
        "\n!!!!!! SKIPPED the browser test of /docs: chromium is not installed (make setup).\n"
    );
    None
}
