//! Custom field definitions and the validation of `custom` values on every write.

use serde_json::{Value, json};

use crate::helpers::{Session, TestApp};

async fn define(app: &TestApp, owner: &Session, body: Value) -> Value {
    app.create(&owner.access_token, "/v1/custom-fields", body)
        .await
}

both_backends!(custom_values_are_checked_against_their_definitions);
async fn custom_values_are_checked_against_their_definitions(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    define(&app, &owner, json!({"object": "contact", "key": "region", "label": "Region", "type": "select", "options": ["华东", "华北"]})).await;
    define(
        &app,
        &owner,
        json!({"object": "contact", "key": "score", "label": "Score", "type": "integer"}),
    )
    .await;
    define(&app, &owner, json!({"object": "contact", "key": "member_no", "label": "Member", "type": "text", "unique": true})).await;

    let valid = app.post_as("/v1/contacts", &owner.access_token, &json!({"first_name": "A", "custom": {"region": "华东", "score": 7, "member_no": "M1"}})).await;
    let invalid = app
        .post_as("/v1/contacts", &owner.access_token, &json!({"first_name": "B", "custom": {"region": "华南", "score": "high", "typo": 1, "member_no": "M1"}}))
        .await;

    assert_eq!(valid.status, 201, "{}", valid.text);
    assert_eq!(
        valid.json()["custom"],
        json!({"region": "华东", "score": 7, "member_no": "M1"})
    );
    let problem = invalid.assert_problem(422, "validation_failed");
    let mut found: Vec<(String, String)> = problem["errors"]
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
    found.sort();
    assert_eq!(
        found,
        [
            ("custom.member_no".to_owned(), "taken".to_owned()),
            ("custom.region".to_owned(), "invalid_option".to_owned()),
            ("custom.score".to_owned(), "invalid_type".to_owned()),
            ("custom.typo".to_owned(), "unknown_field".to_owned()),
        ]
    );
}

both_backends!(a_required_field_is_required_on_every_write);
async fn a_required_field_is_required_on_every_write(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    define(&app, &owner, json!({"object": "company", "key": "vat_no", "label": "VAT", "type": "text", "required": true})).await;

    let missing = app
        .post_as("/v1/companies", &owner.access_token, &json!({"name": "X"}))
        .await;
    let present = app
        .post_as(
            "/v1/companies",
            &owner.access_token,
            &json!({"name": "Y", "custom": {"vat_no": "CN123"}}),
        )
        .await;
    let path = format!("/v1/companies/{}", present.json()["id"].as_str().unwrap());
    let cleared = app
        .patch_as(
            &path,
            &owner.access_token,
            &json!({"custom": {"vat_no": null}}),
        )
        .await;

    assert_eq!(
        missing.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "custom.vat_no"
    );
    assert_eq!(present.status, 201);
    assert_eq!(
        cleared.assert_problem(422, "validation_failed")["errors"][0]["code"],
        "required"
    );
}

both_backends!(every_field_type_normalises_its_values);
async fn every_field_type_normalises_its_values(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    for (key, kind, extra) in [
        ("budget", "money", json!({})),
        ("met_at", "datetime", json!({})),
        ("birthday", "date", json!({})),
        (
            "channels",
            "multi_select",
            json!({"options": ["web", "shop"]}),
        ),
        ("site", "url", json!({})),
        ("billing", "email", json!({})),
        ("active", "boolean", json!({})),
        ("ratio", "number", json!({})),
        ("hotline", "phone", json!({})),
    ] {
        let mut body = json!({"object": "contact", "key": key, "label": key, "type": kind});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        define(&app, &owner, body).await;
    }

    let contact = app
        .create(&owner.access_token, "/v1/contacts", json!({"first_name": "A", "custom": {
            "budget": {"amount_minor": 500, "currency": "usd"}, "met_at": "2026-11-23T16:00:00+08:00", "birthday": "1990-02-03",
            "channels": ["web", "web", "shop"], "site": "https://x.example", "billing": "bill@x.example", "active": true,
            "ratio": 0.25, "hotline": "400 800 8888"}}))
        .await;

    let custom = &contact["custom"];
    assert_eq!(
        custom["budget"],
        json!({"amount_minor": 500, "currency": "USD"})
    );
    assert_eq!(custom["met_at"], "2026-11-23T08:00:00Z");
    assert_eq!(custom["channels"], json!(["web", "shop"]));
    assert_eq!(custom["active"], true);
    for (key, bad) in [
        ("budget", json!({"amount_minor": 1})),
        ("met_at", json!("yesterday")),
        ("birthday", json!("03/02/1990")),
        ("channels", json!(["tv"])),
        ("site", json!("ftp://x")),
        ("billing", json!("nope")),
        ("active", json!("yes")),
        ("ratio", json!("1")),
    ] {
        let response = app
            .post_as(
                "/v1/contacts",
                &owner.access_token,
                &json!({"first_name": "B", "custom": {key: bad}}),
            )
            .await;
        let problem = response.assert_problem(422, "validation_failed");
        assert_eq!(
            problem["errors"][0]["field"],
            format!("custom.{key}"),
            "{key}"
        );
    }
}

both_backends!(definitions_are_checked);
async fn definitions_are_checked(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    define(
        &app,
        &owner,
        json!({"object": "contact", "key": "region", "label": "Region", "type": "text"}),
    )
    .await;

    for (body, field) in [
        (
            json!({"object": "contacts", "key": "x", "label": "X", "type": "text"}),
            "object",
        ),
        (
            json!({"object": "deal", "key": "x", "label": "X", "type": "text"}),
            "object",
        ),
        (
            json!({"object": "contact", "key": "Bad Key", "label": "X", "type": "text"}),
            "key",
        ),
        (
            json!({"object": "contact", "key": "x", "label": "X", "type": "select"}),
            "options",
        ),
        (
            json!({"object": "contact", "key": "x", "label": "X", "type": "text", "options": ["a"]}),
            "options",
        ),
        (
            json!({"object": "contact", "key": "x", "label": "X", "type": "boolean", "unique": true}),
            "unique",
        ),
        (
            json!({"object": "contact", "key": "x", "label": "X", "type": "color"}),
            "type",
        ),
    ] {
        let response = app
            .post_as("/v1/custom-fields", &owner.access_token, &body)
            .await;
        let problem = response.assert_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{body}");
    }
    let duplicate = app
        .post_as(
            "/v1/custom-fields",
            &owner.access_token,
            &json!({"object": "contact", "key": "region", "label": "R", "type": "text"}),
        )
        .await;
    duplicate.assert_problem(409, "conflict");
    let same_key_elsewhere = app
        .post_as(
            "/v1/custom-fields",
            &owner.access_token,
            &json!({"object": "company", "key": "region", "label": "R", "type": "text"}),
        )
        .await;
    assert_eq!(same_key_elsewhere.status, 201);
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    app.post_as(
        "/v1/custom-fields",
        &sales.access_token,
        &json!({"object": "contact", "key": "y", "label": "Y", "type": "text"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let listed = app
        .get_as("/v1/custom-fields?object=company", &sales.access_token)
        .await
        .json();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
}

both_backends!(deleting_a_definition_removes_its_values);
async fn deleting_a_definition_removes_its_values(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let def = define(
        &app,
        &owner,
        json!({"object": "contact", "key": "region", "label": "Region", "type": "text"}),
    )
    .await;
    define(
        &app,
        &owner,
        json!({"object": "contact", "key": "score", "label": "Score", "type": "integer"}),
    )
    .await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "A", "custom": {"region": "east", "score": 1}}),
        )
        .await;

    let deleted = app
        .delete_as(
            &format!("/v1/custom-fields/{}", def["id"].as_str().unwrap()),
            &owner.access_token,
        )
        .await;

    assert_eq!(deleted.status, 204);
    let after = app
        .get_as(
            &format!("/v1/contacts/{}", contact["id"].as_str().unwrap()),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(after["custom"], json!({"score": 1}));
    let now_unknown = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"first_name": "B", "custom": {"region": "east"}}),
        )
        .await;
    now_unknown.assert_problem(422, "validation_failed");
}

both_backends!(a_field_with_shared_values_cannot_become_unique);
async fn a_field_with_shared_values_cannot_become_unique(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let def = define(
        &app,
        &owner,
        json!({"object": "contact", "key": "code", "label": "Code", "type": "text"}),
    )
    .await;
    let path = format!("/v1/custom-fields/{}", def["id"].as_str().unwrap());
    for name in ["A", "B"] {
        app.create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": name, "custom": {"code": "same"}}),
        )
        .await;
    }

    let response = app
        .patch_as(&path, &owner.access_token, &json!({"unique": true}))
        .await;

    assert_eq!(
        response.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "unique"
    );
    let relabelled = app
        .patch_as(
            &path,
            &owner.access_token,
            &json!({"label": "Customer code"}),
        )
        .await;
    assert_eq!(relabelled.json()["label"], "Customer code");
    assert_eq!(relabelled.json()["version"], 2);
    app.patch_as(&path, &owner.access_token, &json!({"type": "integer"}))
        .await
        .assert_problem(422, "validation_failed");
}

both_backends!(a_text_value_over_100_kb_is_refused);
async fn a_text_value_over_100_kb_is_refused(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    define(
        &app,
        &owner,
        json!({"object": "contact", "key": "notes", "label": "Notes", "type": "text"}),
    )
    .await;

    let long = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"first_name": "A", "custom": {"notes": "x".repeat(100 * 1024 + 1)}}),
        )
        .await;
    let fits = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"first_name": "A", "custom": {"notes": "x".repeat(100 * 1024)}}),
        )
        .await;

    let problem = long.assert_problem(422, "validation_failed");
    assert_eq!(
        (
            problem["errors"][0]["field"].as_str(),
            problem["errors"][0]["code"].as_str()
        ),
        (Some("custom.notes"), Some("too_long"))
    );
    assert_eq!(fits.status, 201);
}
