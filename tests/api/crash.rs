//! Crash consistency: the real binary, killed with SIGKILL in the middle of a 1,000-row batch
//! upsert and again in the middle of a CSV import, then started again on the same database.
//! Wherever the kills land, a batch is all or nothing and its retry writes it once; the import
//! resumes to exactly its rows; the change feed has every change once, without holes; and the
//! webhook gets every event once, each record's in order.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use sqlx::Connection;

use crate::cli::rapport;
use crate::helpers::{Backend, PASSWORD, TestDatabase, TestResponse};
use crate::receiver::Receiver;

/// Rows of the batch upsert, the most one batch takes.
const BATCH_ROWS: usize = 1000;
/// Rows of the import: enough chunks (500 rows each) that it is still running when killed.
const IMPORT_ROWS: usize = 4000;
/// How long the slow parts get: a claim or lease of the killed process runs out after 60 s.
const PATIENCE: Duration = Duration::from_secs(300);

/// `rapport serve` as a child process on a test database.
struct Server {
    child: Child,
    address: String,
    client: reqwest::Client,
}

impl Server {
    /// Starts the binary and waits until it listens (it says where in its log).
    async fn start(database: &TestDatabase) -> Server {
        rapport::webhooks::install_tls_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let mut child = rapport()
            .args(["serve", "--database-url", database.url()])
            .args(["--bind", "127.0.0.1:0", "--log-format", "json"])
            .args(["--workers", "2", "--rate-limit-per-minute", "1000000"])
            // The test's receiver listens on loopback.
            .args(["--webhook-allow-private", "true"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut server = Server {
            child,
            address: String::new(),
            client,
        };
        let (port_tx, mut port_rx) = tokio::sync::mpsc::unbounded_channel();
        // Reads every line, so that the server never blocks on a full pipe; passes on
        // warnings and errors for the test's output.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let event: Value = serde_json::from_str(&line).unwrap_or_default();
                if event["message"] == "rapport is listening" {
                    let _ = port_tx.send(event["port"].as_u64());
                } else if event["level"] == "WARN" || event["level"] == "ERROR" {
                    eprintln!("server: {line}");
                }
            }
        });
        let port = tokio::time::timeout(Duration::from_secs(120), port_rx.recv())
            .await
            .expect("the server listens within 2 minutes")
            .flatten()
            .expect("the server logs its port");
        server.address = format!("http://127.0.0.1:{port}");
        server
    }

    /// SIGKILL: no shutdown, no flush, no goodbye.
    fn kill(mut self) {
        self.child.kill().expect("the server is killed");
        self.child.wait().expect("the killed server is reaped");
    }

    fn authed(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(key)
    }

    async fn send(&self, request: RequestBuilder) -> TestResponse {
        let response = request.send().await.expect("the request is answered");
        TestResponse {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: response.text().await.expect("a readable body"),
        }
    }

    async fn get(&self, path: &str, key: &str) -> TestResponse {
        self.send(self.authed(Method::GET, path, key)).await
    }

    async fn post(&self, path: &str, key: &str, body: &Value) -> TestResponse {
        self.send(self.authed(Method::POST, path, key).json(body))
            .await
    }

    /// Signs up an organization and answers an API key of its owner that may do anything.
    async fn organization_key(&self) -> String {
        let signup = self
            .send(
                self.client
                    .post(format!("{}/v1/auth/signup", self.address))
                    .json(&json!({"organization_name": "Acme", "name": "Owner",
                                  "email": "owner@acme.example", "password": PASSWORD})),
            )
            .await;
        assert_eq!(signup.status, 201, "{}", signup.text);
        let token = signup.json()["access_token"].as_str().unwrap().to_owned();
        let key = self
            .post(
                "/v1/api-keys",
                &token,
                &json!({"name": "crash test", "scopes": ["*"]}),
            )
            .await;
        assert_eq!(key.status, 201, "{}", key.text);
        key.json()["secret"].as_str().unwrap().to_owned()
    }

    /// How many live contacts carry `tag`.
    async fn tagged(&self, key: &str, tag: &str) -> u64 {
        let page = self
            .get(
                &format!("/v1/contacts?tag={tag}&include=total&limit=1"),
                key,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        page.json()["total"].as_u64().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test must not leave its server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until the server has claimed `key` for a request: the attempt is then running.
async fn wait_for_claim(database: &TestDatabase, key: &str) {
    let deadline = Instant::now() + PATIENCE;
    let sql = "select count(*) from idempotency_keys where key = $1";
    loop {
        let claims: i64 = match database.backend() {
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(database.url())
                    .await
                    .unwrap();
                sqlx::query_scalar(sql)
                    .bind(key)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap_or(0)
            }
            Backend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(database.url()).await.unwrap();
                sqlx::query_scalar(sql)
                    .bind(key)
                    .fetch_one(&mut connection)
                    .await
                    .unwrap_or(0)
            }
        };
        if claims > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the batch never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends the request again while the server answers that an attempt is in progress (the
/// killed attempt's claim counts as running for 60 s).
async fn retry_while_in_progress(
    server: &Server,
    request: impl Fn() -> RequestBuilder,
) -> TestResponse {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let response = server.send(request()).await;
        if response.status != 409 {
            return response;
        }
        response.assert_problem(409, "idempotency_request_in_progress");
        assert!(Instant::now() < deadline, "the key stayed in progress");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Every event of the change feed, from the start.
async fn whole_feed(server: &Server, key: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(cursor) => format!("/v1/changes?limit=200&after={cursor}"),
            None => "/v1/changes?limit=200".to_owned(),
        };
        let page = server.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        events.extend(page["data"].as_array().unwrap().iter().cloned());
        after = Some(page["next_cursor"].as_str().unwrap().to_owned());
        if page["has_more"] == false {
            return events;
        }
    }
}

/// The ids of every live contact.
async fn every_contact(server: &Server, key: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/contacts?limit=200&cursor={cursor}"),
            None => "/v1/contacts?limit=200".to_owned(),
        };
        let page = server.get(&path, key).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        ids.extend(crate::helpers::TestApp::ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

fn batch_body() -> Value {
    let records: Vec<Value> = (0..BATCH_ROWS)
        .map(|i| {
            json!({"external_id": format!("B-{i}"), "first_name": format!("B{i}"),
                   "email": format!("b{i}@batch.example"), "tags": ["batch"]})
        })
        .collect();
    json!({"id_property": "external_id", "all_or_none": false, "records": records})
}

fn import_csv() -> String {
    let mut csv = String::from("first_name,last_name,tags\n");
    for i in 0..IMPORT_ROWS {
        csv.push_str(&format!("I{i},Imported,import\n"));
    }
    csv
}

fn statuses(body: &Value) -> HashSet<String> {
    body["results"]
        .as_array()
        .unwrap_or_else(|| panic!("not a batch answer: {body}"))
        .iter()
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect()
}

both_databases!(a_server_killed_mid_batch_and_mid_import_loses_nothing_and_writes_nothing_twice);
async fn a_server_killed_mid_batch_and_mid_import_loses_nothing_and_writes_nothing_twice(
    database: TestDatabase,
) {
    let receiver = Receiver::start(200, 0).await;

    // The first life: a webhook, a few records with several events each, then a batch upsert
    // killed while it runs.
    let server = Server::start(&database).await;
    let key = server.organization_key().await;
    let hook = server
        .post(
            "/v1/webhooks",
            &key,
            &json!({"url": receiver.url, "events": ["*"]}),
        )
        .await;
    assert_eq!(hook.status, 201, "{}", hook.text);
    let secret = hook.json()["secret"].as_str().unwrap().to_owned();
    for i in 0..5 {
        let seed = server
            .post(
                "/v1/contacts",
                &key,
                &json!({"first_name": format!("Seed{i}"), "tags": ["seed"]}),
            )
            .await;
        assert_eq!(seed.status, 201, "{}", seed.text);
        let path = format!("/v1/contacts/{}", seed.json()["id"].as_str().unwrap());
        for step in 0..3 {
            let patch = server
                .send(
                    server
                        .authed(Method::PATCH, &path, &key)
                        .json(&json!({"title": format!("Step {step}")})),
                )
                .await;
            assert_eq!(patch.status, 200, "{}", patch.text);
        }
    }
    let batch = batch_body();
    let batch_request = |server: &Server| {
        server
            .authed(Method::POST, "/v1/contacts/batch/upsert", &key)
            .header("Idempotency-Key", "crash-batch")
            .json(&batch)
    };
    let in_flight = tokio::spawn(batch_request(&server).send());
    wait_for_claim(&database, "crash-batch").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.kill();
    let answered_before_the_kill = matches!(in_flight.await, Ok(Ok(r)) if r.status() == 200);

    // The second life: the batch is all there or not at all. An import, killed midway.
    let server = Server::start(&database).await;
    let batch_rows = server.tagged(&key, "batch").await;
    assert!(
        batch_rows == 0 || batch_rows == BATCH_ROWS as u64,
        "a batch is one transaction, yet {batch_rows} of its rows are there"
    );
    assert!(
        !answered_before_the_kill || batch_rows == BATCH_ROWS as u64,
        "an answered batch stays written"
    );
    let job = server
        .post(
            "/v1/imports",
            &key,
            &json!({"object": "contact", "csv": import_csv()}),
        )
        .await;
    assert_eq!(job.status, 202, "{}", job.text);
    let job_path = format!("/v1/imports/{}", job.json()["id"].as_str().unwrap());
    let deadline = Instant::now() + PATIENCE;
    let midway = loop {
        let job = server.get(&job_path, &key).await.json();
        let processed = job["processed"].as_i64().unwrap();
        if processed > 0 && processed < job["total"].as_i64().unwrap() {
            break job;
        }
        assert_ne!(
            job["status"], "completed",
            "the import ended before it could be killed: make it longer"
        );
        assert!(Instant::now() < deadline, "the import never started: {job}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    server.kill();

    // The third life: the batch's retry writes it once; the import resumes.
    let server = Server::start(&database).await;
    let retry = retry_while_in_progress(&server, || batch_request(&server)).await;
    let again = server.send(batch_request(&server)).await;
    assert_eq!(retry.status, 200, "{}", retry.text);
    let replayed = retry.header("idempotent-replayed") == Some("true");
    let retried = statuses(&retry.json());
    if batch_rows == 0 {
        assert_eq!(retried, HashSet::from(["created".to_owned()]), "it ran now");
    } else if replayed {
        assert_eq!(
            retried,
            HashSet::from(["created".to_owned()]),
            "the first answer"
        );
    } else {
        // It committed but never answered: the retry finds every row written already.
        assert_eq!(retried, HashSet::from(["unchanged".to_owned()]));
    }
    eprintln!(
        "the kills landed: the batch {}, {}; the import at {} of {} rows",
        if batch_rows == 0 {
            "not committed"
        } else {
            "committed"
        },
        match (replayed, answered_before_the_kill) {
            (true, _) => "its answer kept",
            (false, true) => "answered but its answer not kept",
            (false, false) => "not answered",
        },
        midway["processed"],
        midway["total"],
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.text, retry.text, "a second retry replays the answer");
    assert_eq!(
        server.tagged(&key, "batch").await,
        BATCH_ROWS as u64,
        "once, never twice"
    );

    let deadline = Instant::now() + PATIENCE;
    let done = loop {
        let job = server.get(&job_path, &key).await.json();
        if job["status"] == "completed" || job["status"] == "failed" {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "the import never finished: {job}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let imported = server.tagged(&key, "import").await;
    assert!(done["processed"].as_i64() >= midway["processed"].as_i64());
    if done["status"] == "completed" {
        assert_eq!(done["processed"], IMPORT_ROWS, "{done}");
        assert_eq!(done["created"], IMPORT_ROWS, "{done}");
        assert_eq!(done["failed"], 0, "{done}");
        assert_eq!(imported, IMPORT_ROWS as u64, "every row once: {done}");
    } else {
        // Failed cleanly: what was written is what its progress says, whole rows only.
        assert_eq!(Some(imported as i64), done["created"].as_i64(), "{done}");
    }

    // The change feed: every change once, numbered without holes, one `created` per contact.
    let events = whole_feed(&server, &key).await;
    let cursors: Vec<i64> = events
        .iter()
        .map(|e| e["cursor"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(
        cursors.windows(2).all(|w| w[1] == w[0] + 1),
        "cursors rise one by one: {cursors:?}"
    );
    let created: Vec<&str> = events
        .iter()
        .filter(|e| e["object"] == "contact" && e["action"] == "created")
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let contacts = every_contact(&server, &key).await;
    assert_eq!(contacts.len() as u64, 5 + BATCH_ROWS as u64 + imported);
    assert_eq!(
        created.iter().copied().collect::<HashSet<_>>().len(),
        created.len(),
        "no contact created twice in the feed"
    );
    assert_eq!(
        created
            .iter()
            .map(|id| (*id).to_owned())
            .collect::<HashSet<_>>(),
        contacts.into_iter().collect::<HashSet<_>>(),
        "one created event per contact that exists"
    );

    // The webhook: every event, as one delivery each (a delivery cut short by a kill may come
    // again under its id), signed, and each record's events in order.
    receiver
        .wait_for(PATIENCE.as_secs(), "every event delivered", |received| {
            received
                .iter()
                .filter(|r| r.answered == 200)
                .map(|r| &r.delivery_header)
                .collect::<HashSet<_>>()
                .len()
                >= events.len()
        })
        .await;
    let mut deliveries: HashMap<String, i64> = HashMap::new();
    let mut order: HashMap<String, Vec<i64>> = HashMap::new();
    for received in receiver.accepted() {
        assert!(received.signed_with(&secret), "signed");
        let body = received.json();
        let cursor: i64 = body["cursor"].as_str().unwrap().parse().unwrap();
        assert_eq!(body["delivery_id"], received.delivery_header.as_str());
        match deliveries.get(&received.delivery_header) {
            Some(first) => assert_eq!(*first, cursor, "a delivery sent again is the same event"),
            None => {
                deliveries.insert(received.delivery_header.clone(), cursor);
                order
                    .entry(body["id"].as_str().unwrap().to_owned())
                    .or_default()
                    .push(cursor);
            }
        }
    }
    let delivered: Vec<i64> = deliveries.values().copied().collect();
    assert_eq!(
        delivered.iter().copied().collect::<HashSet<_>>(),
        cursors.iter().copied().collect::<HashSet<_>>(),
        "every event delivered"
    );
    assert_eq!(delivered.len(), cursors.len(), "no event in two deliveries");
    for (record, cursors) in &order {
        assert!(
            cursors.windows(2).all(|w| w[0] < w[1]),
            "{record}'s events arrived out of order: {cursors:?}"
        );
    }
}
