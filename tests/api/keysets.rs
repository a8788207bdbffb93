//! Lists and searches at the edges the property tests found: a sort by a long custom text (a
//! cursor longer than 4 KB), a sort by numbers that need all 17 digits, and filters on the
//! dotted fields of a record itself (`consent.email`).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// Pages a search to the end, `limit` at a time; answers the ids in order and the longest
/// cursor met.
async fn search_all(app: &TestApp, token: &str, body: Value, limit: u32) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut longest = 0;
    let mut cursor = Value::Null;
    loop {
        let mut request = body.clone();
        request["limit"] = json!(limit);
        request["cursor"] = cursor;
        let page = app.post_as("/v1/contacts/search", token, &request).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        ids.extend(TestApp::ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => {
                longest = longest.max(next.len());
                cursor = json!(next);
            }
            None => return (ids, longest),
        }
    }
}

both_backends!(a_sort_by_a_long_custom_text_pages_to_the_end);
async fn a_sort_by_a_long_custom_text_pages_to_the_end(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(
        token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "notes", "label": "Notes", "type": "text"}),
    )
    .await;
    let mut created = HashSet::new();
    for i in 0..4 {
        // 20,000 bytes of notes, alike up to their last characters.
        let notes = format!("{}{i}", "备注".repeat(3_333));
        let contact = app
            .create(
                token,
                "/v1/contacts",
                json!({"first_name": format!("N{i}"), "custom": {"notes": notes}}),
            )
            .await;
        created.insert(contact["id"].as_str().unwrap().to_owned());
    }

    let (ids, longest) = search_all(
        &app,
        token,
        json!({"sort": [{"field": "custom.notes", "direction": "desc"}]}),
        1,
    )
    .await;

    assert!(
        longest > 4096,
        "the cursors carry the long values: {longest}"
    );
    assert_eq!(ids.len(), 4, "every record once: {ids:?}");
    assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), created);
}

both_backends!(a_sort_by_numbers_of_seventeen_digits_neither_repeats_nor_skips);
async fn a_sort_by_numbers_of_seventeen_digits_neither_repeats_nor_skips(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(
        token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "ratio", "label": "Ratio", "type": "number"}),
    )
    .await;
    // Numbers that a best-effort float parser reads one unit in the last place off.
    let ratios = [
        -5.3515544663377366e165,
        -5.3515544663377366e165,
        0.30000000000000004,
        2.2250738585072014e-308,
        1.7976931348623157e308,
    ];
    let mut created = HashSet::new();
    for (i, ratio) in ratios.iter().enumerate() {
        let contact = app
            .create(
                token,
                "/v1/contacts",
                json!({"first_name": format!("R{i}"), "custom": {"ratio": ratio}}),
            )
            .await;
        assert_eq!(
            contact["custom"]["ratio"],
            json!(ratio),
            "read back as written"
        );
        created.insert(contact["id"].as_str().unwrap().to_owned());
    }

    for direction in ["asc", "desc"] {
        let (ids, _) = search_all(
            &app,
            token,
            json!({"sort": [{"field": "custom.ratio", "direction": direction}]}),
            1,
        )
        .await;
        assert_eq!(
            ids.len(),
            ratios.len(),
            "{direction}: every record once: {ids:?}"
        );
        assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), created);
    }
}

both_backends!(a_filter_on_consent_finds_by_the_channel_status);
async fn a_filter_on_consent_finds_by_the_channel_status(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let out = app
        .create(
            token,
            "/v1/contacts",
            json!({"first_name": "Out", "consent": {"email": {"status": "opted_out"}}}),
        )
        .await;
    app.create(
        token,
        "/v1/contacts",
        json!({"first_name": "In",
               "consent": {"email": {"status": "opted_in"}, "sms": {"status": "opted_out"}}}),
    )
    .await;

    let (opted_out, _) = search_all(
        &app,
        token,
        json!({"filter": {"field": "consent.email", "op": "eq", "value": "opted_out"}}),
        50,
    )
    .await;
    let (not_sms_out, _) = search_all(
        &app,
        token,
        json!({"filter": {"not": {"field": "consent.sms", "op": "eq", "value": "opted_out"}}}),
        50,
    )
    .await;
    let wrong = app
        .post_as(
            "/v1/contacts/search",
            token,
            &json!({"filter": {"field": "consent.email", "op": "eq", "value": "maybe"}}),
        )
        .await;

    assert_eq!(opted_out, [out["id"].as_str().unwrap()]);
    assert_eq!(not_sms_out, [out["id"].as_str().unwrap()]);
    assert_eq!(
        wrong.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "filter.value"
    );
}
