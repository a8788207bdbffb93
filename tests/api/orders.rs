//! Orders: totals computed by Rapport, lines by product id or sku, customers named by id,
//! external id or email, and the purchase figures of contacts and companies.

use serde_json::{Value, json};

use crate::helpers::TestApp;

async fn catalog(app: &TestApp, token: &str) -> (String, String) {
    let tea = app
        .create(token, "/v1/products", json!({"sku": "TEA-001", "name": "龙井茶", "unit_price_minor": 12900, "currency": "CNY"}))
        .await;
    let cup = app
        .create(token, "/v1/products", json!({"sku": "CUP-001", "name": "Gaiwan", "unit_price_minor": 5000, "currency": "USD"}))
        .await;
    (
        tea["id"].as_str().unwrap().to_owned(),
        cup["id"].as_str().unwrap().to_owned(),
    )
}

both_backends!(rapport_computes_line_and_order_totals);
async fn rapport_computes_line_and_order_totals(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let (tea, cup) = catalog(&app, token).await;
    let contact = app
        .create(
            token,
            "/v1/contacts",
            json!({"email": "wang@customer.example"}),
        )
        .await;

    let order = app
        .create(
            token,
            "/v1/orders",
            json!({"number": "SO-1", "contact_id": contact["id"], "currency": "CNY",
            "status": "paid", "lines": [
                {"sku": "TEA-001", "quantity": 3, "discount_minor": 900},
                {"product_id": cup, "quantity": 2, "unit_price_minor": 3500}
            ]}),
        )
        .await;
    let agreeing = app
        .post_as(
            "/v1/orders",
            token,
            &json!({"contact_id": contact["id"], "currency": "CNY",
            "lines": [{"product_id": tea, "quantity": 1}], "total_minor": 12900}),
        )
        .await;
    let disagreeing = app
        .post_as(
            "/v1/orders",
            token,
            &json!({"contact_id": contact["id"], "currency": "CNY",
            "lines": [{"product_id": tea, "quantity": 1}], "total_minor": 12000}),
        )
        .await;

    assert_eq!(
        order["lines"][0]["unit_price_minor"], 12900,
        "the product's price"
    );
    assert_eq!(order["lines"][0]["total_minor"], 3 * 12900 - 900);
    assert_eq!(order["lines"][0]["sku"], "TEA-001");
    assert_eq!(order["lines"][0]["product_id"], tea.as_str());
    assert_eq!(order["lines"][1]["total_minor"], 7000);
    assert_eq!(order["total_minor"], 3 * 12900 - 900 + 7000);
    assert_eq!(order["status"], "paid");
    assert_eq!(agreeing.status, 201, "{}", agreeing.text);
    let problem = disagreeing.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "total_minor");
    assert_eq!(problem["errors"][0]["code"], "mismatch");
}

both_backends!(bad_order_lines_are_each_named);
async fn bad_order_lines_are_each_named(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let (_, cup) = catalog(&app, token).await;
    let contact = app
        .create(token, "/v1/contacts", json!({"email": "a@c.example"}))
        .await;

    let response = app
        .post_as(
            "/v1/orders",
            token,
            &json!({"contact_id": contact["id"], "currency": "CNY", "lines": [
                {"sku": "NOPE", "quantity": 1},
                {"product_id": cup, "quantity": 1},
                {"sku": "TEA-001", "quantity": 2, "discount_minor": 999999},
                {"quantity": 1}
            ]}),
        )
        .await;
    let no_customer = app
        .post_as(
            "/v1/orders",
            token,
            &json!({"currency": "CNY", "lines": [{"sku": "TEA-001", "quantity": 1}]}),
        )
        .await;
    let bad_values = app
        .post_as(
            "/v1/orders",
            token,
            &json!({"contact_id": contact["id"], "currency": "XX",
            "lines": [{"sku": "TEA-001", "quantity": 0, "discount_minor": -1}]}),
        )
        .await;

    let problem = response.assert_problem(422, "validation_failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "lines[0].sku",
            "lines[1].unit_price_minor",
            "lines[2].discount_minor",
            "lines[3].product_id"
        ],
        "a price in another currency is not used: {problem}"
    );
    no_customer.assert_problem(422, "validation_failed");
    let problem = bad_values.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3, "{problem}");
}

fn purchases(record: &Value) -> (i64, i64, Value, Value) {
    (
        record["order_count"].as_i64().unwrap(),
        record["revenue_minor"].as_i64().unwrap(),
        record["first_order_at"].clone(),
        record["last_order_at"].clone(),
    )
}

both_backends!(purchase_figures_follow_paid_and_fulfilled_orders);
async fn purchase_figures_follow_paid_and_fulfilled_orders(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    catalog(&app, token).await;
    let company = app
        .create(
            token,
            "/v1/companies",
            json!({"name": "Customer Co", "external_id": "ERP-C1"}),
        )
        .await;
    let contact = app
        .create(token, "/v1/contacts", json!({"email": "Wang@Customer.example", "external_id": "ERP-P1", "company_id": company["id"]}))
        .await;
    let contact_path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    let company_path = format!("/v1/companies/{}", company["id"].as_str().unwrap());
    let line = json!([{"sku": "TEA-001", "quantity": 1}]);

    let first = app
        .create(
            token,
            "/v1/orders",
            json!({"contact_email": "wang@customer.example", "currency": "CNY", "status": "paid",
            "ordered_at": "2026-01-05T10:00:00Z", "lines": line}),
        )
        .await;
    let second = app
        .create(
            token,
            "/v1/orders",
            json!({"contact_external_id": "ERP-P1", "currency": "CNY", "status": "fulfilled",
            "ordered_at": "2026-03-01T10:00:00Z", "lines": [{"sku": "TEA-001", "quantity": 2}]}),
        )
        .await;
    let pending = app
        .create(
            token,
            "/v1/orders",
            json!({"contact_id": contact["id"], "currency": "CNY", "status": "pending",
            "ordered_at": "2026-06-01T10:00:00Z", "lines": line}),
        )
        .await;
    let after_three = app.get_as(&contact_path, token).await.json();
    let company_after_three = app.get_as(&company_path, token).await.json();

    let second_path = format!("/v1/orders/{}", second["id"].as_str().unwrap());
    app.patch_as(&second_path, token, &json!({"status": "refunded"}))
        .await;
    let after_refund = app.get_as(&contact_path, token).await.json();
    app.patch_as(
        &format!("/v1/orders/{}", pending["id"].as_str().unwrap()),
        token,
        &json!({"status": "paid"}),
    )
    .await;
    app.delete_as(
        &format!("/v1/orders/{}", first["id"].as_str().unwrap()),
        token,
    )
    .await;
    let after_delete = app.get_as(&contact_path, token).await.json();
    app.post_as(
        &format!("/v1/orders/{}/restore", first["id"].as_str().unwrap()),
        token,
        &json!({}),
    )
    .await;
    let after_restore = app.get_as(&contact_path, token).await.json();

    assert_eq!(
        first["contact_id"], contact["id"],
        "found by email, ignoring case"
    );
    assert_eq!(
        first["company_id"], company["id"],
        "a contact's order counts for its company"
    );
    assert_eq!(
        purchases(&after_three),
        (
            2,
            3 * 12900,
            json!("2026-01-05T10:00:00Z"),
            json!("2026-03-01T10:00:00Z")
        ),
        "pending orders are not purchases"
    );
    assert_eq!(purchases(&company_after_three).0, 2);
    assert_eq!(purchases(&company_after_three).1, 3 * 12900);
    assert_eq!(
        purchases(&after_refund),
        (
            1,
            12900,
            json!("2026-01-05T10:00:00Z"),
            json!("2026-01-05T10:00:00Z")
        )
    );
    assert_eq!(
        purchases(&after_delete),
        (
            1,
            12900,
            json!("2026-06-01T10:00:00Z"),
            json!("2026-06-01T10:00:00Z")
        )
    );
    assert_eq!(purchases(&after_restore).0, 2);
}

both_backends!(a_customers_orders_are_listed_under_it);
async fn a_customers_orders_are_listed_under_it(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let token = &owner.access_token;
    catalog(&app, token).await;
    let company = app
        .create(token, "/v1/companies", json!({"name": "Customer Co"}))
        .await;
    let a = app
        .create(token, "/v1/contacts", json!({"email": "a@c.example"}))
        .await;
    let b = app
        .create(token, "/v1/contacts", json!({"email": "b@c.example"}))
        .await;
    for (contact, at) in [
        (&a, "2026-01-01T00:00:00Z"),
        (&a, "2026-02-01T00:00:00Z"),
        (&b, "2026-03-01T00:00:00Z"),
    ] {
        app.create(
            token,
            "/v1/orders",
            json!({"contact_id": contact["id"], "currency": "CNY", "ordered_at": at,
            "lines": [{"sku": "TEA-001", "quantity": 1}]}),
        )
        .await;
    }
    app.create(
        token,
        "/v1/orders",
        json!({"company_id": company["id"], "currency": "CNY",
        "lines": [{"sku": "TEA-001", "quantity": 1}]}),
    )
    .await;

    let of_a = app
        .get_as(
            &format!(
                "/v1/contacts/{}/orders?sort=-ordered_at",
                a["id"].as_str().unwrap()
            ),
            token,
        )
        .await
        .json();
    let of_company = app
        .get_as(
            &format!("/v1/companies/{}/orders", company["id"].as_str().unwrap()),
            token,
        )
        .await
        .json();
    let foreign = app
        .get_as(
            &format!("/v1/contacts/{}/orders", a["id"].as_str().unwrap()),
            &other.access_token,
        )
        .await;
    let by_status = app
        .get_as("/v1/orders?status=pending&include=total", token)
        .await
        .json();

    let dates: Vec<&str> = of_a["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["ordered_at"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2026-02-01T00:00:00Z", "2026-01-01T00:00:00Z"]);
    assert_eq!(of_company["data"].as_array().unwrap().len(), 1);
    foreign.assert_problem(404, "not_found");
    assert_eq!(by_status["total"], 4);
}

both_backends!(sales_write_orders_but_do_not_delete_them);
async fn sales_write_orders_but_do_not_delete_them(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    catalog(&app, &owner.access_token).await;
    let contact = app
        .create(
            &sales.access_token,
            "/v1/contacts",
            json!({"email": "a@c.example"}),
        )
        .await;

    let order = app
        .create(
            &sales.access_token,
            "/v1/orders",
            json!({"contact_id": contact["id"], "currency": "CNY",
            "lines": [{"sku": "TEA-001", "quantity": 1}]}),
        )
        .await;
    let delete = app
        .delete_as(
            &format!("/v1/orders/{}", order["id"].as_str().unwrap()),
            &sales.access_token,
        )
        .await;

    delete.assert_problem(403, "forbidden");
}

both_backends!(a_customer_is_named_one_way_or_agreeing_ways_and_filters_follow_it);
async fn a_customer_is_named_one_way_or_agreeing_ways_and_filters_follow_it(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let token = &owner.access_token;
    catalog(&app, token).await;
    let wang = app
        .create(
            token,
            "/v1/contacts",
            json!({"email": "wang@c.example", "external_id": "P-1"}),
        )
        .await;
    let li = app
        .create(token, "/v1/contacts", json!({"email": "li@c.example"}))
        .await;
    let foreign = app
        .create(
            &other.access_token,
            "/v1/contacts",
            json!({"email": "x@o.example"}),
        )
        .await;
    let order = |customer: Value, at: &str| {
        let mut body = json!({"currency": "CNY", "ordered_at": at,
            "lines": [{"sku": "TEA-001", "quantity": 1}]});
        body.as_object_mut()
            .unwrap()
            .extend(customer.as_object().unwrap().clone());
        body
    };

    let agreeing = app
        .post_as(
            "/v1/orders",
            token,
            &order(
                json!({"contact_id": wang["id"], "contact_external_id": "P-1"}),
                "2026-01-10T00:00:00Z",
            ),
        )
        .await;
    let disagreeing = app
        .post_as(
            "/v1/orders",
            token,
            &order(
                json!({"contact_id": wang["id"], "contact_email": "LI@c.example"}),
                "2026-01-10T00:00:00Z",
            ),
        )
        .await;
    let another_tenants = app
        .post_as(
            "/v1/orders",
            token,
            &order(json!({"contact_id": foreign["id"]}), "2026-01-10T00:00:00Z"),
        )
        .await;
    app.create(
        token,
        "/v1/orders",
        order(
            json!({"contact_email": "Li@C.example"}),
            "2026-03-10T00:00:00Z",
        ),
    )
    .await;
    let of_li = app
        .post_as(
            "/v1/orders/search",
            token,
            &json!({"filter": {"field": "contact.email", "op": "eq", "value": "li@c.example"}}),
        )
        .await
        .json();
    let in_february = app
        .get_as(
            "/v1/orders?ordered_after=2026-02-01T00:00:00Z&ordered_before=2026-04-01T00:00:00Z",
            token,
        )
        .await
        .json();
    let bad_window = app
        .get_as("/v1/orders?ordered_after=yesterday", token)
        .await;

    assert_eq!(agreeing.status, 201, "{}", agreeing.text);
    assert_eq!(agreeing.json()["contact_id"], wang["id"]);
    let problem = disagreeing.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "contact_email", "{problem}");
    assert_eq!(problem["errors"][0]["code"], "invalid_value");
    let problem = another_tenants.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "contact_id");
    assert_eq!(problem["errors"][0]["code"], "not_found");
    let customers: Vec<&Value> = of_li["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["contact_id"])
        .collect();
    assert_eq!(
        customers,
        [&li["id"]],
        "found by email, ignoring case; filtered by the relation"
    );
    assert_eq!(
        in_february["data"].as_array().unwrap().len(),
        1,
        "{in_february}"
    );
    assert_eq!(in_february["data"][0]["contact_id"], li["id"]);
    bad_window.assert_problem(422, "validation_failed");
}
