//! Products: the catalog, its unique sku, and its life cycle.

use serde_json::json;

use crate::helpers::TestApp;

both_backends!(a_product_is_created_read_changed_deleted_and_restored);
async fn a_product_is_created_read_changed_deleted_and_restored(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;

    let product = app
        .create(
            token,
            "/v1/products",
            json!({"sku": "TEA-001", "name": "龙井茶 250 g", "category": "tea",
            "unit_price_minor": 12900, "currency": "cny", "warranty_months": 0}),
        )
        .await;
    let id = product["id"].as_str().unwrap();
    let path = format!("/v1/products/{id}");
    let changed = app
        .patch_as(
            &path,
            token,
            &json!({"unit_price_minor": 13900, "description": "春茶"}),
        )
        .await;
    let deleted = app.delete_as(&path, token).await;
    let gone = app.get_as(&path, token).await;
    let restored = app
        .post_as(&format!("{path}/restore"), token, &json!({}))
        .await;
    let history = app.get_as(&format!("{path}/history"), token).await.json();

    assert_eq!(product["currency"], "CNY");
    assert_eq!(product["active"], true, "a new product is active");
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json()["unit_price_minor"], 13900);
    assert_eq!(changed.header("etag"), Some("\"2\""));
    assert_eq!(deleted.status, 204);
    gone.assert_problem(404, "not_found");
    assert_eq!(restored.status, 200, "{}", restored.text);
    assert_eq!(restored.json()["deleted_at"], json!(null));
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["restored", "deleted", "updated", "created"]);
}

both_backends!(a_sku_belongs_to_one_live_product);
async fn a_sku_belongs_to_one_live_product(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let token = &owner.access_token;
    let first = app
        .create(
            token,
            "/v1/products",
            json!({"sku": "A-1", "name": "First"}),
        )
        .await;

    let taken = app
        .post_as(
            "/v1/products",
            token,
            &json!({"sku": "A-1", "name": "Second"}),
        )
        .await;
    let elsewhere = app
        .post_as(
            "/v1/products",
            &other.access_token,
            &json!({"sku": "A-1", "name": "Theirs"}),
        )
        .await;
    app.delete_as(
        &format!("/v1/products/{}", first["id"].as_str().unwrap()),
        token,
    )
    .await;
    let after_delete = app
        .post_as(
            "/v1/products",
            token,
            &json!({"sku": "A-1", "name": "Second"}),
        )
        .await;
    let restore = app
        .post_as(
            &format!("/v1/products/{}/restore", first["id"].as_str().unwrap()),
            token,
            &json!({}),
        )
        .await;

    let problem = taken.assert_problem(409, "conflict");
    assert_eq!(problem["errors"][0]["field"], "sku");
    assert_eq!(elsewhere.status, 201, "skus are per organization");
    assert_eq!(after_delete.status, 201, "a deleted product frees its sku");
    restore.assert_problem(409, "conflict");
}

both_backends!(product_input_is_checked_field_by_field);
async fn product_input_is_checked_field_by_field(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;

    let response = app
        .post_as(
            "/v1/products",
            &owner.access_token,
            &json!({"sku": "", "unit_price_minor": -5, "currency": "RMB", "warranty_months": -1}),
        )
        .await;
    let no_currency = app
        .post_as(
            "/v1/products",
            &owner.access_token,
            &json!({"sku": "X", "name": "X", "unit_price_minor": 5}),
        )
        .await;

    let problem = response.assert_problem(422, "validation_failed");
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["currency", "sku", "unit_price_minor", "warranty_months"]
    );
    assert_eq!(
        no_currency.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "currency"
    );
}

both_backends!(products_are_listed_searched_and_filtered);
async fn products_are_listed_searched_and_filtered(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    for (sku, name, category, active) in [
        ("TEA-001", "龙井茶", "tea", true),
        ("TEA-002", "Pu'er", "tea", false),
        ("CUP-001", "Gaiwan cup", "ware", true),
    ] {
        app.create(
            token,
            "/v1/products",
            json!({"sku": sku, "name": name, "category": category, "active": active}),
        )
        .await;
    }

    let teas = app
        .get_as("/v1/products?category=tea&sort=name", token)
        .await
        .json();
    let active = app
        .get_as("/v1/products?active=true&include=total", token)
        .await
        .json();
    let by_sku = app.get_as("/v1/products?q=cup-0", token).await.json();
    let chinese = app.get_as("/v1/products?q=%E4%BA%95", token).await.json();
    let searched = app
        .post_as(
            "/v1/products/search",
            token,
            &json!({"filter": {"field": "sku", "op": "starts_with", "value": "TEA"}}),
        )
        .await
        .json();

    let names: Vec<&str> = teas["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Pu'er", "龙井茶"]);
    assert_eq!(active["total"], 2);
    assert_eq!(by_sku["data"][0]["sku"], "CUP-001");
    assert_eq!(chinese["data"][0]["sku"], "TEA-001");
    assert_eq!(searched["data"].as_array().unwrap().len(), 2);
}

both_backends!(only_managers_and_above_write_the_catalog);
async fn only_managers_and_above_write_the_catalog(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let manager = app.member(&owner, "manager@acme.example", "manager").await;

    let by_sales = app
        .post_as(
            "/v1/products",
            &sales.access_token,
            &json!({"sku": "S", "name": "S"}),
        )
        .await;
    let by_manager = app
        .post_as(
            "/v1/products",
            &manager.access_token,
            &json!({"sku": "M", "name": "M"}),
        )
        .await;
    let read_by_sales = app.get_as("/v1/products", &sales.access_token).await;

    by_sales.assert_problem(403, "forbidden");
    assert_eq!(by_manager.status, 201);
    assert_eq!(read_by_sales.status, 200);
    assert_eq!(read_by_sales.json()["data"].as_array().unwrap().len(), 1);
}

both_backends!(a_product_is_active_by_default_and_found_by_its_sku);
async fn a_product_is_active_by_default_and_found_by_its_sku(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let created = app
        .create(
            token,
            "/v1/products",
            json!({"sku": "TEA-1", "name": "Tea"}),
        )
        .await;
    let id = created["id"].as_str().unwrap();

    let nulled = app
        .patch_as(
            &format!("/v1/products/{id}"),
            token,
            &json!({"active": false}),
        )
        .await
        .json();
    let reset = app
        .patch_as(
            &format!("/v1/products/{id}"),
            token,
            &json!({"active": null}),
        )
        .await
        .json();
    let batch = app
        .post_as(
            "/v1/products/batch/upsert",
            token,
            &json!({"id_property": "sku", "records": [
                {"sku": "TEA-1", "name": "Green tea"},
                {"sku": "CUP-1", "name": "Cup"},
            ]}),
        )
        .await
        .json();
    let tagged = app.get_as("/v1/products?tag=vip", token).await;
    let bad_filter = app.get_as("/v1/products?active=maybe", token).await;

    assert_eq!(created["active"], true);
    assert_eq!(nulled["active"], false);
    assert_eq!(reset["active"], true, "null sets the default");
    assert_eq!(batch["results"][0]["status"], "updated");
    assert_eq!(batch["results"][0]["id"], id);
    assert_eq!(batch["results"][1]["status"], "created");
    let green = app
        .get_as(&format!("/v1/products/{id}"), token)
        .await
        .json();
    assert_eq!(green["name"], "Green tea");
    assert_eq!(
        tagged.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "tag"
    );
    assert_eq!(
        bad_filter.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "active"
    );
}
