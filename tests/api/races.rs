//! Races: many requests at once on one record, one idempotency key, or overlapping merges.
//! Exactly one writer wins where one may; the others get a clean 4xx; nothing is lost or
//! written twice, and the change feed tells the same story as the answers.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::future::join_all;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse};

/// Sends every request at once and answers the responses in the same order.
async fn all_at_once(
    app: &Arc<TestApp>,
    requests: Vec<reqwest::RequestBuilder>,
) -> Vec<TestResponse> {
    let tasks = requests.into_iter().map(|request| {
        let app = app.clone();
        tokio::spawn(async move { app.send(request).await })
    });
    join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("the request task ran"))
        .collect()
}

/// Every event of the feed, from the start.
async fn feed(app: &TestApp, token: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(cursor) => format!("/v1/changes?limit=200&after={cursor}"),
            None => "/v1/changes?limit=200".to_owned(),
        };
        let page = app.get_as(&path, token).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        events.extend(page["data"].as_array().unwrap().iter().cloned());
        after = Some(page["next_cursor"].as_str().unwrap().to_owned());
        if page["has_more"] == false {
            return events;
        }
    }
}

both_backends!(fifty_patches_with_the_same_if_match_let_exactly_one_through);
async fn fifty_patches_with_the_same_if_match_let_exactly_one_through(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = owner.access_token.clone();
    let contact = app
        .create(&token, "/v1/contacts", json!({"first_name": "Race"}))
        .await;
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    let app = Arc::new(app);

    let requests = (0..50)
        .map(|i| {
            app.authed(Method::PATCH, &path, &token)
                .header("If-Match", "\"1\"")
                .json(&json!({"title": format!("Title {i}")}))
        })
        .collect();
    let responses = all_at_once(&app, requests).await;
    let current = app.get_as(&path, &token).await;
    let history = app.get_as(&format!("{path}/history"), &token).await.json();

    let (won, lost): (Vec<&TestResponse>, Vec<&TestResponse>) =
        responses.iter().partition(|r| r.status == 200);
    assert_eq!(
        won.len(),
        1,
        "exactly one PATCH wins: {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for response in &lost {
        response.assert_problem(412, "version_mismatch");
    }
    assert_eq!(current.header("etag"), Some("\"2\""));
    assert_eq!(current.json()["version"], 2);
    assert_eq!(
        current.json()["title"],
        won[0].json()["title"],
        "the winner's change is the one kept"
    );
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["updated", "created"], "one update in the history");
}

both_backends!(every_object_lets_one_of_twenty_patches_with_the_same_if_match_through);
async fn every_object_lets_one_of_twenty_patches_with_the_same_if_match_through(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = owner.access_token.clone();
    let company = app
        .create(&token, "/v1/companies", json!({"name": "Race Co"}))
        .await;
    let product = app
        .create(
            &token,
            "/v1/products",
            json!({"sku": "R-1", "name": "Race", "unit_price_minor": 100, "currency": "CNY"}),
        )
        .await;
    let contact = app
        .create(&token, "/v1/contacts", json!({"first_name": "Buyer"}))
        .await;
    let order = app
        .create(
            &token,
            "/v1/orders",
            json!({"contact_id": contact["id"], "currency": "CNY",
                   "lines": [{"sku": "R-1", "quantity": 1}]}),
        )
        .await;
    let app = Arc::new(app);

    for (path, record, field) in [
        ("companies", &company, "industry"),
        ("products", &product, "description"),
        ("orders", &order, "external_id"),
    ] {
        let path = format!("/v1/{path}/{}", record["id"].as_str().unwrap());
        let requests = (0..20)
            .map(|i| {
                app.authed(Method::PATCH, &path, &token)
                    .header("If-Match", "\"1\"")
                    .json(&json!({ field: format!("{field} {i}") }))
            })
            .collect();
        let responses = all_at_once(&app, requests).await;
        let current = app.get_as(&path, &token).await.json();

        let won = responses.iter().filter(|r| r.status == 200).count();
        assert_eq!(
            won,
            1,
            "{path}: {:?}",
            responses.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        for response in responses.iter().filter(|r| r.status != 200) {
            response.assert_problem(412, "version_mismatch");
        }
        assert_eq!(current["version"], 2, "{path}");
    }
}

both_backends!(twenty_deletes_with_the_same_if_match_delete_once);
async fn twenty_deletes_with_the_same_if_match_delete_once(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = owner.access_token.clone();
    let contact = app
        .create(&token, "/v1/contacts", json!({"first_name": "Gone"}))
        .await;
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    let app = Arc::new(app);

    let requests = (0..20)
        .map(|_| {
            app.authed(Method::DELETE, &path, &token)
                .header("If-Match", "\"1\"")
        })
        .collect();
    let responses = all_at_once(&app, requests).await;
    let history = app.get_as(&format!("{path}/history"), &token).await.json();

    let deleted = responses.iter().filter(|r| r.status == 204).count();
    assert_eq!(
        deleted,
        1,
        "exactly one DELETE wins: {:?}",
        responses.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for response in responses.iter().filter(|r| r.status != 204) {
        // Gone already, or at another version than the one named: never deleted twice.
        match response.status {
            404 => response.assert_problem(404, "not_found"),
            _ => response.assert_problem(412, "version_mismatch"),
        };
    }
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["deleted", "created"], "one delete in the history");
}

both_backends!(twenty_restores_at_once_restore_once);
async fn twenty_restores_at_once_restore_once(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = owner.access_token.clone();
    let contact = app
        .create(&token, "/v1/contacts", json!({"first_name": "Back"}))
        .await;
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    assert_eq!(app.delete_as(&path, &token).await.status, 204);
    let app = Arc::new(app);

    let requests = (0..20)
        .map(|_| {
            app.authed(Method::POST, &format!("{path}/restore"), &token)
                .json(&json!({}))
        })
        .collect();
    let responses = all_at_once(&app, requests).await;
    let history = app.get_as(&format!("{path}/history"), &token).await.json();

    for response in &responses {
        assert_eq!(response.status, 200, "{}", response.text);
        assert_eq!(
            response.json()["version"],
            3,
            "restored once: {}",
            response.text
        );
    }
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["restored", "deleted", "created"],
        "one restore in the history"
    );
}

both_backends!(twenty_posts_with_one_idempotency_key_create_one_contact);
async fn twenty_posts_with_one_idempotency_key_create_one_contact(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = owner.access_token.clone();
    let app = Arc::new(app);
    let body = json!({"first_name": "Once", "email": "once@c.example"});

    let requests = (0..20)
        .map(|_| {
            app.authed(Method::POST, "/v1/contacts", &token)
                .header("Idempotency-Key", "one-key-for-all")
                .json(&body)
        })
        .collect();
    let responses = all_at_once(&app, requests).await;
    let live = app
        .get_as("/v1/contacts?include=total", &token)
        .await
        .json();

    let mut ids = HashSet::new();
    let mut originals = 0;
    for response in &responses {
        match response.status {
            201 => {
                ids.insert(response.json()["id"].as_str().unwrap().to_owned());
                if response.header("idempotent-replayed") != Some("true") {
                    originals += 1;
                }
            }
            _ => {
                response.assert_problem(409, "idempotency_request_in_progress");
            }
        }
    }
    assert_eq!(
        originals, 1,
        "one attempt ran; the others waited or replayed"
    );
    assert_eq!(ids.len(), 1, "every 201 names the same contact: {ids:?}");
    assert_eq!(live["total"], 1);
    assert_eq!(TestApp::ids(&live), ids.into_iter().collect::<Vec<_>>());
}

/// What a contact is after the merges: live, or merged into another.
async fn fate(app: &TestApp, token: &str, id: &str) -> Option<String> {
    let response = app.get_as(&format!("/v1/contacts/{id}"), token).await;
    match response.status {
        200 => None,
        _ => {
            let problem = response.assert_problem(404, "record_merged");
            Some(problem["merged_into"].as_str().unwrap().to_owned())
        }
    }
}

both_backends!(overlapping_merges_at_once_never_lose_or_double_merge_a_record);
async fn overlapping_merges_at_once_never_lose_or_double_merge_a_record(app: TestApp) {
    const ROUNDS: usize = 6;
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = owner.access_token.clone();
    let app = Arc::new(app);

    let mut created = Vec::new();
    let mut answers: Vec<(Value, TestResponse)> = Vec::new();
    for round in 0..ROUNDS {
        let mut ids = Vec::new();
        for name in ["A", "B", "C", "D"] {
            let contact = app
                .create(
                    &token,
                    "/v1/contacts",
                    json!({"first_name": format!("{name}{round}")}),
                )
                .await;
            ids.push(contact["id"].as_str().unwrap().to_owned());
        }
        let [a, b, c, d] = [&ids[0], &ids[1], &ids[2], &ids[3]];
        let merges = [
            json!({"primary_id": a, "duplicate_ids": [b, c]}),
            json!({"primary_id": d, "duplicate_ids": [c, b]}),
            json!({"primary_id": b, "duplicate_ids": [a]}),
            json!({"primary_id": d, "duplicate_ids": [b]}),
            json!({"primary_id": c, "duplicate_ids": [d]}),
        ];
        let requests = merges
            .iter()
            .map(|merge| {
                app.authed(Method::POST, "/v1/contacts/merge", &token)
                    .json(merge)
            })
            .collect();
        let responses = all_at_once(&app, requests).await;
        answers.extend(merges.into_iter().zip(responses));
        created.extend(ids);
    }
    let events = feed(&app, &token).await;

    // Losers get a clean refusal.
    for (merge, response) in &answers {
        assert!(
            [200, 404, 409, 422].contains(&response.status),
            "{merge}: {} {}",
            response.status,
            response.text
        );
        if response.status != 200 {
            let code = response.json()["code"].as_str().unwrap().to_owned();
            response.assert_problem(response.status, &code);
        }
    }
    // Every contact is live or merged into one that leads to a live contact.
    let mut fates = HashMap::new();
    for id in &created {
        fates.insert(id.clone(), fate(&app, &token, id).await);
    }
    let live: HashSet<&String> = fates
        .iter()
        .filter(|(_, into)| into.is_none())
        .map(|(id, _)| id)
        .collect();
    for (id, into) in &fates {
        let mut next = into.clone();
        let mut hops = 0;
        while let Some(into) = next {
            hops += 1;
            assert!(
                hops <= created.len(),
                "{id}: merged_into goes round in circles"
            );
            next = fates
                .get(&into)
                .unwrap_or_else(|| panic!("{id} was merged into {into}, which no one created"))
                .clone();
        }
    }
    let listed = app
        .get_as("/v1/contacts?include=total", &token)
        .await
        .json();
    let merged = fates.values().filter(|into| into.is_some()).count();
    assert_eq!(listed["total"].as_u64().unwrap() as usize, live.len());
    assert_eq!(live.len() + merged, created.len(), "no contact lost");

    // The feed: one merged event per merge answered 200, in commit order; nothing merged
    // twice, and nothing merged away is the primary of a later merge.
    let merge_events: Vec<(String, Vec<String>)> = events
        .iter()
        .filter(|e| e["action"] == "merged")
        .map(|e| {
            let merged_ids = e["merged_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect();
            (e["id"].as_str().unwrap().to_owned(), merged_ids)
        })
        .collect();
    let mut merged_away: HashSet<String> = HashSet::new();
    for (primary, duplicates) in &merge_events {
        assert!(
            !merged_away.contains(primary),
            "{primary} was the primary of a merge after it had been merged away"
        );
        for duplicate in duplicates {
            assert!(
                merged_away.insert(duplicate.clone()),
                "{duplicate} was merged twice"
            );
        }
    }
    assert_eq!(
        merged_away.len(),
        merged,
        "the feed's merges are the merged contacts"
    );
    let mut answered: Vec<(String, Vec<String>)> = answers
        .iter()
        .filter(|(_, response)| response.status == 200)
        .map(|(merge, _)| {
            let duplicates = merge["duplicate_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect();
            (merge["primary_id"].as_str().unwrap().to_owned(), duplicates)
        })
        .collect();
    let mut logged = merge_events.clone();
    answered.sort();
    logged.sort();
    assert_eq!(
        answered, logged,
        "each merge answered 200 is one merged event"
    );
}
