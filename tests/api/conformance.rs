//! The conformance suite: every object the engine serves, tested by being declared. Records
//! are made from each declaration's fields, and every capability the engine gives an object is
//! proved through the API on both backends: create, read, patch with If-Match, history,
//! lists with every sort and their cursors, `q`, filter-tree search, upsert by each natural
//! key, batches with a bad row, Idempotency-Key replay, delete and restore, the change feed,
//! and an export imported back unchanged.

use std::collections::{HashMap, HashSet};

use rapport_domain::ObjectType;
use rapport_domain::kit::record::writable;
use rapport_domain::kit::{FieldKind, FieldSpec, ObjectSpec};
use rapport_domain::objects::engine_objects;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::helpers::TestApp;
use crate::imports::finished;

/// A record of each object the samples refer to, by object.
type Refs = HashMap<ObjectType, String>;

/// A value of a field's kind, different for each `n` where the kind allows; None for kinds
/// a sample record leaves out, and for what Rapport computes.
fn sample(field: &FieldSpec, n: usize, refs: &Refs) -> Option<Value> {
    let day = n % 28 + 1;
    if field.computed || field.read_only {
        return None;
    }
    Some(match field.kind {
        FieldKind::Text { max_chars } => {
            let text: String = format!("{} {n} 样", field.name)
                .chars()
                .take(max_chars)
                .collect();
            json!(text)
        }
        FieldKind::Url => json!(format!("https://s{n}.example/")),
        FieldKind::Domain => json!(format!("s{n}.example")),
        FieldKind::Currency => json!("CNY"),
        FieldKind::Country => json!("CN"),
        FieldKind::Enum(options) => json!(options[n % options.len()]),
        FieldKind::Integer { min, max } => json!((min.max(0) + n as i64).min(max)),
        FieldKind::Money => json!(100 * n as i64 + 1),
        FieldKind::Boolean => json!(n.is_multiple_of(2)),
        FieldKind::Date => json!(format!("2026-01-{day:02}")),
        FieldKind::Timestamp => json!(format!("2026-01-{day:02}T08:00:00Z")),
        FieldKind::Tags => json!([format!("t{}", n % 3)]),
        FieldKind::Email => json!(format!("s{n}@sample.example")),
        FieldKind::Locale => json!("zh-CN"),
        FieldKind::TimeZone => json!("Asia/Shanghai"),
        FieldKind::Reference(object) => json!(refs.get(&object)?),
        // What the API shows of these must survive an export and its import unchanged too.
        FieldKind::Phone => json!(format!("+86 571 8888 {:04}", 6600 + n)),
        FieldKind::Phones => json!([
            {"number": format!("+86 138 0013 {:04}", 8000 + n), "kind": "mobile"},
            {"number": format!("0571 8888 {:04}", 6600 + n), "kind": "work"}
        ]),
        FieldKind::Emails => json!([format!("s{n}.alt@sample.example")]),
        FieldKind::Address => json!({"street": format!("西湖路 {n} 号"), "city": "杭州",
            "region": "浙江", "postal_code": "310000", "country": "CN"}),
        FieldKind::Consent => {
            json!({"email": {"status": "opted_in"}, "sms": {"status": "opted_out"}})
        }
        FieldKind::Lines(line_fields) => {
            let line: Map<String, Value> = line_fields
                .iter()
                .filter_map(|f| sample(f, n, refs).map(|v| (f.name.to_string(), v)))
                .collect();
            json!([line])
        }
        _ => return None,
    })
}

/// One record of each object `spec`'s references name (and theirs), made from their
/// declarations.
async fn referenced(app: &TestApp, token: &str, spec: &ObjectSpec, refs: &mut Refs, n: usize) {
    let mut wanted = Vec::new();
    for field in spec.fields.iter() {
        match field.kind {
            FieldKind::Reference(object) => wanted.push(object),
            FieldKind::Lines(line_fields) => {
                wanted.extend(line_fields.iter().filter_map(|f| match f.kind {
                    FieldKind::Reference(object) => Some(object),
                    _ => None,
                }))
            }
            _ => {}
        }
    }
    for object in wanted {
        if object == spec.object || refs.contains_key(&object) {
            continue;
        }
        // References to what is no declared object (a user) stay out of the samples.
        let Some(target) = rapport_domain::objects::spec(object) else {
            continue;
        };
        Box::pin(referenced(app, token, target, refs, n + 1)).await;
        let mut record = body(target, n, refs);
        if let Some(values) = record.as_object_mut() {
            values.remove("custom");
        }
        let created = app
            .post_as(&format!("/v1/{}", target.plural), token, &record)
            .await;
        assert_eq!(
            created.status, 201,
            "{object} for a reference: {}",
            created.text
        );
        refs.insert(object, created.json()["id"].as_str().unwrap().to_owned());
    }
}

/// Whether `actual` has every value of `expected` (objects: every key of it; lists: item by
/// item), so that what Rapport adds (a line's total) does not count.
fn has(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            e.iter().all(|(k, v)| a.get(k).is_some_and(|x| has(x, v)))
        }
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(x, v)| has(x, v))
        }
        _ => actual == expected,
    }
}

/// A record to create: every writable field with its sample, and the custom field `score`
/// (see `conforms`) where the object has custom fields.
fn body(spec: &ObjectSpec, n: usize, refs: &Refs) -> Value {
    let mut values: Map<String, Value> = writable(spec)
        .filter_map(|field| sample(field, n, refs).map(|value| (field.name.to_string(), value)))
        .collect();
    if spec.capabilities.custom_fields {
        values.insert("custom".into(), json!({"score": n}));
    }
    Value::Object(values)
}

/// A field a patch can change to another valid value: optional, not a natural key, text or
/// one of a set (text first).
fn changeable(spec: &ObjectSpec) -> &FieldSpec {
    let optional =
        |f: &&FieldSpec| !f.required && !f.unique && !f.computed && f.name != "external_id";
    writable(spec)
        .filter(optional)
        .find(|f| matches!(f.kind, FieldKind::Text { .. }))
        .or_else(|| {
            writable(spec)
                .filter(optional)
                .find(|f| matches!(f.kind, FieldKind::Enum(_)))
        })
        .unwrap_or_else(|| panic!("{}: no optional text or enum field to change", spec.object))
}

/// Another valid value of a changeable field than `current`, marked with `mark` where the
/// kind allows.
fn other_value(field: &FieldSpec, current: &Value, mark: &str) -> Value {
    match field.kind {
        FieldKind::Enum(options) => json!(options.iter().find(|o| current != **o).unwrap()),
        _ => json!(format!("{mark} 改")),
    }
}

fn ids(page: &Value) -> Vec<String> {
    TestApp::ids(page)
}

/// The ids of a list walked one record per page, following the cursors.
async fn walk(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}&limit=1&cursor={c}"),
            None => format!("{path}&limit=1"),
        };
        let page = app.get_as(&url, token).await;
        assert_eq!(page.status, 200, "{url}: {}", page.text);
        let page = page.json();
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seen,
        }
        assert!(seen.len() < 50, "{path}: the cursors do not end");
    }
}

both_backends!(
    every_engine_object_has_every_capability,
    crate::imports::fast_imports
);
async fn every_engine_object_has_every_capability(app: TestApp) {
    let owner = app.signup("Acme", "owner@acme.example").await;
    for spec in engine_objects() {
        conforms(&app, &owner, spec).await;
    }
}

async fn conforms(app: &TestApp, owner: &crate::helpers::Session, spec: &ObjectSpec) {
    let token = owner.access_token.as_str();
    let object = spec.object.as_str();
    let mut refs = Refs::new();
    // Each object's referenced records get their own numbers (unique values stay unique).
    let position = rapport_domain::objects::REGISTRY
        .iter()
        .position(|s| s.object == spec.object)
        .unwrap_or_default();
    referenced(app, token, spec, &mut refs, 1000 + 10 * position).await;
    let body = |spec: &ObjectSpec, n: usize| body(spec, n, &refs);
    let base = format!("/v1/{}", spec.plural);
    if spec.capabilities.custom_fields {
        app.create(
            token,
            "/v1/custom-fields",
            json!({"object": object, "key": "score", "label": "Score", "type": "integer"}),
        )
        .await;
    }

    // Create and read.
    let mut records = Vec::new();
    for n in 1..=3 {
        let created = app.post_as(&base, token, &body(spec, n)).await;
        assert_eq!(created.status, 201, "{object}: {}", created.text);
        assert_eq!(created.header("etag"), Some("\"1\""), "{object}");
        let record = created.json();
        let path = format!("{base}/{}", record["id"].as_str().unwrap());
        assert_eq!(created.header("location"), Some(path.as_str()), "{object}");
        for (field, value) in body(spec, n).as_object().unwrap() {
            if spec.field(field).is_none_or(|f| f.kind != FieldKind::Url) {
                assert!(
                    has(&record[field], value),
                    "{object}.{field}: {} for {value}",
                    record[field]
                );
            }
        }
        assert_eq!(app.get_as(&path, token).await.json(), record, "{object}");
        if spec.capabilities.owned {
            assert_eq!(
                record["owner_id"],
                owner.user_id.as_str(),
                "{object}: the caller owns it"
            );
        }
        records.push(record);
    }
    let all: HashSet<String> = records
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    let first = records[0]["id"].as_str().unwrap().to_owned();
    let path = format!("{base}/{first}");

    // A patch with If-Match, a stale one, and the history of both.
    let field = changeable(spec);
    let changed_to = other_value(field, &records[0][field.name.as_ref()], "changed");
    let patch = json!({ field.name.as_ref(): changed_to });
    let stale = app
        .send(
            app.authed(Method::PATCH, &path, token)
                .header("If-Match", "\"9\"")
                .json(&patch),
        )
        .await;
    stale.assert_problem(412, "version_mismatch");
    let changed = app
        .send(
            app.authed(Method::PATCH, &path, token)
                .header("If-Match", "\"1\"")
                .json(&patch),
        )
        .await;
    assert_eq!(changed.status, 200, "{object}: {}", changed.text);
    assert_eq!(changed.json()[field.name.as_ref()], changed_to, "{object}");
    assert_eq!(changed.header("etag"), Some("\"2\""), "{object}");
    let history = app.get_as(&format!("{path}/history"), token).await.json();
    let actions: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["updated", "created"], "{object}");

    // Every sort, both ways, walked one record a page, is the order of one full page.
    let mut sorts: Vec<String> = spec
        .fields
        .iter()
        .filter(|f| f.sortable)
        .map(|f| f.name.to_string())
        .collect();
    sorts.push("created_at".into());
    if spec.capabilities.custom_fields {
        sorts.push("custom.score".into());
    }
    for sort in sorts.iter().flat_map(|s| [s.clone(), format!("-{s}")]) {
        let listed = format!("{base}?sort={sort}");
        let whole = ids(&app
            .get_as(&format!("{listed}&limit=200"), token)
            .await
            .json());
        assert_eq!(whole.len(), 3, "{object} sorted by {sort}");
        assert_eq!(walk(app, token, &listed).await, whole, "{object} by {sort}");
    }

    // `q` finds a record by each searchable field; the filter tree by id.
    let second = &records[1];
    for field in spec.fields.iter().filter(|f| f.searchable) {
        let Some(text) = second[field.name.as_ref()].as_str() else {
            continue;
        };
        let q: String = text.chars().take(12).collect();
        let found = ids(&app
            .get_as(&format!("{base}?q={}", escape(&q)), token)
            .await
            .json());
        assert!(
            found.contains(&second["id"].as_str().unwrap().to_owned()),
            "{object}: q over {}",
            field.name
        );
    }
    // A change of searched text is found by `q`, and the old text no longer finds it.
    if let Some(field) = spec
        .fields
        .iter()
        .find(|f| f.searchable && !f.read_only && matches!(f.kind, FieldKind::Text { .. }))
    {
        let id = second["id"].as_str().unwrap();
        let renamed = app
            .patch_as(
                &format!("{base}/{id}"),
                token,
                &json!({ field.name.as_ref(): "zq renamed 改名" }),
            )
            .await;
        assert_eq!(renamed.status, 200, "{object}: {}", renamed.text);
        let found = ids(&app
            .get_as(&format!("{base}?q={}", escape("renamed 改")), token)
            .await
            .json());
        assert_eq!(found, [id], "{object}: q over the new {}", field.name);
        let old = second[field.name.as_ref()].as_str().unwrap();
        let gone = ids(&app
            .get_as(&format!("{base}?q={}", escape(old)), token)
            .await
            .json());
        assert!(
            !gone.contains(&id.to_owned()),
            "{object}: q over the old {}",
            field.name
        );
    }
    let searched = app
        .post_as(
            &format!("{base}/search"),
            token,
            &json!({"filter": {"field": "id", "op": "eq", "value": second["id"]}}),
        )
        .await;
    assert_eq!(
        ids(&searched.json()),
        [second["id"].as_str().unwrap()],
        "{object}"
    );
    if spec.capabilities.custom_fields {
        let scored = app
            .post_as(
                &format!("{base}/search"),
                token,
                &json!({"filter": {"field": "custom.score", "op": "gte", "value": 2},
                    "sort": [{"field": "custom.score"}]}),
            )
            .await;
        let expected = [
            second["id"].as_str().unwrap(),
            records[2]["id"].as_str().unwrap(),
        ];
        assert_eq!(ids(&scored.json()), expected, "{object}");
    }

    // A unique field's value belongs to one live record (an email, ignoring case, names the
    // record that has it).
    for field in spec.fields.iter().filter(|f| f.unique) {
        let mut taken = body(spec, 9);
        taken[field.name.as_ref()] = records[0][field.name.as_ref()].clone();
        let refused = app.post_as(&base, token, &taken).await;
        let problem = if field.kind == FieldKind::Email {
            let problem = refused.assert_problem(409, "duplicate_email");
            assert_eq!(problem["existing_id"], records[0]["id"], "{object}");
            problem
        } else {
            refused.assert_problem(409, "conflict")
        };
        assert_eq!(
            problem["errors"][0]["field"],
            field.name.as_ref(),
            "{object}"
        );
    }

    // Upsert by each natural key: the same values are unchanged, a change updates.
    let third = &records[2];
    let third_id = third["id"].as_str().unwrap();
    let mut row = body(spec, 3);
    for key in spec.natural_keys.iter() {
        row[key.as_str()] = third[key.as_str()].clone();
        let batch = |row: Value| json!({"id_property": key.as_str(), "records": [row]});
        let same = app
            .post_as(&format!("{base}/batch/upsert"), token, &batch(row.clone()))
            .await
            .json();
        assert_eq!(
            same["results"][0]["status"], "unchanged",
            "{object} by {key:?}: {same}"
        );
        row[field.name.as_ref()] = other_value(
            field,
            &row[field.name.as_ref()],
            &format!("by {}", key.as_str()),
        );
        let updated = app
            .post_as(&format!("{base}/batch/upsert"), token, &batch(row.clone()))
            .await
            .json();
        if let Some(values) = row.as_object_mut() {
            values.remove("id");
        }
        assert_eq!(
            updated["results"][0]["status"], "updated",
            "{object} by {key:?}: {updated}"
        );
        assert_eq!(updated["results"][0]["id"], third_id, "{object} by {key:?}");
    }
    let external = third["external_id"].as_str().unwrap();
    let put = app
        .put_as(&format!("{base}/external/{external}"), token, &json!({}))
        .await;
    assert_eq!(put.status, 200, "{object}: {}", put.text);
    assert_eq!(put.json()["id"], third_id, "{object}");

    // A batch with a bad row writes the others, or nothing with all_or_none.
    let rows = json!([body(spec, 4), {"external_id": "bad-row", "no_such_field": 1}]);
    let strict = app
        .post_as(
            &format!("{base}/batch/upsert"),
            token,
            &json!({"id_property": "external_id", "all_or_none": true, "records": rows}),
        )
        .await
        .json();
    assert_eq!(
        strict["results"][1]["status"], "error",
        "{object}: {strict}"
    );
    let lenient = app
        .post_as(
            &format!("{base}/batch/upsert"),
            token,
            &json!({"id_property": "external_id", "records": rows}),
        )
        .await
        .json();
    assert_eq!(
        lenient["results"][0]["status"], "created",
        "{object}: {lenient}"
    );
    assert_eq!(lenient["results"][1]["status"], "error", "{object}");
    assert_eq!(
        lenient["results"][1]["error"]["errors"][0]["code"], "unknown_field",
        "{object}"
    );

    // An Idempotency-Key replays the first answer.
    let retry = || {
        app.authed(Method::POST, &base, token)
            .header("Idempotency-Key", format!("conformance-{object}"))
            .json(&body(spec, 5))
    };
    let once = app.send(retry()).await;
    let twice = app.send(retry()).await;
    assert_eq!(once.status, 201, "{object}: {}", once.text);
    assert_eq!(twice.status, 201, "{object}");
    assert_eq!(
        twice.header("idempotent-replayed"),
        Some("true"),
        "{object}"
    );
    assert_eq!(once.json()["id"], twice.json()["id"], "{object}");

    // Delete, the trash, restore.
    app.send(
        app.authed(Method::DELETE, &path, token)
            .header("If-Match", "\"1\""),
    )
    .await
    .assert_problem(412, "version_mismatch");
    assert_eq!(app.delete_as(&path, token).await.status, 204, "{object}");
    app.get_as(&path, token)
        .await
        .assert_problem(404, "not_found");
    let trash = ids(&app
        .get_as(&format!("{base}?deleted=true"), token)
        .await
        .json());
    assert_eq!(trash, std::slice::from_ref(&first), "{object}");
    let restored = app
        .post_as(&format!("{path}/restore"), token, &json!({}))
        .await;
    assert_eq!(restored.status, 200, "{object}: {}", restored.text);

    // The feed has every change of the record, in order.
    let feed = app
        .get_as(&format!("/v1/changes?objects={object}&limit=200"), token)
        .await
        .json();
    let changes: Vec<&str> = feed["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == first.as_str())
        .map(|c| c["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        changes,
        ["created", "updated", "deleted", "restored"],
        "{object}: {feed}"
    );

    // An export imports back unchanged, row for row.
    if spec.capabilities.export && spec.capabilities.import {
        let export = app
            .get_as(&format!("{base}/export?format=csv"), token)
            .await;
        assert_eq!(export.status, 200, "{object}: {}", export.text);
        let exported = export.text.lines().count() - 1;
        assert!(exported >= all.len(), "{object}");
        let job = app
            .post_as(
                "/v1/imports",
                token,
                &json!({"object": object, "id_property": "id", "csv": export.text}),
            )
            .await;
        assert_eq!(job.status, 202, "{object}: {}", job.text);
        let job = finished(app, token, job.json()["id"].as_str().unwrap(), 60).await;
        assert_eq!(job["status"], "completed", "{object}: {job}");
        assert_eq!(job["unchanged"], exported, "{object}: {job}");
        assert_eq!(job["failed"], 0, "{object}");
    }

    // Where the object merges: two records sharing a matching value are likely duplicates,
    // and merging one into the other leaves a pointer behind.
    if spec.capabilities.merge {
        let (shared, twin_value, reason) = spec
            .fields
            .iter()
            .filter(|f| f.matching && !f.unique)
            .find_map(|f| match f.kind {
                FieldKind::Text { .. } => {
                    Some((f, json!("Twin 双胞胎"), format!("same_{}", f.name)))
                }
                FieldKind::Emails => {
                    Some((f, json!(["twin@sample.example"]), "same_email".to_owned()))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{object}: no matching text or emails field"));
        let mut twins = Vec::new();
        for n in [20, 21] {
            let mut twin = body(spec, n);
            twin[shared.name.as_ref()] = twin_value.clone();
            twins.push(
                app.create(token, &base, twin).await["id"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        let found = app
            .get_as(&format!("{base}/{}/duplicates", twins[0]), token)
            .await
            .json();
        let named: Vec<&Value> = found["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["record"]["id"] == twins[1].as_str())
            .collect();
        assert_eq!(named.len(), 1, "{object}: {found}");
        assert!(
            named[0]["reasons"]
                .as_array()
                .unwrap()
                .contains(&json!(reason)),
            "{object}: {found}"
        );
        let merged = app
            .post_as(
                &format!("{base}/merge"),
                token,
                &json!({"primary_id": twins[0], "duplicate_ids": [twins[1]]}),
            )
            .await;
        assert_eq!(merged.status, 200, "{object}: {}", merged.text);
        assert_eq!(merged.json()["merged"]["id"], twins[0].as_str(), "{object}");
        let gone = app.get_as(&format!("{base}/{}", twins[1]), token).await;
        let problem = gone.assert_problem(404, "record_merged");
        assert_eq!(problem["merged_into"], twins[0].as_str(), "{object}");
    }
}

/// Text as a query-string value: unreserved characters as they are, the rest percent-encoded.
fn escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
