//! Exports: every matching record, streamed across pages, as CSV or NDJSON, with the list's
//! filters; and an export that imports back.

use serde_json::{Value, json};

use crate::helpers::TestApp;

fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

both_backends!(contacts_export_as_csv_and_ndjson_with_the_lists_filters);
async fn contacts_export_as_csv_and_ndjson_with_the_lists_filters(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(
        token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "region", "label": "Region", "type": "text"}),
    )
    .await;
    let wang = app
        .create(token, "/v1/contacts", json!({"first_name": "安", "last_name": "王", "email": "wang@c.example",
            "title": "Buyer, \"senior\"\nEast", "tags": ["vip", "east"], "phones": [{"number": "+86 138 0013 8000"}],
            "address": {"city": "上海"}, "custom": {"region": "华东"}}))
        .await;
    app.create(
        token,
        "/v1/contacts",
        json!({"first_name": "Li", "tags": ["other"]}),
    )
    .await;

    let csv = app.get_as("/v1/contacts/export?tag=vip", token).await;
    let ndjson = app
        .get_as("/v1/contacts/export?format=ndjson&sort=name", token)
        .await;
    let bad_format = app.get_as("/v1/contacts/export?format=xlsx", token).await;
    let paged = app.get_as("/v1/contacts/export?limit=10", token).await;
    let bad_filter = app.get_as("/v1/contacts/export?shoe_size=42", token).await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let by_sales = app.get_as("/v1/contacts/export", &sales.access_token).await;

    assert_eq!(csv.status, 200, "{}", csv.text);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(
        csv.header("content-disposition")
            .unwrap()
            .contains("contacts.csv")
    );
    let (header, rows) = csv_rows(&csv.text);
    assert_eq!(rows.len(), 1, "the tag filter applies");
    let column = |name: &str| rows[0][header.iter().position(|h| h == name).unwrap()].clone();
    assert_eq!(column("id"), wang["id"].as_str().unwrap());
    assert_eq!(column("title"), "Buyer, \"senior\"\nEast");
    assert_eq!(column("tags"), "vip; east");
    // A cell starting with `+` would be a formula in a spreadsheet: it leaves neutralised.
    assert_eq!(column("phones"), "'+86 138 0013 8000");
    assert_eq!(column("address.city"), "上海");
    assert_eq!(column("custom.region"), "华东");
    assert_eq!(column("consent.email"), "unknown");
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = ndjson
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["first_name"], "Li");
    assert_eq!(
        lines[1],
        app.get_as(
            &format!("/v1/contacts/{}", wang["id"].as_str().unwrap()),
            token
        )
        .await
        .json()
    );
    assert_eq!(
        bad_format.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "format"
    );
    assert_eq!(
        paged.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "limit"
    );
    bad_filter.assert_problem(422, "validation_failed");
    by_sales.assert_problem(403, "forbidden");
}

both_backends!(an_export_streams_every_page_and_imports_back);
async fn an_export_streams_every_page_and_imports_back(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let token = &owner.access_token;
    let records: Vec<Value> = (0..1200)
        .map(|i| json!({"sku": format!("SKU-{i:04}"), "name": format!("产品 {i}"), "unit_price_minor": i, "currency": "CNY"}))
        .collect();
    for chunk in records.chunks(1000) {
        app.post_as(
            "/v1/products/batch/upsert",
            token,
            &json!({"id_property": "sku", "records": chunk}),
        )
        .await;
    }

    let csv = app.get_as("/v1/products/export?sort=name", token).await;
    let (header, rows) = csv_rows(&csv.text);
    // The columns a product import takes, without the ones Rapport sets.
    let keep = ["sku", "name", "unit_price_minor", "currency", "active"];
    let mut trimmed = csv::Writer::from_writer(Vec::new());
    trimmed.write_record(keep).unwrap();
    for row in &rows {
        let picked: Vec<&str> = keep
            .iter()
            .map(|k| row[header.iter().position(|h| h == k).unwrap()].as_str())
            .collect();
        trimmed.write_record(picked).unwrap();
    }
    let text = String::from_utf8(trimmed.into_inner().unwrap()).unwrap();
    let job = app
        .post_as(
            "/v1/imports",
            &other.access_token,
            &json!({"object": "product", "id_property": "sku", "csv": text}),
        )
        .await
        .json();
    let id = job["id"].as_str().unwrap();
    let mut done = Value::Null;
    for _ in 0..600 {
        done = app
            .get_as(&format!("/v1/imports/{id}"), &other.access_token)
            .await
            .json();
        if done["status"] == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let theirs = app
        .get_as("/v1/products/export?format=ndjson", &other.access_token)
        .await;

    assert_eq!(rows.len(), 1200, "every page");
    assert_eq!(done["created"], 1200, "{done}");
    let imported: Vec<Value> = theirs
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(imported.len(), 1200);
    let sample = imported.iter().find(|p| p["sku"] == "SKU-0042").unwrap();
    assert_eq!(sample["name"], "产品 42");
    assert_eq!(sample["unit_price_minor"], 42);
}
