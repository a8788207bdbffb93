//! Contacts: create, read, merge-patch, delete and restore, history, uniqueness, consent,
//! lifecycle, visibility and isolation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;

both_backends!(creating_a_contact_answers_201_with_location_etag_and_defaults);
async fn creating_a_contact_answers_201_with_location_etag_and_defaults(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let body = json!({"first_name": "安", "last_name": "王", "email": "Wang.An@Customer.example",
        "phones": [{"number": "+86 138 0013 8000", "kind": "mobile"}, {"number": "ext. 12"}],
        "address": {"city": "Shanghai", "country": "cn"}, "tags": ["vip", " vip ", "华东"]});

    let response = app
        .post_as("/v1/contacts", &owner.access_token, &body)
        .await;

    assert_eq!(response.status, 201, "{}", response.text);
    let contact = response.json();
    let id = contact["id"].as_str().unwrap();
    assert_eq!(
        response.header("location").unwrap(),
        format!("/v1/contacts/{id}")
    );
    assert_eq!(response.header("etag"), Some("\"1\""));
    assert_eq!(contact["name"], "王安");
    assert_eq!(
        contact["email"], "Wang.An@Customer.example",
        "kept as written"
    );
    assert_eq!(
        contact["owner_id"],
        owner.user_id.as_str(),
        "the creator owns it by default"
    );
    assert_eq!(contact["created_by"], owner.user_id.as_str());
    assert_eq!(contact["phones"][0]["e164"], "+8613800138000");
    assert_eq!(
        contact["phones"][1],
        json!({"number": "ext. 12", "kind": "other", "e164": null}),
        "kept, never refused"
    );
    assert_eq!(contact["address"]["country"], "CN");
    assert_eq!(contact["tags"], json!(["vip", "华东"]));
    for channel in ["email", "sms", "phone"] {
        assert_eq!(
            contact["consent"][channel],
            json!({"status": "unknown", "changed_at": null})
        );
    }
    let read = app
        .get_as(&format!("/v1/contacts/{id}"), &owner.access_token)
        .await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), contact);
}

both_backends!(a_contact_needs_a_name_or_an_email);
async fn a_contact_needs_a_name_or_an_email(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;

    let response = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"title": "CEO"}),
        )
        .await;

    let problem = response.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "first_name");
    let email_only = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"email": "a@b.example"}),
        )
        .await;
    assert_eq!(email_only.status, 201);
    assert_eq!(email_only.json()["name"], "a@b.example");
}

both_backends!(every_invalid_field_is_named);
async fn every_invalid_field_is_named(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let body = json!({"first_name": "x".repeat(201), "email": "not-an-email", "emails": ["ok@x.example", "nope"],
        "address": {"country": "China"}, "language": "english", "phones": [{"number": " "}], "tags": ["t".repeat(65)],
        "custom": 5});

    let response = app
        .post_as("/v1/contacts", &owner.access_token, &body)
        .await;

    let problem = response.assert_problem(422, "validation_failed");
    let mut fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "address.country",
            "custom",
            "email",
            "emails[1]",
            "first_name",
            "language",
            "phones[0].number",
            "tags"
        ]
    );
    let wrong_type = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"first_name": "A", "company_id": "acme"}),
        )
        .await;
    assert_eq!(
        wrong_type.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "company_id"
    );
    let bad_stage = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"first_name": "A", "lifecycle_stage": "prospect"}),
        )
        .await;
    assert_eq!(
        bad_stage.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "lifecycle_stage"
    );
    let unknown = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"first_name": "A", "nick_name": "B"}),
        )
        .await;
    assert_eq!(
        unknown.assert_problem(422, "validation_failed")["errors"][0]["code"],
        "unknown_field"
    );
    let list = app.get_as("/v1/contacts", &owner.access_token).await.json();
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
}

both_backends!(references_must_name_live_records_of_the_organization);
async fn references_must_name_live_records_of_the_organization(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Beta", "owner@beta.example").await;
    let foreign_company = app
        .create(
            &other.access_token,
            "/v1/companies",
            json!({"name": "Beta Co"}),
        )
        .await;

    let response = app
        .post_as("/v1/contacts", &owner.access_token, &json!({"first_name": "A", "company_id": foreign_company["id"], "owner_id": other.user_id}))
        .await;

    let problem = response.assert_problem(422, "validation_failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["company_id", "owner_id"]);
    assert_eq!(problem["errors"][0]["code"], "not_found");
}

both_backends!(a_primary_email_belongs_to_one_live_contact);
async fn a_primary_email_belongs_to_one_live_contact(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let first = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"email": "ann@customer.example"}),
        )
        .await;
    let first_id = first["id"].as_str().unwrap();

    let duplicate = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"email": "ANN@customer.example"}),
        )
        .await;

    let problem = duplicate.assert_problem(409, "duplicate_email");
    assert_eq!(problem["existing_id"], first_id);
    // Another organization may have the same email.
    let other = app.signup("Beta", "owner@beta.example").await;
    app.create(
        &other.access_token,
        "/v1/contacts",
        json!({"email": "ann@customer.example"}),
    )
    .await;
    // Once the first is deleted the email is free; restoring the first then conflicts.
    app.delete_as(&format!("/v1/contacts/{first_id}"), &owner.access_token)
        .await;
    let second = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"email": "ann@customer.example"}),
        )
        .await;
    let restore = app
        .post_as(
            &format!("/v1/contacts/{first_id}/restore"),
            &owner.access_token,
            &json!({}),
        )
        .await;
    assert_eq!(
        restore.assert_problem(409, "duplicate_email")["existing_id"],
        second["id"]
    );
}

both_backends!(external_ids_are_unique_per_organization);
async fn external_ids_are_unique_per_organization(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    app.create(
        &owner.access_token,
        "/v1/contacts",
        json!({"first_name": "A", "external_id": "erp-1"}),
    )
    .await;

    let response = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"first_name": "B", "external_id": "erp-1"}),
        )
        .await;

    let problem = response.assert_problem(409, "conflict");
    assert_eq!(problem["errors"][0]["field"], "external_id");
}

both_backends!(a_patch_changes_only_what_it_names_and_null_clears);
async fn a_patch_changes_only_what_it_names_and_null_clears(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann", "last_name": "Lee", "title": "CEO",
            "address": {"city": "Shanghai", "country": "CN"}, "tags": ["a", "b"]}),
        )
        .await;
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());

    let response = app
        .patch_as(
            &path,
            &owner.access_token,
            &json!({"title": null, "address": {"city": "Hangzhou"}, "tags": ["c"]}),
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.header("etag"), Some("\"2\""));
    let after = response.json();
    assert_eq!(after["first_name"], "Ann");
    assert_eq!(after["title"], Value::Null);
    assert_eq!(after["address"]["city"], "Hangzhou");
    assert_eq!(after["address"]["country"], "CN");
    assert_eq!(after["tags"], json!(["c"]));
    assert_eq!(after["version"], 2);
    // The same values again change nothing: no new version.
    let same = app
        .patch_as(&path, &owner.access_token, &json!({"first_name": "Ann"}))
        .await
        .json();
    assert_eq!(same["version"], 2);
    let cleared = app
        .patch_as(&path, &owner.access_token, &json!({"address": null}))
        .await
        .json();
    assert_eq!(cleared["address"], Value::Null);
    let unnamed = app
        .patch_as(
            &path,
            &owner.access_token,
            &json!({"first_name": null, "last_name": null}),
        )
        .await;
    unnamed.assert_problem(422, "validation_failed");
}

both_backends!(a_stale_if_match_is_412_for_patch_and_delete);
async fn a_stale_if_match_is_412_for_patch_and_delete(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann"}),
        )
        .await;
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    app.patch_as(&path, &owner.access_token, &json!({"title": "CEO"}))
        .await;

    let stale_patch = app
        .send(
            app.authed(Method::PATCH, &path, &owner.access_token)
                .header("if-match", "\"1\"")
                .json(&json!({"title": "CTO"})),
        )
        .await;
    let stale_delete = app
        .send(
            app.authed(Method::DELETE, &path, &owner.access_token)
                .header("if-match", "\"1\""),
        )
        .await;
    let fresh_delete = app
        .send(
            app.authed(Method::DELETE, &path, &owner.access_token)
                .header("if-match", "\"2\""),
        )
        .await;

    stale_patch.assert_problem(412, "version_mismatch");
    stale_delete.assert_problem(412, "version_mismatch");
    assert_eq!(fresh_delete.status, 204);
}

both_backends!(deleting_is_soft_and_restoring_brings_the_contact_back);
async fn deleting_is_soft_and_restoring_brings_the_contact_back(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann"}),
        )
        .await;
    let id = contact["id"].as_str().unwrap();
    let path = format!("/v1/contacts/{id}");

    assert_eq!(app.delete_as(&path, &owner.access_token).await.status, 204);

    app.get_as(&path, &owner.access_token)
        .await
        .assert_problem(404, "not_found");
    app.delete_as(&path, &owner.access_token)
        .await
        .assert_problem(404, "not_found");
    assert!(TestApp::ids(&app.get_as("/v1/contacts", &owner.access_token).await.json()).is_empty());
    let trash = app
        .get_as("/v1/contacts?deleted=true", &owner.access_token)
        .await
        .json();
    assert_eq!(TestApp::ids(&trash), [id]);
    assert!(trash["data"][0]["deleted_at"].is_string());
    let restored = app
        .post_as(&format!("{path}/restore"), &owner.access_token, &json!({}))
        .await;
    assert_eq!(restored.status, 200, "{}", restored.text);
    assert_eq!(restored.json()["deleted_at"], Value::Null);
    assert_eq!(app.get_as(&path, &owner.access_token).await.status, 200);
    let history = app
        .get_as(&format!("{path}/history"), &owner.access_token)
        .await
        .json();
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["restored", "deleted", "created"]);
}

both_backends!(history_records_field_changes_with_actor_and_time);
async fn history_records_field_changes_with_actor_and_time(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (_, key) = app.api_key(&owner, &["contact:write"]).await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann", "email": "ann@x.example"}),
        )
        .await;
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    app.patch_as(
        &path,
        &key,
        &json!({"email": "ann.lee@x.example", "address": {"city": "Hangzhou"}}),
    )
    .await;

    let history = app
        .get_as(&format!("{path}/history"), &owner.access_token)
        .await;

    assert_eq!(history.status, 200, "{}", history.text);
    let body = history.json();
    let latest = &body["data"][0];
    assert_eq!(latest["action"], "updated");
    assert_eq!(
        latest["changes"]["email"],
        json!({"old": "ann@x.example", "new": "ann.lee@x.example"})
    );
    assert_eq!(
        latest["changes"]["address.city"],
        json!({"old": null, "new": "Hangzhou"})
    );
    assert_eq!(latest["changes"].as_object().unwrap().len(), 2, "{latest}");
    assert_eq!(latest["actor_id"], owner.user_id.as_str());
    assert!(latest["api_key_id"].is_string(), "the key is named");
    let created = &body["data"][1];
    assert_eq!(created["action"], "created");
    assert_eq!(
        created["changes"]["first_name"],
        json!({"old": null, "new": "Ann"})
    );
    assert!(latest["seq"].as_i64().unwrap() > created["seq"].as_i64().unwrap());
    let paged = app
        .get_as(&format!("{path}/history?limit=1"), &owner.access_token)
        .await
        .json();
    let next = app
        .get_as(
            &format!(
                "{path}/history?limit=1&cursor={}",
                paged["next_cursor"].as_str().unwrap()
            ),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(next["data"][0]["action"], "created");
    assert_eq!(next["next_cursor"], Value::Null);
}

both_backends!(lifecycle_stage_and_consent_changes_keep_their_time);
async fn lifecycle_stage_and_consent_changes_keep_their_time(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann", "lifecycle_stage": "lead"}),
        )
        .await;
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    let lead_at = contact["lifecycle_stage_changed_at"]
        .as_str()
        .unwrap()
        .to_owned();

    let unrelated = app
        .patch_as(&path, &owner.access_token, &json!({"title": "CEO"}))
        .await
        .json();
    let customer = app
        .patch_as(
            &path,
            &owner.access_token,
            &json!({"lifecycle_stage": "customer"}),
        )
        .await
        .json();
    let opted = app
        .patch_as(
            &path,
            &owner.access_token,
            &json!({"consent": {"email": {"status": "opted_in"}}}),
        )
        .await
        .json();
    let again = app
        .patch_as(
            &path,
            &owner.access_token,
            &json!({"consent": {"email": {"status": "opted_in"}}}),
        )
        .await
        .json();
    let imported = app
        .patch_as(&path, &owner.access_token, &json!({"consent": {"sms": {"status": "opted_out", "changed_at": "2025-01-02T03:04:05Z"}}}))
        .await
        .json();

    assert_eq!(unrelated["lifecycle_stage_changed_at"], lead_at.as_str());
    assert_ne!(customer["lifecycle_stage_changed_at"], lead_at.as_str());
    assert_eq!(customer["lifecycle_stage"], "customer");
    assert_eq!(opted["consent"]["email"]["status"], "opted_in");
    assert!(opted["consent"]["email"]["changed_at"].is_string());
    assert_eq!(
        again["consent"]["email"]["changed_at"],
        opted["consent"]["email"]["changed_at"]
    );
    assert_eq!(
        imported["consent"]["sms"],
        json!({"status": "opted_out", "changed_at": "2025-01-02T03:04:05Z"})
    );
    assert_eq!(imported["consent"]["phone"]["status"], "unknown");
    let bad = app
        .patch_as(
            &path,
            &owner.access_token,
            &json!({"consent": {"fax": {"status": "opted_in"}}}),
        )
        .await;
    bad.assert_problem(422, "validation_failed");
}

both_backends!(a_companys_contacts_are_listed_under_it);
async fn a_companys_contacts_are_listed_under_it(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let company = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Customer Co"}),
        )
        .await;
    let company_id = company["id"].as_str().unwrap();
    let member = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "In", "company_id": company_id}),
        )
        .await;
    app.create(
        &owner.access_token,
        "/v1/contacts",
        json!({"first_name": "Out"}),
    )
    .await;

    let listed = app
        .get_as(
            &format!("/v1/companies/{company_id}/contacts"),
            &owner.access_token,
        )
        .await;

    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(
        TestApp::ids(&listed.json()),
        [member["id"].as_str().unwrap()]
    );
    let missing = app
        .get_as(
            &format!("/v1/companies/{}/contacts", uuid::Uuid::now_v7()),
            &owner.access_token,
        )
        .await;
    missing.assert_problem(404, "not_found");
    app.get_as("/v1/contacts/not-a-uuid", &owner.access_token)
        .await
        .assert_problem(404, "not_found");
}

both_backends!(record_visibility_own_team_and_managers);
async fn record_visibility_own_team_and_managers(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let manager = app.member(&owner, "manager@acme.example", "manager").await;
    let ann = app.member(&owner, "ann@acme.example", "sales").await;
    let bob = app.member(&owner, "bob@acme.example", "sales").await;
    let cat = app.member(&owner, "cat@acme.example", "sales").await;
    let team = app
        .create(
            &owner.access_token,
            "/v1/teams",
            json!({"name": "East", "manager_id": manager.user_id}),
        )
        .await;
    for member in [&ann, &bob] {
        app.patch_as(
            &format!("/v1/users/{}", member.user_id),
            &owner.access_token,
            &json!({"team_id": team["id"]}),
        )
        .await;
    }
    let mine = app
        .create(
            &ann.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann's"}),
        )
        .await;
    let teammates = app
        .create(
            &bob.access_token,
            "/v1/contacts",
            json!({"first_name": "Bob's"}),
        )
        .await;
    let outsiders = app
        .create(
            &cat.access_token,
            "/v1/contacts",
            json!({"first_name": "Cat's"}),
        )
        .await;
    let (mine, teammates, outsiders) = (
        mine["id"].as_str().unwrap(),
        teammates["id"].as_str().unwrap(),
        outsiders["id"].as_str().unwrap(),
    );
    let sorted = |ids: Vec<&str>| {
        let mut v: Vec<String> = ids.into_iter().map(String::from).collect();
        v.sort();
        v
    };

    app.patch_as(
        "/v1/organization",
        &owner.access_token,
        &json!({"settings": {"record_visibility": {"contact": "own"}}}),
    )
    .await;
    let own = app.get_as("/v1/contacts", &ann.access_token).await.json();
    assert_eq!(TestApp::ids(&own), [mine]);
    app.get_as(&format!("/v1/contacts/{teammates}"), &ann.access_token)
        .await
        .assert_problem(404, "not_found");
    app.patch_as(
        &format!("/v1/contacts/{teammates}"),
        &ann.access_token,
        &json!({"title": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete_as(&format!("/v1/contacts/{teammates}"), &ann.access_token)
        .await
        .assert_problem(404, "not_found");
    app.get_as(
        &format!("/v1/contacts/{teammates}/history"),
        &ann.access_token,
    )
    .await
    .assert_problem(404, "not_found");

    app.patch_as(
        "/v1/organization",
        &owner.access_token,
        &json!({"settings": {"record_visibility": {"contact": "team"}}}),
    )
    .await;
    let mut team_view = TestApp::ids(&app.get_as("/v1/contacts", &ann.access_token).await.json());
    team_view.sort();
    assert_eq!(team_view, sorted(vec![mine, teammates]));
    let mut managed = TestApp::ids(
        &app.get_as("/v1/contacts", &manager.access_token)
            .await
            .json(),
    );
    managed.sort();
    assert_eq!(
        managed,
        sorted(vec![mine, teammates]),
        "managers see their teams"
    );
    let everything = TestApp::ids(&app.get_as("/v1/contacts", &owner.access_token).await.json());
    assert_eq!(everything.len(), 3, "owners see all");
    assert_eq!(
        TestApp::ids(&app.get_as("/v1/contacts", &cat.access_token).await.json()),
        [outsiders]
    );
}

both_backends!(another_organizations_contacts_are_404_everywhere);
async fn another_organizations_contacts_are_404_everywhere(app: TestApp) {
    let acme = app.signup("Acme", "owner@acme.example").await;
    let theirs = app
        .create(
            &acme.access_token,
            "/v1/contacts",
            json!({"first_name": "Theirs"}),
        )
        .await;
    let id = theirs["id"].as_str().unwrap();
    let beta = app.signup("Beta", "owner@beta.example").await;
    let mine = app
        .create(
            &beta.access_token,
            "/v1/contacts",
            json!({"first_name": "Mine"}),
        )
        .await;

    app.get_as(&format!("/v1/contacts/{id}"), &beta.access_token)
        .await
        .assert_problem(404, "not_found");
    app.patch_as(
        &format!("/v1/contacts/{id}"),
        &beta.access_token,
        &json!({"title": "x"}),
    )
    .await
    .assert_problem(404, "not_found");
    app.delete_as(&format!("/v1/contacts/{id}"), &beta.access_token)
        .await
        .assert_problem(404, "not_found");
    app.post_as(
        &format!("/v1/contacts/{id}/restore"),
        &beta.access_token,
        &json!({}),
    )
    .await
    .assert_problem(404, "not_found");
    app.get_as(&format!("/v1/contacts/{id}/history"), &beta.access_token)
        .await
        .assert_problem(404, "not_found");
    app.get_as(&format!("/v1/contacts/{id}/duplicates"), &beta.access_token)
        .await
        .assert_problem(404, "not_found");
    app.post_as(
        "/v1/contacts/merge",
        &beta.access_token,
        &json!({"primary_id": mine["id"], "duplicate_ids": [id]}),
    )
    .await
    .assert_problem(404, "not_found");
    assert_eq!(
        app.get_as(&format!("/v1/contacts/{id}"), &acme.access_token)
            .await
            .json()["title"],
        Value::Null
    );
}

both_backends!(roles_and_scopes_hold_on_contacts);
async fn roles_and_scopes_hold_on_contacts(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let viewer = app.member(&owner, "viewer@acme.example", "viewer").await;
    let (_, read_key) = app.api_key(&owner, &["contact:read"]).await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann"}),
        )
        .await;

    app.post_as(
        "/v1/contacts",
        &viewer.access_token,
        &json!({"first_name": "B"}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post_as("/v1/contacts", &read_key, &json!({"first_name": "B"}))
        .await
        .assert_problem(403, "forbidden");
    assert_eq!(
        app.get_as("/v1/contacts", &viewer.access_token)
            .await
            .status,
        200
    );
    assert_eq!(
        app.get_as(
            &format!("/v1/contacts/{}", contact["id"].as_str().unwrap()),
            &read_key
        )
        .await
        .status,
        200
    );
}

both_backends!(a_hand_over_moves_contacts_and_companies_with_events);
async fn a_hand_over_moves_contacts_and_companies_with_events(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let leaving = app.member(&owner, "leaving@acme.example", "sales").await;
    let contact = app
        .create(
            &leaving.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann"}),
        )
        .await;
    app.create(
        &leaving.access_token,
        "/v1/companies",
        json!({"name": "Customer Co"}),
    )
    .await;

    let response = app
        .post_as(
            &format!("/v1/users/{}/transfer", leaving.user_id),
            &owner.access_token,
            &json!({"to_user_id": owner.user_id}),
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(
        response.json()["transferred"],
        json!({"team": 0, "company": 1, "contact": 1})
    );
    let path = format!("/v1/contacts/{}", contact["id"].as_str().unwrap());
    let moved = app.get_as(&path, &owner.access_token).await.json();
    assert_eq!(moved["owner_id"], owner.user_id.as_str());
    let history = app
        .get_as(&format!("{path}/history"), &owner.access_token)
        .await
        .json();
    assert_eq!(
        history["data"][0]["changes"]["owner_id"]["new"],
        owner.user_id.as_str()
    );
}
