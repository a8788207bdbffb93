//! Idempotency keys: replays, reuse with another request, attempts in progress, and retries
//! after an attempt that stopped before or after committing.

use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{Backend, TestApp, TestResponse};

async fn post_with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> TestResponse {
    app.send(
        app.authed(Method::POST, path, token)
            .header("Idempotency-Key", key)
            .json(body),
    )
    .await
}

async fn live_contacts(app: &TestApp, token: &str) -> i64 {
    app.get_as("/v1/contacts?include=total", token).await.json()["total"]
        .as_i64()
        .unwrap()
}

both_backends!(a_retried_post_answers_the_first_response_and_writes_once);
async fn a_retried_post_answers_the_first_response_and_writes_once(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let body = json!({"first_name": "安", "email": "an@c.example"});

    let first = post_with_key(&app, "/v1/contacts", token, "create-an-1", &body).await;
    let retry = post_with_key(&app, "/v1/contacts", token, "create-an-1", &body).await;
    let other_key = post_with_key(
        &app,
        "/v1/contacts",
        token,
        "create-an-2",
        &json!({"first_name": "B"}),
    )
    .await;

    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    assert_eq!(retry.status, 201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.text, first.text, "the very same body");
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(retry.header("etag"), first.header("etag"));
    assert!(retry.header("x-request-id").is_some());
    assert_eq!(other_key.status, 201);
    assert_eq!(live_contacts(&app, token).await, 2);
}

both_backends!(a_key_used_with_another_request_is_refused);
async fn a_key_used_with_another_request_is_refused(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    post_with_key(
        &app,
        "/v1/contacts",
        token,
        "k-1",
        &json!({"first_name": "A"}),
    )
    .await;

    let other_body = post_with_key(
        &app,
        "/v1/contacts",
        token,
        "k-1",
        &json!({"first_name": "B"}),
    )
    .await;
    let other_path = post_with_key(
        &app,
        "/v1/companies",
        token,
        "k-1",
        &json!({"first_name": "A"}),
    )
    .await;
    let bad_key = post_with_key(&app, "/v1/contacts", token, "", &json!({"first_name": "C"})).await;

    other_body.assert_problem(422, "idempotency_key_reused");
    other_path.assert_problem(422, "idempotency_key_reused");
    assert_eq!(
        bad_key.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "Idempotency-Key"
    );
    assert_eq!(live_contacts(&app, token).await, 1);
}

both_backends!(keys_belong_to_their_credential);
async fn keys_belong_to_their_credential(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let colleague = app.member(&owner, "sales@acme.example", "sales").await;
    let (_, key) = app.api_key(&owner, &["*"]).await;
    let body = json!({"first_name": "Same"});

    let by_owner = post_with_key(&app, "/v1/contacts", &owner.access_token, "shared", &body).await;
    let by_colleague = post_with_key(
        &app,
        "/v1/contacts",
        &colleague.access_token,
        "shared",
        &body,
    )
    .await;
    let by_key = post_with_key(&app, "/v1/contacts", &key, "shared", &body).await;

    for response in [&by_owner, &by_colleague, &by_key] {
        assert_eq!(response.status, 201);
        assert_eq!(response.header("idempotent-replayed"), None);
    }
    assert_eq!(live_contacts(&app, &owner.access_token).await, 3);
}

both_backends!(refusals_are_replayed_too_and_batches_are_kept_whole);
async fn refusals_are_replayed_too_and_batches_are_kept_whole(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let bad = json!({"email": "not-an-email"});
    let batch =
        json!({"id_property": "email", "records": [{"email": "a@c.example"}, {"email": "x"}]});

    let refused = post_with_key(&app, "/v1/contacts", token, "bad-1", &bad).await;
    let refused_again = post_with_key(&app, "/v1/contacts", token, "bad-1", &bad).await;
    let batched = post_with_key(&app, "/v1/contacts/batch/upsert", token, "batch-1", &batch).await;
    let batched_again =
        post_with_key(&app, "/v1/contacts/batch/upsert", token, "batch-1", &batch).await;

    refused.assert_problem(422, "validation_failed");
    assert_eq!(refused_again.status, 422);
    assert_eq!(refused_again.header("idempotent-replayed"), Some("true"));
    assert_eq!(
        batched_again.text, batched.text,
        "created, not unchanged: the first answer"
    );
    assert_eq!(batched_again.json()["results"][0]["status"], "created");
}

/// What the server hashes for a request: method, path and body.
fn request_hash(method: &str, path: &str, body: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("{method} {path}\n"));
    hasher.update(serde_json::to_vec(body).unwrap());
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn uuid_literal(app: &TestApp, id: &str) -> String {
    match app.backend {
        Backend::Sqlite => format!("X'{}'", id.replace('-', "")),
        Backend::Postgres => format!("'{id}'"),
    }
}

/// Plants the claim an attempt leaves when its process stops before answering.
async fn plant_claim(
    app: &TestApp,
    org_id: &str,
    credential: &str,
    key: &str,
    hash: &str,
    locked_at: &str,
) {
    app.execute_sql(&format!(
        "insert into idempotency_keys (credential, key, org_id, request_hash, locked_at, created_at, expires_at) \
         values ('{credential}', '{key}', {}, '{hash}', '{locked_at}', '{locked_at}', '2999-01-01T00:00:00+00:00')",
        uuid_literal(app, org_id)
    ))
    .await;
}

both_backends!(a_retry_while_the_first_attempt_runs_is_told_to_wait);
async fn a_retry_while_the_first_attempt_runs_is_told_to_wait(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let body = json!({"first_name": "A"});
    let credential = format!("user:{}", owner.user_id);
    plant_claim(
        &app,
        &owner.org_id,
        &credential,
        "running",
        &request_hash("POST", "/v1/contacts", &body),
        "2999-01-01T00:00:00+00:00",
    )
    .await;

    let retry = post_with_key(&app, "/v1/contacts", &owner.access_token, "running", &body).await;

    retry.assert_problem(409, "idempotency_request_in_progress");
    assert_eq!(retry.header("retry-after"), Some("1"));
    assert_eq!(live_contacts(&app, &owner.access_token).await, 0);
}

both_backends!(a_retry_after_an_attempt_that_stopped_before_committing_runs_it);
async fn a_retry_after_an_attempt_that_stopped_before_committing_runs_it(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let body = json!({"first_name": "A"});
    let credential = format!("user:{}", owner.user_id);
    plant_claim(
        &app,
        &owner.org_id,
        &credential,
        "crashed",
        &request_hash("POST", "/v1/contacts", &body),
        "2000-01-01T00:00:00+00:00",
    )
    .await;

    let retry = post_with_key(&app, "/v1/contacts", &owner.access_token, "crashed", &body).await;
    let again = post_with_key(&app, "/v1/contacts", &owner.access_token, "crashed", &body).await;

    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(live_contacts(&app, &owner.access_token).await, 1);
}

both_backends!(a_retry_after_an_attempt_that_committed_but_never_answered_creates_nothing_more);
async fn a_retry_after_an_attempt_that_committed_but_never_answered_creates_nothing_more(
    app: TestApp,
) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let body = json!({"first_name": "A", "email": "a@c.example"});
    let first = post_with_key(&app, "/v1/contacts", token, "lost-answer", &body).await;
    // The process stopped after the commit and before the answer was kept.
    app.execute_sql(
        "update idempotency_keys set response_status = null, response_headers = null, \
         response_body = null, locked_at = '2000-01-01T00:00:00+00:00' where key = 'lost-answer'",
    )
    .await;

    let retry = post_with_key(&app, "/v1/contacts", token, "lost-answer", &body).await;

    assert_eq!(first.status, 201);
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(
        retry.json()["id"],
        first.json()["id"],
        "the record the first attempt made"
    );
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(live_contacts(&app, token).await, 1);
}
