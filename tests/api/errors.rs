//! The platform's error answers: every one a problem document.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

const SIGNUP: &str = "/v1/auth/signup";

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
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
}

both_backends!(a_wrong_method_on_a_templated_path_is_a_405);
async fn a_wrong_method_on_a_templated_path_is_a_405(app: TestApp) {
    let response = app
        .post_raw("/docs/swagger-ui.css", Some("text/css"), "x")
        .await;

    response.assert_problem(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
}

both_backends!(a_literal_path_beside_an_id_path_answers_only_its_own_methods);
async fn a_literal_path_beside_an_id_path_answers_only_its_own_methods(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;

    // `export` and `merge` are not contact ids: their paths answer GET and POST only, as
    // `Allow` says, whatever `/v1/contacts/{id}` answers.
    for (method, path, allow) in [
        (Method::DELETE, "/v1/contacts/export", "GET, HEAD"),
        (Method::PATCH, "/v1/contacts/export", "GET, HEAD"),
        (Method::OPTIONS, "/v1/contacts/export", "GET, HEAD"),
        (Method::DELETE, "/v1/companies/merge", "POST"),
        (Method::GET, "/v1/companies/search", "POST"),
    ] {
        let response = app.send(app.authed(method.clone(), path, token)).await;
        response.assert_problem(405, "method_not_allowed");
        assert_eq!(response.header("allow"), Some(allow), "{method} {path}");
    }

    // A malformed id on the id path is still no record at all.
    let response = app.get_as("/v1/contacts/not-a-uuid", token).await;
    response.assert_problem(404, "not_found");
}

both_backends!(a_method_the_path_does_not_answer_is_a_405_whatever_the_idempotency_key);
async fn a_method_the_path_does_not_answer_is_a_405_whatever_the_idempotency_key(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let created = app
        .send(
            app.authed(Method::POST, "/v1/api-keys", token)
                .header("idempotency-key", "k-1")
                .json(&json!({"name": "sync", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    // Same key, a method `/v1/api-keys` does not answer: a 405, not a key reused.
    let response = app
        .send(
            app.authed(Method::PUT, "/v1/api-keys", token)
                .header("idempotency-key", "k-1")
                .json(&json!({"name": "sync", "scopes": ["read"]})),
        )
        .await;
    response.assert_problem(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET, POST, HEAD"));
}
both_backends!(malformed_json_is_a_400_with_the_parsers_position);
async fn malformed_json_is_a_400_with_the_parsers_position(app: TestApp) {
    let body = "{\n  \"organization_name\": \"Acme\",\n  \"name\": oops\n}";

    let response = app.post_raw(SIGNUP, Some("application/json"), body).await;

    let problem = response.assert_problem(400, "malformed_json");
    assert_eq!(problem["line"], 3);
    assert_eq!(problem["column"], 11);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("line 3, column 11"),
        "{problem}"
    );
}

both_backends!(an_empty_or_truncated_body_is_malformed_json);
async fn an_empty_or_truncated_body_is_malformed_json(app: TestApp) {
    for body in ["", "{\"name\": \"A\"", "[1, 2"] {
        let response = app.post_raw(SIGNUP, Some("application/json"), body).await;
        response.assert_problem(400, "malformed_json");
    }
}

both_backends!(an_oversized_body_is_a_413_and_creates_nothing);
async fn an_oversized_body_is_a_413_and_creates_nothing(app: TestApp) {
    let big_name = "x".repeat(2 * 1024 * 1024);
    let body = json!({"organization_name": big_name, "name": "A", "email": "big@acme.example", "password": PASSWORD});

    let response = app.post_json(SIGNUP, &body).await;

    response.assert_problem(413, "payload_too_large");
    let login = app.login("big@acme.example", PASSWORD).await;
    login.assert_problem(401, "invalid_credentials");
}

both_backends!(
    the_body_limit_is_configurable,
    |config: &mut rapport::Config| config.body_limit = 2048
);
async fn the_body_limit_is_configurable(app: TestApp) {
    let body = json!({"organization_name": "x".repeat(3000), "name": "A", "email": "a@acme.example", "password": PASSWORD});

    let response = app.post_json(SIGNUP, &body).await;

    response.assert_problem(413, "payload_too_large");
    assert!(
        response.json()["detail"]
            .as_str()
            .unwrap()
            .contains("2048 bytes")
    );
}

both_backends!(a_body_that_is_not_json_is_a_415);
async fn a_body_that_is_not_json_is_a_415(app: TestApp) {
    let form = app
        .post_raw(SIGNUP, Some("application/x-www-form-urlencoded"), "name=A")
        .await;
    let missing = app.post_raw(SIGNUP, None, "{}").await;

    form.assert_problem(415, "unsupported_media_type");
    missing.assert_problem(415, "unsupported_media_type");
}

both_backends!(a_json_content_type_with_charset_is_accepted);
async fn a_json_content_type_with_charset_is_accepted(app: TestApp) {
    let body = json!({"organization_name": "Acme", "name": "A", "email": "a@acme.example", "password": PASSWORD});

    let response = app
        .post_raw(
            SIGNUP,
            Some("application/json; charset=utf-8"),
            body.to_string(),
        )
        .await;

    assert_eq!(response.status, 201, "{}", response.text);
}

both_backends!(a_field_of_the_wrong_type_is_a_422_naming_it);
async fn a_field_of_the_wrong_type_is_a_422_naming_it(app: TestApp) {
    let body = json!({"organization_name": 42, "name": "A", "email": "a@acme.example", "password": PASSWORD});

    let response = app.post_json(SIGNUP, &body).await;

    let problem = response.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "organization_name");
    assert_eq!(problem["errors"][0]["code"], "invalid_type");
}

both_backends!(an_unknown_field_is_a_422_naming_it);
async fn an_unknown_field_is_a_422_naming_it(app: TestApp) {
    let body = json!({"organisation_name": "Acme", "name": "A", "email": "a@acme.example", "password": PASSWORD});

    let response = app.post_json(SIGNUP, &body).await;

    let problem = response.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "organisation_name");
    assert_eq!(problem["errors"][0]["code"], "unknown_field");
}

both_backends!(a_missing_field_is_a_422_naming_it);
async fn a_missing_field_is_a_422_naming_it(app: TestApp) {
    let body =
        json!({"organization_name": "Acme", "email": "a@acme.example", "password": PASSWORD});

    let response = app.post_json(SIGNUP, &body).await;

    let problem = response.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "name");
    assert_eq!(problem["errors"][0]["code"], "required");
}

both_backends!(sql_looking_input_is_stored_verbatim);
async fn sql_looking_input_is_stored_verbatim(app: TestApp) {
    let name = "Robert'); DROP TABLE users;--";
    let email = "bobby'--@acme.example";
    let body = json!({"organization_name": "x' OR '1'='1", "name": name, "email": email, "password": PASSWORD});

    let response = app.post_json(SIGNUP, &body).await;

    assert_eq!(response.status, 201, "{}", response.text);
    let session = app.session(email).await;
    let me = app.get_as("/v1/me", &session.access_token).await.json();
    assert_eq!(me["name"], name);
    let organization = app
        .get_as("/v1/organization", &session.access_token)
        .await
        .json();
    assert_eq!(organization["name"], "x' OR '1'='1");
}

#[test]
fn the_readme_lists_every_error_code() {
    let readme = include_str!("../../README.md");
    for code in rapport_http::ErrorCode::ALL {
        let row = format!("| `{}` | {} |", code.as_str(), code.status().as_u16());
        assert!(readme.contains(&row), "README.md lacks the row {row}");
    }
}

both_backends!(errors_that_list_the_options_list_them_all);
async fn errors_that_list_the_options_list_them_all(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;

    // A list's unknown parameter: paging, the common filters and the object's own.
    let response = app.get_as("/v1/contacts?bogus=1", token).await;
    let problem = response.assert_problem(422, "validation_failed");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    for option in [
        "`limit`",
        "`cursor`",
        "`include`",
        "`sort`",
        "`q`",
        "`company_id`",
        "`lifecycle_stage`",
    ] {
        assert!(message.contains(option), "{option} in {message}");
    }
    let response = app.get_as("/v1/api-keys?bogus=1", token).await;
    let problem = response.assert_problem(422, "validation_failed");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("`limit`, `cursor`, `include`"),
        "{message}"
    );

    // A filter's unknown field: the relation fields that work too.
    let response = app
        .post_as(
            "/v1/contacts/search",
            token,
            &json!({"filter": {"field": "nope", "op": "eq", "value": 1}}),
        )
        .await;
    let problem = response.assert_problem(422, "validation_failed");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("company.<field>"), "{message}");
    assert!(message.contains("custom.<key>"), "{message}");

    // A malformed id in a path: a 404 that keeps the parser's words to itself.
    let response = app.get_as("/v1/contacts/not-a-uuid", token).await;
    let problem = response.assert_problem(404, "not_found");
    let detail = problem["detail"].as_str().unwrap();
    assert!(!detail.contains("parsing"), "{detail}");
    assert!(!detail.contains("deserialize"), "{detail}");
    assert!(detail.contains("UUID"), "{detail}");

    // Malformed JSON after an unknown field: still the syntax error, with where it is.
    let response = app
        .send(
            app.authed(Method::POST, "/v1/contacts", token)
                .header("content-type", "application/json")
                .body("{\"bogus\": 1,\n \"email\": }"),
        )
        .await;
    let problem = response.assert_problem(400, "malformed_json");
    assert_eq!(
        (problem["line"].as_u64(), problem["column"].as_u64()),
        (Some(2), Some(11))
    );
}
