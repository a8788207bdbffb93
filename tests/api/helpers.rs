//! The test harness: `TestApp` starts Rapport on a fresh database and offers a method per
//! kind of request. `both_backends!(name)` runs `async fn name(app: TestApp)` on SQLite and on
//! PostgreSQL. PostgreSQL is `TEST_POSTGRES_URL` (default postgres://postgres@127.0.0.1:5432/postgres);
//! when it cannot be reached the PostgreSQL half is skipped loudly, or fails with
//! `REQUIRE_POSTGRES=1`.

use std::path::PathBuf;
use std::time::Duration;

use rapport::{Application, Config};
use rapport_auth::SigningKey;
use rapport_domain::webhook::target::TargetPolicy;
use rapport_storage::{DatabaseUrl, SqlStore};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::Value;
use sqlx::Connection;

/// Runs the named test once per backend, as `name::sqlite` and `name::postgres`.
macro_rules! both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite)
                    .await
                    .expect("SQLite is always available");
                super::$name(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) =
                    $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await
                {
                    super::$name(app).await;
                }
            }
        }
    };
    // With a configuration change: `both_backends!(name, |config| config.x = y)`.
    ($name:ident, $configure:expr) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn_with(
                    $crate::helpers::Backend::Sqlite,
                    $configure,
                )
                .await
                .expect("SQLite is always available");
                super::$name(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn_with(
                    $crate::helpers::Backend::Postgres,
                    $configure,
                )
                .await
                {
                    super::$name(app).await;
                }
            }
        }
    };
}

/// Runs the named test once per backend, as `name::sqlite` and `name::postgres`, with a fresh
/// database and no app: `async fn name(database: TestDatabase)`, for tests that start the
/// server binary themselves.
macro_rules! both_databases {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let database =
                    $crate::helpers::TestDatabase::create($crate::helpers::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                super::$name(database).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(database) =
                    $crate::helpers::TestDatabase::create($crate::helpers::Backend::Postgres).await
                {
                    super::$name(database).await;
                }
            }
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

pub struct TestApp {
    pub address: String,
    pub backend: Backend,
    pub client: reqwest::Client,
    /// The app's own store (same pools), for tests that must reach behind the API.
    pub store: SqlStore,
    /// The key the app signs access tokens with, for tests that forge tokens.
    pub signing_key: SigningKey,
    database: TestDatabase,
}

/// A signed-in user: the tokens and who they are.
#[derive(Debug, Clone)]
pub struct Session {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub org_id: String,
}

impl Session {
    fn from_tokens(body: &Value) -> Session {
        Session {
            access_token: body["access_token"].as_str().unwrap().to_owned(),
            refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
            user_id: body["user"]["id"].as_str().unwrap().to_owned(),
            org_id: body["organization"]["id"].as_str().unwrap().to_owned(),
        }
    }
}

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem document with this status and code, whose `request_id`
    /// is the `X-Request-Id` header; returns its body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["code"], code, "body: {body}");
        assert_eq!(body["status"], status, "body: {body}");
        assert_eq!(body["type"], format!("urn:rapport:problem:{code}"));
        assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(body["detail"].as_str().is_some_and(|d| !d.is_empty()));
        let request_id = self.header("x-request-id").expect("X-Request-Id header");
        assert_eq!(body["request_id"], request_id);
        body
    }
}

impl TestApp {
    /// Starts the app on a fresh database with the default configuration.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with(backend, |_| {}).await
    }

    /// Starts the app on a fresh database; `configure` adjusts the configuration first.
    pub async fn spawn_with(
        backend: Backend,
        configure: impl FnOnce(&mut Config),
    ) -> Option<TestApp> {
        let database = TestDatabase::create(backend).await?;
        Some(TestApp::spawn_on(database, configure).await)
    }

    /// Starts the app on `database` (migrating it first), with `configure` applied.
    pub async fn spawn_on(database: TestDatabase, configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config::with_database(DatabaseUrl::parse(&database.url).unwrap());
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.workers = 2;
        // Test receivers listen on loopback; `webhook_targets_are_public_by_default` proves
        // the default refuses it.
        config.webhook_targets = TargetPolicy::allow_private();
        // Every test client is 127.0.0.1: the per-address limit of unauthenticated requests
        // would count the whole test as one client. Tests of that limit set their own.
        config.auth_rate_limit_per_minute = 1_000_000;
        configure(&mut config);
        let app = Application::build(config).await.expect("the app starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let store = app.store().clone();
        let signing_key = app.signing_key().clone();
        tokio::spawn(app.run_until_stopped());
        rapport::webhooks::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp {
            address,
            backend: database.backend,
            client,
            store,
            signing_key,
            database,
        }
    }

    /// Starts a second server process on this app's database, as a cluster's second node
    /// would be; answers its address.
    pub async fn spawn_sibling(&self, configure: impl FnOnce(&mut Config)) -> String {
        let mut config = Config::with_database(DatabaseUrl::parse(&self.database.url).unwrap());
        config.bind = "127.0.0.1:0".parse().unwrap();
        config.workers = 1;
        config.webhook_targets = TargetPolicy::allow_private();
        config.auth_rate_limit_per_minute = 1_000_000;
        // Every test client is 127.0.0.1: the per-address limit of unauthenticated requests
        // would count the whole test as one client. Tests of that limit set their own.
        config.auth_rate_limit_per_minute = 1_000_000;
        configure(&mut config);
        let app = Application::build(config)
            .await
            .expect("the sibling starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        address
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub async fn send(&self, request: RequestBuilder) -> TestResponse {
        let response = request.send().await.expect("the request is answered");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a readable body");
        TestResponse {
            status,
            headers,
            text,
        }
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> TestResponse {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// A POST with a raw body and content type, for malformed input.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> TestResponse {
        let mut request = self.request(Method::POST, path).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.send(request).await
    }

    pub fn database_url(&self) -> &str {
        &self.database.url
    }

    /// A request with `Authorization: Bearer <token>`.
    pub fn authed(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    pub async fn get_as(&self, path: &str, token: &str) -> TestResponse {
        self.send(self.authed(Method::GET, path, token)).await
    }

    pub async fn post_as(&self, path: &str, token: &str, body: &Value) -> TestResponse {
        self.send(self.authed(Method::POST, path, token).json(body))
            .await
    }

    pub async fn patch_as(&self, path: &str, token: &str, body: &Value) -> TestResponse {
        self.send(self.authed(Method::PATCH, path, token).json(body))
            .await
    }

    pub async fn put_as(&self, path: &str, token: &str, body: &Value) -> TestResponse {
        self.send(self.authed(Method::PUT, path, token).json(body))
            .await
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> TestResponse {
        self.send(self.authed(Method::DELETE, path, token)).await
    }

    /// Runs SQL directly on the test's database, for setups the API cannot make (a key that
    /// expired an hour ago). Never used to check results.
    pub async fn execute_sql(&self, sql: &str) {
        self.database.execute(sql).await;
    }

    /// Signs up a new organization whose owner has `email`.
    pub async fn signup(&self, organization: &str, email: &str) -> Session {
        let response = self
            .post_json(
                "/v1/auth/signup",
                &serde_json::json!({
                    "organization_name": organization,
                    "name": "Owner",
                    "email": email,
                    "password": PASSWORD,
                }),
            )
            .await;
        assert_eq!(response.status, 201, "signup failed: {}", response.text);
        Session::from_tokens(&response.json())
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.post_json(
            "/v1/auth/login",
            &serde_json::json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs in and returns the session; panics when sign-in fails.
    pub async fn session(&self, email: &str) -> Session {
        let response = self.login(email, PASSWORD).await;
        assert_eq!(response.status, 200, "login failed: {}", response.text);
        Session::from_tokens(&response.json())
    }

    /// Has `admin` invite `email` with `role`; answers the invitation's token.
    pub async fn invite(&self, admin: &Session, email: &str, role: &str) -> String {
        let response = self
            .post_as(
                "/v1/invitations",
                &admin.access_token,
                &serde_json::json!({ "email": email, "name": email, "role": role }),
            )
            .await;
        assert_eq!(response.status, 201, "invite failed: {}", response.text);
        response.json()["token"].as_str().unwrap().to_owned()
    }

    /// Accepts an invitation with `password`.
    pub async fn accept(&self, token: &str, password: &str) -> TestResponse {
        self.post_json(
            &format!("/v1/invitations/{token}/accept"),
            &serde_json::json!({ "password": password }),
        )
        .await
    }

    /// Has `admin` invite `email` with `role`, has the invitation accepted with [`PASSWORD`],
    /// and answers the new member's session.
    pub async fn member(&self, admin: &Session, email: &str, role: &str) -> Session {
        let token = self.invite(admin, email, role).await;
        let response = self.accept(&token, PASSWORD).await;
        assert_eq!(response.status, 200, "accept failed: {}", response.text);
        Session::from_tokens(&response.json())
    }

    /// Creates a record through the API and returns it; panics unless 201.
    pub async fn create(&self, token: &str, path: &str, body: Value) -> Value {
        let response = self.post_as(path, token, &body).await;
        assert_eq!(
            response.status, 201,
            "POST {path} failed: {}",
            response.text
        );
        response.json()
    }

    /// The ids of a list answer's `data`.
    pub fn ids(body: &Value) -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap_or_else(|| panic!("not a list: {body}"))
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Has `session` create an API key with these scopes; returns (id, secret).
    pub async fn api_key(&self, session: &Session, scopes: &[&str]) -> (String, String) {
        let response = self
            .post_as(
                "/v1/api-keys",
                &session.access_token,
                &serde_json::json!({ "name": "test key", "scopes": scopes }),
            )
            .await;
        assert_eq!(response.status, 201, "create key failed: {}", response.text);
        let body = response.json();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }
}

/// A database that exists for one test and is removed after it.
pub struct TestDatabase {
    url: String,
    backend: Backend,
    cleanup: Cleanup,
}

enum Cleanup {
    Directory(PathBuf),
    Postgres { admin_url: String, name: String },
}

fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn postgres_required() -> bool {
    std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1" || v == "true")
}

/// `postgres://u@h:5432/postgres?x=y` with the database replaced by `name`.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

impl TestDatabase {
    /// A fresh, empty database; None when PostgreSQL is wanted but cannot be reached (and
    /// `REQUIRE_POSTGRES` is not set).
    pub async fn create(backend: Backend) -> Option<TestDatabase> {
        match backend {
            Backend::Sqlite => Some(TestDatabase::sqlite()),
            Backend::Postgres => TestDatabase::postgres().await,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs SQL on the database directly, for setups the API cannot make.
    pub async fn execute(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
            Backend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut connection)
                    .await
                    .unwrap();
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn sqlite() -> TestDatabase {
        let dir =
            std::env::temp_dir().join(format!("rapport-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/rapport.db", dir.display());
        TestDatabase {
            url,
            backend: Backend::Sqlite,
            cleanup: Cleanup::Directory(dir),
        }
    }

    async fn postgres() -> Option<TestDatabase> {
        let admin_url = postgres_admin_url();
        let connected = tokio::time::timeout(
            Duration::from_secs(10),
            sqlx::PgConnection::connect(&admin_url),
        )
        .await;
        let mut admin = match connected {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return skip_postgres(&admin_url, &error.to_string()),
            Err(_) => return skip_postgres(&admin_url, "timed out"),
        };
        let name = format!("rapport_test_{}", uuid::Uuid::now_v7().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        let _ = admin.close().await;
        Some(TestDatabase {
            url: with_database(&admin_url, &name),
            backend: Backend::Postgres,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }
}

fn skip_postgres(url: &str, reason: &str) -> Option<TestDatabase> {
    if postgres_required() {
        panic!("REQUIRE_POSTGRES is set but PostgreSQL at {url} is unreachable: {reason}");
    }
    eprintln!(
        "\n!!!!!! SKIPPED the PostgreSQL half of this test: {url} is unreachable ({reason}).\n\
         !!!!!! Start PostgreSQL or set TEST_POSTGRES_URL; REQUIRE_POSTGRES=1 makes this a failure.\n"
    );
    None
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Directory(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                let admin_url = admin_url.clone();
                let name = name.clone();
                // Drop runs inside the test's runtime; use a thread with its own.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    runtime.block_on(async {
                        if let Ok(mut admin) = sqlx::PgConnection::connect(&admin_url).await {
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                                "drop database if exists {name} with (force)"
                            )))
                            .execute(&mut admin)
                            .await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

#[test]
fn the_database_name_is_replaced_in_postgres_urls() {
    assert_eq!(
        with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
        "postgres://postgres@127.0.0.1:5432/t1"
    );
    assert_eq!(
        with_database("postgres://u:p@db/main?sslmode=disable", "t1"),
        "postgres://u:p@db/t1?sslmode=disable"
    );
    assert_eq!(with_database("postgres://db", "t1"), "postgres://db/t1");
}
