//! Companies: fields, hierarchy, renames followed by their contacts' search.

use serde_json::{Value, json};

use crate::helpers::TestApp;

both_backends!(a_company_keeps_money_domain_phone_and_address_normalised);
async fn a_company_keeps_money_domain_phone_and_address_normalised(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    app.patch_as(
        "/v1/organization",
        &owner.access_token,
        &json!({"settings": {"default_phone_region": "CN"}}),
    )
    .await;

    let company = app
        .create(&owner.access_token, "/v1/companies", json!({"name": "Customer Co", "domain": "https://www.Customer.example/about",
            "annual_revenue_minor": 129900, "currency": "cny", "phone": "021 6123 4567", "tier": "a",
            "website": "https://customer.example", "employee_count": 120, "address": {"city": "Shanghai", "country": "CN"}}))
        .await;

    assert_eq!(company["domain"], "customer.example");
    assert_eq!(company["currency"], "CNY");
    assert_eq!(company["annual_revenue_minor"], 129900);
    assert_eq!(company["phone"], "021 6123 4567");
    assert_eq!(
        company["phone_e164"], "+862161234567",
        "read in the organization's default region"
    );
    assert_eq!(company["tier"], "a");
    assert_eq!(company["owner_id"], owner.user_id.as_str());
}

both_backends!(company_input_is_checked_field_by_field);
async fn company_input_is_checked_field_by_field(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;

    let nameless = app
        .post_as(
            "/v1/companies",
            &owner.access_token,
            &json!({"domain": "x.example"}),
        )
        .await;
    let bad = app
        .post_as(
            "/v1/companies",
            &owner.access_token,
            &json!({"name": "n".repeat(201), "currency": "RMB", "employee_count": -1,
            "website": "javascript:alert(1)", "domain": "localhost", "tier": "d"}),
        )
        .await;
    let revenue_without_currency = app
        .post_as(
            "/v1/companies",
            &owner.access_token,
            &json!({"name": "X", "annual_revenue_minor": 5}),
        )
        .await;

    assert_eq!(
        nameless.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "name"
    );
    let problem = bad.assert_problem(422, "validation_failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "currency",
            "domain",
            "employee_count",
            "name",
            "tier",
            "website"
        ],
        "every field's problem at once, in field order: {problem}"
    );
    let bad = app
        .post_as(
            "/v1/companies",
            &owner.access_token,
            &json!({"name": "n".repeat(201), "currency": "RMB", "employee_count": -1,
            "website": "javascript:alert(1)", "domain": "localhost"}),
        )
        .await;
    let mut fields: Vec<String> = bad.assert_problem(422, "validation_failed")["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        ["currency", "domain", "employee_count", "name", "website"]
    );
    assert_eq!(
        revenue_without_currency.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "currency"
    );
}

both_backends!(a_company_cannot_become_its_own_ancestor);
async fn a_company_cannot_become_its_own_ancestor(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let group = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Group"}),
        )
        .await;
    let sub = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Sub", "parent_company_id": group["id"]}),
        )
        .await;
    let subsub = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "SubSub", "parent_company_id": sub["id"]}),
        )
        .await;
    let group_path = format!("/v1/companies/{}", group["id"].as_str().unwrap());

    let cycle = app
        .patch_as(
            &group_path,
            &owner.access_token,
            &json!({"parent_company_id": subsub["id"]}),
        )
        .await;
    let itself = app
        .patch_as(
            &group_path,
            &owner.access_token,
            &json!({"parent_company_id": group["id"]}),
        )
        .await;

    assert_eq!(
        cycle.assert_problem(422, "validation_failed")["errors"][0]["code"],
        "cycle"
    );
    assert_eq!(
        itself.assert_problem(422, "validation_failed")["errors"][0]["code"],
        "cycle"
    );
    let children = app
        .get_as(
            &format!(
                "/v1/companies?parent_company_id={}",
                group["id"].as_str().unwrap()
            ),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(TestApp::ids(&children), [sub["id"].as_str().unwrap()]);
    let by_parent = app
        .post_as(
            "/v1/companies/search",
            &owner.access_token,
            &json!({"filter": {"field": "parent.name", "op": "eq", "value": "sub"}}),
        )
        .await
        .json();
    assert_eq!(TestApp::ids(&by_parent), [subsub["id"].as_str().unwrap()]);
}

both_backends!(contacts_find_their_company_by_its_new_name);
async fn contacts_find_their_company_by_its_new_name(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let company = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Old Name Ltd"}),
        )
        .await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann", "company_id": company["id"]}),
        )
        .await;

    app.patch_as(
        &format!("/v1/companies/{}", company["id"].as_str().unwrap()),
        &owner.access_token,
        &json!({"name": "Brand New Holdings"}),
    )
    .await;

    let found = app
        .get_as("/v1/contacts?q=brand%20new", &owner.access_token)
        .await
        .json();
    assert_eq!(TestApp::ids(&found), [contact["id"].as_str().unwrap()]);
    let stale = app
        .get_as("/v1/contacts?q=old%20name", &owner.access_token)
        .await
        .json();
    assert_eq!(stale["data"], json!([]));
}

both_backends!(deleted_companies_are_restorable_and_listed_in_the_trash);
async fn deleted_companies_are_restorable_and_listed_in_the_trash(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let company = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Customer Co"}),
        )
        .await;
    let path = format!("/v1/companies/{}", company["id"].as_str().unwrap());

    assert_eq!(app.delete_as(&path, &owner.access_token).await.status, 204);
    app.get_as(&path, &owner.access_token)
        .await
        .assert_problem(404, "not_found");
    let trash = app
        .get_as("/v1/companies?deleted=true", &owner.access_token)
        .await
        .json();
    let restored = app
        .post_as(&format!("{path}/restore"), &owner.access_token, &json!({}))
        .await;

    assert_eq!(TestApp::ids(&trash).len(), 1);
    assert_eq!(restored.status, 200);
    assert_eq!(restored.json()["deleted_at"], Value::Null);
    let history = app
        .get_as(&format!("{path}/history"), &owner.access_token)
        .await
        .json();
    assert_eq!(history["data"].as_array().unwrap().len(), 3);
}
