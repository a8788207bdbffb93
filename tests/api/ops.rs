//! Liveness, readiness, metrics and the request id.

use rapport_domain::Store;

use crate::helpers::TestApp;

both_backends!(liveness_answers_ok_without_touching_the_database);
async fn liveness_answers_ok_without_touching_the_database(app: TestApp) {
    app.store.close().await;

    let response = app.get("/health/live").await;

    assert_eq!(response.status, 200);
    assert_eq!(response.json()["status"], "ok");
}

both_backends!(readiness_reports_the_backend_and_schema_version);
async fn readiness_reports_the_backend_and_schema_version(app: TestApp) {
    let response = app.get("/health/ready").await;

    assert_eq!(response.status, 200, "{}", response.text);
    let body = response.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["database"], app.backend.name());
    assert_eq!(body["schema_version"], app.store.latest_schema_version());
}

both_backends!(readiness_is_503_when_the_database_is_gone);
async fn readiness_is_503_when_the_database_is_gone(app: TestApp) {
    app.store.close().await;

    let response = app.get("/health/ready").await;

    response.assert_problem(503, "service_unavailable");
    assert!(response.header("retry-after").is_some());
}

both_backends!(metrics_count_requests_by_route_template_and_status);
async fn metrics_count_requests_by_route_template_and_status(app: TestApp) {
    app.get("/health/live").await;
    app.get("/health/live").await;
    app.get("/docs/no-such-file.js").await;

    let response = app.get("/metrics").await;

    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = response.text;
    assert!(
        text.contains(
            r#"rapport_http_requests_total{method="GET",route="/health/live",status="200"} 2"#
        ),
        "{text}"
    );
    // The template, not the raw path, so that series stay bounded.
    assert!(text.contains(
        r#"rapport_http_requests_total{method="GET",route="/docs/{file:.*}",status="404"} 1"#
    ));
    assert!(text.contains(r#"rapport_http_request_duration_seconds_count{method="GET",route="/health/live",status="200"} 2"#));
    assert!(text.contains(r#"le="+Inf""#));
    assert!(text.contains("rapport_db_pool_connections{pool="));
    assert!(text.contains("rapport_db_pool_max_connections{pool="));
}

both_backends!(every_response_carries_a_request_id_and_a_sane_one_is_echoed);
async fn every_response_carries_a_request_id_and_a_sane_one_is_echoed(app: TestApp) {
    let generated = app.get("/health/live").await;
    let echoed = app
        .send(
            app.request(reqwest::Method::GET, "/health/live")
                .header("x-request-id", "trace-42.a"),
        )
        .await;
    let replaced = app
        .send(
            app.request(reqwest::Method::GET, "/nope")
                .header("x-request-id", "bad id with spaces"),
        )
        .await;

    let id = generated.header("x-request-id").unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert_eq!(echoed.header("x-request-id"), Some("trace-42.a"));
    let body = replaced.assert_problem(404, "not_found");
    assert_ne!(body["request_id"], "bad id with spaces");
}
