//! Competitors: the first object that is only a declaration. Every capability comes from the
//! engine; these tests prove each one through the API on both backends.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

fn names(page: &Value) -> Vec<&str> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

both_backends!(a_competitor_is_created_read_changed_deleted_and_restored_with_its_history);
async fn a_competitor_is_created_read_changed_deleted_and_restored_with_its_history(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let created = app
        .post_as(
            "/v1/competitors",
            token,
            &json!({"name": "  Rival Soft ", "website": "https://rival.example",
                "strengths": "价格低", "tags": ["saas", "china", "saas"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let competitor = created.json();
    let id = competitor["id"].as_str().unwrap();
    let path = format!("/v1/competitors/{id}");
    assert_eq!(created.header("location"), Some(path.as_str()));
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(competitor["name"], "Rival Soft");
    assert_eq!(competitor["tags"], json!(["saas", "china"]));
    assert_eq!(competitor["weaknesses"], Value::Null);
    assert_eq!(competitor["custom"], json!({}));
    assert_eq!(competitor["version"], 1);
    assert_eq!(competitor["created_by"], owner.user_id.as_str());

    let read = app.get_as(&path, token).await;
    assert_eq!(read.json(), competitor);

    let stale = app
        .send(
            app.authed(Method::PATCH, &path, token)
                .header("If-Match", "\"7\"")
                .json(&json!({"notes": "x"})),
        )
        .await;
    stale.assert_problem(412, "version_mismatch");
    let changed = app
        .send(
            app.authed(Method::PATCH, &path, token)
                .header("If-Match", "\"1\"")
                .json(&json!({"weaknesses": "无本地服务", "website": null})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json()["weaknesses"], "无本地服务");
    assert_eq!(changed.json()["website"], Value::Null);
    assert_eq!(changed.header("etag"), Some("\"2\""));

    assert_eq!(app.delete_as(&path, token).await.status, 204);
    app.get_as(&path, token)
        .await
        .assert_problem(404, "not_found");
    let trash = app
        .get_as("/v1/competitors?deleted=true", token)
        .await
        .json();
    assert_eq!(names(&trash), ["Rival Soft"]);
    let restored = app
        .post_as(&format!("{path}/restore"), token, &json!({}))
        .await;
    assert_eq!(restored.status, 200, "{}", restored.text);
    assert_eq!(restored.json()["deleted_at"], Value::Null);

    let history = app.get_as(&format!("{path}/history"), token).await.json();
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["restored", "deleted", "updated", "created"]);
    let update = &history["data"][2]["changes"];
    assert_eq!(update["weaknesses"]["new"], "无本地服务");
    assert_eq!(update["website"]["old"], "https://rival.example");
}

both_backends!(a_competitor_body_is_checked_against_the_declaration);
async fn a_competitor_body_is_checked_against_the_declaration(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let bad = app
        .post_as(
            "/v1/competitors",
            token,
            &json!({"website": "ftp://x", "colour": "red", "version": 4, "tags": "x",
                "notes": "a\u{0007}b"}),
        )
        .await;
    let problem = bad.assert_problem(422, "validation_failed");
    let mut fields: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    fields.sort();
    let expected: Vec<(String, String)> = [
        ("colour", "unknown_field"),
        ("notes", "invalid_value"),
        ("tags", "invalid_type"),
        ("version", "read_only"),
        ("website", "invalid_value"),
    ]
    .iter()
    .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(fields, expected, "{problem}");
    let nameless = app
        .post_as("/v1/competitors", token, &json!({"notes": "no name"}))
        .await;
    assert_eq!(
        nameless.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "name"
    );
    let long = "长".repeat(201);
    let too_long = app
        .post_as("/v1/competitors", token, &json!({"name": long}))
        .await;
    too_long.assert_problem(422, "validation_failed");
    let not_object = app.post_as("/v1/competitors", token, &json!([1])).await;
    assert!(not_object.status == 400 || not_object.status == 422);
    let listed = app
        .get_as("/v1/competitors?include=total", token)
        .await
        .json();
    assert_eq!(listed["total"], 0, "nothing was written");
}

both_backends!(competitors_list_sorted_paged_searched_and_filtered);
async fn competitors_list_sorted_paged_searched_and_filtered(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    for (name, tags) in [
        ("delta", json!(["eu"])),
        ("Alpha", json!(["cn"])),
        ("charlie", json!([])),
        ("Bravo", json!(["cn", "eu"])),
    ] {
        app.create(
            token,
            "/v1/competitors",
            json!({"name": name, "tags": tags, "website": format!("https://{}.example", name.to_lowercase())}),
        )
        .await;
    }
    let first = app
        .get_as("/v1/competitors?sort=name&limit=3", token)
        .await
        .json();
    assert_eq!(names(&first), ["Alpha", "Bravo", "charlie"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = app
        .get_as(
            &format!("/v1/competitors?sort=name&limit=3&cursor={cursor}"),
            token,
        )
        .await
        .json();
    assert_eq!(names(&rest), ["delta"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    let newest = app.get_as("/v1/competitors", token).await.json();
    assert_eq!(names(&newest), ["Bravo", "charlie", "Alpha", "delta"]);

    let searched = app.get_as("/v1/competitors?q=RAV", token).await.json();
    assert_eq!(names(&searched), ["Bravo"]);
    let by_site = app
        .get_as("/v1/competitors?q=charlie.example&sort=name", token)
        .await
        .json();
    assert_eq!(names(&by_site), ["charlie"]);
    let tagged = app
        .get_as("/v1/competitors?tag=cn&sort=name", token)
        .await
        .json();
    assert_eq!(names(&tagged), ["Alpha", "Bravo"]);
    let tree = app
        .post_as(
            "/v1/competitors/search",
            token,
            &json!({"filter": {"or": [
                {"field": "name", "op": "eq", "value": "DELTA"},
                {"field": "tags", "op": "contains", "value": "cn"}
            ]}, "sort": [{"field": "name", "direction": "desc"}]}),
        )
        .await;
    assert_eq!(tree.status, 200, "{}", tree.text);
    assert_eq!(names(&tree.json()), ["delta", "Bravo", "Alpha"]);

    // A change of tags moves only the keys it changes: Bravo leaves cn and joins apac.
    let bravo = &tagged["data"][1]["id"];
    let retagged = app
        .post_as(
            "/v1/competitors/batch/upsert",
            token,
            &json!({"id_property": "id", "records": [{"id": bravo, "tags": ["eu", "apac"]}]}),
        )
        .await
        .json();
    assert_eq!(retagged["results"][0]["status"], "updated", "{retagged}");
    let cn = app.get_as("/v1/competitors?tag=cn", token).await.json();
    let apac = app.get_as("/v1/competitors?tag=apac", token).await.json();
    let eu = app
        .get_as("/v1/competitors?tag=eu&sort=name", token)
        .await
        .json();
    assert_eq!(names(&cn), ["Alpha"]);
    assert_eq!(names(&apac), ["Bravo"]);
    assert_eq!(names(&eu), ["Bravo", "delta"]);

    let unknown = app.get_as("/v1/competitors?colour=red", token).await;
    unknown.assert_problem(422, "validation_failed");
    let bad_sort = app.get_as("/v1/competitors?sort=notes", token).await;
    bad_sort.assert_problem(422, "validation_failed");
}

both_backends!(competitors_are_upserted_by_external_id_and_written_in_batches);
async fn competitors_are_upserted_by_external_id_and_written_in_batches(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let put = |body: Value| {
        let app = &app;
        async move {
            app.put_as("/v1/competitors/external/CRM-1", token, &body)
                .await
        }
    };
    let created = put(json!({"name": "Rival"})).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json()["external_id"], "CRM-1");
    let again = put(json!({"name": "Rival"})).await;
    assert_eq!(again.status, 200);
    assert_eq!(
        again.json()["version"],
        1,
        "an unchanged upsert writes nothing"
    );
    let renamed = put(json!({"name": "Rival Inc"})).await;
    assert_eq!(renamed.json()["version"], 2);
    let mismatch = put(json!({"name": "x", "external_id": "CRM-2"})).await;
    mismatch.assert_problem(422, "validation_failed");
    let read = app
        .get_as("/v1/competitors/external/CRM-1", token)
        .await
        .json();
    assert_eq!(read["name"], "Rival Inc");

    let batch = app
        .post_as(
            "/v1/competitors/batch/upsert",
            token,
            &json!({"id_property": "external_id", "records": [
                {"external_id": "CRM-1", "name": "Rival Inc"},
                {"external_id": "CRM-2", "name": "Second"},
                {"external_id": "CRM-3"},
                {"external_id": "CRM-2", "name": "Twice"}
            ]}),
        )
        .await;
    assert_eq!(batch.status, 200, "{}", batch.text);
    let results = batch.json()["results"].clone();
    let statuses: Vec<&str> = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["unchanged", "created", "error", "error"]);
    assert_eq!(results[2]["error"]["errors"][0]["field"], "records[2].name");
    let all_or_none = app
        .post_as(
            "/v1/competitors/batch/upsert",
            token,
            &json!({"id_property": "external_id", "all_or_none": true, "records": [
                {"external_id": "CRM-4", "name": "Fourth"},
                {"external_id": "CRM-5", "name": 5}
            ]}),
        )
        .await
        .json();
    assert_eq!(all_or_none["results"][0]["status"], "error");
    let by_sku = app
        .post_as(
            "/v1/competitors/batch/upsert",
            token,
            &json!({"id_property": "sku", "records": [{"sku": "x"}]}),
        )
        .await;
    by_sku.assert_problem(422, "validation_failed");
    let total = app
        .get_as("/v1/competitors?include=total", token)
        .await
        .json();
    assert_eq!(total["total"], 2);

    let deleted = app
        .post_as(
            "/v1/competitors/batch/delete",
            token,
            &json!({"id_property": "external_id", "records": [
                {"external_id": "CRM-2"}, {"external_id": "CRM-9"}
            ]}),
        )
        .await
        .json();
    assert_eq!(deleted["results"][0]["status"], "deleted");
    assert_eq!(deleted["results"][1]["status"], "error");
    let total = app
        .get_as("/v1/competitors?include=total", token)
        .await
        .json();
    assert_eq!(total["total"], 1);
}

both_backends!(a_retried_competitor_create_with_its_idempotency_key_creates_one);
async fn a_retried_competitor_create_with_its_idempotency_key_creates_one(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let send = || {
        app.send(
            app.authed(Method::POST, "/v1/competitors", token)
                .header("Idempotency-Key", "retry-1")
                .json(&json!({"name": "Once"})),
        )
    };
    let first = send().await;
    let second = send().await;
    assert_eq!(first.status, 201);
    assert_eq!(second.status, 201);
    assert_eq!(second.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.json()["id"], second.json()["id"]);
    let total = app
        .get_as("/v1/competitors?include=total", token)
        .await
        .json();
    assert_eq!(total["total"], 1);
}

both_backends!(competitor_changes_reach_the_feed_and_custom_fields_apply);
async fn competitor_changes_reach_the_feed_and_custom_fields_apply(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(
        token,
        "/v1/custom-fields",
        json!({"object": "competitor", "key": "threat", "label": "Threat", "type": "integer"}),
    )
    .await;
    let competitor = app
        .create(
            token,
            "/v1/competitors",
            json!({"name": "Rival", "custom": {"threat": 4}}),
        )
        .await;
    assert_eq!(competitor["custom"], json!({"threat": 4}));
    let bad = app
        .post_as(
            "/v1/competitors",
            token,
            &json!({"name": "Other", "custom": {"threat": "high"}}),
        )
        .await;
    assert_eq!(
        bad.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "custom.threat"
    );
    let sorted = app
        .get_as("/v1/competitors?sort=-custom.threat", token)
        .await;
    assert_eq!(sorted.status, 200, "{}", sorted.text);

    let feed = app.get_as("/v1/changes?objects=competitor", token).await;
    assert_eq!(feed.status, 200, "{}", feed.text);
    let events = feed.json()["data"].clone();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    assert_eq!(events[0]["event"], "competitor.created");
    assert_eq!(events[0]["id"], competitor["id"]);
    assert_eq!(events[0]["changed_fields"]["name"]["new"], "Rival");
    assert_eq!(
        events[0]["record"], competitor,
        "the feed shows the record as GET does"
    );
}

both_backends!(competitors_keep_to_their_tenant_and_roles);
async fn competitors_keep_to_their_tenant_and_roles(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let viewer = app.member(&owner, "viewer@acme.example", "viewer").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let competitor = app
        .create(
            &owner.access_token,
            "/v1/competitors",
            json!({"name": "Rival"}),
        )
        .await;
    let path = format!("/v1/competitors/{}", competitor["id"].as_str().unwrap());

    app.get_as(&path, &other.access_token)
        .await
        .assert_problem(404, "not_found");
    let elsewhere = app
        .patch_as(&path, &other.access_token, &json!({"name": "Mine"}))
        .await;
    elsewhere.assert_problem(404, "not_found");
    let listed = app
        .get_as("/v1/competitors?include=total", &other.access_token)
        .await
        .json();
    assert_eq!(listed["total"], 0);

    assert_eq!(app.get_as(&path, &viewer.access_token).await.status, 200);
    app.post_as(
        "/v1/competitors",
        &viewer.access_token,
        &json!({"name": "V"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let by_sales = app
        .post_as(
            "/v1/competitors",
            &sales.access_token,
            &json!({"name": "S"}),
        )
        .await;
    assert_eq!(by_sales.status, 201, "{}", by_sales.text);
    app.get("/v1/competitors")
        .await
        .assert_problem(401, "unauthenticated");
    let wrong_method = app
        .send(app.authed(Method::PUT, "/v1/competitors", &owner.access_token))
        .await;
    assert_eq!(wrong_method.status, 405);
    app.get_as("/v1/competitors/not-a-uuid", &owner.access_token)
        .await
        .assert_problem(404, "not_found");
}
