//! Lists and searches: keyset pages in any sort, filters, `q`, the filter tree, and their
//! errors.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::{Session, TestApp};

async fn page_through(
    app: &TestApp,
    owner: &Session,
    query: &str,
    limit: u32,
    mut between: impl FnMut(usize) -> Option<Value>,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let path = match &cursor {
            Some(c) => format!("/v1/contacts?{query}&limit={limit}&cursor={c}"),
            None => format!("/v1/contacts?{query}&limit={limit}"),
        };
        let body = app.get_as(&path, &owner.access_token).await;
        assert_eq!(body.status, 200, "{}", body.text);
        let body = body.json();
        seen.extend(TestApp::ids(&body));
        if let Some(new) = between(page) {
            app.create(&owner.access_token, "/v1/contacts", new).await;
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    seen
}

both_backends!(paging_while_others_insert_returns_every_existing_row_once);
async fn paging_while_others_insert_returns_every_existing_row_once(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let mut existing = HashSet::new();
    for i in 0..23 {
        let name = format!("{}{i:02}", ["Zoe", "Adam", "Mia"][i % 3]);
        let contact = app
            .create(
                &owner.access_token,
                "/v1/contacts",
                json!({"first_name": name}),
            )
            .await;
        existing.insert(contact["id"].as_str().unwrap().to_owned());
    }

    for query in [
        "sort=created_at",
        "sort=-created_at",
        "sort=name",
        "sort=-name",
        "sort=-updated_at,name",
    ] {
        let mut n = 0;
        let seen = page_through(&app, &owner, query, 5, |_| {
            n += 1;
            Some(json!({"first_name": format!("Late{n} {query}")}))
        })
        .await;
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "{query}: a row came twice");
        for id in &existing {
            assert!(
                seen.contains(id),
                "{query}: a row that existed at the start was skipped"
            );
        }
    }
}

both_backends!(sorts_order_by_name_time_and_custom_fields_with_id_breaking_ties);
async fn sorts_order_by_name_time_and_custom_fields_with_id_breaking_ties(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    app.create(
        &owner.access_token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "score", "label": "Score", "type": "integer"}),
    )
    .await;
    for (name, score) in [
        ("bea", Some(3)),
        ("Anna", Some(1)),
        ("carl", None),
        ("anna", Some(2)),
    ] {
        let mut body = json!({"first_name": name});
        if let Some(score) = score {
            body["custom"] = json!({"score": score});
        }
        app.create(&owner.access_token, "/v1/contacts", body).await;
    }
    let names = |body: Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["first_name"].as_str().unwrap().to_owned())
            .collect()
    };

    let by_name = names(
        app.get_as("/v1/contacts?sort=name", &owner.access_token)
            .await
            .json(),
    );
    let by_name_desc = names(
        app.get_as("/v1/contacts?sort=-name", &owner.access_token)
            .await
            .json(),
    );
    let by_score = names(
        app.get_as("/v1/contacts?sort=custom.score", &owner.access_token)
            .await
            .json(),
    );
    let by_score_desc = names(
        app.get_as("/v1/contacts?sort=-custom.score", &owner.access_token)
            .await
            .json(),
    );
    let newest = names(app.get_as("/v1/contacts", &owner.access_token).await.json());

    assert_eq!(
        by_name[..2]
            .iter()
            .map(|n| n.to_lowercase())
            .collect::<Vec<_>>(),
        ["anna", "anna"],
        "case-insensitive"
    );
    assert_eq!(by_name[2..], ["bea", "carl"]);
    assert_eq!(by_name_desc[..2], ["carl", "bea"]);
    assert_eq!(
        by_score,
        ["Anna", "anna", "bea", "carl"],
        "no value sorts last"
    );
    assert_eq!(
        by_score_desc,
        ["bea", "anna", "Anna", "carl"],
        "no value sorts last descending too"
    );
    assert_eq!(
        newest,
        ["anna", "carl", "Anna", "bea"],
        "newest first by default"
    );
    let paged = page_through(&app, &owner, "sort=-custom.score", 1, |_| None).await;
    assert_eq!(paged.len(), 4, "the null tail pages too");
    let activity = app
        .get_as(
            "/v1/contacts?sort=-last_activity_at&limit=2",
            &owner.access_token,
        )
        .await;
    assert_eq!(activity.status, 200);
}

both_backends!(list_filters_combine);
async fn list_filters_combine(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let company = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Customer Co"}),
        )
        .await;
    let a = app.create(&owner.access_token, "/v1/contacts", json!({"first_name": "A", "company_id": company["id"], "lifecycle_stage": "lead", "tags": ["vip"]})).await;
    let b = app
        .create(
            &sales.access_token,
            "/v1/contacts",
            json!({"first_name": "B", "lifecycle_stage": "lead", "tags": ["vip"]}),
        )
        .await;
    app.create(
        &owner.access_token,
        "/v1/contacts",
        json!({"first_name": "C", "lifecycle_stage": "customer"}),
    )
    .await;
    let (a, b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
    let list = |query: &str| {
        let query = query.to_owned();
        let app = &app;
        let token = owner.access_token.clone();
        async move {
            TestApp::ids(
                &app.get_as(&format!("/v1/contacts?{query}"), &token)
                    .await
                    .json(),
            )
        }
    };

    assert_eq!(
        list("lifecycle_stage=lead&tag=vip&sort=created_at").await,
        [a, b]
    );
    assert_eq!(list(&format!("owner_id={}", sales.user_id)).await, [b]);
    assert_eq!(
        list(&format!("company_id={}", company["id"].as_str().unwrap())).await,
        [a]
    );
    assert_eq!(list("tag=nothing").await.len(), 0);
    assert_eq!(list("created_after=2999-01-01T00:00:00Z").await.len(), 0);
    assert_eq!(list("created_before=2999-01-01T00:00:00Z").await.len(), 3);
    let totalled = app
        .get_as(
            "/v1/contacts?lifecycle_stage=lead&include=total&limit=1",
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(totalled["total"], 2);
    assert_eq!(totalled["data"].as_array().unwrap().len(), 1);
}

both_backends!(bad_list_parameters_are_422_naming_them);
async fn bad_list_parameters_are_422_naming_them(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    for i in 0..3 {
        app.create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": format!("N{i}")}),
        )
        .await;
    }
    let cursor = app
        .get_as("/v1/contacts?sort=name&limit=1", &owner.access_token)
        .await
        .json()["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();

    for (query, field) in [
        ("sort=shoe_size", "sort"),
        ("sort=owner_id", "sort"),
        ("sort=custom.nope", "sort"),
        ("cursor=%27%3B%20drop%20table%20contacts%3B--", "cursor"),
        (
            &format!("sort=-created_at&cursor={cursor}") as &str,
            "cursor",
        ),
        ("lifecycle_stage=prospect", "lifecycle_stage"),
        ("owner_id=me", "owner_id"),
        ("created_after=yesterday", "created_after"),
        ("colour=red", "colour"),
        ("limit=500", "limit"),
        ("q=", "q"),
    ] {
        let response = app
            .get_as(&format!("/v1/contacts?{query}"), &owner.access_token)
            .await;
        let problem = response.assert_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    let ok = app
        .get_as(
            &format!("/v1/contacts?sort=name&cursor={cursor}"),
            &owner.access_token,
        )
        .await;
    assert_eq!(ok.status, 200);
}

both_backends!(q_finds_names_emails_phones_and_company_names_of_any_length);
async fn q_finds_names_emails_phones_and_company_names_of_any_length(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let company = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Shanghai Widgets"}),
        )
        .await;
    let wang = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "安", "last_name": "王", "email": "an.wang@customer.example",
            "phones": [{"number": "+86 138 0013 8000"}], "company_id": company["id"]}),
        )
        .await;
    let percent = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "100% Ann_Lee"}),
        )
        .await;
    app.create(
        &owner.access_token,
        "/v1/contacts",
        json!({"first_name": "Bob", "last_name": "Smith", "email": "bob@else.example"}),
    )
    .await;
    let wang = wang["id"].as_str().unwrap().to_owned();
    let search = |q: &str| {
        let path = format!("/v1/contacts?q={}", urlencode(q));
        let app = &app;
        let token = owner.access_token.clone();
        async move {
            let response = app.get_as(&path, &token).await;
            assert_eq!(response.status, 200, "{}", response.text);
            TestApp::ids(&response.json())
        }
    };

    for q in [
        "王安",
        "王",
        "安",
        "an.wang",
        "AN.WANG@CUSTOMER",
        "0013",
        "138 0013",
        "13800138000",
        "8613800138000",
        "widgets",
        "Shanghai W",
    ] {
        assert_eq!(search(q).await, std::slice::from_ref(&wang), "q={q}");
    }
    assert_eq!(
        search("%").await,
        [percent["id"].as_str().unwrap()],
        "% is literal"
    );
    assert_eq!(
        search("n_L").await,
        [percent["id"].as_str().unwrap()],
        "_ is literal"
    );
    assert!(search("' or '1'='1").await.is_empty());
    assert!(search("\" OR 1=1 --").await.is_empty());
    assert!(search("zzz").await.is_empty());
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

both_backends!(the_filter_tree_covers_standard_custom_and_related_fields);
async fn the_filter_tree_covers_standard_custom_and_related_fields(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    app.create(&owner.access_token, "/v1/custom-fields", json!({"object": "contact", "key": "region", "label": "Region", "type": "select", "options": ["华东", "华北"]})).await;
    app.create(
        &owner.access_token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "score", "label": "Score", "type": "integer"}),
    )
    .await;
    let retail = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Retail Co", "industry": "Retail", "tier": "a"}),
        )
        .await;
    let food = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Food Co", "industry": "food", "tier": "b"}),
        )
        .await;
    let ann = app.create(&owner.access_token, "/v1/contacts", json!({"first_name": "Ann", "email": "ann@x.example", "company_id": retail["id"], "custom": {"region": "华东", "score": 9}, "lifecycle_stage": "customer"})).await;
    let bob = app.create(&owner.access_token, "/v1/contacts", json!({"first_name": "Bob", "company_id": food["id"], "custom": {"region": "华北", "score": 4}, "lifecycle_stage": "lead"})).await;
    let cat = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Cat", "title": "CEO"}),
        )
        .await;
    let (ann, bob, cat) = (
        ann["id"].as_str().unwrap(),
        bob["id"].as_str().unwrap(),
        cat["id"].as_str().unwrap(),
    );
    let search = |filter: Value| {
        let app = &app;
        let token = owner.access_token.clone();
        async move {
            let response = app
                .post_as(
                    "/v1/contacts/search",
                    &token,
                    &json!({"filter": filter, "sort": [{"field": "name"}]}),
                )
                .await;
            assert_eq!(response.status, 200, "{}", response.text);
            TestApp::ids(&response.json())
        }
    };

    assert_eq!(
        search(json!({"field": "custom.region", "op": "eq", "value": "华东"})).await,
        [ann]
    );
    assert_eq!(
        search(json!({"field": "company.industry", "op": "eq", "value": "retail"})).await,
        [ann],
        "standard text is case-insensitive"
    );
    assert_eq!(
        search(json!({"field": "company.tier", "op": "in", "value": ["a", "b"]})).await,
        [ann, bob]
    );
    assert_eq!(
        search(json!({"not": {"field": "company.tier", "op": "eq", "value": "a"}})).await,
        [bob, cat],
        "not includes contacts without a company"
    );
    assert_eq!(
        search(json!({"field": "custom.score", "op": "gte", "value": 5})).await,
        [ann]
    );
    assert_eq!(
        search(json!({"field": "custom.score", "op": "between", "value": [4, 9]})).await,
        [ann, bob]
    );
    assert_eq!(
        search(json!({"field": "custom.score", "op": "is_null", "value": true})).await,
        [cat]
    );
    assert_eq!(
        search(json!({"field": "title", "op": "neq", "value": "ceo"})).await,
        [ann, bob],
        "neq includes missing values"
    );
    assert_eq!(
        search(json!({"field": "email", "op": "starts_with", "value": "ANN@"})).await,
        [ann]
    );
    assert_eq!(
        search(json!({"field": "lifecycle_stage", "op": "nin", "value": ["lead"]})).await,
        [ann, cat]
    );
    assert_eq!(search(json!({"or": [{"field": "name", "op": "contains", "value": "nn"}, {"field": "title", "op": "eq", "value": "CEO"}]})).await, [ann, cat]);
    assert_eq!(search(json!({"and": [{"field": "company.industry", "op": "eq", "value": "food"}, {"not": {"field": "custom.region", "op": "eq", "value": "华东"}}]})).await, [bob]);
    assert_eq!(
        search(json!({"field": "name", "op": "eq", "value": "x' OR '1'='1"}))
            .await
            .len(),
        0
    );
    let sorted = app
        .post_as(
            "/v1/contacts/search",
            &owner.access_token,
            &json!({"sort": [{"field": "custom.score", "direction": "desc"}], "limit": 2}),
        )
        .await
        .json();
    assert_eq!(TestApp::ids(&sorted), [ann, bob]);
    let next = app
        .post_as("/v1/contacts/search", &owner.access_token, &json!({"sort": [{"field": "custom.score", "direction": "desc"}], "limit": 2, "cursor": sorted["next_cursor"]}))
        .await
        .json();
    assert_eq!(TestApp::ids(&next), [cat]);
}

both_backends!(bad_filter_trees_are_422_naming_the_place);
async fn bad_filter_trees_are_422_naming_the_place(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let mut deep = json!({"field": "name", "op": "eq", "value": "x"});
    for _ in 0..8 {
        deep = json!({"not": deep});
    }
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"field": "name", "op": "eq", "value": i.to_string()}))
        .collect();

    for (body, field, code) in [
        (
            json!({"filter": {"field": "shoe_size", "op": "eq", "value": 1}}),
            "filter.field",
            "unknown_field",
        ),
        (
            json!({"filter": {"and": [{"field": "name", "op": "like", "value": "x"}]}}),
            "filter.and[0].op",
            "invalid_value",
        ),
        (
            json!({"filter": {"field": "created_at", "op": "gt", "value": "last week"}}),
            "filter.value",
            "invalid_value",
        ),
        (
            json!({"filter": {"field": "owner_id", "op": "contains", "value": "x"}}),
            "filter.op",
            "invalid_value",
        ),
        (
            json!({"filter": {"field": "name", "op": "in", "value": "x"}}),
            "filter.value",
            "invalid_value",
        ),
        (
            json!({"filter": {"field": "custom.region", "op": "eq", "value": "x"}}),
            "filter.field",
            "unknown_field",
        ),
        (
            json!({"filter": {"field": "deal.amount", "op": "eq", "value": 1}}),
            "filter.field",
            "unknown_field",
        ),
        (
            json!({"filter": deep}),
            "filter.not.not.not.not.not.not.not.not",
            "too_deep",
        ),
        (
            json!({"filter": {"or": many}}),
            "filter",
            "too_many_conditions",
        ),
        (
            json!({"filter": {"and": [], "or": []}}),
            "filter",
            "invalid_value",
        ),
        (
            json!({"sort": [{"field": "email"}]}),
            "sort",
            "invalid_value",
        ),
        (
            json!({"sort": [{"field": "name", "direction": "up"}]}),
            "sort[0].direction",
            "invalid_value",
        ),
        (json!({"limit": 0}), "limit", "out_of_range"),
        (json!({"cursor": "abc"}), "cursor", "invalid_value"),
        (json!({"filters": {}}), "filters", "unknown_field"),
    ] {
        let response = app
            .post_as("/v1/contacts/search", &owner.access_token, &body)
            .await;
        let problem = response.assert_problem(422, "validation_failed");
        assert!(
            problem["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field && e["code"] == code),
            "{body}: expected {field} {code}, got {problem}"
        );
    }
}
