//! The platform's error answers: every one a problem document.

use reqwest::Method;

use crate::helpers::TestApp;

both_backends!(an_unknown_route_is_a_404_problem);
async fn an_unknown_route_is_a_404_problem(app: TestApp) {
    let response = app.get("/v1/no-such-thing").await;

    let body = response.assert_problem(404, "not_found");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("/v1/no-such-thing")
    );
}

both_backends!(a_wrong_method_is_a_405_problem_with_allow);
async fn a_wrong_method_is_a_405_problem_with_allow(app: TestApp) {
    let response = app.send(app.request(Method::DELETE, "/health/ready")).await;

    response.assert_problem(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET"));
}

both_backends!(a_wrong_method_on_a_templated_path_is_a_405);
async fn a_wrong_method_on_a_templated_path_is_a_405(app: TestApp) {
    let response = app
        .post_raw("/docs/swagger-ui.css", Some("text/css"), "x")
        .await;

    response.assert_problem(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET"));
}
