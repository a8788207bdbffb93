//! Record visibility holds for writes too (issue 10, points 10 and 11): a user who sees only
//! their own (or their team's) records cannot give a record to an owner outside that, and
//! such a write is refused whole before anything is stored; and a write cannot learn of a
//! record the caller may not see — a hidden record named as a reference is answered exactly
//! like one that does not exist, and a conflict with a hidden record names no id.

use serde_json::{Value, json};

use crate::helpers::{Session, TestApp};

/// An organization whose owner sets `settings`, with two sales users.
struct Org {
    owner: Session,
    ann: Session,
    bob: Session,
}

async fn org(app: &TestApp, visibility: Value) -> Org {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let ann = app.member(&owner, "ann@acme.example", "sales").await;
    let bob = app.member(&owner, "bob@acme.example", "sales").await;
    let response = app
        .patch_as(
            "/v1/organization",
            &owner.access_token,
            &json!({"settings": {"record_visibility": visibility}}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    Org { owner, ann, bob }
}

/// Every record of a collection, as the organization's owner sees it.
async fn all_records(app: &TestApp, owner: &Session, path: &str) -> Vec<Value> {
    let response = app
        .get_as(&format!("{path}?limit=200"), &owner.access_token)
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.json()["data"].as_array().unwrap().clone()
}

/// How many events the owner's change feed holds.
async fn feed_length(app: &TestApp, owner: &Session) -> usize {
    let response = app
        .get_as("/v1/changes?limit=200", &owner.access_token)
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.json()["data"].as_array().unwrap().len()
}

fn id(record: &Value) -> &str {
    record["id"].as_str().unwrap()
}

/// The parts of a problem that must not tell a hidden record from a missing one.
fn problem_shape(problem: &Value) -> Value {
    json!({
        "status": problem["status"],
        "code": problem["code"],
        "detail": problem["detail"],
        "errors": problem["errors"],
    })
}

#[track_caller]
fn assert_owner_refused(problem: &Value, field: &str) {
    assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "not_permitted", "{problem}");
}

both_backends!(a_contact_given_to_an_owner_the_writer_cannot_see_is_refused_and_nothing_is_stored);
async fn a_contact_given_to_an_owner_the_writer_cannot_see_is_refused_and_nothing_is_stored(
    app: TestApp,
) {
    let Org { owner, ann, bob } = org(&app, json!({"contact": "own"})).await;
    let mine = app
        .create(
            &ann.access_token,
            "/v1/contacts",
            json!({"first_name": "Mine"}),
        )
        .await;
    let contacts_before = all_records(&app, &owner, "/v1/contacts").await;
    let feed_before = feed_length(&app, &owner).await;

    let created = app
        .post_as(
            "/v1/contacts",
            &ann.access_token,
            &json!({"first_name": "Given away", "owner_id": bob.user_id}),
        )
        .await;
    let patched = app
        .patch_as(
            &format!("/v1/contacts/{}", id(&mine)),
            &ann.access_token,
            &json!({"owner_id": bob.user_id}),
        )
        .await;
    let cleared = app
        .patch_as(
            &format!("/v1/contacts/{}", id(&mine)),
            &ann.access_token,
            &json!({"owner_id": null}),
        )
        .await;
    let upserted = app
        .put_as(
            "/v1/contacts/external/ERP-1",
            &ann.access_token,
            &json!({"first_name": "Synced", "owner_id": bob.user_id}),
        )
        .await;

    assert_owner_refused(
        &created.assert_problem(403, "owner_not_permitted"),
        "owner_id",
    );
    assert_owner_refused(
        &patched.assert_problem(403, "owner_not_permitted"),
        "owner_id",
    );
    assert_owner_refused(
        &cleared.assert_problem(403, "owner_not_permitted"),
        "owner_id",
    );
    assert_owner_refused(
        &upserted.assert_problem(403, "owner_not_permitted"),
        "owner_id",
    );
    assert_eq!(
        all_records(&app, &owner, "/v1/contacts").await,
        contacts_before,
        "nothing was created or changed"
    );
    assert_eq!(feed_length(&app, &owner).await, feed_before, "no event");
    let still_mine = app
        .get_as(&format!("/v1/contacts/{}", id(&mine)), &ann.access_token)
        .await;
    assert_eq!(still_mine.status, 200);
    assert_eq!(still_mine.json()["owner_id"], ann.user_id.as_str());
}

both_backends!(writes_within_what_the_writer_sees_still_work_and_admins_give_records_to_anyone);
async fn writes_within_what_the_writer_sees_still_work_and_admins_give_records_to_anyone(
    app: TestApp,
) {
    let Org { owner, ann, bob } = org(&app, json!({"contact": "own", "company": "own"})).await;

    let explicit = app
        .post_as(
            "/v1/contacts",
            &ann.access_token,
            &json!({"first_name": "Mine", "owner_id": ann.user_id}),
        )
        .await;
    let by_default = app
        .post_as(
            "/v1/companies",
            &ann.access_token,
            &json!({"name": "Mine Co"}),
        )
        .await;
    let admin_gives = app
        .post_as(
            "/v1/contacts",
            &owner.access_token,
            &json!({"first_name": "Bob's", "owner_id": bob.user_id}),
        )
        .await;
    let admin_moves = app
        .patch_as(
            &format!("/v1/contacts/{}", id(&explicit.json())),
            &owner.access_token,
            &json!({"owner_id": bob.user_id}),
        )
        .await;

    assert_eq!(explicit.status, 201, "{}", explicit.text);
    assert_eq!(by_default.status, 201, "{}", by_default.text);
    assert_eq!(by_default.json()["owner_id"], ann.user_id.as_str());
    assert_eq!(admin_gives.status, 201, "{}", admin_gives.text);
    assert_eq!(admin_gives.json()["owner_id"], bob.user_id.as_str());
    assert_eq!(admin_moves.status, 200, "{}", admin_moves.text);
    assert_eq!(admin_moves.json()["owner_id"], bob.user_id.as_str());
}

both_backends!(a_company_given_to_an_owner_the_writer_cannot_see_is_refused_and_nothing_is_stored);
async fn a_company_given_to_an_owner_the_writer_cannot_see_is_refused_and_nothing_is_stored(
    app: TestApp,
) {
    let Org { owner, ann, bob } = org(&app, json!({"company": "own"})).await;
    let mine = app
        .create(
            &ann.access_token,
            "/v1/companies",
            json!({"name": "Mine Co"}),
        )
        .await;
    let before = all_records(&app, &owner, "/v1/companies").await;
    let feed_before = feed_length(&app, &owner).await;

    let created = app
        .post_as(
            "/v1/companies",
            &ann.access_token,
            &json!({"name": "Given Co", "owner_id": bob.user_id}),
        )
        .await;
    let patched = app
        .patch_as(
            &format!("/v1/companies/{}", id(&mine)),
            &ann.access_token,
            &json!({"owner_id": bob.user_id}),
        )
        .await;

    assert_owner_refused(
        &created.assert_problem(403, "owner_not_permitted"),
        "owner_id",
    );
    assert_owner_refused(
        &patched.assert_problem(403, "owner_not_permitted"),
        "owner_id",
    );
    assert_eq!(all_records(&app, &owner, "/v1/companies").await, before);
    assert_eq!(feed_length(&app, &owner).await, feed_before);
}

both_backends!(a_batch_row_given_to_a_hidden_owner_fails_alone_or_undoes_an_all_or_none_batch);
async fn a_batch_row_given_to_a_hidden_owner_fails_alone_or_undoes_an_all_or_none_batch(
    app: TestApp,
) {
    let Org { owner, ann, bob } = org(&app, json!({"contact": "own"})).await;
    let rows = |suffix: &str| {
        json!([
            {"external_id": format!("OK-{suffix}"), "first_name": "Fine"},
            {"external_id": format!("BOB-{suffix}"), "first_name": "Bob's", "owner_id": bob.user_id},
        ])
    };
    let feed_before = feed_length(&app, &owner).await;

    let all_or_none = app
        .post_as(
            "/v1/contacts/batch/upsert",
            &ann.access_token,
            &json!({"id_property": "external_id", "records": rows("1"), "all_or_none": true}),
        )
        .await;
    let after_all_or_none = all_records(&app, &owner, "/v1/contacts").await;
    let feed_after_all_or_none = feed_length(&app, &owner).await;
    let row_by_row = app
        .post_as(
            "/v1/contacts/batch/upsert",
            &ann.access_token,
            &json!({"id_property": "external_id", "records": rows("2")}),
        )
        .await;

    assert_eq!(all_or_none.status, 200, "{}", all_or_none.text);
    let results = all_or_none.json()["results"].clone();
    assert_eq!(results[0]["error"]["code"], "not_applied", "{results}");
    assert_eq!(results[1]["status"], "error");
    assert_eq!(results[1]["error"]["code"], "owner_not_permitted");
    assert_eq!(results[1]["error"]["status"], 403);
    assert_owner_refused(&results[1]["error"], "records[1].owner_id");
    assert_eq!(after_all_or_none, Vec::<Value>::new(), "nothing written");
    assert_eq!(feed_after_all_or_none, feed_before, "no event");

    assert_eq!(row_by_row.status, 200, "{}", row_by_row.text);
    let results = row_by_row.json()["results"].clone();
    assert_eq!(results[0]["status"], "created", "{results}");
    assert_eq!(results[1]["status"], "error");
    assert_eq!(results[1]["id"], Value::Null);
    assert_eq!(results[1]["error"]["code"], "owner_not_permitted");
    let stored: Vec<Value> = all_records(&app, &owner, "/v1/contacts")
        .await
        .iter()
        .map(|c| c["external_id"].clone())
        .collect();
    assert_eq!(stored, [json!("OK-2")], "only the permitted row is stored");
}

both_backends!(team_members_and_managers_give_records_within_their_teams_only);
async fn team_members_and_managers_give_records_within_their_teams_only(app: TestApp) {
    let Org { owner, ann, bob } = org(&app, json!({"contact": "team"})).await;
    let manager = app.member(&owner, "manager@acme.example", "manager").await;
    let cat = app.member(&owner, "cat@acme.example", "sales").await;
    let team = app
        .create(
            &owner.access_token,
            "/v1/teams",
            json!({"name": "East", "manager_id": manager.user_id}),
        )
        .await;
    for member in [&ann, &bob] {
        let response = app
            .patch_as(
                &format!("/v1/users/{}", member.user_id),
                &owner.access_token,
                &json!({"team_id": team["id"]}),
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text);
    }
    let give = |token: String, to: String, name: &'static str| {
        let app = &app;
        async move {
            app.post_as(
                "/v1/contacts",
                &token,
                &json!({"first_name": name, "owner_id": to}),
            )
            .await
        }
    };

    let to_teammate = give(ann.access_token.clone(), bob.user_id.clone(), "Teammate's").await;
    let to_outsider = give(ann.access_token.clone(), cat.user_id.clone(), "Outsider's").await;
    let manager_to_member = give(
        manager.access_token.clone(),
        ann.user_id.clone(),
        "Member's",
    )
    .await;
    let manager_to_outsider =
        give(manager.access_token.clone(), cat.user_id.clone(), "Cat's").await;

    assert_eq!(to_teammate.status, 201, "{}", to_teammate.text);
    to_outsider.assert_problem(403, "owner_not_permitted");
    assert_eq!(manager_to_member.status, 201, "{}", manager_to_member.text);
    manager_to_outsider.assert_problem(403, "owner_not_permitted");
    let names: Vec<Value> = all_records(&app, &owner, "/v1/contacts")
        .await
        .iter()
        .map(|c| c["first_name"].clone())
        .collect();
    assert!(!names.contains(&json!("Outsider's")) && !names.contains(&json!("Cat's")));
}

both_backends!(a_duplicate_email_of_a_hidden_contact_is_a_conflict_that_names_no_id);
async fn a_duplicate_email_of_a_hidden_contact_is_a_conflict_that_names_no_id(app: TestApp) {
    let Org { owner, ann, .. } = org(&app, json!({"contact": "own"})).await;
    let hidden = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"email": "hidden@customer.example"}),
        )
        .await;
    let mine = app
        .create(
            &ann.access_token,
            "/v1/contacts",
            json!({"email": "mine@customer.example"}),
        )
        .await;

    let created = app
        .post_as(
            "/v1/contacts",
            &ann.access_token,
            &json!({"email": "HIDDEN@customer.example"}),
        )
        .await;
    let patched = app
        .patch_as(
            &format!("/v1/contacts/{}", id(&mine)),
            &ann.access_token,
            &json!({"email": "hidden@customer.example"}),
        )
        .await;
    let upserted = app
        .post_as(
            "/v1/contacts/batch/upsert",
            &ann.access_token,
            &json!({"id_property": "email", "records": [{"email": "hidden@customer.example", "title": "x"}]}),
        )
        .await;
    let of_my_own = app
        .post_as(
            "/v1/contacts",
            &ann.access_token,
            &json!({"email": "mine@customer.example"}),
        )
        .await;

    let hidden_id = id(&hidden);
    for problem in [
        created.assert_problem(409, "duplicate_email"),
        patched.assert_problem(409, "duplicate_email"),
        upserted.json()["results"][0]["error"].clone(),
    ] {
        assert_eq!(problem["code"], "duplicate_email", "{problem}");
        assert!(problem.get("existing_id").is_none(), "{problem}");
        assert!(!problem.to_string().contains(hidden_id), "{problem}");
        assert_eq!(problem["detail"], "Another record already has this email.");
    }
    let named = of_my_own.assert_problem(409, "duplicate_email");
    assert_eq!(
        named["existing_id"],
        id(&mine),
        "a contact one sees is named"
    );
    let unchanged = app
        .get_as(&format!("/v1/contacts/{hidden_id}"), &owner.access_token)
        .await
        .json();
    assert_eq!(
        unchanged["title"],
        Value::Null,
        "the hidden contact was not upserted"
    );
}

both_backends!(restoring_a_contact_whose_email_a_hidden_contact_took_names_no_id);
async fn restoring_a_contact_whose_email_a_hidden_contact_took_names_no_id(app: TestApp) {
    let Org { owner, ann, .. } = org(&app, json!({"contact": "own"})).await;
    let mine = app
        .create(
            &ann.access_token,
            "/v1/contacts",
            json!({"email": "shared@customer.example"}),
        )
        .await;
    let deleted = app
        .delete_as(&format!("/v1/contacts/{}", id(&mine)), &ann.access_token)
        .await;
    assert_eq!(deleted.status, 204);
    let hidden = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"email": "shared@customer.example"}),
        )
        .await;

    let restored = app
        .post_as(
            &format!("/v1/contacts/{}/restore", id(&mine)),
            &ann.access_token,
            &json!({}),
        )
        .await;

    let problem = restored.assert_problem(409, "duplicate_email");
    assert!(problem.get("existing_id").is_none(), "{problem}");
    assert!(!restored.text.contains(id(&hidden)), "{}", restored.text);
}

both_backends!(upserting_the_external_id_of_a_hidden_contact_is_a_conflict_that_changes_nothing);
async fn upserting_the_external_id_of_a_hidden_contact_is_a_conflict_that_changes_nothing(
    app: TestApp,
) {
    let Org { owner, ann, .. } = org(&app, json!({"contact": "own"})).await;
    let hidden = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Hidden", "external_id": "ERP-7"}),
        )
        .await;

    let upserted = app
        .put_as(
            "/v1/contacts/external/ERP-7",
            &ann.access_token,
            &json!({"first_name": "Taken over"}),
        )
        .await;

    let problem = upserted.assert_problem(409, "conflict");
    assert_eq!(problem["errors"][0]["field"], "external_id");
    assert!(!upserted.text.contains(id(&hidden)), "{}", upserted.text);
    let unchanged = app
        .get_as(
            &format!("/v1/contacts/{}", id(&hidden)),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(unchanged["first_name"], "Hidden");
    assert_eq!(unchanged["owner_id"], owner.user_id.as_str());
}

both_backends!(a_contact_naming_a_hidden_company_is_refused_like_one_naming_no_company);
async fn a_contact_naming_a_hidden_company_is_refused_like_one_naming_no_company(app: TestApp) {
    let Org { owner, ann, .. } = org(&app, json!({"company": "own"})).await;
    let hidden = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Hidden Co", "external_id": "CO-HIDDEN"}),
        )
        .await;
    let mine = app
        .create(
            &ann.access_token,
            "/v1/companies",
            json!({"name": "Mine Co", "external_id": "CO-MINE"}),
        )
        .await;
    let contacts_before = all_records(&app, &owner, "/v1/contacts").await;
    let attempt = |body: Value| {
        let app = &app;
        let token = ann.access_token.clone();
        async move { app.post_as("/v1/contacts", &token, &body).await }
    };

    let hidden_by_id = attempt(json!({"first_name": "A", "company_id": id(&hidden)})).await;
    let missing_by_id =
        attempt(json!({"first_name": "A", "company_id": "0190a0a0-0000-7000-8000-000000000000"}))
            .await;
    let hidden_by_external =
        attempt(json!({"first_name": "A", "company_external_id": "CO-HIDDEN"})).await;
    let missing_by_external =
        attempt(json!({"first_name": "A", "company_external_id": "CO-NONE"})).await;
    let hidden_parent = app
        .post_as(
            "/v1/companies",
            &ann.access_token,
            &json!({"name": "Child", "parent_company_id": id(&hidden)}),
        )
        .await;
    let missing_parent = app
        .post_as(
            "/v1/companies",
            &ann.access_token,
            &json!({"name": "Child", "parent_company_id": "0190a0a0-0000-7000-8000-000000000000"}),
        )
        .await;
    let hidden_parent_by_external = app
        .post_as(
            "/v1/companies",
            &ann.access_token,
            &json!({"name": "Child", "parent_external_id": "CO-HIDDEN"}),
        )
        .await;
    let missing_parent_by_external = app
        .post_as(
            "/v1/companies",
            &ann.access_token,
            &json!({"name": "Child", "parent_external_id": "CO-NONE"}),
        )
        .await;
    let to_mine = attempt(json!({"first_name": "A", "company_external_id": "CO-MINE"})).await;

    for (of_hidden, of_missing) in [
        (hidden_by_id, missing_by_id),
        (hidden_by_external, missing_by_external),
        (hidden_parent, missing_parent),
        (hidden_parent_by_external, missing_parent_by_external),
    ] {
        let (of_hidden, of_missing) = (
            of_hidden.assert_problem(422, "validation_failed"),
            of_missing.assert_problem(422, "validation_failed"),
        );
        assert_eq!(problem_shape(&of_hidden), problem_shape(&of_missing));
        assert_eq!(of_hidden["errors"][0]["code"], "not_found", "{of_hidden}");
        assert!(!of_hidden.to_string().contains(id(&hidden)), "{of_hidden}");
    }
    assert_eq!(to_mine.status, 201, "{}", to_mine.text);
    assert_eq!(to_mine.json()["company_id"], id(&mine));
    let contacts_after = all_records(&app, &owner, "/v1/contacts").await;
    assert_eq!(
        contacts_after.len(),
        contacts_before.len() + 1,
        "only the contact at a visible company"
    );
}

both_backends!(
    a_contact_keeps_the_hidden_company_an_admin_gave_it_when_its_owner_changes_other_fields
);
async fn a_contact_keeps_the_hidden_company_an_admin_gave_it_when_its_owner_changes_other_fields(
    app: TestApp,
) {
    let Org { owner, ann, .. } = org(&app, json!({"company": "own"})).await;
    let hidden = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Hidden Co"}),
        )
        .await;
    let contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Ann's", "owner_id": ann.user_id, "company_id": id(&hidden)}),
        )
        .await;

    let patched = app
        .patch_as(
            &format!("/v1/contacts/{}", id(&contact)),
            &ann.access_token,
            &json!({"title": "Buyer", "company_id": id(&hidden)}),
        )
        .await;

    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(patched.json()["company_id"], id(&hidden));
    assert_eq!(patched.json()["title"], "Buyer");
}

both_backends!(an_order_naming_a_hidden_contact_or_company_is_refused_like_one_naming_nobody);
async fn an_order_naming_a_hidden_contact_or_company_is_refused_like_one_naming_nobody(
    app: TestApp,
) {
    let Org { owner, ann, .. } = org(&app, json!({"contact": "own", "company": "own"})).await;
    app.create(
        &owner.access_token,
        "/v1/products",
        json!({"sku": "TEA-001", "name": "Tea", "unit_price_minor": 1000, "currency": "CNY"}),
    )
    .await;
    let hidden_contact = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"email": "hidden@customer.example", "external_id": "C-HIDDEN"}),
        )
        .await;
    let hidden_company = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Hidden Co", "external_id": "CO-HIDDEN"}),
        )
        .await;
    let mine = app
        .create(
            &ann.access_token,
            "/v1/contacts",
            json!({"email": "mine@customer.example"}),
        )
        .await;
    let order = |customer: Value| {
        let app = &app;
        let token = ann.access_token.clone();
        async move {
            let mut body = json!({"currency": "CNY", "lines": [{"sku": "TEA-001", "quantity": 1}]});
            for (key, value) in customer.as_object().unwrap() {
                body[key] = value.clone();
            }
            app.post_as("/v1/orders", &token, &body).await
        }
    };
    let nobody = "0190a0a0-0000-7000-8000-000000000000";

    let pairs = [
        (
            order(json!({"contact_email": "HIDDEN@customer.example"})).await,
            order(json!({"contact_email": "nobody@customer.example"})).await,
        ),
        (
            order(json!({"contact_id": id(&hidden_contact)})).await,
            order(json!({"contact_id": nobody})).await,
        ),
        (
            order(json!({"contact_external_id": "C-HIDDEN"})).await,
            order(json!({"contact_external_id": "C-NONE"})).await,
        ),
        (
            order(json!({"company_id": id(&hidden_company)})).await,
            order(json!({"company_id": nobody})).await,
        ),
        (
            order(json!({"company_external_id": "CO-HIDDEN"})).await,
            order(json!({"company_external_id": "CO-NONE"})).await,
        ),
    ];
    let of_mine = order(json!({"contact_email": "mine@customer.example"})).await;

    for (hidden, missing) in pairs {
        let (hidden_problem, missing_problem) = (
            hidden.assert_problem(422, "validation_failed"),
            missing.assert_problem(422, "validation_failed"),
        );
        assert_eq!(
            problem_shape(&hidden_problem),
            problem_shape(&missing_problem)
        );
        assert_eq!(hidden_problem["errors"][0]["code"], "not_found");
        assert!(!hidden.text.contains(id(&hidden_contact)));
    }
    assert_eq!(of_mine.status, 201, "{}", of_mine.text);
    assert_eq!(of_mine.json()["contact_id"], id(&mine));
    assert_eq!(
        all_records(&app, &owner, "/v1/orders").await.len(),
        1,
        "only the order of a visible contact"
    );
}

both_backends!(a_unique_custom_value_held_by_a_hidden_record_names_no_id);
async fn a_unique_custom_value_held_by_a_hidden_record_names_no_id(app: TestApp) {
    let Org { owner, ann, .. } = org(&app, json!({"contact": "own"})).await;
    app.create(
        &owner.access_token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "member_no", "label": "Member", "type": "text", "unique": true}),
    )
    .await;
    let hidden = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Hidden", "custom": {"member_no": "M-1"}}),
        )
        .await;

    let taken = app
        .post_as(
            "/v1/contacts",
            &ann.access_token,
            &json!({"first_name": "Mine", "custom": {"member_no": "M-1"}}),
        )
        .await;

    let problem = taken.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "custom.member_no");
    assert_eq!(problem["errors"][0]["code"], "taken");
    assert!(!taken.text.contains(id(&hidden)), "{}", taken.text);
}

both_backends!(filters_on_a_related_company_see_only_companies_the_caller_sees);
async fn filters_on_a_related_company_see_only_companies_the_caller_sees(app: TestApp) {
    let Org { owner, ann, .. } = org(&app, json!({"company": "own"})).await;
    let hidden = app
        .create(
            &owner.access_token,
            "/v1/companies",
            json!({"name": "Secret Corp"}),
        )
        .await;
    let mine = app
        .create(
            &ann.access_token,
            "/v1/companies",
            json!({"name": "Open Corp"}),
        )
        .await;
    // Contacts are all visible; one of them is at the hidden company.
    app.create(
        &owner.access_token,
        "/v1/contacts",
        json!({"first_name": "At secret", "company_id": id(&hidden)}),
    )
    .await;
    let at_mine = app
        .create(
            &ann.access_token,
            "/v1/contacts",
            json!({"first_name": "At open", "company_id": id(&mine)}),
        )
        .await;
    let search = |name: &'static str, token: String| {
        let app = &app;
        async move {
            let response = app
                .post_as(
                    "/v1/contacts/search",
                    &token,
                    &json!({"filter": {"field": "company.name", "op": "starts_with", "value": name}}),
                )
                .await;
            assert_eq!(response.status, 200, "{}", response.text);
            TestApp::ids(&response.json())
        }
    };

    let probing_hidden = search("Secret", ann.access_token.clone()).await;
    let own_company = search("Open", ann.access_token.clone()).await;
    let as_owner = search("Secret", owner.access_token.clone()).await;

    assert_eq!(
        probing_hidden,
        Vec::<String>::new(),
        "a hidden company's name is not matched"
    );
    assert_eq!(own_company, [id(&at_mine)]);
    assert_eq!(as_owner.len(), 1, "whoever sees the company filters on it");
}

both_backends!(a_hidden_merged_contact_is_not_found_rather_than_pointing_at_its_primary);
async fn a_hidden_merged_contact_is_not_found_rather_than_pointing_at_its_primary(app: TestApp) {
    let Org { owner, ann, .. } = org(&app, json!({"contact": "own"})).await;
    let primary = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Primary"}),
        )
        .await;
    let duplicate = app
        .create(
            &owner.access_token,
            "/v1/contacts",
            json!({"first_name": "Duplicate"}),
        )
        .await;
    let merged = app
        .post_as(
            "/v1/contacts/merge",
            &owner.access_token,
            &json!({"primary_id": id(&primary), "duplicate_ids": [id(&duplicate)]}),
        )
        .await;
    assert_eq!(merged.status, 200, "{}", merged.text);

    let read = app
        .get_as(
            &format!("/v1/contacts/{}", id(&duplicate)),
            &ann.access_token,
        )
        .await;
    let patched = app
        .patch_as(
            &format!("/v1/contacts/{}", id(&duplicate)),
            &ann.access_token,
            &json!({"title": "x"}),
        )
        .await;
    let by_owner = app
        .get_as(
            &format!("/v1/contacts/{}", id(&duplicate)),
            &owner.access_token,
        )
        .await;

    for response in [read, patched] {
        response.assert_problem(404, "not_found");
        assert!(!response.text.contains(id(&primary)), "{}", response.text);
    }
    by_owner.assert_problem(404, "record_merged");
}
