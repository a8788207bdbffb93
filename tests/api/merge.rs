//! Duplicates and merges of contacts and companies.

use serde_json::{Value, json};

use crate::helpers::TestApp;

both_backends!(likely_duplicates_come_with_their_reasons);
async fn likely_duplicates_come_with_their_reasons(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let company = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Customer Co"}),
        )
        .await;
    let ann = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann", "last_name": "Lee", "email": "ann@x.example",
            "phones": [{"number": "+86 138 0013 8000"}], "company_id": company["id"]}),
        )
        .await;
    let by_email = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "A.", "emails": ["ANN@x.example"]}),
        )
        .await;
    let by_phone = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Phone", "phones": [{"number": "+8613800138000"}]}),
        )
        .await;
    let by_name = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "ann", "last_name": "LEE", "company_id": company["id"]}),
        )
        .await;
    app.create(
        &owner.access_token,
        "/v1/contacts",
        json!({"first_name": "Ann", "last_name": "Lee"}),
    )
    .await;

    let response = app
        .get_as(
            &format!("/v1/contacts/{}/duplicates", ann["id"].as_str().unwrap()),
            &owner.access_token,
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    let body = response.json();
    assert_eq!(body["next_cursor"], Value::Null);
    let found: Vec<(String, Value)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["record"]["id"].as_str().unwrap().to_owned(),
                d["reasons"].clone(),
            )
        })
        .collect();
    assert_eq!(found.len(), 3, "{body}");
    let reasons_of = |id: &Value| {
        found
            .iter()
            .find(|(f, _)| f == id.as_str().unwrap())
            .map(|(_, r)| r.clone())
            .unwrap()
    };
    assert_eq!(reasons_of(&by_email["id"]), json!(["same_email"]));
    assert_eq!(reasons_of(&by_phone["id"]), json!(["same_phone"]));
    assert_eq!(reasons_of(&by_name["id"]), json!(["same_name_and_company"]));
}

both_backends!(merging_contacts_keeps_the_primary_fills_gaps_and_unites);
async fn merging_contacts_keeps_the_primary_fills_gaps_and_unites(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    app.create(
        &owner.access_token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "region", "label": "R", "type": "text"}),
    )
    .await;
    app.create(
        &owner.access_token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "size", "label": "S", "type": "text"}),
    )
    .await;
    let primary = app
        .create(&owner.access_token, "/v1/contacts", json!({"first_name": "Ann", "email": "ann@x.example", "tags": ["a"], "custom": {"region": "east"}}))
        .await;
    let dup = app
        .create(&owner.access_token, "/v1/contacts", json!({"first_name": "Annie", "last_name": "Lee", "email": "ann.lee@y.example",
            "title": "CEO", "tags": ["b"], "custom": {"region": "west", "size": "L"}, "external_id": "erp-7"}))
        .await;
    let (primary_id, dup_id) = (primary["id"].as_str().unwrap(), dup["id"].as_str().unwrap());
    let request = json!({"primary_id": primary_id, "duplicate_ids": [dup_id], "dry_run": true});

    let dry = app
        .post_as("/v1/contacts/merge", &owner.access_token, &request)
        .await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    assert_eq!(dry.json()["dry_run"], true);
    assert_eq!(dry.json()["merged"]["title"], "CEO");
    assert_eq!(
        app.get_as(&format!("/v1/contacts/{dup_id}"), &owner.access_token)
            .await
            .status,
        200,
        "a dry run changes nothing"
    );

    let response = app
        .post_as(
            "/v1/contacts/merge",
            &owner.access_token,
            &json!({"primary_id": primary_id, "duplicate_ids": [dup_id]}),
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    let merged = &response.json()["merged"];
    assert_eq!(merged["first_name"], "Ann", "the primary's value wins");
    assert_eq!(merged["last_name"], "Lee", "empty fields are filled");
    assert_eq!(merged["title"], "CEO");
    assert_eq!(merged["email"], "ann@x.example");
    assert_eq!(merged["emails"], json!(["ann.lee@y.example"]));
    assert_eq!(merged["tags"], json!(["a", "b"]));
    assert_eq!(merged["custom"], json!({"region": "east", "size": "L"}));
    assert_eq!(
        merged["external_id"], "erp-7",
        "the duplicate's external id now finds the primary"
    );
    let gone = app
        .get_as(&format!("/v1/contacts/{dup_id}"), &owner.access_token)
        .await;
    let problem = gone.assert_problem(404, "record_merged");
    assert_eq!(problem["merged_into"], primary_id);
    let history = app
        .get_as(
            &format!("/v1/contacts/{primary_id}/history"),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(history["data"][0]["action"], "merged");
    assert_eq!(history["data"][0]["merged_ids"], json!([dup_id]));
    assert_eq!(
        history["data"][0]["changes"]["title"],
        json!({"old": null, "new": "CEO"})
    );
    let again = app
        .post_as(
            "/v1/contacts/merge",
            &owner.access_token,
            &json!({"primary_id": primary_id, "duplicate_ids": [dup_id]}),
        )
        .await;
    again.assert_problem(404, "record_merged");
    let restore = app
        .post_as(
            &format!("/v1/contacts/{dup_id}/restore"),
            &owner.access_token,
            &json!({}),
        )
        .await;
    restore.assert_problem(404, "record_merged");
    // The duplicate's email is free again and belongs to the primary's additional emails.
    let found = app
        .get_as("/v1/contacts?q=ann.lee", &owner.access_token)
        .await
        .json();
    assert_eq!(TestApp::ids(&found), [primary_id]);
}

both_backends!(merge_requests_are_checked);
async fn merge_requests_are_checked(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let a = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "A"}),
        )
        .await;
    let a_id = a["id"].as_str().unwrap();

    let itself = app
        .post_as(
            "/v1/contacts/merge",
            &owner.access_token,
            &json!({"primary_id": a_id, "duplicate_ids": [a_id]}),
        )
        .await;
    let none = app
        .post_as(
            "/v1/contacts/merge",
            &owner.access_token,
            &json!({"primary_id": a_id, "duplicate_ids": []}),
        )
        .await;
    let missing = app
        .post_as(
            "/v1/contacts/merge",
            &owner.access_token,
            &json!({"primary_id": a_id, "duplicate_ids": [uuid::Uuid::now_v7()]}),
        )
        .await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let b = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "B"}),
        )
        .await;
    let by_sales = app
        .post_as(
            "/v1/contacts/merge",
            &sales.access_token,
            &json!({"primary_id": a_id, "duplicate_ids": [b["id"]]}),
        )
        .await;

    assert_eq!(
        itself.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "duplicate_ids"
    );
    none.assert_problem(422, "validation_failed");
    missing.assert_problem(404, "not_found");
    assert_eq!(
        by_sales.status, 200,
        "sales may merge contacts: {}",
        by_sales.text
    );
}

both_backends!(merging_companies_moves_their_contacts_and_subsidiaries);
async fn merging_companies_moves_their_contacts_and_subsidiaries(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let primary = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Acme Holdings", "domain": "acme.example"}),
        )
        .await;
    let dup = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "ACME holdings", "domain": "acme.example", "industry": "retail"}),
        )
        .await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann", "company_id": dup["id"]}),
        )
        .await;
    let subsidiary = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Acme South", "parent_company_id": dup["id"]}),
        )
        .await;
    let (primary_id, dup_id) = (primary["id"].as_str().unwrap(), dup["id"].as_str().unwrap());

    let duplicates = app
        .get_as(
            &format!("/v1/companies/{primary_id}/duplicates"),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(
        duplicates["data"][0]["reasons"],
        json!(["same_domain", "same_name"])
    );

    let response = app
        .post_as(
            "/v1/companies/merge",
            &owner.access_token,
            &json!({"primary_id": primary_id, "duplicate_ids": [dup_id]}),
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json()["merged"]["industry"], "retail");
    let moved = app
        .get_as(
            &format!("/v1/contacts/{}", contact["id"].as_str().unwrap()),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(moved["company_id"], primary_id);
    let child = app
        .get_as(
            &format!("/v1/companies/{}", subsidiary["id"].as_str().unwrap()),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(child["parent_company_id"], primary_id);
    let contacts = app
        .get_as(
            &format!("/v1/companies/{primary_id}/contacts"),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(TestApp::ids(&contacts), [contact["id"].as_str().unwrap()]);
    app.get_as(&format!("/v1/companies/{dup_id}"), &owner.access_token)
        .await
        .assert_problem(404, "record_merged");
}

both_backends!(likely_duplicates_page_by_limit_and_cursor);
async fn likely_duplicates_page_by_limit_and_cursor(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let primary = app
        .create(token, "/v1/companies", json!({"name": "Twin Tea"}))
        .await;
    for _ in 0..5 {
        app.create(token, "/v1/companies", json!({"name": "Twin Tea"}))
            .await;
    }
    let path = format!(
        "/v1/companies/{}/duplicates",
        primary["id"].as_str().unwrap()
    );
    let all = app.get_as(&path, token).await.json();
    assert_eq!(all["data"].as_array().unwrap().len(), 5, "{all}");
    assert_eq!(all["next_cursor"], Value::Null);

    let mut seen = Vec::new();
    let mut query = "?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let page = app.get_as(&format!("{path}{query}"), token).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        pages += 1;
        let rows = page["data"].as_array().unwrap();
        assert!(rows.len() <= 2);
        seen.extend(rows.iter().map(|d| d["record"]["id"].clone()));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let every: Vec<Value> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["record"]["id"].clone())
        .collect();
    assert_eq!(seen, every, "the pages hold every duplicate once, in order");

    let bad = app.get_as(&format!("{path}?limit=0"), token).await;
    assert_eq!(
        bad.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "limit"
    );
    let unknown = app.get_as(&format!("{path}?bogus=1"), token).await;
    unknown.assert_problem(422, "validation_failed");
}
