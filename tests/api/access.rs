//! Attacks and mistakes at the door: forged, expired and misaddressed tokens, malformed
//! headers, revoked and expired keys, missing scopes and roles, other organizations' ids,
//! replayed refresh tokens, and the rate limit.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Session, TestApp};

/// Claims like the app's, for forging.
fn claims(session: &Session, exp_offset_seconds: i64, audience: &str) -> Value {
    let now = Utc::now().timestamp();
    // The session id is the real one: only the token's own defects should matter.
    let real = jsonwebtoken::dangerous::insecure_decode::<Value>(&session.access_token)
        .unwrap()
        .claims;
    json!({
        "sub": session.user_id, "org": session.org_id, "role": "owner", "sid": real["sid"],
        "iat": now, "exp": now + exp_offset_seconds, "iss": "rapport", "aud": audience,
        "jti": uuid::Uuid::now_v7(),
    })
}

fn sign(claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

both_backends!(a_request_without_a_credential_is_401_with_www_authenticate);
async fn a_request_without_a_credential_is_401_with_www_authenticate(app: TestApp) {
    let response = app.get("/v1/me").await;

    response.assert_problem(401, "unauthenticated");
    assert_eq!(response.header("www-authenticate"), Some("Bearer"));
}

both_backends!(malformed_authorization_headers_are_401_and_the_scheme_is_case_insensitive);
async fn malformed_authorization_headers_are_401_and_the_scheme_is_case_insensitive(app: TestApp) {
    let session = app.signup("Acme", "owner@acme.example").await;

    for header in [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Token abc",
        "Bearer a b",
        "Bearer not.a.jwt",
        "Bearer rpk_made_up",
    ] {
        let response = app
            .send(
                app.request(Method::GET, "/v1/me")
                    .header("authorization", header),
            )
            .await;
        response.assert_problem(401, "unauthenticated");
    }
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = app
            .send(app.request(Method::GET, "/v1/me").header(
                "authorization",
                format!("{scheme} {}", session.access_token),
            ))
            .await;
        assert_eq!(response.status, 200, "{scheme}");
    }
}

both_backends!(a_jwt_with_alg_none_is_refused);
async fn a_jwt_with_alg_none_is_refused(app: TestApp) {
    let session = app.signup("Acme", "owner@acme.example").await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(&session, 900, "rapport-api").to_string());

    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        app.get_as("/v1/me", &token)
            .await
            .assert_problem(401, "unauthenticated");
    }
}

both_backends!(a_jwt_with_a_wrong_signature_is_refused);
async fn a_jwt_with_a_wrong_signature_is_refused(app: TestApp) {
    let session = app.signup("Acme", "owner@acme.example").await;
    let forged = sign(
        &claims(&session, 900, "rapport-api"),
        b"some-other-key-of-at-least-32-bytes!!",
    );
    let mut tampered = session.access_token.clone();
    tampered.pop();
    tampered.push(if session.access_token.ends_with('A') {
        'B'
    } else {
        'A'
    });

    app.get_as("/v1/me", &forged)
        .await
        .assert_problem(401, "unauthenticated");
    app.get_as("/v1/me", &tampered)
        .await
        .assert_problem(401, "unauthenticated");
    // The same claims with the app's key are accepted: only the signature was wrong.
    let genuine = sign(
        &claims(&session, 900, "rapport-api"),
        app.signing_key.as_bytes(),
    );
    assert_eq!(app.get_as("/v1/me", &genuine).await.status, 200);
}

both_backends!(an_expired_jwt_is_refused);
async fn an_expired_jwt_is_refused(app: TestApp) {
    let session = app.signup("Acme", "owner@acme.example").await;
    let expired = sign(
        &claims(&session, -3600, "rapport-api"),
        app.signing_key.as_bytes(),
    );

    let response = app.get_as("/v1/me", &expired).await;

    let problem = response.assert_problem(401, "unauthenticated");
    assert!(problem["detail"].as_str().unwrap().contains("expired"));
}

both_backends!(a_jwt_for_another_audience_is_refused);
async fn a_jwt_for_another_audience_is_refused(app: TestApp) {
    let session = app.signup("Acme", "owner@acme.example").await;
    let elsewhere = sign(
        &claims(&session, 900, "another-api"),
        app.signing_key.as_bytes(),
    );

    app.get_as("/v1/me", &elsewhere)
        .await
        .assert_problem(401, "unauthenticated");
}

both_backends!(the_token_of_a_deactivated_user_is_refused);
async fn the_token_of_a_deactivated_user_is_refused(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    app.patch_as(
        &format!("/v1/users/{}", sales.user_id),
        &owner.access_token,
        &json!({"active": false}),
    )
    .await;

    app.get_as("/v1/me", &sales.access_token)
        .await
        .assert_problem(401, "unauthenticated");
}

both_backends!(revoked_and_expired_api_keys_are_refused);
async fn revoked_and_expired_api_keys_are_refused(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (revoked_id, revoked) = app.api_key(&owner, &["*"]).await;
    let (expired_id, expired) = app.api_key(&owner, &["*"]).await;
    app.delete_as(&format!("/v1/api-keys/{revoked_id}"), &owner.access_token)
        .await;
    let hour_ago = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let id_literal = match app.backend {
        crate::helpers::Backend::Sqlite => format!("x'{}'", expired_id.replace('-', "")),
        crate::helpers::Backend::Postgres => format!("'{expired_id}'"),
    };
    app.execute_sql(&format!(
        "update api_keys set expires_at = '{hour_ago}' where id = {id_literal}"
    ))
    .await;

    app.get_as("/v1/me", &revoked)
        .await
        .assert_problem(401, "unauthenticated");
    let problem = app
        .get_as("/v1/me", &expired)
        .await
        .assert_problem(401, "unauthenticated");
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );
}

both_backends!(a_key_without_the_needed_scope_is_403);
async fn a_key_without_the_needed_scope_is_403(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (_, read_only) = app.api_key(&owner, &["read"]).await;
    let (_, teams_only) = app.api_key(&owner, &["team:read"]).await;

    let write = app
        .post_as("/v1/teams", &read_only, &json!({"name": "East"}))
        .await;
    let other_object = app.get_as("/v1/users", &teams_only).await;
    let allowed = app.get_as("/v1/teams", &teams_only).await;

    let problem = write.assert_problem(403, "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("scopes"));
    other_object.assert_problem(403, "forbidden");
    assert_eq!(allowed.status, 200);
}

both_backends!(a_key_is_limited_by_its_users_role_whatever_its_scopes);
async fn a_key_is_limited_by_its_users_role_whatever_its_scopes(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let viewer = app.member(&owner, "viewer@acme.example", "viewer").await;
    let (_, everything) = app.api_key(&viewer, &["*"]).await;

    app.get_as("/v1/users", &everything)
        .await
        .assert_problem(403, "forbidden");
    app.post_as("/v1/teams", &everything, &json!({"name": "East"}))
        .await
        .assert_problem(403, "forbidden");
}

both_backends!(a_role_without_the_permission_is_403);
async fn a_role_without_the_permission_is_403(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let viewer = app.member(&owner, "viewer@acme.example", "viewer").await;

    let response = app
        .patch_as(
            "/v1/organization",
            &viewer.access_token,
            &json!({"name": "Mine"}),
        )
        .await;

    let problem = response.assert_problem(403, "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("viewer"));
    let organization = app
        .get_as("/v1/organization", &owner.access_token)
        .await
        .json();
    assert_eq!(organization["name"], "Acme");
}

both_backends!(another_organizations_ids_are_404_for_reads_and_writes);
async fn another_organizations_ids_are_404_for_reads_and_writes(app: TestApp) {
    let acme = app.signup("Acme", "owner@acme.example").await;
    let acme_sales = app.member(&acme, "sales@acme.example", "sales").await;
    let (acme_key, _) = app.api_key(&acme, &["read"]).await;
    let team = app
        .post_as("/v1/teams", &acme.access_token, &json!({"name": "East"}))
        .await
        .json();
    let acme_team = team["id"].as_str().unwrap();
    let beta = app.signup("Beta", "owner@beta.example").await;
    let beta_user = app.member(&beta, "sales@beta.example", "sales").await;
    let never = uuid::Uuid::now_v7().to_string();

    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::GET,
            format!("/v1/users/{}", acme_sales.user_id),
            None,
        ),
        (
            Method::PATCH,
            format!("/v1/users/{}", acme_sales.user_id),
            Some(json!({"active": false})),
        ),
        (
            Method::POST,
            format!("/v1/users/{}/transfer", acme_sales.user_id),
            Some(json!({"to_user_id": beta_user.user_id})),
        ),
        (Method::GET, format!("/v1/teams/{acme_team}"), None),
        (
            Method::PATCH,
            format!("/v1/teams/{acme_team}"),
            Some(json!({"name": "Mine"})),
        ),
        (Method::DELETE, format!("/v1/teams/{acme_team}"), None),
        (Method::GET, format!("/v1/api-keys/{acme_key}"), None),
        (Method::DELETE, format!("/v1/api-keys/{acme_key}"), None),
    ];
    for (method, path, body) in cases {
        let mut request = app.authed(method.clone(), &path, &beta.access_token);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let theirs = app.send(request).await;
        let theirs = theirs.assert_problem(404, "not_found");
        // Indistinguishable from an id that never existed.
        let missing_path = path
            .replace(&acme_sales.user_id, &never)
            .replace(acme_team, &never)
            .replace(&acme_key, &never);
        let mut request = app.authed(method.clone(), &missing_path, &beta.access_token);
        if let Some(body) = &body {
            request = request.json(body);
        }
        let missing = app.send(request).await.assert_problem(404, "not_found");
        assert_eq!(theirs["detail"], missing["detail"], "{method} {path}");
    }
    // Acme's records are untouched.
    assert_eq!(
        app.get_as(
            &format!("/v1/users/{}", acme_sales.user_id),
            &acme.access_token
        )
        .await
        .json()["active"],
        true
    );
    assert_eq!(
        app.get_as(&format!("/v1/teams/{acme_team}"), &acme.access_token)
            .await
            .json()["name"],
        "East"
    );
    // Another organization's team or user as a reference is "no such record" too.
    let foreign_team = app
        .patch_as(
            &format!("/v1/users/{}", beta_user.user_id),
            &beta.access_token,
            &json!({"team_id": acme_team}),
        )
        .await;
    foreign_team.assert_problem(422, "validation_failed");
    let foreign_manager = app
        .post_as(
            "/v1/teams",
            &beta.access_token,
            &json!({"name": "X", "manager_id": acme_sales.user_id}),
        )
        .await;
    foreign_manager.assert_problem(422, "validation_failed");
}

both_backends!(a_reused_refresh_token_is_401_and_revokes_its_family);
async fn a_reused_refresh_token_is_401_and_revokes_its_family(app: TestApp) {
    let session = app.signup("Acme", "owner@acme.example").await;
    let elsewhere = app.session("owner@acme.example").await;
    let rotated = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": session.refresh_token}),
        )
        .await
        .json();
    let new_access = rotated["access_token"].as_str().unwrap();
    let new_refresh = rotated["refresh_token"].as_str().unwrap();

    let replay = app
        .post_json(
            "/v1/auth/refresh",
            &json!({"refresh_token": session.refresh_token}),
        )
        .await;

    let problem = replay.assert_problem(401, "unauthenticated");
    assert!(problem["detail"].as_str().unwrap().contains("already used"));
    // The whole family is gone: the successor token and every access token of the session.
    app.post_json("/v1/auth/refresh", &json!({"refresh_token": new_refresh}))
        .await
        .assert_problem(401, "unauthenticated");
    app.get_as("/v1/me", new_access)
        .await
        .assert_problem(401, "unauthenticated");
    app.get_as("/v1/me", &session.access_token)
        .await
        .assert_problem(401, "unauthenticated");
    // Another session of the same user is not part of the family.
    assert_eq!(
        app.get_as("/v1/me", &elsewhere.access_token).await.status,
        200
    );
    let log = app
        .get_as(
            "/v1/audit-log?action=auth.refresh_reused",
            &elsewhere.access_token,
        )
        .await
        .json();
    assert_eq!(log["data"].as_array().unwrap().len(), 1);
}

both_backends!(
    each_user_has_their_own_rate_limit,
    |config: &mut rapport::Config| {
        config.rate_limit_per_minute = 3;
    }
);
async fn each_user_has_their_own_rate_limit(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (_, key) = app.api_key(&owner, &["*"]).await; // the owner's first request
    let other_user = app.signup("Other", "owner@other.example").await;

    let mut remaining = Vec::new();
    for _ in 0..2 {
        let response = app.get_as("/v1/me", &key).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.header("ratelimit-limit"), Some("3"));
        assert!(response.header("ratelimit-reset").is_some());
        remaining.push(
            response
                .header("ratelimit-remaining")
                .unwrap()
                .parse::<u32>()
                .unwrap(),
        );
    }
    let limited = app.get_as("/v1/me", &key).await;
    let same_user_by_session = app.get_as("/v1/me", &owner.access_token).await;
    let another_user = app.get_as("/v1/me", &other_user.access_token).await;

    assert_eq!(remaining, [1, 0]);
    limited.assert_problem(429, "rate_limited");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.header("ratelimit-remaining"), Some("0"));
    same_user_by_session.assert_problem(429, "rate_limited");
    assert_eq!(
        another_user.status, 200,
        "another user has a bucket of their own"
    );
}

both_backends!(credential_changes_take_effect_on_the_next_request);
async fn credential_changes_take_effect_on_the_next_request(app: TestApp) {
    // Each credential is used first, so that its answer is kept (the credential cache is on,
    // as by default); the change must still count on the very next request.
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (key_id, key) = app.api_key(&owner, &["*"]).await;
    assert_eq!(app.get_as("/v1/contacts", &key).await.status, 200);
    app.delete_as(&format!("/v1/api-keys/{key_id}"), &owner.access_token)
        .await;
    app.get_as("/v1/contacts", &key)
        .await
        .assert_problem(401, "unauthenticated");

    let admin = app.member(&owner, "admin@acme.example", "admin").await;
    let (_, admin_key) = app.api_key(&admin, &["*"]).await;
    assert_eq!(app.get_as("/v1/users", &admin_key).await.status, 200);
    assert_eq!(
        app.get_as("/v1/users", &admin.access_token).await.status,
        200
    );
    let demoted = app
        .patch_as(
            &format!("/v1/users/{}", admin.user_id),
            &owner.access_token,
            &json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(demoted.status, 200, "{}", demoted.text);
    app.get_as("/v1/users", &admin_key)
        .await
        .assert_problem(403, "forbidden");
    app.get_as("/v1/users", &admin.access_token)
        .await
        .assert_problem(403, "forbidden");

    let response = app
        .post_as(
            "/v1/auth/logout",
            &owner.access_token,
            &json!({"refresh_token": owner.refresh_token}),
        )
        .await;
    assert_eq!(response.status, 204, "{}", response.text);
    app.get_as("/v1/me", &owner.access_token)
        .await
        .assert_problem(401, "unauthenticated");
}

both_backends!(another_node_sees_a_revocation_once_its_kept_answer_expires);
async fn another_node_sees_a_revocation_once_its_kept_answer_expires(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (key_id, key) = app.api_key(&owner, &["*"]).await;
    let sibling = app
        .spawn_sibling(|config| config.credential_cache = std::time::Duration::from_millis(200))
        .await;
    let on_sibling = |key: &str| {
        app.client
            .get(format!("{sibling}/v1/contacts"))
            .bearer_auth(key.to_owned())
            .send()
    };
    assert_eq!(on_sibling(&key).await.unwrap().status(), 200);

    app.delete_as(&format!("/v1/api-keys/{key_id}"), &owner.access_token)
        .await;
    // The node that revoked refuses at once; the other within its 200 ms.
    app.get_as("/v1/contacts", &key)
        .await
        .assert_problem(401, "unauthenticated");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    assert_eq!(on_sibling(&key).await.unwrap().status(), 401);
}
