//! The change feed: commit order, exactly once, resumable, filtered, expiring, isolated — and
//! gapless while many writers commit at once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::TestApp;

async fn poll(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get_as(&format!("/v1/changes{query}"), token).await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.json()
}

both_backends!(the_feed_lists_every_change_in_order_with_the_current_record);
async fn the_feed_lists_every_change_in_order_with_the_current_record(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let (key_id, key) = app.api_key(&owner, &["*"]).await;
    let company = app
        .create(token, "/v1/companies", json!({"name": "Customer Co"}))
        .await;
    let contact = app
        .create(
            &key,
            "/v1/contacts",
            json!({"email": "a@c.example", "company_id": company["id"]}),
        )
        .await;
    let contact_path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    app.patch_as(&contact_path, token, &json!({"title": "CTO"}))
        .await;
    let gone = app
        .create(token, "/v1/contacts", json!({"email": "b@c.example"}))
        .await;
    app.delete_as(
        &format!("/v1/contacts/{}", gone["id"].as_str().unwrap()),
        token,
    )
    .await;

    let feed = poll(&app, token, "").await;
    let again = poll(
        &app,
        token,
        &format!("?after={}", feed["next_cursor"].as_str().unwrap()),
    )
    .await;

    let events = feed["data"].as_array().unwrap();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let c = contact["id"].as_str().unwrap().to_owned();
    let g = gone["id"].as_str().unwrap().to_owned();
    assert_eq!(
        summary,
        [
            (
                "company.created".to_owned(),
                company["id"].as_str().unwrap().to_owned()
            ),
            ("contact.created".to_owned(), c.clone()),
            ("contact.updated".to_owned(), c.clone()),
            ("contact.created".to_owned(), g.clone()),
            ("contact.deleted".to_owned(), g.clone()),
        ]
    );
    let cursors: Vec<i64> = events
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
    assert_eq!(
        events[1]["origin"],
        json!({"type": "api_key", "id": key_id})
    );
    assert_eq!(events[1]["actor"], owner.user_id.as_str());
    assert_eq!(
        events[2]["origin"],
        json!({"type": "user", "id": owner.user_id})
    );
    assert_eq!(
        events[2]["changed_fields"]["title"],
        json!({"old": null, "new": "CTO"})
    );
    assert_eq!(
        events[1]["record"]["title"], "CTO",
        "the record as it is now"
    );
    assert_eq!(events[3]["record"], Value::Null, "deleted since");
    assert_eq!(events[4]["action"], "deleted");
    assert_eq!(feed["next_cursor"], events[4]["cursor"]);
    assert_eq!(feed["has_more"], false);
    assert_eq!(again["data"], json!([]));
    assert_eq!(
        again["next_cursor"], feed["next_cursor"],
        "nothing new: stay put"
    );
}

both_backends!(the_feed_pages_and_filters_by_object);
async fn the_feed_pages_and_filters_by_object(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    for i in 0..5 {
        app.create(
            token,
            "/v1/contacts",
            json!({"email": format!("p{i}@c.example")}),
        )
        .await;
    }
    app.create(token, "/v1/products", json!({"sku": "S", "name": "S"}))
        .await;

    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let query = if cursor.is_empty() {
            "?limit=2".to_owned()
        } else {
            format!("?limit=2&after={cursor}")
        };
        let page = poll(&app, token, &query).await;
        pages += 1;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["cursor"].as_str().unwrap().to_owned()),
        );
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
        if page["has_more"] == false {
            break;
        }
    }
    let products = poll(&app, token, "?objects=product").await;
    let companies = poll(&app, token, "?objects=company").await;
    let plural = app.get_as("/v1/changes?objects=contacts", token).await;
    let bad_limit = app.get_as("/v1/changes?limit=201", token).await;
    let bad_after = app.get_as("/v1/changes?after=abc", token).await;
    let ahead = app.get_as("/v1/changes?after=999999", token).await;

    assert_eq!(seen.len(), 6);
    assert_eq!(pages, 3);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 6);
    assert_eq!(products["data"].as_array().unwrap().len(), 1);
    assert_eq!(products["data"][0]["object"], "product");
    assert_eq!(companies["data"], json!([]));
    assert_eq!(
        companies["next_cursor"],
        json!(cursor),
        "a filtered feed moves on too"
    );
    assert_eq!(
        plural.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "objects"
    );
    bad_limit.assert_problem(422, "validation_failed");
    bad_after.assert_problem(422, "validation_failed");
    assert_eq!(
        ahead.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "after"
    );
}

both_backends!(a_cursor_older_than_the_retention_is_gone);
async fn a_cursor_older_than_the_retention_is_gone(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(token, "/v1/contacts", json!({"email": "old@c.example"}))
        .await;
    let before = poll(&app, token, "").await;
    app.execute_sql("update events set occurred_at = '2000-01-01T00:00:00+00:00'")
        .await;
    app.create(token, "/v1/contacts", json!({"email": "new@c.example"}))
        .await;

    let expired = app.get_as("/v1/changes?after=0", token).await;
    let fresh_start = poll(&app, token, "").await;
    let from_last = poll(
        &app,
        token,
        &format!("?after={}", before["next_cursor"].as_str().unwrap()),
    )
    .await;

    expired.assert_problem(410, "cursor_expired");
    assert_eq!(
        fresh_start["data"].as_array().unwrap().len(),
        1,
        "only what is kept"
    );
    assert_eq!(fresh_start["data"][0]["record"]["email"], "new@c.example");
    assert_eq!(
        from_last["data"].as_array().unwrap().len(),
        1,
        "a cursor past the old event still works"
    );
}

both_backends!(the_feed_shows_only_what_the_caller_may_see);
async fn the_feed_shows_only_what_the_caller_may_see(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    app.patch_as(
        "/v1/organization",
        &owner.access_token,
        &json!({"settings": {"record_visibility": {"contact": "own"}}}),
    )
    .await;
    app.create(
        &owner.access_token,
        "/v1/contacts",
        json!({"email": "owners@c.example"}),
    )
    .await;
    let mine = app
        .create(
            &sales.access_token,
            "/v1/contacts",
            json!({"email": "sales@c.example"}),
        )
        .await;
    let (_, products_key) = app.api_key(&owner, &["product:read"]).await;

    let theirs = poll(&app, &other.access_token, "").await;
    let sales_feed = poll(&app, &sales.access_token, "?objects=contact").await;
    let contacts_with_product_key = app
        .get_as("/v1/changes?objects=contact", &products_key)
        .await;
    let product_key_feed = poll(&app, &products_key, "").await;

    assert_eq!(
        theirs["data"],
        json!([]),
        "another organization's changes never show"
    );
    let ids: Vec<&str> = sales_feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine["id"].as_str().unwrap()]);
    contacts_with_product_key.assert_problem(403, "forbidden");
    assert_eq!(product_key_feed["data"], json!([]));
}

both_backends!(concurrent_writers_never_make_the_feed_skip_or_repeat);
async fn concurrent_writers_never_make_the_feed_skip_or_repeat(app: TestApp) {
    const WRITERS: usize = 8;
    const EACH: usize = 20;
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = owner.access_token.clone();

    let app = std::sync::Arc::new(app);
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = app.clone();
        let token = token.clone();
        writers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..EACH {
                let contact = app
                    .create(
                        &token,
                        "/v1/contacts",
                        json!({"email": format!("w{w}-{i}@c.example")}),
                    )
                    .await;
                ids.push(contact["id"].as_str().unwrap().to_owned());
            }
            ids
        }));
    }
    // Poll while they write, from the very start.
    let mut seen: Vec<String> = Vec::new();
    let mut cursors: Vec<i64> = Vec::new();
    let mut after = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < WRITERS * EACH && Instant::now() < deadline {
        let query = if after.is_empty() {
            "?limit=7".to_owned()
        } else {
            format!("?limit=7&after={after}")
        };
        let page = poll(&app, &token, &query).await;
        for event in page["data"].as_array().unwrap() {
            seen.push(event["id"].as_str().unwrap().to_owned());
            cursors.push(event["cursor"].as_str().unwrap().parse().unwrap());
        }
        after = page["next_cursor"].as_str().unwrap().to_owned();
        if page["has_more"] == false {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut written = HashSet::new();
    for writer in writers {
        written.extend(writer.await.unwrap());
    }

    assert_eq!(seen.len(), WRITERS * EACH, "every change seen");
    assert_eq!(
        seen.iter().cloned().collect::<HashSet<_>>(),
        written,
        "exactly the changes made, once each"
    );
    assert!(
        cursors.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless and in order: {cursors:?}"
    );
}

/// The value at a dotted path (`custom.region`, `address.city`) of a record, null when absent;
/// a consent channel (`consent.email`) changes by its status.
fn value_at<'v>(record: &'v Value, path: &str) -> &'v Value {
    let value = path.split('.').fold(record, |value, key| &value[key]);
    match path.starts_with("consent.") {
        true => &value["status"],
        false => value,
    }
}

both_backends!(a_mirror_built_from_the_feed_alone_equals_get_derived_figures_included);
async fn a_mirror_built_from_the_feed_alone_equals_get_derived_figures_included(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let company = app
        .create(token, "/v1/companies", json!({"name": "Customer Co"}))
        .await;
    let other = app
        .create(token, "/v1/companies", json!({"name": "Customer Co (old)"}))
        .await;
    let contact = app
        .create(
            token,
            "/v1/contacts",
            json!({"email": "ann@c.example", "first_name": "Ann", "company_id": company["id"]}),
        )
        .await;
    let moved = app
        .create(
            token,
            "/v1/contacts",
            json!({"email": "bo@c.example", "company_id": other["id"]}),
        )
        .await;
    app.create(token, "/v1/products", json!({"sku": "TEA", "name": "Tea"}))
        .await;
    let order = |status: &str, amount: i64| {
        json!({"contact_id": contact["id"], "currency": "CNY", "status": status,
               "lines": [{"sku": "TEA", "quantity": 1, "unit_price_minor": amount}]})
    };
    let paid = app.create(token, "/v1/orders", order("paid", 12_900)).await;
    let pending = app
        .create(token, "/v1/orders", order("pending", 5_000))
        .await;
    let moved_order = app
        .create(
            token,
            "/v1/orders",
            json!({"contact_id": moved["id"], "currency": "CNY", "status": "fulfilled",
                   "lines": [{"sku": "TEA", "quantity": 2, "unit_price_minor": 700}]}),
        )
        .await;
    let path =
        |record: &Value, plural: &str| format!("/v1/{plural}/{}", record["id"].as_str().unwrap());
    // Paid later, refunded, deleted and restored: each changes the buyer's figures.
    let response = app
        .patch_as(&path(&pending, "orders"), token, &json!({"status": "paid"}))
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let response = app
        .patch_as(
            &path(&paid, "orders"),
            token,
            &json!({"status": "refunded"}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        app.delete_as(&path(&pending, "orders"), token).await.status,
        204
    );
    let response = app
        .post_as(
            &format!("{}/restore", path(&pending, "orders")),
            token,
            &json!({}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    // A merge moves the other company's contact and order (and their figures) over.
    let response = app
        .post_as(
            "/v1/companies/merge",
            token,
            &json!({"primary_id": company["id"], "duplicate_ids": [other["id"]]}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);

    // The mirror: every event's changed fields, applied in feed order.
    let mut mirror: std::collections::BTreeMap<(String, String), serde_json::Map<String, Value>> =
        Default::default();
    let mut cursor = String::new();
    loop {
        let query = match cursor.as_str() {
            "" => "?limit=200".to_owned(),
            after => format!("?limit=200&after={after}"),
        };
        let page = poll(&app, token, &query).await;
        for event in page["data"].as_array().unwrap() {
            let key = (
                event["object"].as_str().unwrap().to_owned(),
                event["id"].as_str().unwrap().to_owned(),
            );
            // A delete and a restore change `deleted_at`, like any field; a merge retires the
            // duplicates (their id answers 404 `record_merged`).
            for gone in event["merged_ids"].as_array().into_iter().flatten() {
                mirror.remove(&(key.0.clone(), gone.as_str().unwrap().to_owned()));
            }
            let fields = mirror.entry(key).or_default();
            for (field, change) in event["changed_fields"].as_object().unwrap() {
                fields.insert(field.clone(), change["new"].clone());
            }
        }
        cursor = page["next_cursor"].as_str().unwrap().to_owned();
        if page["has_more"] == false {
            break;
        }
    }

    let contact_now = app.get_as(&path(&contact, "contacts"), token).await.json();
    assert_eq!(contact_now["order_count"], 1, "{contact_now}");
    assert_eq!(contact_now["revenue_minor"], 5_000);
    let company_now = app.get_as(&path(&company, "companies"), token).await.json();
    assert_eq!(company_now["order_count"], 2, "{company_now}");
    assert_eq!(company_now["revenue_minor"], 6_400);
    let moved_now = app.get_as(&path(&moved, "contacts"), token).await.json();
    assert_eq!(moved_now["company_id"], company["id"]);
    let moved_order_now = app
        .get_as(&path(&moved_order, "orders"), token)
        .await
        .json();
    assert_eq!(moved_order_now["company_id"], company["id"]);

    for (object, plural, record) in [
        ("contact", "contacts", &contact),
        ("contact", "contacts", &moved),
        ("company", "companies", &company),
        ("order", "orders", &moved_order),
        ("order", "orders", &pending),
    ] {
        let id = record["id"].as_str().unwrap().to_owned();
        let now = app.get_as(&path(record, plural), token).await.json();
        let mirrored = mirror
            .get(&(object.to_owned(), id.clone()))
            .unwrap_or_else(|| panic!("no events of {object} {id}"));
        for (field, value) in mirrored {
            assert_eq!(
                value_at(&now, field),
                value,
                "{object} {id}: the feed says {field} is {value}, GET says {now}"
            );
        }
        for field in [
            "order_count",
            "revenue_minor",
            "first_order_at",
            "last_order_at",
            "company_id",
        ] {
            if now.get(field).is_some() {
                assert_eq!(
                    mirrored.get(field).unwrap_or(&Value::Null),
                    &now[field],
                    "{object} {id}: {field} as GET shows it is in the feed"
                );
            }
        }
    }
    let other_gone = mirror.get(&(
        "company".to_owned(),
        other["id"].as_str().unwrap().to_owned(),
    ));
    assert!(other_gone.is_none(), "the merged company left the mirror");
}
