//! CSV imports: upload checks, typed cells, per-row errors with line numbers, re-imports that
//! update, a job resumed after its worker stopped, and 100,000 rows.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse};

/// A `multipart/form-data` body: (name, file name, bytes) per part.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = format!("rapport-test-{}", uuid::Uuid::now_v7().simple());
    let mut body = Vec::new();
    for (name, file_name, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(app: &TestApp, token: &str, parts: &[(&str, Option<&str>, &[u8])]) -> TestResponse {
    let (content_type, body) = multipart(parts);
    app.send(
        app.authed(Method::POST, "/v1/imports", token)
            .header("content-type", content_type)
            .body(body),
    )
    .await
}

/// Waits until the job has finished; answers it.
pub async fn finished(app: &TestApp, token: &str, id: &str, seconds: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let job = app.get_as(&format!("/v1/imports/{id}"), token).await.json();
        if job["status"] == "completed" || job["status"] == "failed" {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "the import did not finish: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn fast_imports(config: &mut rapport::Config) {
    config.imports.poll = Duration::from_millis(20);
}

both_backends!(
    a_csv_with_a_bom_quoted_newlines_chinese_and_bad_rows_imports_the_good_ones,
    super::fast_imports
);
async fn a_csv_with_a_bom_quoted_newlines_chinese_and_bad_rows_imports_the_good_ones(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(
        token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "score", "label": "Score", "type": "integer"}),
    )
    .await;
    let csv = "\u{feff}E-mail,Name,Title,Tags,Score,City\n\
               wang@c.example,王安,\"Purchasing,\nEast China\",vip;east,7,上海\n\
               not-an-email,Li,CTO,,,\n\
               zhao@c.example,赵,Buyer,,x,\n\
               qian@c.example,钱,Buyer,,,北京,extra\n\
               sun@c.example,孙,,,,\n";
    let mapping = r#"{"E-mail": "email", "Name": "first_name", "Title": "title", "Tags": "tags", "Score": "custom.score", "City": "address.city"}"#;

    let response = upload(
        &app,
        token,
        &[
            ("object", None, b"contact"),
            ("id_property", None, b"email"),
            ("mapping", None, mapping.as_bytes()),
            ("file", Some("contacts.csv"), csv.as_bytes()),
        ],
    )
    .await;
    assert_eq!(response.status, 202, "{}", response.text);
    let id = response.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        response.header("location"),
        Some(format!("/v1/imports/{id}").as_str())
    );
    let job = finished(&app, token, &id, 60).await;
    let errors = app
        .get_as(&format!("/v1/imports/{id}/errors"), token)
        .await
        .json();
    let wang = app
        .get_as("/v1/contacts?q=wang%40c.example", token)
        .await
        .json()["data"][0]
        .clone();

    assert_eq!(response.json()["status"], "queued");
    assert_eq!(response.json()["file_name"], "contacts.csv");
    assert_eq!(job["status"], "completed");
    assert_eq!(
        (job["total"].as_i64(), job["processed"].as_i64()),
        (Some(5), Some(5))
    );
    assert_eq!(
        (job["created"].as_i64(), job["failed"].as_i64()),
        (Some(2), Some(3))
    );
    let summary: Vec<(i64, i64, Value, String)> = errors["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_i64().unwrap(),
                e["line"].as_i64().unwrap(),
                e["field"].clone(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (2, 4, json!("email"), "invalid_value".to_owned()),
            (3, 5, json!("custom.score"), "invalid_type".to_owned()),
            (4, 6, Value::Null, "column_count".to_owned()),
        ],
        "{errors}"
    );
    assert_eq!(wang["first_name"], "王安");
    assert_eq!(wang["title"], "Purchasing,\nEast China");
    assert_eq!(wang["tags"], json!(["vip", "east"]));
    assert_eq!(wang["custom"]["score"], 7);
    assert_eq!(wang["address"]["city"], "上海");
}

both_backends!(
    a_re_import_updates_what_changed_and_writes_the_same_events_as_the_api,
    super::fast_imports
);
async fn a_re_import_updates_what_changed_and_writes_the_same_events_as_the_api(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let (key_id, key) = app.api_key(&owner, &["*"]).await;
    let first =
        "sku,name,unit_price_minor,currency,active\nTEA-1,Tea,100,CNY,yes\nCUP-1,Cup,50,CNY,no\n";
    let second = "sku,name,unit_price_minor,currency,active\nTEA-1,Tea,120,CNY,yes\nCUP-1,Cup,50,CNY,no\nPOT-1,Pot,900,CNY,true\n";

    let one = app
        .post_as(
            "/v1/imports",
            &key,
            &json!({"object": "product", "id_property": "sku", "csv": first}),
        )
        .await;
    let one = finished(&app, &key, one.json()["id"].as_str().unwrap(), 60).await;
    let two = app
        .post_as(
            "/v1/imports",
            &key,
            &json!({"object": "product", "id_property": "sku", "csv": second}),
        )
        .await;
    let two = finished(&app, &key, two.json()["id"].as_str().unwrap(), 60).await;
    let tea = app.get_as("/v1/products/external/x", &key).await;
    let listed = app.get_as("/v1/products?sort=name", &key).await.json();
    let feed = app.get_as("/v1/changes?objects=product", &key).await.json();

    assert_eq!(
        (one["created"].as_i64(), one["failed"].as_i64()),
        (Some(2), Some(0))
    );
    assert_eq!(
        (
            two["created"].as_i64(),
            two["updated"].as_i64(),
            two["unchanged"].as_i64()
        ),
        (Some(1), Some(1), Some(1))
    );
    tea.assert_problem(404, "not_found");
    let prices: Vec<(String, i64, bool)> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["sku"].as_str().unwrap().to_owned(),
                p["unit_price_minor"].as_i64().unwrap(),
                p["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        prices,
        [
            ("CUP-1".to_owned(), 50, false),
            ("POT-1".to_owned(), 900, true),
            ("TEA-1".to_owned(), 120, true)
        ]
    );
    let events = feed["data"].as_array().unwrap();
    assert_eq!(events.len(), 4, "three created, one updated: {feed}");
    assert!(
        events
            .iter()
            .all(|e| e["origin"] == json!({"type": "api_key", "id": key_id}))
    );
}

both_backends!(
    an_upload_is_checked_before_it_is_queued,
    super::fast_imports
);
async fn an_upload_is_checked_before_it_is_queued(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let sales = app.member(&owner, "sales@acme.example", "sales").await;
    let viewer = app.member(&owner, "viewer@acme.example", "viewer").await;
    let csv = b"email,first_name\na@c.example,A\n";

    let cases: Vec<(TestResponse, u16, &str, &str)> = vec![
        (
            upload(
                &app,
                token,
                &[("object", None, b"contacts"), ("file", Some("c.csv"), csv)],
            )
            .await,
            422,
            "validation_failed",
            "object",
        ),
        (
            upload(&app, token, &[("object", None, b"contact")]).await,
            422,
            "validation_failed",
            "file",
        ),
        (
            upload(
                &app,
                token,
                &[
                    ("object", None, b"contact"),
                    ("file", Some("c.csv"), b"email,shoe_size\na@c.example,42\n"),
                ],
            )
            .await,
            422,
            "validation_failed",
            "file.columns.shoe_size",
        ),
        (
            upload(
                &app,
                token,
                &[
                    ("object", None, b"contact"),
                    ("mapping", None, br#"{"email": "mail"}"#),
                    ("file", Some("c.csv"), csv),
                ],
            )
            .await,
            422,
            "validation_failed",
            "mapping.email",
        ),
        (
            upload(
                &app,
                token,
                &[
                    ("object", None, b"contact"),
                    // Not UTF-8, and no byte-order mark says otherwise.
                    ("file", Some("c.csv"), b"email,first_name\n\xc3\x28,A\n"),
                ],
            )
            .await,
            422,
            "validation_failed",
            "file",
        ),
        (
            upload(
                &app,
                token,
                &[
                    ("object", None, b"contact"),
                    ("id_property", None, b"sku"),
                    ("file", Some("c.csv"), csv),
                ],
            )
            .await,
            422,
            "validation_failed",
            "id_property",
        ),
        (
            upload(
                &app,
                token,
                &[
                    ("object", None, b"contact"),
                    ("id_property", None, b"external_id"),
                    ("file", Some("c.csv"), csv),
                ],
            )
            .await,
            422,
            "validation_failed",
            "id_property",
        ),
        (
            upload(
                &app,
                token,
                &[
                    ("object", None, b"contact"),
                    ("colour", None, b"red"),
                    ("file", Some("c.csv"), csv),
                ],
            )
            .await,
            422,
            "validation_failed",
            "colour",
        ),
        (
            upload(
                &app,
                &sales.access_token,
                &[
                    ("object", None, b"product"),
                    ("file", Some("p.csv"), b"sku,name\nA,A\n"),
                ],
            )
            .await,
            403,
            "forbidden",
            "",
        ),
        (
            upload(
                &app,
                &viewer.access_token,
                &[("object", None, b"contact"), ("file", Some("c.csv"), csv)],
            )
            .await,
            403,
            "forbidden",
            "",
        ),
    ];
    let plain = app.post_raw("/v1/imports", Some("text/csv"), "a,b\n").await;

    for (response, status, code, field) in &cases {
        let problem = response.assert_problem(*status, code);
        if !field.is_empty() {
            assert_eq!(problem["errors"][0]["field"], *field, "{problem}");
        }
    }
    plain.assert_problem(401, "unauthenticated");
    assert_eq!(
        app.get_as("/v1/imports", token).await.json()["data"],
        json!([]),
        "nothing queued"
    );
}

both_backends!(
    a_job_whose_worker_stopped_resumes_without_writing_a_row_twice,
    |config| config.imports.enabled = false
);
async fn a_job_whose_worker_stopped_resumes_without_writing_a_row_twice(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let mut csv = String::from("first_name,last_name\n");
    for i in 0..1000 {
        csv.push_str(&format!("P{i},Import\n"));
    }
    let job = app
        .post_as(
            "/v1/imports",
            token,
            &json!({"object": "contact", "csv": csv}),
        )
        .await
        .json();
    let id = job["id"].as_str().unwrap().to_owned();

    // A worker writes three chunks of 100, then its process stops.
    let settings = rapport::imports::ImportSettings {
        chunk: 100,
        ..Default::default()
    };
    let store: &dyn rapport_domain::Store = &app.store;
    rapport::imports::work(store, settings, Some(3))
        .await
        .unwrap();
    let midway = app.get_as(&format!("/v1/imports/{id}"), token).await.json();
    // Its claim lapses; another process picks the job up.
    app.execute_sql("update imports set lease_until = '2000-01-01T00:00:00+00:00'")
        .await;
    app.spawn_sibling(|config| config.imports.poll = Duration::from_millis(20))
        .await;
    let done = finished(&app, token, &id, 120).await;
    let contacts = app
        .get_as("/v1/contacts?include=total&limit=1", token)
        .await
        .json();

    assert_eq!(midway["status"], "running");
    assert_eq!(midway["processed"], 300);
    assert_eq!(midway["created"], 300);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["created"], 1000);
    assert_eq!(
        contacts["total"], 1000,
        "every row once, though none has a key to find it by"
    );
}

both_backends!(an_import_of_100000_rows_completes, super::fast_imports);
async fn an_import_of_100000_rows_completes(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let mut csv = String::with_capacity(7_000_000);
    csv.push_str("external_id,email,first_name,last_name,tags\n");
    for i in 0..100_000 {
        csv.push_str(&format!(
            "ERP-{i},p{i}@customer.example,名{i},Li,vip;east\n"
        ));
    }
    csv.push_str("ERP-bad,not-an-email,X,Y,\n");

    let response = upload(
        &app,
        token,
        &[
            ("object", None, b"contact"),
            ("id_property", None, b"external_id"),
            ("file", Some("contacts.csv"), csv.as_bytes()),
        ],
    )
    .await;
    assert_eq!(response.status, 202, "{}", response.text);
    let job = finished(&app, token, response.json()["id"].as_str().unwrap(), 900).await;
    let contacts = app
        .get_as("/v1/contacts?include=total&limit=1", token)
        .await
        .json();
    let last = app
        .get_as("/v1/contacts/external/ERP-99999", token)
        .await
        .json();

    assert_eq!(job["status"], "completed", "{job}");
    assert_eq!(job["total"], 100_001);
    assert_eq!(job["created"], 100_000);
    assert_eq!(job["failed"], 1);
    assert_eq!(contacts["total"], 100_000);
    assert_eq!(last["first_name"], "名99999");
}

both_backends!(
    a_chinese_excel_csv_imports_in_its_encoding_and_a_bom_export_imports_back,
    super::fast_imports
);
async fn a_chinese_excel_csv_imports_in_its_encoding_and_a_bom_export_imports_back(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    let text = "email,first_name,last_name,title\r\nwang@c.example,安,王,采购经理\r\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(text);
    let zhao = text.replace("wang", "zhao");
    let (gb18030, _, _) = encoding_rs::GB18030.encode(&zhao);
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(
        text.replace("wang", "qian")
            .encode_utf16()
            .flat_map(u16::to_le_bytes),
    );

    // Saved by Excel as "CSV" on Chinese Windows, sent without saying so: refused, with what
    // to do.
    let refused = upload(
        &app,
        token,
        &[("object", None, b"contact"), ("file", Some("c.csv"), &gbk)],
    )
    .await;
    let problem = refused.assert_problem(422, "validation_failed");
    assert_eq!(problem["errors"][0]["field"], "file");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("encoding"),
        "{problem}"
    );
    let unknown = upload(
        &app,
        token,
        &[
            ("object", None, b"contact"),
            ("encoding", None, b"latin-1"),
            ("file", Some("c.csv"), &gbk),
        ],
    )
    .await;
    assert_eq!(
        unknown.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "encoding"
    );

    for (encoding, file) in [
        ("gbk", gbk.to_vec()),
        ("GB18030", gb18030.to_vec()),
        // UTF-16 says so with its byte-order mark, whatever the upload names.
        ("utf-8", utf16),
    ] {
        let response = upload(
            &app,
            token,
            &[
                ("object", None, b"contact"),
                ("encoding", None, encoding.as_bytes()),
                ("file", Some("c.csv"), &file),
            ],
        )
        .await;
        assert_eq!(response.status, 202, "{encoding}: {}", response.text);
        let id = response.json()["id"].as_str().unwrap().to_owned();
        let job = finished(&app, token, &id, 60).await;
        assert_eq!(job["created"], 1, "{encoding}: {job}");
    }
    for email in ["wang@c.example", "zhao@c.example", "qian@c.example"] {
        let found = app
            .get_as(
                &format!("/v1/contacts?q={}", email.replace('@', "%40")),
                token,
            )
            .await
            .json();
        assert_eq!(found["data"][0]["name"], "王安", "{email}: {found}");
        assert_eq!(found["data"][0]["title"], "采购经理");
    }

    // `bom=true` starts the CSV with the UTF-8 mark Excel looks for; the file imports back.
    let export = app
        .get_as("/v1/contacts/export?format=csv&bom=true", token)
        .await;
    assert_eq!(export.status, 200, "{}", export.text);
    assert!(export.text.starts_with("\u{feff}id,"), "{}", export.text);
    let plain = app.get_as("/v1/contacts/export?format=csv", token).await;
    assert!(plain.text.starts_with("id,"));
    let ndjson = app
        .get_as("/v1/contacts/export?format=ndjson&bom=true", token)
        .await;
    assert_eq!(
        ndjson.assert_problem(422, "validation_failed")["errors"][0]["field"],
        "bom"
    );
    let response = upload(
        &app,
        token,
        &[
            ("object", None, b"contact"),
            ("id_property", None, b"id"),
            ("file", Some("export.csv"), export.text.as_bytes()),
        ],
    )
    .await;
    assert_eq!(response.status, 202, "{}", response.text);
    let id = response.json()["id"].as_str().unwrap().to_owned();
    let job = finished(&app, token, &id, 60).await;
    assert_eq!(
        (job["failed"].as_i64(), job["created"].as_i64()),
        (Some(0), Some(0)),
        "{job}"
    );
}
