//! Issue 10, points 1 and 13: webhooks reach only public addresses unless the operator allows
//! more, whatever the URL's spelling and whatever its name resolves to when a delivery is
//! sent; credentials in URLs are refused; a delivery's error does not tell one network error
//! from another; and one organization's large import does not hold up another's small one.

use std::time::{Duration, Instant};

use rapport_domain::webhook::target::TargetPolicy;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::receiver::Receiver;

/// The webhook worker polling often and retrying within milliseconds, with the operator's
/// default target policy (public addresses only) instead of the tests' loopback allowance.
fn public_targets_only(config: &mut rapport::Config) {
    fast_webhooks(config);
    config.webhook_targets = TargetPolicy::public_only();
}

fn fast_webhooks(config: &mut rapport::Config) {
    config.webhooks.poll = Duration::from_millis(20);
    config.webhooks.retry_scale = 0.00002;
    config.webhooks.timeout = Duration::from_secs(2);
}

async fn create_webhook(app: &TestApp, token: &str, url: &str) -> String {
    let webhook = app
        .create(
            token,
            "/v1/webhooks",
            json!({"url": url, "events": ["contact.created"]}),
        )
        .await;
    webhook["id"].as_str().unwrap().to_owned()
}

/// Waits until the webhook's only delivery has failed its last attempt; answers it.
async fn failed_delivery(app: &TestApp, token: &str, webhook_id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let deliveries = app
            .get_as(&format!("/v1/webhooks/{webhook_id}/deliveries"), token)
            .await
            .json();
        let delivery = deliveries["data"][0].clone();
        if delivery["status"] == "failed" || delivery["status"] == "succeeded" {
            return delivery;
        }
        assert!(
            Instant::now() < deadline,
            "the delivery did not end: {deliveries}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn attempt_errors(delivery: &Value) -> Vec<(Value, Value)> {
    delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["response_status"].clone(), a["error"].clone()))
        .collect()
}

both_backends!(
    webhook_urls_naming_private_addresses_in_any_spelling_are_refused_by_default,
    super::public_targets_only
);
async fn webhook_urls_naming_private_addresses_in_any_spelling_are_refused_by_default(
    app: TestApp,
) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let private = [
        "http://127.0.0.1:8080/hook",
        "http://127.1/hook",
        "http://2130706433/hook",
        "http://0x7f000001/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.5/hook",
        "http://172.16.0.5/hook",
        "http://192.168.1.5/hook",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://localhost:8080/hook",
    ];

    let mut refused = Vec::new();
    for url in private {
        let response = app
            .post_as("/v1/webhooks", token, &json!({"url": url, "events": ["*"]}))
            .await;
        refused.push((url, response));
    }
    let public = app
        .post_as(
            "/v1/webhooks",
            token,
            &json!({"url": "https://erp.example.com/hook", "events": ["*"]}),
        )
        .await;
    let id = public.json()["id"].as_str().unwrap().to_owned();
    let moved = app
        .patch_as(
            &format!("/v1/webhooks/{id}"),
            token,
            &json!({"url": "http://0x7f000001:9000/hook"}),
        )
        .await;
    let listed = app.get_as("/v1/webhooks", token).await.json();

    for (url, response) in &refused {
        let problem = response.assert_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], "url", "{url}: {problem}");
        assert_eq!(
            problem["errors"][0]["code"], "address_not_allowed",
            "{url}: {problem}"
        );
    }
    assert_eq!(public.status, 201, "{}", public.text);
    let problem = moved.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["code"], "address_not_allowed");
    assert_eq!(
        TestApp::ids(&listed),
        [id],
        "only the public webhook exists"
    );
    assert_eq!(listed["data"][0]["url"], "https://erp.example.com/hook");
}

both_backends!(webhook_urls_with_credentials_are_refused_even_when_private_targets_are_allowed);
async fn webhook_urls_with_credentials_are_refused_even_when_private_targets_are_allowed(
    app: TestApp,
) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let receiver = Receiver::start(200, 0).await;
    let with_credentials = receiver.url.replace("http://", "http://user:pass@");

    let refused = app
        .post_as(
            "/v1/webhooks",
            token,
            &json!({"url": with_credentials, "events": ["*"]}),
        )
        .await;
    let user_only = app
        .post_as(
            "/v1/webhooks",
            token,
            &json!({"url": "https://user@erp.example.com/hook", "events": ["*"]}),
        )
        .await;
    let loopback = app
        .post_as(
            "/v1/webhooks",
            token,
            &json!({"url": receiver.url, "events": ["*"]}),
        )
        .await;

    for response in [&refused, &user_only] {
        let problem = response.assert_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], "url", "{problem}");
        assert_eq!(
            problem["errors"][0]["code"], "credentials_not_allowed",
            "{problem}"
        );
    }
    assert_eq!(
        loopback.status, 201,
        "the operator allowed private targets: {}",
        loopback.text
    );
}

both_backends!(
    a_webhook_whose_target_turns_private_after_creation_is_never_delivered_by_default,
    super::public_targets_only
);
async fn a_webhook_whose_target_turns_private_after_creation_is_never_delivered_by_default(
    app: TestApp,
) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let receiver = Receiver::start(200, 0).await;
    let port = receiver
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/hook");
    // Public names when they are made; then one name resolves to loopback (DNS rebinding, as
    // `localhost` does) and the others are address literals (stored before the rule).
    let targets = [
        format!("http://localhost:{port}/hook"),
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
    ];
    let mut webhooks = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let placeholder = format!("https://rebind-{i}.example.com/hook");
        let id = create_webhook(&app, token, &placeholder).await;
        app.execute_sql(&format!(
            "update webhooks set url = '{target}' where url = '{placeholder}'"
        ))
        .await;
        webhooks.push(id);
    }

    app.create(token, "/v1/contacts", json!({"email": "a@c.example"}))
        .await;
    let mut deliveries = Vec::new();
    for id in &webhooks {
        deliveries.push(failed_delivery(&app, token, id).await);
    }

    assert!(
        receiver.received().is_empty(),
        "nothing reached the loopback receiver"
    );
    let by_name = attempt_errors(&deliveries[0]);
    assert_eq!(by_name.len(), 10, "{:?}", deliveries[0]);
    assert!(
        by_name
            .iter()
            .all(|e| *e == (Value::Null, json!("connection failed"))),
        "{by_name:?}"
    );
    for delivery in &deliveries[1..] {
        let errors = attempt_errors(delivery);
        assert_eq!(delivery["status"], "failed");
        assert!(
            errors
                .iter()
                .all(|e| *e == (Value::Null, json!("the target address is not allowed"))),
            "{errors:?}"
        );
    }
}

both_backends!(
    a_closed_port_and_a_reset_connection_record_the_same_error,
    super::fast_webhooks
);
async fn a_closed_port_and_a_reset_connection_record_the_same_error(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    // Port 1 is below the ports the system hands out, so no other test listens there.
    assert!(
        std::net::TcpStream::connect("127.0.0.1:1").is_err(),
        "nothing may listen on 127.0.0.1:1 for this test"
    );
    // A port that accepts, reads a byte of the request and hangs up on the rest (a reset).
    let resetting = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let reset_port = resetting.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = resetting.accept().await {
            let _ = stream.readable().await;
            let _ = stream.try_read(&mut [0_u8; 1]);
            drop(stream);
        }
    });
    let closed = create_webhook(&app, token, "http://127.0.0.1:1/hook").await;
    let reset = create_webhook(&app, token, &format!("http://127.0.0.1:{reset_port}/hook")).await;

    app.create(token, "/v1/contacts", json!({"email": "a@c.example"}))
        .await;
    let closed = failed_delivery(&app, token, &closed).await;
    let reset = failed_delivery(&app, token, &reset).await;

    let closed_errors = attempt_errors(&closed);
    let reset_errors = attempt_errors(&reset);
    assert_eq!(closed_errors.len(), 10, "{closed}");
    assert_eq!(reset_errors.len(), 10, "{reset}");
    for error in closed_errors.iter().chain(&reset_errors) {
        assert_eq!(*error, (Value::Null, json!("connection failed")));
    }
}

both_backends!(
    an_allow_list_opens_the_names_it_lists_and_nothing_else,
    |config: &mut rapport::Config| {
        super::fast_webhooks(config);
        config.webhook_targets = rapport_domain::webhook::target::TargetPolicy::public_only()
            .with_allowed("localhost")
            .unwrap();
    }
);
async fn an_allow_list_opens_the_names_it_lists_and_nothing_else(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let receiver = Receiver::start(200, 0).await;
    let by_name = receiver.url.replace("127.0.0.1", "localhost");

    let literal = app
        .post_as(
            "/v1/webhooks",
            token,
            &json!({"url": receiver.url, "events": ["*"]}),
        )
        .await;
    create_webhook(&app, token, &by_name).await;
    app.create(token, "/v1/contacts", json!({"email": "a@c.example"}))
        .await;
    receiver
        .wait_for(30, "the delivery to the allowed name", |r| !r.is_empty())
        .await;

    literal.assert_problem(422, "validation_failed");
    assert_eq!(receiver.accepted().len(), 1);
}

// ---- point 13: imports are scheduled fairly across organizations ----

/// Imports in chunks of 20 rows, looked for every 20 ms.
fn small_chunks(config: &mut rapport::Config) {
    config.imports.poll = Duration::from_millis(20);
    config.imports.chunk = 20;
}

async fn import_contacts(app: &TestApp, token: &str, rows: usize, tag: &str) -> String {
    let mut csv = String::from("email,first_name\n");
    for i in 0..rows {
        csv.push_str(&format!("{tag}{i}@c.example,P{i}\n"));
    }
    let response = app
        .post_as(
            "/v1/imports",
            token,
            &json!({"object": "contact", "csv": csv}),
        )
        .await;
    assert_eq!(response.status, 202, "{}", response.text);
    response.json()["id"].as_str().unwrap().to_owned()
}

async fn job(app: &TestApp, token: &str, id: &str) -> Value {
    app.get_as(&format!("/v1/imports/{id}"), token).await.json()
}

/// Polls the job until `done` holds for it; answers it.
async fn job_until(app: &TestApp, token: &str, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let job = job(app, token, id).await;
        if done(&job) {
            return job;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {job}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts organization A's large import, then B's one-row import once A's is under way;
/// answers (A's job when B's completed, B's job).
async fn small_import_behind_a_large_one(
    app: &TestApp,
    a: &str,
    b: &str,
    rows: usize,
) -> (String, Value, Value) {
    let large = import_contacts(app, a, rows, "a").await;
    job_until(app, a, &large, |j| j["processed"].as_i64() > Some(0)).await;
    let small = import_contacts(app, b, 1, "b").await;
    let small = job_until(app, b, &small, |j| {
        j["status"] == "completed" || j["status"] == "failed"
    })
    .await;
    let large_then = job(app, a, &large).await;
    (large, large_then, small)
}

/// B's job ended while A's still ran: A is running now, or ended after B did.
fn finished_first(small: &Value, large: &Value) -> bool {
    large["status"] == "running"
        || large["finished_at"]
            .as_str()
            .zip(small["finished_at"].as_str())
            .is_some_and(|(large, small)| {
                chrono::DateTime::parse_from_rfc3339(large).unwrap()
                    > chrono::DateTime::parse_from_rfc3339(small).unwrap()
            })
}

both_backends!(
    a_one_row_import_finishes_while_another_organizations_large_import_runs,
    super::small_chunks
);
async fn a_one_row_import_finishes_while_another_organizations_large_import_runs(app: TestApp) {
    let a = app.signup("Large", "owner@large.example").await;
    let b = app.signup("Small", "owner@small.example").await;

    let (_, large, small) =
        small_import_behind_a_large_one(&app, &a.access_token, &b.access_token, 6000).await;

    assert_eq!(small["status"], "completed", "{small}");
    assert_eq!(small["created"], 1);
    assert!(
        finished_first(&small, &large),
        "the one-row import waited for the large one: {small} {large}"
    );
}

both_backends!(
    a_worker_with_one_place_pauses_a_large_import_for_another_organizations_and_resumes_it,
    |config: &mut rapport::Config| {
        super::small_chunks(config);
        config.imports.concurrent = 1;
        config.imports.turn = 3;
    }
);
async fn a_worker_with_one_place_pauses_a_large_import_for_another_organizations_and_resumes_it(
    app: TestApp,
) {
    let a = app.signup("Large", "owner@large.example").await;
    let b = app.signup("Small", "owner@small.example").await;
    let token = &a.access_token;

    let (large_id, large, small) =
        small_import_behind_a_large_one(&app, token, &b.access_token, 2000).await;
    let done = job_until(&app, token, &large_id, |j| j["status"] != "running").await;
    let contacts = app
        .get_as("/v1/contacts?include=total&limit=1", token)
        .await
        .json();

    assert_eq!(small["status"], "completed", "{small}");
    assert!(
        finished_first(&small, &large),
        "the one-row import waited for the large one: {small} {large}"
    );
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (done["created"].as_i64(), done["failed"].as_i64()),
        (Some(2000), Some(0))
    );
    assert_eq!(
        contacts["total"], 2000,
        "the paused import resumed without writing a row twice"
    );
}
