//! Issue 10, points 2, 4, 6, 7 and 8: password checks cannot exhaust the server's memory,
//! unauthenticated requests are limited per client address, metrics labels come from closed
//! sets, a one-time secret is never kept for a replay, API keys cannot escalate, and rate
//! limits hold per user and per organization.

use chrono::{Duration, Utc};
use futures_util::future::join_all;
use rapport_http::client_ip::TrustedProxies;
use rapport_http::passwords::PasswordWorkSettings;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp};

async fn create_key(app: &TestApp, token: &str, body: Value) -> crate::helpers::TestResponse {
    app.post_as("/v1/api-keys", token, &body).await
}

// ---- point 2: password work and the per-address limit ----------------------------------

fn one_password_thread(config: &mut rapport::Config) {
    config.password_work = PasswordWorkSettings {
        threads: 1,
        queue: 1,
    };
}

both_backends!(
    failed_sign_ins_past_the_password_queue_are_answered_503_at_once,
    super::one_password_thread
);
async fn failed_sign_ins_past_the_password_queue_are_answered_503_at_once(app: TestApp) {
    app.signup("Acme", "owner@acme.example").await;

    // 64 clients at once, each a wrong password for an address of its own (so that the
    // per-email throttle stays out of it).
    let attempts = (0..64).map(|n| {
        app.send(app.request(Method::POST, "/v1/auth/login").json(
            &json!({"email": format!("guess{n}@acme.example"), "password": "wrong password"}),
        ))
    });
    let responses = join_all(attempts).await;

    let mut busy = 0;
    for response in &responses {
        match response.status {
            401 => {
                response.assert_problem(401, "invalid_credentials");
            }
            503 => {
                response.assert_problem(503, "server_busy");
                assert_eq!(response.header("retry-after"), Some("1"));
                busy += 1;
            }
            other => panic!("unexpected {other}: {}", response.text),
        }
    }
    assert!(
        busy > 0,
        "one thread and one waiting place cannot take 64 checks at once"
    );
    // The server is still there for everyone else.
    assert_eq!(app.login("owner@acme.example", PASSWORD).await.status, 200);
}

both_backends!(sign_ins_are_limited_per_client_address, |config| {
    config.auth_rate_limit_per_minute = 3
});
async fn sign_ins_are_limited_per_client_address(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await; // 1
    let (_, key) = app.api_key(&owner, &["contact:read"]).await;
    app.login("owner@acme.example", "wrong password").await; // 2
    app.login("owner@acme.example", PASSWORD).await; // 3

    let fourth = app.login("owner@acme.example", PASSWORD).await;

    let problem = fourth.assert_problem(429, "rate_limited");
    assert!(problem["detail"].as_str().unwrap().contains("address"));
    assert!(fourth.header("retry-after").is_some());
    // Authenticated requests of the same address are metered per user, not per address.
    assert_eq!(app.get_as("/v1/contacts", &key).await.status, 200);
}

both_backends!(
    x_forwarded_for_is_believed_only_from_trusted_proxies,
    |config| { config.auth_rate_limit_per_minute = 2 }
);
async fn x_forwarded_for_is_believed_only_from_trusted_proxies(app: TestApp) {
    // No trusted proxy (the default): a client cannot pick a new address per request.
    for forwarded in ["198.51.100.1", "198.51.100.2"] {
        let response = app
            .send(
                app.request(Method::POST, "/v1/auth/login")
                    .header("x-forwarded-for", forwarded)
                    .json(&json!({"email": "x@acme.example", "password": "wrong password"})),
            )
            .await;
        assert_eq!(response.status, 401, "{}", response.text);
    }
    let third = app
        .send(
            app.request(Method::POST, "/v1/auth/login")
                .header("x-forwarded-for", "198.51.100.3")
                .json(&json!({"email": "x@acme.example", "password": "wrong password"})),
        )
        .await;
    third.assert_problem(429, "rate_limited");

    // Behind a trusted proxy, the address it forwards is the client's.
    let behind_proxy = app
        .spawn_sibling(|config| {
            config.auth_rate_limit_per_minute = 2;
            config.trusted_proxies = TrustedProxies::parse("127.0.0.1").unwrap();
        })
        .await;
    for client in ["198.51.100.1", "198.51.100.2", "198.51.100.3"] {
        for _ in 0..2 {
            let response = app
                .send(
                    app.client
                        .post(format!("{behind_proxy}/v1/auth/login"))
                        .header("x-forwarded-for", client)
                        .json(&json!({"email": "y@acme.example", "password": "wrong password"})),
                )
                .await;
            assert_eq!(response.status, 401, "{client}: {}", response.text);
        }
    }
    let over = app
        .send(
            app.client
                .post(format!("{behind_proxy}/v1/auth/login"))
                .header("x-forwarded-for", "198.51.100.1")
                .json(&json!({"email": "y@acme.example", "password": "wrong password"})),
        )
        .await;
    over.assert_problem(429, "rate_limited");
}

// ---- point 4: metrics ----------------------------------------------------------------

both_backends!(unknown_method_tokens_make_no_new_metric_series);
async fn unknown_method_tokens_make_no_new_metric_series(app: TestApp) {
    for n in 0..40 {
        let method = Method::from_bytes(format!("PROBE{n}").as_bytes()).unwrap();
        app.send(app.request(method.clone(), "/v1/contacts")).await;
        app.send(app.request(method, &format!("/nowhere/{n}")))
            .await;
    }

    let text = app.get("/metrics").await.text;

    assert!(!text.contains("PROBE"), "{text}");
    assert!(!text.contains("/nowhere"), "{text}");
    let series = text
        .lines()
        .filter(|l| l.starts_with("rapport_http_requests_total{") && l.contains("method=\"other\""))
        .count();
    assert!(
        (1..=3).contains(&series),
        "the probes share a few series: {text}"
    );
}

// ---- point 6: one-time secrets are not kept for replays -------------------------------

/// How many stored idempotent responses contain `needle` (read behind the API).
async fn stored_responses_containing(app: &TestApp, needle: &str) -> i64 {
    use sqlx::Connection;
    let sql = "select count(*) from idempotency_keys where response_body is not null";
    let bodies: Vec<Vec<u8>> = match app.backend {
        crate::helpers::Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(app.database_url())
                .await
                .unwrap();
            let _: i64 = sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap();
            sqlx::query_scalar(
                "select response_body from idempotency_keys where response_body is not null",
            )
            .fetch_all(&mut c)
            .await
            .unwrap()
        }
        crate::helpers::Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(app.database_url())
                .await
                .unwrap();
            sqlx::query_scalar(
                "select response_body from idempotency_keys where response_body is not null",
            )
            .fetch_all(&mut c)
            .await
            .unwrap()
        }
    };
    bodies
        .iter()
        .filter(|b| String::from_utf8_lossy(b).contains(needle))
        .count() as i64
}

both_backends!(a_replayed_request_that_showed_a_secret_does_not_show_it_again);
async fn a_replayed_request_that_showed_a_secret_does_not_show_it_again(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let post_once = |path: &str, key: &'static str, body: Value| {
        app.authed(Method::POST, path, &owner.access_token)
            .header("idempotency-key", key)
            .json(&body)
    };

    let key = app
        .send(post_once(
            "/v1/api-keys",
            "k-1",
            json!({"name": "ERP", "scopes": ["read"]}),
        ))
        .await;
    let key_again = app
        .send(post_once(
            "/v1/api-keys",
            "k-1",
            json!({"name": "ERP", "scopes": ["read"]}),
        ))
        .await;
    let webhook = app
        .send(post_once(
            "/v1/webhooks",
            "w-1",
            json!({"url": "https://hooks.example.com/crm", "events": ["contact.created"]}),
        ))
        .await;
    let webhook_id = webhook.json()["id"].as_str().unwrap().to_owned();
    let rotate_path = format!("/v1/webhooks/{webhook_id}/rotate-secret");
    let rotated = app.send(post_once(&rotate_path, "r-1", json!({}))).await;
    let rotated_again = app.send(post_once(&rotate_path, "r-1", json!({}))).await;
    let invitation = app
        .send(post_once(
            "/v1/invitations",
            "i-1",
            json!({"email": "new@acme.example", "role": "sales"}),
        ))
        .await;
    let invitation_again = app
        .send(post_once(
            "/v1/invitations",
            "i-1",
            json!({"email": "new@acme.example", "role": "sales"}),
        ))
        .await;

    assert_eq!(key.status, 201, "{}", key.text);
    let secret = key.json()["secret"].as_str().unwrap().to_owned();
    let problem = key_again.assert_problem(409, "secret_not_replayed");
    assert!(!key_again.text.contains(&secret));
    assert_eq!(key_again.header("location"), key.header("location"));
    assert!(problem["detail"].as_str().unwrap().contains("revoke"));

    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let webhook_secret = rotated.json()["secret"].as_str().unwrap().to_owned();
    rotated_again.assert_problem(409, "secret_not_replayed");
    assert_eq!(invitation.status, 201, "{}", invitation.text);
    let token = invitation.json()["token"].as_str().unwrap().to_owned();
    invitation_again.assert_problem(409, "secret_not_replayed");

    for kept_secret in [&secret, &webhook_secret, &token] {
        assert_eq!(stored_responses_containing(&app, kept_secret).await, 0);
    }
    // The secret shown once works: the first answer really made the key.
    assert_eq!(app.get_as("/v1/organization", &secret).await.status, 200);
}

// ---- point 7: keys cannot escalate ----------------------------------------------------

both_backends!(only_a_key_with_an_explicit_api_key_scope_manages_keys);
async fn only_a_key_with_an_explicit_api_key_scope_manages_keys(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (other_id, _) = app.api_key(&owner, &["read"]).await;
    let (_, everything) = app.api_key(&owner, &["*"]).await;
    let (_, manager) = app.api_key(&owner, &["*", "api_key:write"]).await;

    let minted = create_key(&app, &everything, json!({"name": "k", "scopes": ["read"]})).await;
    let revoked = app
        .delete_as(&format!("/v1/api-keys/{other_id}"), &everything)
        .await;
    let listed = app.get_as("/v1/api-keys", &everything).await;
    let by_manager = create_key(&app, &manager, json!({"name": "k", "scopes": ["read"]})).await;

    minted.assert_problem(403, "forbidden");
    revoked.assert_problem(403, "forbidden");
    assert_eq!(listed.status, 200, "reading keys is part of *");
    assert_eq!(by_manager.status, 201, "{}", by_manager.text);
    assert_eq!(
        app.get_as(&format!("/v1/api-keys/{other_id}"), &owner.access_token)
            .await
            .status,
        200,
        "the * key revoked nothing"
    );
}

both_backends!(a_key_made_by_a_key_never_outlives_it_nor_widens_it);
async fn a_key_made_by_a_key_never_outlives_it_nor_widens_it(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let in_an_hour = (Utc::now() + Duration::hours(1)).to_rfc3339();
    let maker = create_key(
        &app,
        &owner.access_token,
        json!({"name": "maker", "scopes": ["api_key:write", "contact:read"], "expires_at": in_an_hour}),
    )
    .await;
    assert_eq!(maker.status, 201, "{}", maker.text);
    let maker_expiry = maker.json()["expires_at"].as_str().unwrap().to_owned();
    let maker = maker.json()["secret"].as_str().unwrap().to_owned();

    let forever = create_key(
        &app,
        &maker,
        json!({"name": "k", "scopes": ["contact:read"]}),
    )
    .await;
    let later = create_key(
        &app,
        &maker,
        json!({"name": "k", "scopes": ["contact:read"], "expires_at": (Utc::now() + Duration::days(30)).to_rfc3339()}),
    )
    .await;
    let wider = create_key(
        &app,
        &maker,
        json!({"name": "k", "scopes": ["contact:write"]}),
    )
    .await;
    let everything = create_key(&app, &maker, json!({"name": "k", "scopes": ["*"]})).await;

    assert_eq!(forever.status, 201, "{}", forever.text);
    assert_eq!(
        forever.json()["expires_at"].as_str().unwrap(),
        maker_expiry,
        "without expires_at it expires with its maker"
    );
    let problem = later.assert_problem(403, "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("outlives"));
    wider.assert_problem(403, "forbidden");
    everything.assert_problem(403, "forbidden");
}

both_backends!(keys_change_the_profile_only_with_a_write_scope_and_never_the_password);
async fn keys_change_the_profile_only_with_a_write_scope_and_never_the_password(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (_, read) = app.api_key(&owner, &["read"]).await;
    let (_, everything) = app.api_key(&owner, &["*"]).await;
    let password_change =
        json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"});

    let by_read = app
        .patch_as("/v1/me", &read, &json!({"name": "Mallory"}))
        .await;
    let password_by_key = app.patch_as("/v1/me", &everything, &password_change).await;
    let name_by_key = app
        .patch_as("/v1/me", &everything, &json!({"name": "Ann"}))
        .await;

    by_read.assert_problem(403, "forbidden");
    let problem = password_by_key.assert_problem(403, "forbidden");
    assert!(problem["detail"].as_str().unwrap().contains("session"));
    assert_eq!(name_by_key.status, 200, "{}", name_by_key.text);
    assert_eq!(name_by_key.json()["name"], "Ann");
    // The password is unchanged, and a session may still change it.
    assert_eq!(app.login("owner@acme.example", PASSWORD).await.status, 200);
    let by_session = app
        .patch_as("/v1/me", &owner.access_token, &password_change)
        .await;
    assert_eq!(by_session.status, 200, "{}", by_session.text);
}

// ---- point 8: rate limits per user and organization, key cap, unknown keys ----------------

both_backends!(a_users_keys_and_sessions_share_one_budget, |config| {
    config.rate_limit_per_minute = 6
});
async fn a_users_keys_and_sessions_share_one_budget(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (_, first) = app.api_key(&owner, &["read"]).await; // 1
    let (_, second) = app.api_key(&owner, &["read"]).await; // 2

    let mut statuses = Vec::new();
    for token in [&first, &second, &owner.access_token, &first, &second] {
        statuses.push(app.get_as("/v1/contacts", token).await.status);
    }

    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    let refused = app.get_as("/v1/contacts", &owner.access_token).await;
    let problem = refused.assert_problem(429, "rate_limited");
    assert!(problem["detail"].as_str().unwrap().contains("user"));
    assert_eq!(refused.header("ratelimit-remaining"), Some("0"));
}

both_backends!(an_organization_has_a_budget_of_its_own, |config| {
    config.org_rate_limit_per_minute = Some(5)
});
async fn an_organization_has_a_budget_of_its_own(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let sales = app.member(&owner, "sales@acme.example", "sales").await; // owner: 1
    let other = app.signup("Other", "owner@other.example").await;

    let mut statuses = Vec::new();
    for token in [&owner, &sales, &owner, &sales, &owner] {
        statuses.push(app.get_as("/v1/contacts", &token.access_token).await.status);
    }

    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    let refused = app.get_as("/v1/contacts", &sales.access_token).await;
    let problem = refused.assert_problem(429, "rate_limited");
    assert!(problem["detail"].as_str().unwrap().contains("organization"));
    assert_eq!(
        app.get_as("/v1/contacts", &other.access_token).await.status,
        200,
        "another organization is not held up"
    );
}

both_backends!(a_user_holds_a_bounded_number_of_live_keys, |config| {
    config.api_keys_per_user = 2
});
async fn a_user_holds_a_bounded_number_of_live_keys(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (first, _) = app.api_key(&owner, &["read"]).await;
    app.api_key(&owner, &["read"]).await;

    let third = create_key(
        &app,
        &owner.access_token,
        json!({"name": "k", "scopes": ["read"]}),
    )
    .await;
    app.delete_as(&format!("/v1/api-keys/{first}"), &owner.access_token)
        .await;
    let after_revoking = create_key(
        &app,
        &owner.access_token,
        json!({"name": "k", "scopes": ["read"]}),
    )
    .await;

    third.assert_problem(409, "api_key_limit");
    assert_eq!(after_revoking.status, 201, "{}", after_revoking.text);
}

both_backends!(
    unknown_keys_are_throttled_per_address_and_repeats_cost_nothing,
    |config| { config.auth_rate_limit_per_minute = 3 }
);
async fn unknown_keys_are_throttled_per_address_and_repeats_cost_nothing(app: TestApp) {
    let guesses: Vec<String> = (0..4)
        .map(|n| format!("rpk_{n}{}", "x".repeat(42)))
        .collect();

    let mut statuses = Vec::new();
    for guess in &guesses {
        statuses.push(app.get_as("/v1/contacts", guess).await.status);
    }
    // The address is out of budget: a new guess gets no lookup, a repeat is answered from
    // memory (401, no lookup either), as many times as it comes.
    let repeats = join_all((0..5).map(|_| app.get_as("/v1/contacts", &guesses[0]))).await;

    assert_eq!(statuses, [401, 401, 401, 429]);
    for repeat in repeats {
        repeat.assert_problem(401, "unauthenticated");
    }
}
