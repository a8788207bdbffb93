//! Organizations, sessions, the signed-in user, users, teams, API keys, settings, the audit log.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};

fn audit_actions(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect()
}

// ---- sign-up and sign-in ------------------------------------------------------------------

both_backends!(signup_creates_an_organization_with_its_owner_and_signs_in);
async fn signup_creates_an_organization_with_its_owner_and_signs_in(app: TestApp) {
    let body = json!({"organization_name": "Acme", "name": "王安", "email": "wang@acme.example", "password": PASSWORD});

    let response = app.post_json("/v1/auth/signup", &body).await;

    assert_eq!(response.status, 201, "{}", response.text);
    assert_eq!(response.header("location"), Some("/v1/organization"));
    let tokens = response.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(
        tokens["refresh_token"]
            .as_str()
            .unwrap()
            .starts_with("rrt_")
    );
    assert_eq!(tokens["user"]["role"], "owner");
    assert_eq!(tokens["user"]["name"], "王安");
    assert_eq!(tokens["organization"]["name"], "Acme");
    assert_eq!(
        tokens["organization"]["settings"]["record_visibility"]["contact"],
        "all"
    );
    let me = app
        .get_as("/v1/me", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["email"], "wang@acme.example");
}

both_backends!(signup_can_be_closed, |config: &mut rapport::Config| {
    config.signup = rapport::config::SignupPolicy::Closed;
});
async fn signup_can_be_closed(app: TestApp) {
    let body = json!({"organization_name": "Acme", "name": "A", "email": "a@acme.example", "password": PASSWORD});

    let response = app.post_json("/v1/auth/signup", &body).await;

    response.assert_problem(403, "signup_closed");
}

both_backends!(an_email_with_an_account_signs_up_only_with_its_password_ignoring_case);
async fn an_email_with_an_account_signs_up_only_with_its_password_ignoring_case(app: TestApp) {
    app.signup("Acme", "ann@acme.example").await;
    let other_password = json!({"organization_name": "Other", "name": "A", "email": "ANN@Acme.Example", "password": "not the account's password"});

    let response = app.post_json("/v1/auth/signup", &other_password).await;

    let problem = response.assert_problem(409, "account_exists");
    assert!(problem.get("existing_id").is_none());
    // The failed sign-up left no organization behind: the email still signs in to Acme only.
    let session = app.session("ann@acme.example").await;
    let organization = app
        .get_as("/v1/organization", &session.access_token)
        .await
        .json();
    assert_eq!(organization["name"], "Acme");
}

both_backends!(signup_reports_every_invalid_field);
async fn signup_reports_every_invalid_field(app: TestApp) {
    let body = json!({"organization_name": "  ", "name": "A", "email": "not-an-email", "password": "short"});

    let response = app.post_json("/v1/auth/signup", &body).await;

    let problem = response.assert_problem(422, "validation_failed");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    // Every invalid field, in the order of their names.
    assert_eq!(fields, ["email", "organization_name", "password"]);
}

both_backends!(passwords_over_1024_bytes_are_refused);
async fn passwords_over_1024_bytes_are_refused(app: TestApp) {
    let body = json!({"organization_name": "Acme", "name": "A", "email": "a@acme.example", "password": "x".repeat(1025)});

    let response = app.post_json("/v1/auth/signup", &body).await;

    let problem = response.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "password");
}

both_backends!(login_answers_an_unknown_email_and_a_wrong_password_alike);
async fn login_answers_an_unknown_email_and_a_wrong_password_alike(app: TestApp) {
    app.signup("Acme", "ann@acme.example").await;

    let unknown = app.login("nobody@acme.example", PASSWORD).await;
    let wrong = app.login("ann@acme.example", "wrong password!").await;
    let right = app.login("ANN@acme.example", PASSWORD).await;

    let unknown = unknown.assert_problem(401, "invalid_credentials");
    let wrong = wrong.assert_problem(401, "invalid_credentials");
    assert_eq!(unknown["detail"], wrong["detail"]);
    assert_eq!(right.status, 200, "emails compare case-insensitively");
}

both_backends!(ten_failed_logins_throttle_the_email_whatever_the_password);
async fn ten_failed_logins_throttle_the_email_whatever_the_password(app: TestApp) {
    app.signup("Acme", "ann@acme.example").await;
    app.signup("Beta", "bob@beta.example").await;
    for _ in 0..10 {
        app.login("ann@acme.example", "wrong password!")
            .await
            .assert_problem(401, "invalid_credentials");
    }

    let throttled = app.login("ann@acme.example", PASSWORD).await;
    let other = app.login("bob@beta.example", PASSWORD).await;

    throttled.assert_problem(429, "login_throttled");
    let retry_after: i64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    assert_eq!(other.status, 200, "another email is not throttled");
}

both_backends!(a_successful_login_forgets_earlier_failures);
async fn a_successful_login_forgets_earlier_failures(app: TestApp) {
    app.signup("Acme", "ann@acme.example").await;
    for _ in 0..9 {
        app.login("ann@acme.example", "wrong password!").await;
    }
    app.session("ann@acme.example").await;

    for _ in 0..9 {
        app.login("ann@acme.example", "wrong password!").await;
    }
    let response = app.login("ann@acme.example", PASSWORD).await;

    assert_eq!(response.status, 200, "{}", response.text);
}

// ---- sessions -----------------------------------------------------------------------------

both_backends!(refresh_rotates_the_token_and_the_new_one_works);
async fn refresh_rotates_the_token_and_the_new_one_works(app: TestApp) {
    let session = app.signup("Acme", "ann@acme.example").await;

    let response = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": session.refresh_token}),
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    let tokens = response.json();
    let next_refresh = tokens["refresh_token"].as_str().unwrap();
    assert_ne!(next_refresh, session.refresh_token);
    assert_eq!(tokens["user"]["id"], session.user_id.as_str());
    let me = app
        .get_as("/v1/me", tokens["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status, 200);
    let again = app
        .post_json("/v1/auth/refresh", &json!({"refresh_token": next_refresh}))
        .await;
    assert_eq!(again.status, 200, "a rotated-in token works once");
}

both_backends!(logout_ends_that_session_only);
async fn logout_ends_that_session_only(app: TestApp) {
    let first = app.signup("Acme", "ann@acme.example").await;
    let second = app.session("ann@acme.example").await;

    let response = app
        .post_json(
            "/v1/auth/logout",
            &json!({"refresh_token": first.refresh_token}),
        )
        .await;

    assert_eq!(response.status, 204);
    app.get_as("/v1/me", &first.access_token)
        .await
        .assert_problem(401, "unauthenticated");
    app.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": first.refresh_token}),
    )
    .await
    .assert_problem(401, "unauthenticated");
    assert_eq!(app.get_as("/v1/me", &second.access_token).await.status, 200);
    let again = app
        .post_json(
            "/v1/auth/logout",
            &json!({"refresh_token": first.refresh_token}),
        )
        .await;
    assert_eq!(again.status, 204, "logging out twice is harmless");
}

// ---- me -----------------------------------------------------------------------------------

both_backends!(i_can_change_my_name_locale_and_time_zone);
async fn i_can_change_my_name_locale_and_time_zone(app: TestApp) {
    let session = app.signup("Acme", "ann@acme.example").await;

    let response = app
        .patch_as(
            "/v1/me",
            &session.access_token,
            &json!({"name": "Ann Lee", "locale": "zh-CN", "timezone": "Asia/Shanghai"}),
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    let me = response.json();
    assert_eq!(
        (
            me["name"].as_str(),
            me["locale"].as_str(),
            me["timezone"].as_str()
        ),
        (Some("Ann Lee"), Some("zh-CN"), Some("Asia/Shanghai"))
    );
    assert_eq!(me["version"], 2);
    assert_eq!(response.header("etag"), Some("\"2\""));
    let cleared = app
        .patch_as("/v1/me", &session.access_token, &json!({"locale": null}))
        .await
        .json();
    assert_eq!(cleared["locale"], Value::Null);
    assert_eq!(cleared["timezone"], "Asia/Shanghai", "absent fields stay");
    let bad = app
        .patch_as(
            "/v1/me",
            &session.access_token,
            &json!({"locale": "english", "timezone": "../etc"}),
        )
        .await;
    let problem = bad.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"].as_array().unwrap().len(), 2);
}

both_backends!(changing_my_password_needs_the_current_one_and_signs_out_other_sessions);
async fn changing_my_password_needs_the_current_one_and_signs_out_other_sessions(app: TestApp) {
    let session = app.signup("Acme", "ann@acme.example").await;
    let other = app.session("ann@acme.example").await;
    let new_password = "a brand new passphrase";

    let without = app
        .patch_as(
            "/v1/me",
            &session.access_token,
            &json!({"new_password": new_password}),
        )
        .await;
    let wrong = app
        .patch_as(
            "/v1/me",
            &session.access_token,
            &json!({"current_password": "not it at all", "new_password": new_password}),
        )
        .await;
    let right = app
        .patch_as(
            "/v1/me",
            &session.access_token,
            &json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;

    without.assert_problem(422, "validation_failed");
    wrong.assert_problem(401, "invalid_credentials");
    assert_eq!(right.status, 200, "{}", right.text);
    assert_eq!(
        app.get_as("/v1/me", &session.access_token).await.status,
        200,
        "this session goes on"
    );
    app.get_as("/v1/me", &other.access_token)
        .await
        .assert_problem(401, "unauthenticated");
    app.login("ann@acme.example", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    assert_eq!(
        app.login("ann@acme.example", new_password).await.status,
        200
    );
}

// ---- users --------------------------------------------------------------------------------

both_backends!(owners_add_users_and_list_them_by_page_and_filter);
async fn owners_add_users_and_list_them_by_page_and_filter(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    app.member(&owner, "s1@acme.example", "sales").await;
    app.member(&owner, "s2@acme.example", "sales").await;
    app.member(&owner, "v1@acme.example", "viewer").await;

    let sales = app
        .get_as("/v1/users?role=sales", &owner.access_token)
        .await
        .json();
    let first = app
        .get_as("/v1/users?limit=2&include=total", &owner.access_token)
        .await
        .json();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app
        .get_as(
            &format!("/v1/users?limit=2&cursor={cursor}"),
            &owner.access_token,
        )
        .await
        .json();

    assert_eq!(sales["data"].as_array().unwrap().len(), 2);
    assert_eq!(first["total"], 4);
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    assert_eq!(second["data"].as_array().unwrap().len(), 2);
    assert_eq!(second["next_cursor"], Value::Null);
    assert!(second.get("total").is_none());
    let emails: Vec<&str> = first["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["data"].as_array().unwrap())
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [
            "owner@acme.example",
            "s1@acme.example",
            "s2@acme.example",
            "v1@acme.example"
        ]
    );
}

both_backends!(list_parameters_are_checked);
async fn list_parameters_are_checked(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
        ("role=emperor", "role"),
        ("rolle=sales", "rolle"),
        ("include=everything", "include"),
    ] {
        let response = app
            .get_as(&format!("/v1/users?{query}"), &owner.access_token)
            .await;
        let problem = response.assert_problem(422, "validation_failed");
        assert_eq!(problem["errors"][0]["field"], field, "{query}");
    }
    let teams_cursor = app
        .get_as("/v1/audit-log?limit=1", &owner.access_token)
        .await
        .json()["next_cursor"]
        .clone();
    if let Some(cursor) = teams_cursor.as_str() {
        let response = app
            .get_as(&format!("/v1/users?cursor={cursor}"), &owner.access_token)
            .await;
        response.assert_problem(422, "validation_failed");
    }
}

both_backends!(only_owners_and_admins_manage_users);
async fn only_owners_and_admins_manage_users(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let admin = app.member(&owner, "admin@acme.example", "admin").await;
    let manager = app.member(&owner, "manager@acme.example", "manager").await;

    let by_admin = app.get_as("/v1/users", &admin.access_token).await;
    let by_manager = app.get_as("/v1/users", &manager.access_token).await;
    let create_by_manager = app
        .post_as(
            "/v1/invitations",
            &manager.access_token,
            &json!({"email": "x@acme.example", "name": "X", "role": "sales"}),
        )
        .await;

    assert_eq!(by_admin.status, 200);
    by_manager.assert_problem(403, "forbidden");
    create_by_manager.assert_problem(403, "forbidden");
}

both_backends!(only_owners_make_or_change_owners);
async fn only_owners_make_or_change_owners(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let admin = app.member(&owner, "admin@acme.example", "admin").await;

    let create_owner = app
        .post_as(
            "/v1/invitations",
            &admin.access_token,
            &json!({"email": "o2@acme.example", "name": "O", "role": "owner"}),
        )
        .await;
    let demote_owner = app
        .patch_as(
            &format!("/v1/users/{}", owner.user_id),
            &admin.access_token,
            &json!({"role": "viewer"}),
        )
        .await;
    let promote_self = app
        .patch_as(
            &format!("/v1/users/{}", admin.user_id),
            &admin.access_token,
            &json!({"role": "owner"}),
        )
        .await;

    create_owner.assert_problem(403, "forbidden");
    demote_owner.assert_problem(403, "forbidden");
    promote_self.assert_problem(403, "forbidden");
}

both_backends!(deactivating_a_user_revokes_their_sessions_and_keys_at_once);
async fn deactivating_a_user_revokes_their_sessions_and_keys_at_once(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let (_, key) = app.api_key(&sales, &["*"]).await;
    assert_eq!(app.get_as("/v1/me", &key).await.status, 200);

    let response = app
        .patch_as(
            &format!("/v1/users/{}", sales.user_id),
            &owner.access_token,
            &json!({"active": false}),
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json()["active"], false);
    app.get_as("/v1/me", &sales.access_token)
        .await
        .assert_problem(401, "unauthenticated");
    app.get_as("/v1/me", &key)
        .await
        .assert_problem(401, "unauthenticated");
    app.post_json(
        "/v1/auth/refresh",
        &json!({"refresh_token": sales.refresh_token}),
    )
    .await
    .assert_problem(401, "unauthenticated");
    app.login("sales@acme.example", PASSWORD)
        .await
        .assert_problem(401, "invalid_credentials");
    // Reactivated, they sign in again; the old key stays revoked.
    app.patch_as(
        &format!("/v1/users/{}", sales.user_id),
        &owner.access_token,
        &json!({"active": true}),
    )
    .await;
    assert_eq!(app.login("sales@acme.example", PASSWORD).await.status, 200);
    app.get_as("/v1/me", &key)
        .await
        .assert_problem(401, "unauthenticated");
}

both_backends!(the_last_active_owner_cannot_be_demoted_or_deactivated);
async fn the_last_active_owner_cannot_be_demoted_or_deactivated(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let me = format!("/v1/users/{}", owner.user_id);

    app.patch_as(&me, &owner.access_token, &json!({"role": "admin"}))
        .await
        .assert_problem(409, "last_owner");
    app.patch_as(&me, &owner.access_token, &json!({"active": false}))
        .await
        .assert_problem(409, "last_owner");

    let second = app.member(&owner, "second@acme.example", "owner").await;
    let demoted = app
        .patch_as(&me, &owner.access_token, &json!({"role": "admin"}))
        .await;
    assert_eq!(demoted.status, 200, "{}", demoted.text);
    app.patch_as(
        &format!("/v1/users/{}", second.user_id),
        &second.access_token,
        &json!({"active": false}),
    )
    .await
    .assert_problem(409, "last_owner");
}

both_backends!(a_stale_if_match_is_412_and_changes_nothing);
async fn a_stale_if_match_is_412_and_changes_nothing(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let path = format!("/v1/users/{}", sales.user_id);
    let current = app.get_as(&path, &owner.access_token).await;
    let etag = current.header("etag").unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", current.json()["version"]));

    let stale = app
        .send(
            app.authed(Method::PATCH, &path, &owner.access_token)
                .header("if-match", "\"99\"")
                .json(&json!({"name": "Changed"})),
        )
        .await;
    let malformed = app
        .send(
            app.authed(Method::PATCH, &path, &owner.access_token)
                .header("if-match", "version 1")
                .json(&json!({"name": "Changed"})),
        )
        .await;
    let fresh = app
        .send(
            app.authed(Method::PATCH, &path, &owner.access_token)
                .header("if-match", etag.as_str())
                .json(&json!({"name": "Changed"})),
        )
        .await;

    stale.assert_problem(412, "version_mismatch");
    let problem = malformed.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "If-Match");
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    assert_eq!(fresh.json()["name"], "Changed");
    let reused = app
        .send(
            app.authed(Method::PATCH, &path, &owner.access_token)
                .header("if-match", etag.as_str())
                .json(&json!({"name": "Again"})),
        )
        .await;
    reused.assert_problem(412, "version_mismatch");
    assert_eq!(
        app.get_as(&path, &owner.access_token).await.json()["name"],
        "Changed"
    );
}

// ---- teams and transfer -------------------------------------------------------------------

both_backends!(teams_have_unique_names_members_and_a_manager);
async fn teams_have_unique_names_members_and_a_manager(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let manager = app.member(&owner, "manager@acme.example", "manager").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;

    let created = app
        .post_as(
            "/v1/teams",
            &owner.access_token,
            &json!({"name": "East", "manager_id": manager.user_id}),
        )
        .await;
    let duplicate = app
        .post_as("/v1/teams", &owner.access_token, &json!({"name": "EAST"}))
        .await;
    let by_sales = app
        .post_as("/v1/teams", &sales.access_token, &json!({"name": "West"}))
        .await;

    assert_eq!(created.status, 201, "{}", created.text);
    let team = created.json();
    let team_id = team["id"].as_str().unwrap();
    assert_eq!(
        created.header("location").unwrap(),
        format!("/v1/teams/{team_id}")
    );
    duplicate.assert_problem(409, "conflict");
    by_sales.assert_problem(403, "forbidden");
    assert_eq!(
        app.get_as("/v1/teams", &sales.access_token).await.status,
        200,
        "everyone reads teams"
    );

    let joined = app
        .patch_as(
            &format!("/v1/users/{}", sales.user_id),
            &owner.access_token,
            &json!({"team_id": team_id}),
        )
        .await;
    assert_eq!(joined.json()["team_id"], team_id);
    let members = app
        .get_as(&format!("/v1/users?team_id={team_id}"), &owner.access_token)
        .await
        .json();
    assert_eq!(members["data"].as_array().unwrap().len(), 1);

    let bad_team = app
        .patch_as(
            &format!("/v1/users/{}", sales.user_id),
            &owner.access_token,
            &json!({"team_id": uuid::Uuid::now_v7()}),
        )
        .await;
    assert_eq!(
        bad_team.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "team_id"
    );

    let deleted = app
        .delete_as(&format!("/v1/teams/{team_id}"), &owner.access_token)
        .await;
    assert_eq!(deleted.status, 204);
    let user = app
        .get_as(&format!("/v1/users/{}", sales.user_id), &owner.access_token)
        .await
        .json();
    assert_eq!(
        user["team_id"],
        Value::Null,
        "members lose the deleted team"
    );
    app.get_as(&format!("/v1/teams/{team_id}"), &owner.access_token)
        .await
        .assert_problem(404, "not_found");
}

both_backends!(a_leaving_users_teams_are_handed_over_in_one_transfer);
async fn a_leaving_users_teams_are_handed_over_in_one_transfer(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let leaving = app.member(&owner, "leaving@acme.example", "manager").await;
    let successor = app
        .member(&owner, "successor@acme.example", "manager")
        .await;
    for name in ["East", "West"] {
        app.post_as(
            "/v1/teams",
            &owner.access_token,
            &json!({"name": name, "manager_id": leaving.user_id}),
        )
        .await;
    }
    let path = format!("/v1/users/{}/transfer", leaving.user_id);

    let response = app
        .post_as(
            &path,
            &owner.access_token,
            &json!({"to_user_id": successor.user_id}),
        )
        .await;

    assert_eq!(response.status, 200, "{}", response.text);
    let body = response.json();
    assert_eq!(body["transferred"]["team"], 2);
    assert_eq!(body["to_user_id"], successor.user_id.as_str());
    let teams = app.get_as("/v1/teams", &owner.access_token).await.json();
    assert!(
        teams["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["manager_id"] == successor.user_id.as_str())
    );

    let plural = app
        .post_as(
            &path,
            &owner.access_token,
            &json!({"to_user_id": successor.user_id, "include": ["teams"]}),
        )
        .await;
    assert_eq!(
        plural.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "include[0]"
    );
    let unowned = app
        .post_as(
            &path,
            &owner.access_token,
            &json!({"to_user_id": successor.user_id, "include": ["webhook"]}),
        )
        .await;
    unowned.assert_problem(422, "validation_failed");
    app.patch_as(
        &format!("/v1/users/{}", successor.user_id),
        &owner.access_token,
        &json!({"active": false}),
    )
    .await;
    let to_inactive = app
        .post_as(
            &path,
            &owner.access_token,
            &json!({"to_user_id": successor.user_id}),
        )
        .await;
    assert_eq!(
        to_inactive.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "to_user_id"
    );
}

// ---- API keys -----------------------------------------------------------------------------

both_backends!(an_api_key_is_shown_once_and_works_as_a_bearer_token);
async fn an_api_key_is_shown_once_and_works_as_a_bearer_token(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;

    let created = app
        .post_as(
            "/v1/api-keys",
            &owner.access_token,
            &json!({"name": "ERP sync", "scopes": ["user:read", "team:write"]}),
        )
        .await;

    assert_eq!(created.status, 201, "{}", created.text);
    let key = created.json();
    let secret = key["secret"].as_str().unwrap();
    assert!(secret.starts_with("rpk_"));
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    assert_eq!(key["scopes"], json!(["user:read", "team:write"]));
    assert_eq!(key["last_used_at"], Value::Null);
    let id = key["id"].as_str().unwrap();
    let read = app
        .get_as(&format!("/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert!(
        read.json().get("secret").is_none(),
        "the secret is never shown again"
    );
    assert!(!read.text.contains(secret));

    assert_eq!(app.get_as("/v1/users", secret).await.status, 200);
    let used = app
        .get_as(&format!("/v1/api-keys/{id}"), &owner.access_token)
        .await
        .json();
    assert!(used["last_used_at"].is_string(), "{used}");

    let revoked = app
        .delete_as(&format!("/v1/api-keys/{id}"), &owner.access_token)
        .await;
    assert_eq!(revoked.status, 204);
    app.get_as("/v1/users", secret)
        .await
        .assert_problem(401, "unauthenticated");
    let list = app.get_as("/v1/api-keys", &owner.access_token).await.json();
    assert_eq!(list["data"].as_array().unwrap().len(), 0);
}

both_backends!(key_scopes_are_checked_when_the_key_is_made);
async fn key_scopes_are_checked_when_the_key_is_made(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;

    let plural = app
        .post_as(
            "/v1/api-keys",
            &owner.access_token,
            &json!({"name": "k", "scopes": ["contact:read", "contacts:write"]}),
        )
        .await;
    let empty = app
        .post_as(
            "/v1/api-keys",
            &owner.access_token,
            &json!({"name": "k", "scopes": []}),
        )
        .await;
    let past = app
        .post_as(
            "/v1/api-keys",
            &owner.access_token,
            &json!({"name": "k", "scopes": ["*"], "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;

    let problem = plural.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "scopes[1]");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("use `contact`")
    );
    empty.assert_problem(422, "validation_failed");
    assert_eq!(
        past.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "expires_at"
    );
}

both_backends!(a_key_cannot_mint_a_key_wider_than_itself);
async fn a_key_cannot_mint_a_key_wider_than_itself(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (_, narrow) = app.api_key(&owner, &["api_key:write", "user:read"]).await;

    let wider = app
        .post_as(
            "/v1/api-keys",
            &narrow,
            &json!({"name": "k", "scopes": ["*"]}),
        )
        .await;
    let same = app
        .post_as(
            "/v1/api-keys",
            &narrow,
            &json!({"name": "k", "scopes": ["user:read"]}),
        )
        .await;

    wider.assert_problem(403, "forbidden");
    assert_eq!(same.status, 201, "{}", same.text);
}

both_backends!(users_see_their_own_keys_and_admins_see_all);
async fn users_see_their_own_keys_and_admins_see_all(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let (owner_key_id, _) = app.api_key(&owner, &["read"]).await;
    app.api_key(&sales, &["read"]).await;

    let by_sales = app.get_as("/v1/api-keys", &sales.access_token).await.json();
    let by_owner = app.get_as("/v1/api-keys", &owner.access_token).await.json();
    let revoke_others = app
        .delete_as(&format!("/v1/api-keys/{owner_key_id}"), &sales.access_token)
        .await;

    assert_eq!(by_sales["data"].as_array().unwrap().len(), 1);
    assert_eq!(by_sales["data"][0]["user_id"], sales.user_id.as_str());
    assert_eq!(by_owner["data"].as_array().unwrap().len(), 2);
    revoke_others.assert_problem(404, "not_found");
}

// ---- organization -------------------------------------------------------------------------

both_backends!(record_visibility_is_merged_per_object);
async fn record_visibility_is_merged_per_object(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;

    let first = app
        .patch_as(
            "/v1/organization",
            &owner.access_token,
            &json!({"settings": {"record_visibility": {"contact": "own"}}}),
        )
        .await;
    let second = app
        .patch_as("/v1/organization", &owner.access_token, &json!({"settings": {"record_visibility": {"deal": "team"}, "default_phone_region": "cn"}}))
        .await;

    assert_eq!(first.status, 200, "{}", first.text);
    let settings = &second.json()["settings"];
    assert_eq!(settings["record_visibility"]["contact"], "own");
    assert_eq!(settings["record_visibility"]["deal"], "team");
    assert_eq!(settings["record_visibility"]["company"], "all");
    assert_eq!(settings["default_phone_region"], "CN");
    let read = app.get_as("/v1/organization", &sales.access_token).await;
    assert_eq!(read.json()["settings"]["record_visibility"]["deal"], "team");
    app.patch_as(
        "/v1/organization",
        &sales.access_token,
        &json!({"name": "Mine"}),
    )
    .await
    .assert_problem(403, "forbidden");
    let plural = app
        .patch_as(
            "/v1/organization",
            &owner.access_token,
            &json!({"settings": {"record_visibility": {"contacts": "own"}}}),
        )
        .await;
    plural.assert_problem(422, "validation_failed");
    let unowned = app
        .patch_as(
            "/v1/organization",
            &owner.access_token,
            &json!({"settings": {"record_visibility": {"webhook": "own"}}}),
        )
        .await;
    assert_eq!(
        unowned.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "settings.record_visibility.webhook"
    );
    let bad_value = app
        .patch_as(
            "/v1/organization",
            &owner.access_token,
            &json!({"settings": {"record_visibility": {"contact": "nobody"}}}),
        )
        .await;
    bad_value.assert_problem(422, "validation_failed");
}

// ---- audit log ----------------------------------------------------------------------------

both_backends!(the_audit_log_records_security_events_with_actor_and_ip);
async fn the_audit_log_records_security_events_with_actor_and_ip(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    app.login("sales@acme.example", "wrong password!").await;
    let (key_id, _) = app.api_key(&owner, &["read"]).await;
    app.delete_as(&format!("/v1/api-keys/{key_id}"), &owner.access_token)
        .await;
    let user_path = format!("/v1/users/{}", sales.user_id);
    app.patch_as(&user_path, &owner.access_token, &json!({"role": "support"}))
        .await;
    app.patch_as(&user_path, &owner.access_token, &json!({"active": false}))
        .await;

    let log = app.get_as("/v1/audit-log", &owner.access_token).await;

    assert_eq!(log.status, 200, "{}", log.text);
    let body = log.json();
    let actions = audit_actions(&body);
    for expected in [
        "auth.signup",
        "user.created",
        "auth.login",
        "auth.login_failed",
        "api_key.created",
        "api_key.revoked",
        "user.role_changed",
        "user.deactivated",
    ] {
        assert!(
            actions.contains(&expected.to_owned()),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(actions[0], "user.deactivated", "newest first");
    let role_change = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "user.role_changed")
        .unwrap();
    assert_eq!(role_change["actor_id"], owner.user_id.as_str());
    assert_eq!(role_change["target_id"], sales.user_id.as_str());
    assert_eq!(
        role_change["details"],
        json!({"from": "sales", "to": "support"})
    );
    assert_eq!(role_change["ip"], "127.0.0.1");

    let failed = app
        .get_as(
            "/v1/audit-log?action=auth.login_failed",
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(audit_actions(&failed), ["auth.login_failed"]);
    assert_eq!(failed["data"][0]["actor_id"], sales.user_id.as_str());
    let by_sales = app
        .get_as(
            &format!("/v1/audit-log?actor_id={}", sales.user_id),
            &owner.access_token,
        )
        .await
        .json();
    assert!(
        by_sales["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor_id"] == sales.user_id.as_str())
    );
    let paged = app
        .get_as("/v1/audit-log?limit=2", &owner.access_token)
        .await
        .json();
    let next = app
        .get_as(
            &format!(
                "/v1/audit-log?limit=2&cursor={}",
                paged["next_cursor"].as_str().unwrap()
            ),
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(audit_actions(&paged)[..], actions[..2]);
    assert_eq!(audit_actions(&next)[..], actions[2..4]);
    let future = app
        .get_as(
            "/v1/audit-log?after=2999-01-01T00:00:00Z",
            &owner.access_token,
        )
        .await
        .json();
    assert_eq!(future["data"].as_array().unwrap().len(), 0);
    app.get_as("/v1/audit-log?action=made_up", &owner.access_token)
        .await
        .assert_problem(422, "validation_failed");
    let viewer = app.member(&owner, "viewer@acme.example", "viewer").await;
    app.get_as("/v1/audit-log", &viewer.access_token)
        .await
        .assert_problem(403, "forbidden");
}
