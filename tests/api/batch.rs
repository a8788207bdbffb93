//! Integration writes: upsert by external id, batch upsert and delete with one result per
//! row, all-or-none batches, and related records named by their external ids.

use serde_json::{Value, json};

use crate::helpers::TestApp;

fn statuses(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch answer: {body}"))
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

both_backends!(put_by_external_id_creates_then_updates);
async fn put_by_external_id_creates_then_updates(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let path = "/v1/contacts/external/ERP-42";

    let created = app
        .put_as(
            path,
            token,
            &json!({"first_name": "安", "email": "an@c.example"}),
        )
        .await;
    let updated = app.put_as(path, token, &json!({"title": "CTO"})).await;
    let again = app.put_as(path, token, &json!({"title": "CTO"})).await;
    let read = app.get_as(path, token).await;
    let mismatch = app
        .put_as(path, token, &json!({"external_id": "ERP-43"}))
        .await;
    let missing = app.get_as("/v1/contacts/external/NOPE", token).await;

    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/contacts/{id}").as_str())
    );
    assert_eq!(created.json()["external_id"], "ERP-42");
    assert_eq!(updated.status, 200);
    assert_eq!(updated.json()["id"], id.as_str());
    assert_eq!(
        updated.json()["first_name"],
        "安",
        "a merge patch keeps the rest"
    );
    assert_eq!(updated.header("etag"), Some("\"2\""));
    assert_eq!(again.status, 200);
    assert_eq!(
        again.header("etag"),
        Some("\"2\""),
        "nothing changed, nothing written"
    );
    assert_eq!(read.json()["title"], "CTO");
    mismatch.assert_problem(422, "validation_failed");
    missing.assert_problem(404, "not_found");
}

both_backends!(every_object_upserts_by_external_id);
async fn every_object_upserts_by_external_id(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;

    let company = app
        .put_as(
            "/v1/companies/external/C-1",
            token,
            &json!({"name": "Customer Co"}),
        )
        .await;
    let contact = app
        .put_as(
            "/v1/contacts/external/P-1",
            token,
            &json!({"email": "p@c.example", "company_external_id": "C-1"}),
        )
        .await;
    let product = app
        .put_as(
            "/v1/products/external/SKU-EXT-1",
            token,
            &json!({"sku": "TEA-1", "name": "Tea", "unit_price_minor": 100, "currency": "CNY"}),
        )
        .await;
    let order = app
        .put_as(
            "/v1/orders/external/O-1",
            token,
            &json!({"contact_external_id": "P-1", "currency": "CNY",
            "status": "paid", "lines": [{"sku": "TEA-1", "quantity": 2}]}),
        )
        .await;
    let order_again = app
        .put_as(
            "/v1/orders/external/O-1",
            token,
            &json!({"status": "fulfilled"}),
        )
        .await;

    for (response, what) in [
        (&company, "company"),
        (&contact, "contact"),
        (&product, "product"),
        (&order, "order"),
    ] {
        assert_eq!(response.status, 201, "{what}: {}", response.text);
    }
    assert_eq!(
        contact.json()["company_id"],
        company.json()["id"],
        "named by external id"
    );
    assert_eq!(order.json()["company_id"], company.json()["id"]);
    assert_eq!(order.json()["total_minor"], 200);
    assert_eq!(order_again.status, 200);
    assert_eq!(order_again.json()["status"], "fulfilled");
}

both_backends!(a_batch_reports_every_bad_row_and_writes_the_good_ones);
async fn a_batch_reports_every_bad_row_and_writes_the_good_ones(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let batch = json!({"id_property": "email", "records": [
        {"email": "a@c.example", "first_name": "A"},
        {"email": "not-an-email", "first_name": "B"},
        {"email": "c@c.example", "first_name": "C", "custom": {"nope": 1}},
        {"email": "d@c.example", "frist_name": "D"},
        {"email": "A@C.example", "first_name": "A again"},
        {"first_name": "no key"},
        "not an object",
        {"email": "h@c.example", "last_name": "H"}
    ]});

    let response = app
        .post_as("/v1/contacts/batch/upsert", token, &batch)
        .await;
    let listed = app.get_as("/v1/contacts?include=total", token).await.json();

    assert_eq!(response.status, 200, "{}", response.text);
    let body = response.json();
    assert_eq!(
        statuses(&body),
        [
            "created", "error", "error", "error", "error", "error", "error", "created"
        ]
    );
    let results = body["results"].as_array().unwrap();
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result["index"], index);
    }
    let field = |i: usize| {
        results[i]["error"]["errors"][0]["field"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(field(1), "records[1].email");
    assert_eq!(field(2), "records[2].custom.nope");
    assert_eq!(field(3), "records[3].frist_name");
    assert_eq!(results[3]["error"]["errors"][0]["code"], "unknown_field");
    assert_eq!(
        field(4),
        "records[4].email",
        "the same key twice in one batch"
    );
    assert_eq!(
        results[4]["error"]["errors"][0]["code"],
        "duplicate_in_batch"
    );
    assert_eq!(field(5), "records[5].email");
    assert_eq!(field(6), "records[6]");
    assert_eq!(results[1]["error"]["status"], 422);
    assert!(results[1]["error"]["request_id"].is_string());
    assert!(results[0]["id"].is_string() && results[1]["id"].is_null());
    assert_eq!(listed["total"], 2);
}

both_backends!(a_repeated_batch_updates_and_leaves_unchanged_rows_alone);
async fn a_repeated_batch_updates_and_leaves_unchanged_rows_alone(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let records: Vec<Value> = (0..50)
        .map(|i| json!({"external_id": format!("ERP-{i}"), "name": format!("Company {i}"), "domain": format!("c{i}.example")}))
        .collect();
    let first = app
        .post_as(
            "/v1/companies/batch/upsert",
            token,
            &json!({"id_property": "external_id", "records": records}),
        )
        .await
        .json();

    let mut changed = records.clone();
    changed[7]["name"] = json!("Company seven");
    let second = app
        .post_as(
            "/v1/companies/batch/upsert",
            token,
            &json!({"id_property": "external_id", "records": changed}),
        )
        .await
        .json();
    let by_domain = app
        .post_as("/v1/companies/batch/upsert", token, &json!({"id_property": "domain", "records": [
            {"domain": "c8.example", "industry": "retail"}, {"domain": "new.example", "name": "New"}]}))
        .await
        .json();
    let history = app
        .get_as(
            &format!(
                "/v1/companies/{}/history",
                second["results"][7]["id"].as_str().unwrap()
            ),
            token,
        )
        .await
        .json();

    assert!(statuses(&first).iter().all(|s| s == "created"));
    let second_statuses = statuses(&second);
    assert_eq!(second_statuses[7], "updated");
    assert_eq!(
        second_statuses.iter().filter(|s| *s == "unchanged").count(),
        49
    );
    assert_eq!(second["results"][7]["id"], first["results"][7]["id"]);
    assert_eq!(statuses(&by_domain), ["updated", "created"]);
    assert_eq!(
        history["data"].as_array().unwrap().len(),
        2,
        "unchanged rows write no event"
    );
}

both_backends!(an_all_or_none_batch_with_a_bad_row_writes_nothing);
async fn an_all_or_none_batch_with_a_bad_row_writes_nothing(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(
        token,
        "/v1/products",
        json!({"sku": "KEEP", "name": "Keep"}),
    )
    .await;

    let parse_error = app
        .post_as(
            "/v1/products/batch/upsert",
            token,
            &json!({"id_property": "sku", "all_or_none": true, "records": [
            {"sku": "A", "name": "A"}, {"sku": "B", "name": "B", "unit_price_minor": "ten"}]}),
        )
        .await
        .json();
    let store_error = app
        .post_as("/v1/products/batch/upsert", token, &json!({"id_property": "sku", "all_or_none": true, "records": [
            {"sku": "A", "name": "A"}, {"sku": "KEEP", "name": "Changed", "external_id": "X"}, {"sku": "C"}]}))
        .await
        .json();
    let listed = app.get_as("/v1/products?include=total", token).await.json();

    assert_eq!(statuses(&parse_error), ["error", "error"]);
    assert_eq!(parse_error["results"][0]["error"]["code"], "not_applied");
    assert_eq!(parse_error["results"][0]["error"]["status"], 424);
    assert_eq!(
        parse_error["results"][1]["error"]["errors"][0]["field"],
        "records[1].unit_price_minor"
    );
    assert_eq!(statuses(&store_error), ["error", "error", "error"]);
    assert_eq!(
        store_error["results"][2]["error"]["errors"][0]["field"],
        "records[2].name"
    );
    assert_eq!(store_error["results"][1]["error"]["code"], "not_applied");
    assert_eq!(listed["total"], 1, "nothing was written");
    assert_eq!(listed["data"][0]["name"], "Keep");
}

both_backends!(a_batch_delete_deletes_what_it_finds_and_names_what_it_does_not);
async fn a_batch_delete_deletes_what_it_finds_and_names_what_it_does_not(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let token = &owner.access_token;
    for i in 0..3 {
        app.create(
            token,
            "/v1/contacts",
            json!({"email": format!("p{i}@c.example"), "external_id": format!("P-{i}")}),
        )
        .await;
    }
    let theirs = app
        .create(
            &other.access_token,
            "/v1/contacts",
            json!({"email": "x@o.example", "external_id": "P-9"}),
        )
        .await;

    let response = app
        .post_as("/v1/contacts/batch/delete", token, &json!({"id_property": "external_id", "records": [
            {"external_id": "P-0"}, {"external_id": "P-9"}, {"external_id": "P-2"}, {"external_id": "P-2"}, {"external_id": "P-1", "name": "x"}]}))
        .await;
    let by_id = app
        .post_as(
            "/v1/contacts/batch/delete",
            token,
            &json!({"id_property": "id", "records": [{"id": theirs["id"]}]}),
        )
        .await
        .json();
    let left = app.get_as("/v1/contacts", token).await.json();
    let trash = app
        .get_as("/v1/contacts?deleted=true&include=total", token)
        .await
        .json();
    let still_theirs = app
        .get_as(
            &format!("/v1/contacts/{}", theirs["id"].as_str().unwrap()),
            &other.access_token,
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    let body = response.json();
    assert_eq!(
        statuses(&body),
        ["deleted", "error", "deleted", "error", "error"]
    );
    assert_eq!(
        body["results"][1]["error"]["code"], "not_found",
        "another tenant's record is not found"
    );
    assert_eq!(
        body["results"][4]["error"]["errors"][0]["field"],
        "records[4].name"
    );
    assert_eq!(by_id["results"][0]["error"]["code"], "not_found");
    assert_eq!(left["data"].as_array().unwrap().len(), 1);
    assert_eq!(trash["total"], 2);
    assert_eq!(still_theirs.status, 200);
}

both_backends!(a_batch_is_checked_as_a_whole_first);
async fn a_batch_is_checked_as_a_whole_first(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let too_many: Vec<Value> = (0..1001)
        .map(|i| json!({"email": format!("p{i}@c.example")}))
        .collect();

    let empty = app
        .post_as(
            "/v1/contacts/batch/upsert",
            token,
            &json!({"id_property": "email", "records": []}),
        )
        .await;
    let large = app
        .post_as(
            "/v1/contacts/batch/upsert",
            token,
            &json!({"id_property": "email", "records": too_many}),
        )
        .await;
    let wrong_property = app
        .post_as(
            "/v1/contacts/batch/upsert",
            token,
            &json!({"id_property": "sku", "records": [{"sku": "x"}]}),
        )
        .await;
    let unknown_property = app
        .post_as(
            "/v1/contacts/batch/upsert",
            token,
            &json!({"id_property": "phone", "records": [{}]}),
        )
        .await;
    let viewer = app.member(&owner, "viewer@acme.example", "viewer").await;
    let forbidden = app
        .post_as(
            "/v1/contacts/batch/upsert",
            &viewer.access_token,
            &json!({"id_property": "email", "records": [{"email": "v@c.example"}]}),
        )
        .await;

    assert_eq!(
        empty.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "records"
    );
    assert_eq!(
        large.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "records"
    );
    assert_eq!(
        wrong_property.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "id_property"
    );
    assert_eq!(
        unknown_property.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "id_property"
    );
    forbidden.assert_problem(403, "forbidden");
}

both_backends!(a_sync_names_related_records_by_external_id);
async fn a_sync_names_related_records_by_external_id(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let same_batch = app
        .post_as(
            "/v1/companies/batch/upsert",
            token,
            &json!({"id_property": "external_id", "records": [
            {"external_id": "C-1", "name": "Parent Co"},
            {"external_id": "C-2", "name": "Child Co", "parent_external_id": "C-1"}]}),
        )
        .await
        .json();
    let next_batch = app
        .post_as(
            "/v1/companies/batch/upsert",
            token,
            &json!({"id_property": "external_id", "records": [
            {"external_id": "C-2", "name": "Child Co", "parent_external_id": "C-1"}]}),
        )
        .await
        .json();

    let contacts = app
        .post_as(
            "/v1/contacts/batch/upsert",
            token,
            &json!({"id_property": "external_id", "records": [
            {"external_id": "P-1", "email": "a@c.example", "company_external_id": "C-2"},
            {"external_id": "P-2", "email": "b@c.example", "company_external_id": "C-404"}]}),
        )
        .await
        .json();
    let child = app.get_as("/v1/companies/external/C-2", token).await.json();
    let parent = app.get_as("/v1/companies/external/C-1", token).await.json();
    let contact = app.get_as("/v1/contacts/external/P-1", token).await.json();
    app.create(
        token,
        "/v1/products",
        json!({"sku": "TEA", "name": "Tea", "unit_price_minor": 100, "currency": "CNY"}),
    )
    .await;
    let orders = app
        .post_as("/v1/orders/batch/upsert", token, &json!({"id_property": "number", "records": [
            {"number": "SO-1", "contact_email": "A@C.example", "currency": "CNY", "status": "paid", "lines": [{"sku": "TEA", "quantity": 1}]},
            {"number": "SO-2", "company_external_id": "C-1", "currency": "CNY", "lines": [{"sku": "TEA", "quantity": 3}]},
            {"number": "SO-3", "contact_external_id": "P-404", "currency": "CNY", "lines": [{"sku": "TEA", "quantity": 1}]}]}))
        .await
        .json();
    let contact_after = app.get_as("/v1/contacts/external/P-1", token).await.json();

    assert_eq!(
        statuses(&same_batch),
        ["created", "error"],
        "a reference resolves against what existed before the batch"
    );
    assert_eq!(
        same_batch["results"][1]["error"]["errors"][0]["field"],
        "records[1].parent_external_id"
    );
    assert_eq!(statuses(&next_batch), ["created"], "{next_batch}");
    assert_eq!(child["parent_company_id"], parent["id"]);
    assert_eq!(contact["company_id"], child["id"]);
    assert_eq!(statuses(&contacts), ["created", "error"]);
    assert_eq!(
        contacts["results"][1]["error"]["errors"][0]["field"],
        "records[1].company_external_id"
    );
    assert_eq!(statuses(&orders), ["created", "created", "error"]);
    assert_eq!(
        orders["results"][2]["error"]["errors"][0]["field"],
        "records[2].contact_external_id"
    );
    assert_eq!(contact_after["order_count"], 1);
    assert_eq!(contact_after["revenue_minor"], 100);
}
