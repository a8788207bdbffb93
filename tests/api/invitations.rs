//! Issue 10, point 9: a person's login is global and their membership per organization.
//! Members join by invitation with their own password; no organization learns whether an
//! address is known elsewhere, sets anyone's password, or can take an address before its owner
//! signs up. Existing users keep their logins through the migration.

use serde_json::json;

use crate::helpers::{Backend, PASSWORD, Session, TestApp, TestDatabase};

both_backends!(inviting_an_address_known_elsewhere_looks_like_any_other_and_sets_no_password);
async fn inviting_an_address_known_elsewhere_looks_like_any_other_and_sets_no_password(
    app: TestApp,
) {
    app.signup("Acme", "ann@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;

    let known = app
        .post_as(
            "/v1/invitations",
            &other.access_token,
            &json!({"email": "ANN@acme.example", "role": "sales"}),
        )
        .await;
    let unknown = app
        .post_as(
            "/v1/invitations",
            &other.access_token,
            &json!({"email": "nobody@acme.example", "role": "sales"}),
        )
        .await;

    assert_eq!(known.status, 201, "{}", known.text);
    assert_eq!(unknown.status, 201, "{}", unknown.text);
    let shape = |body: serde_json::Value| {
        let mut keys: Vec<String> = body.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        (keys, body["status"].clone(), body["user_id"].clone())
    };
    assert_eq!(shape(known.json()), shape(unknown.json()));
    // Whoever holds the token cannot set Ann's password: only hers accepts it.
    let token = known.json()["token"].as_str().unwrap().to_owned();
    let hijack = app.accept(&token, "the inviter's own password").await;
    hijack.assert_problem(401, "invalid_credentials");
    assert_eq!(app.login("ann@acme.example", PASSWORD).await.status, 200);
    let accepted = app.accept(&token, PASSWORD).await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.json()["organization"]["name"], "Other");
    assert_eq!(accepted.json()["user"]["role"], "sales");
}

both_backends!(an_address_invited_elsewhere_can_still_sign_up_with_its_own_password);
async fn an_address_invited_elsewhere_can_still_sign_up_with_its_own_password(app: TestApp) {
    let squatter = app.signup("Squatter", "owner@squatter.example").await;
    app.invite(&squatter, "victim@acme.example", "admin").await;

    let signup = app
        .post_json(
            "/v1/auth/signup",
            &json!({"organization_name": "Acme", "name": "Victim", "email": "victim@acme.example", "password": PASSWORD}),
        )
        .await;

    assert_eq!(signup.status, 201, "{}", signup.text);
    assert_eq!(signup.json()["organization"]["name"], "Acme");
    // The address is still only in Acme: signing in needs no choice.
    let login = app.login("victim@acme.example", PASSWORD).await;
    assert_eq!(login.json()["organization"]["name"], "Acme");
}

both_backends!(a_person_in_several_organizations_chooses_one_at_sign_in);
async fn a_person_in_several_organizations_chooses_one_at_sign_in(app: TestApp) {
    let acme = app.signup("Acme", "ann@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let token = app.invite(&other, "ann@acme.example", "manager").await;
    assert_eq!(app.accept(&token, PASSWORD).await.status, 200);

    let unchosen = app.login("ann@acme.example", PASSWORD).await;
    let chosen = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": "ann@acme.example", "password": PASSWORD, "organization_id": other.org_id}),
        )
        .await;
    let wrong_password = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": "ann@acme.example", "password": "not her password", "organization_id": other.org_id}),
        )
        .await;

    let problem = unchosen.assert_problem(422, "organization_required");
    let mut offered: Vec<(String, String)> = problem["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["id"].as_str().unwrap().to_owned(),
                o["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    offered.sort();
    let mut expected = vec![
        (acme.org_id.clone(), "owner".to_owned()),
        (other.org_id.clone(), "manager".to_owned()),
    ];
    expected.sort();
    assert_eq!(offered, expected);
    assert_eq!(chosen.status, 200, "{}", chosen.text);
    assert_eq!(chosen.json()["organization"]["id"], other.org_id.as_str());
    assert_eq!(chosen.json()["user"]["role"], "manager");
    wrong_password.assert_problem(401, "invalid_credentials");
}

both_backends!(signing_up_again_with_the_accounts_password_adds_an_organization);
async fn signing_up_again_with_the_accounts_password_adds_an_organization(app: TestApp) {
    let first = app.signup("Acme", "ann@acme.example").await;

    let second = app
        .post_json(
            "/v1/auth/signup",
            &json!({"organization_name": "Ann's side business", "name": "Ann", "email": "ann@acme.example", "password": PASSWORD}),
        )
        .await;

    assert_eq!(second.status, 201, "{}", second.text);
    let second = second.json();
    assert_ne!(second["organization"]["id"], first.org_id.as_str());
    app.login("ann@acme.example", PASSWORD)
        .await
        .assert_problem(422, "organization_required");
}

both_backends!(an_invitation_works_once_and_not_when_revoked_or_expired);
async fn an_invitation_works_once_and_not_when_revoked_or_expired(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let used = app.invite(&owner, "a@acme.example", "sales").await;
    assert_eq!(app.accept(&used, PASSWORD).await.status, 200);
    let revoked = app.invite(&owner, "b@acme.example", "sales").await;
    let revoked_id = app
        .get_as("/v1/invitations", &owner.access_token)
        .await
        .json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["email"] == "b@acme.example")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.delete_as(
            &format!("/v1/invitations/{revoked_id}"),
            &owner.access_token
        )
        .await
        .status,
        204
    );
    let expired = app.invite(&owner, "c@acme.example", "sales").await;
    app.execute_sql(
        "update invitations set expires_at = '2020-01-01T00:00:00Z' where lower(email) = 'c@acme.example'",
    )
    .await;
    let replaced = app.invite(&owner, "d@acme.example", "sales").await;
    let replacement = app.invite(&owner, "d@acme.example", "viewer").await;

    for token in [
        &used,
        &revoked,
        &expired,
        &replaced,
        &"rin_never-issued".to_owned(),
    ] {
        app.accept(token, PASSWORD)
            .await
            .assert_problem(404, "invitation_invalid");
    }
    let accepted = app.accept(&replacement, PASSWORD).await;
    assert_eq!(accepted.json()["user"]["role"], "viewer");
    let statuses: Vec<(String, String)> = app
        .get_as("/v1/invitations", &owner.access_token)
        .await
        .json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["email"].as_str().unwrap().to_owned(),
                i["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("a@acme.example".into(), "accepted".into()),
            ("b@acme.example".into(), "revoked".into()),
            ("c@acme.example".into(), "expired".into()),
            ("d@acme.example".into(), "revoked".into()),
            ("d@acme.example".into(), "accepted".into()),
        ]
    );
}

both_backends!(a_new_person_joins_with_a_password_of_their_own_choosing);
async fn a_new_person_joins_with_a_password_of_their_own_choosing(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = app.invite(&owner, "li.na@acme.example", "support").await;

    let weak = app.accept(&token, "short").await;
    let accepted = app
        .post_json(
            &format!("/v1/invitations/{token}/accept"),
            &json!({"password": "李娜的新密码很长很长", "name": "李娜"}),
        )
        .await;

    let problem = weak.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "password");
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    let member = accepted.json();
    assert_eq!(member["user"]["name"], "李娜");
    assert_eq!(member["user"]["role"], "support");
    assert_eq!(
        app.login("li.na@acme.example", "李娜的新密码很长很长")
            .await
            .status,
        200
    );
    let invited_again = app
        .post_as(
            "/v1/invitations",
            &owner.access_token,
            &json!({"email": "LI.NA@acme.example", "role": "sales"}),
        )
        .await;
    invited_again.assert_problem(409, "conflict");
}

both_backends!(a_password_change_ends_the_persons_other_sessions_everywhere);
async fn a_password_change_ends_the_persons_other_sessions_everywhere(app: TestApp) {
    let acme = app.signup("Acme", "ann@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    let token = app.invite(&other, "ann@acme.example", "sales").await;
    let in_other = app.accept(&token, PASSWORD).await.json();
    let in_other = in_other["access_token"].as_str().unwrap().to_owned();

    let changed = app
        .patch_as(
            "/v1/me",
            &acme.access_token,
            &json!({"current_password": PASSWORD, "new_password": "another long passphrase"}),
        )
        .await;

    assert_eq!(changed.status, 200, "{}", changed.text);
    app.get_as("/v1/me", &in_other)
        .await
        .assert_problem(401, "unauthenticated");
    assert_eq!(app.get_as("/v1/me", &acme.access_token).await.status, 200);
    let login = app
        .post_json(
            "/v1/auth/login",
            &json!({"email": "ann@acme.example", "password": "another long passphrase", "organization_id": other.org_id}),
        )
        .await;
    assert_eq!(login.status, 200, "one password for every organization");
}

both_backends!(users_are_no_longer_created_with_a_password);
async fn users_are_no_longer_created_with_a_password(app: TestApp) {
    let owner: Session = app.signup("Acme", "owner@acme.example").await;

    let response = app
        .post_as(
            "/v1/users",
            &owner.access_token,
            &json!({"email": "x@acme.example", "name": "X", "role": "sales", "password": PASSWORD}),
        )
        .await;

    let problem = response.assert_problem(405, "method_not_allowed");
    assert!(problem["detail"].as_str().is_some());
    assert_eq!(response.header("allow"), Some("GET, HEAD"));
}

both_databases!(users_made_before_identities_keep_their_sign_in);
async fn users_made_before_identities_keep_their_sign_in(database: TestDatabase) {
    // A user written by the schema before the identities migration (version 5).
    use rapport_domain::Store;
    let url = rapport_storage::DatabaseUrl::parse(database.url()).unwrap();
    let store = rapport_storage::connect(&url).await.unwrap();
    store.migrate_to(5).await.unwrap();
    store.close().await;
    let hash = rapport_auth::password::hash(PASSWORD).unwrap();
    let (org, user) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let at = "2026-01-01T00:00:00Z";
    let (org_value, user_value, active) = match database.backend() {
        Backend::Sqlite => (
            format!("x'{}'", org.simple()),
            format!("x'{}'", user.simple()),
            "1",
        ),
        Backend::Postgres => (format!("'{org}'"), format!("'{user}'"), "true"),
    };
    database
        .execute(&format!(
            "insert into organizations (id, name, settings, version, created_at, updated_at) \
             values ({org_value}, 'Old', '{{}}', 1, '{at}', '{at}'); \
             insert into users (id, org_id, email, name, role, active, password_hash, version, \
             created_at, updated_at) values ({user_value}, {org_value}, 'Old.Timer@acme.example', \
             'Old', 'owner', {active}, '{hash}', 1, '{at}', '{at}');"
        ))
        .await;

    let app = TestApp::spawn_on(database, |_| {}).await;
    let login = app.login("old.timer@acme.example", PASSWORD).await;

    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.json()["user"]["id"], user.to_string());
    assert_eq!(login.json()["user"]["email"], "Old.Timer@acme.example");
    assert_eq!(login.json()["organization"]["id"], org.to_string());
}
