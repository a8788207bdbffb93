//! Webhooks: management, signed deliveries from the event log, per-record order, retries
//! through a receiver that fails and recovers, 410 Gone, exhausted retries, manual retries,
//! and two server processes sharing one queue.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::receiver::{Received, Receiver};

/// Workers that poll often, retry within milliseconds (the schedule shrunk 50,000 times:
/// ten attempts in about two seconds) and wait 2 s for an answer.
fn fast_webhooks(config: &mut rapport::Config) {
    config.webhooks.poll = Duration::from_millis(20);
    config.webhooks.retry_scale = 0.00002;
    config.webhooks.timeout = Duration::from_secs(2);
}

async fn subscribe(app: &TestApp, token: &str, url: &str, events: Value) -> (String, String) {
    let webhook = app
        .create(
            token,
            "/v1/webhooks",
            json!({"url": url, "events": events, "description": "test"}),
        )
        .await;
    (
        webhook["id"].as_str().unwrap().to_owned(),
        webhook["secret"].as_str().unwrap().to_owned(),
    )
}

async fn settled_deliveries(app: &TestApp, token: &str, webhook_id: &str) -> Value {
    let path = format!("/v1/webhooks/{webhook_id}/deliveries");
    for _ in 0..300 {
        let log = app.get_as(&path, token).await.json();
        let settled = log["data"]
            .as_array()
            .is_some_and(|list| list.iter().all(|d| d["status"] != "sending"));
        if settled {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the delivery log never settled")
}

fn distinct_deliveries(received: &[Received]) -> HashSet<String> {
    received
        .iter()
        .filter(|r| (200..300).contains(&r.answered))
        .map(|r| r.delivery_header.clone())
        .collect()
}

both_backends!(
    a_receiver_that_fails_then_recovers_gets_every_event_signed_and_in_order,
    super::fast_webhooks
);
async fn a_receiver_that_fails_then_recovers_gets_every_event_signed_and_in_order(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let receiver = Receiver::start(200, 4).await;
    let (webhook_id, secret) = subscribe(&app, token, &receiver.url, json!(["contact.*"])).await;

    let mut contacts = Vec::new();
    for i in 0..4 {
        contacts.push(
            app.create(
                token,
                "/v1/contacts",
                json!({"email": format!("p{i}@c.example")}),
            )
            .await,
        );
    }
    let first = contacts[0]["id"].as_str().unwrap().to_owned();
    app.patch_as(
        &format!("/v1/contacts/{first}"),
        token,
        &json!({"title": "CTO"}),
    )
    .await;
    app.delete_as(&format!("/v1/contacts/{first}"), token).await;
    app.create(token, "/v1/companies", json!({"name": "Not subscribed"}))
        .await;
    receiver
        .wait_for(30, "six accepted deliveries", |r| {
            distinct_deliveries(r).len() == 6
        })
        .await;
    // The receiver answers before the worker records the answer: wait
    // until the log has caught up with what was received.
    let deliveries = settled_deliveries(&app, token, &webhook_id).await;

    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 6, "each delivered once after it succeeded");
    assert!(
        receiver.received().len() >= 10,
        "four failures were retried"
    );
    for delivery in &accepted {
        assert!(
            delivery.signed_with(&secret),
            "bad signature: {}",
            delivery.signature
        );
        assert!(
            !delivery.signed_with("whsec_another"),
            "a signature checks the secret"
        );
        let body = delivery.json();
        assert_eq!(body["webhook_id"], webhook_id.as_str());
        assert_eq!(body["delivery_id"], delivery.delivery_header.as_str());
        assert_eq!(body["event"], delivery.event_header.as_str());
        assert_eq!(body["object"], "contact");
        assert!(body["cursor"].is_string() && body["changed_fields"].is_object());
    }
    let of_first: Vec<String> = accepted
        .iter()
        .map(Received::json)
        .filter(|b| b["id"] == first.as_str())
        .map(|b| b["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        of_first,
        ["created", "updated", "deleted"],
        "one record's events in order"
    );
    let list = deliveries["data"].as_array().unwrap();
    assert_eq!(list.len(), 6);
    assert!(
        list.iter().all(|d| d["status"] == "succeeded"),
        "{deliveries}"
    );
    let attempts: Vec<&Value> = list
        .iter()
        .flat_map(|d| d["attempts"].as_array().unwrap())
        .collect();
    assert_eq!(attempts.len(), 10);
    let failed: Vec<&&Value> = attempts
        .iter()
        .filter(|a| a["response_status"] == 500)
        .collect();
    assert_eq!(failed.len(), 4);
    assert!(
        failed
            .iter()
            .all(|a| a["error"].as_str().unwrap().contains("500"))
    );
    assert!(
        attempts
            .iter()
            .all(|a| a["latency_ms"].as_i64().unwrap() >= 0)
    );
}

both_backends!(a_410_switches_the_webhook_off, super::fast_webhooks);
async fn a_410_switches_the_webhook_off(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let receiver = Receiver::start(410, 0).await;
    let (webhook_id, _) = subscribe(&app, token, &receiver.url, json!(["*"])).await;

    app.create(token, "/v1/contacts", json!({"email": "a@c.example"}))
        .await;
    receiver.wait_for(30, "the 410", |r| !r.is_empty()).await;
    let mut webhook = Value::Null;
    for _ in 0..100 {
        webhook = app
            .get_as(&format!("/v1/webhooks/{webhook_id}"), token)
            .await
            .json();
        if webhook["active"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.create(token, "/v1/contacts", json!({"email": "b@c.example"}))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deliveries = app
        .get_as(&format!("/v1/webhooks/{webhook_id}/deliveries"), token)
        .await
        .json();
    let audit = app
        .get_as("/v1/audit-log?action=webhook.disabled", token)
        .await
        .json();
    let reactivated = app
        .patch_as(
            &format!("/v1/webhooks/{webhook_id}"),
            token,
            &json!({"active": true}),
        )
        .await
        .json();

    assert_eq!(webhook["active"], false);
    assert_eq!(webhook["disabled_reason"], "the receiver answered 410 Gone");
    assert_eq!(
        receiver.received().len(),
        1,
        "nothing more is sent to a switched-off webhook"
    );
    assert_eq!(deliveries["data"][0]["status"], "failed");
    assert_eq!(deliveries["data"][0]["attempts"][0]["response_status"], 410);
    assert_eq!(audit["data"].as_array().unwrap().len(), 1);
    assert_eq!(reactivated["active"], true);
    assert_eq!(reactivated["disabled_reason"], Value::Null);
}

both_backends!(
    a_delivery_fails_after_its_last_attempt_and_can_be_sent_again,
    super::fast_webhooks
);
async fn a_delivery_fails_after_its_last_attempt_and_can_be_sent_again(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let receiver = Receiver::start(503, 0).await;
    let (webhook_id, secret) =
        subscribe(&app, token, &receiver.url, json!(["contact.created"])).await;
    app.create(token, "/v1/contacts", json!({"email": "a@c.example"}))
        .await;

    receiver
        .wait_for(60, "ten attempts", |r| r.len() >= 10)
        .await;
    let path = format!("/v1/webhooks/{webhook_id}/deliveries");
    let mut delivery = Value::Null;
    for _ in 0..200 {
        delivery = app.get_as(&path, token).await.json()["data"][0].clone();
        if delivery["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let attempts_when_failed = receiver.received().len();
    receiver.answer(204);
    let retried = app
        .post_as(
            &format!("{path}/{}/retry", delivery["id"].as_str().unwrap()),
            token,
            &json!({}),
        )
        .await;
    receiver
        .wait_for(30, "the manual retry", |r| {
            r.iter().any(|x| x.answered == 204)
        })
        .await;
    let foreign = app
        .post_as(
            &format!("{path}/{}/retry", uuid::Uuid::now_v7()),
            token,
            &json!({}),
        )
        .await;

    assert_eq!(delivery["status"], "failed");
    assert_eq!(delivery["attempts"].as_array().unwrap().len(), 10);
    assert_eq!(delivery["next_attempt_at"], Value::Null);
    assert_eq!(attempts_when_failed, 10, "no attempt after the last");
    assert_eq!(retried.status, 202, "{}", retried.text);
    assert_eq!(retried.json()["status"], "pending");
    assert!(receiver.accepted()[0].signed_with(&secret));
    foreign.assert_problem(404, "not_found");
}

both_backends!(webhooks_are_managed_by_admins_and_their_secrets_shown_once);
async fn webhooks_are_managed_by_admins_and_their_secrets_shown_once(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let token = &owner.access_token;

    let created = app
        .post_as("/v1/webhooks", token, &json!({"url": "https://erp.example.com/hook", "events": ["contact.*", "order.created", "contact.*"]}))
        .await;
    let body = created.json();
    let id = body["id"].as_str().unwrap();
    let path = format!("/v1/webhooks/{id}");
    let read = app.get_as(&path, token).await.json();
    let rotated = app
        .post_as(&format!("{path}/rotate-secret"), token, &json!({}))
        .await
        .json();
    let bad = app
        .post_as(
            "/v1/webhooks",
            token,
            &json!({"url": "ftp://x.example", "events": ["contacts.created", "*"]}),
        )
        .await;
    let missing = app
        .post_as("/v1/webhooks", token, &json!({"description": "x"}))
        .await;
    let by_sales = app.get_as("/v1/webhooks", &sales.access_token).await;
    let by_other = app.get_as(&path, &other.access_token).await;
    let listed = app.get_as("/v1/webhooks", token).await.json();
    let deleted = app.delete_as(&path, token).await;
    let after_delete = app.get_as(&path, token).await;

    assert_eq!(created.status, 201, "{}", created.text);
    assert!(body["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        body["events"],
        json!(["contact.*", "order.created"]),
        "duplicates dropped"
    );
    assert_eq!(body["active"], true);
    assert!(read.get("secret").is_none(), "the secret is shown once");
    assert_ne!(rotated["secret"], body["secret"]);
    assert_eq!(rotated["version"], 2);
    let problem = bad.assert_problem(422, "validation_failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["url", "events[0]"]);
    missing.assert_problem(422, "validation_failed");
    by_sales.assert_problem(403, "forbidden");
    by_other.assert_problem(404, "not_found");
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(listed["data"][0].get("secret").is_none());
    assert_eq!(deleted.status, 204);
    after_delete.assert_problem(404, "not_found");
}

both_backends!(
    two_server_processes_deliver_each_event_once,
    super::fast_webhooks
);
async fn two_server_processes_deliver_each_event_once(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.spawn_sibling(fast_webhooks).await;
    let receiver = Receiver::start(200, 0).await;
    subscribe(&app, token, &receiver.url, json!(["contact.created"])).await;

    let records: Vec<Value> = (0..60)
        .map(|i| json!({"email": format!("p{i}@c.example")}))
        .collect();
    app.post_as(
        "/v1/contacts/batch/upsert",
        token,
        &json!({"id_property": "email", "records": records}),
    )
    .await;
    receiver
        .wait_for(60, "sixty deliveries", |r| {
            distinct_deliveries(r).len() == 60
        })
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let received = receiver.received();
    let mut per_delivery: HashMap<String, usize> = HashMap::new();
    for r in &received {
        *per_delivery.entry(r.delivery_header.clone()).or_default() += 1;
    }
    assert_eq!(
        received.len(),
        60,
        "no delivery sent twice: {per_delivery:?}"
    );
    let ids: HashSet<String> = received
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 60);
}
