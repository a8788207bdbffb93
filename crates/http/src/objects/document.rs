//! The OpenAPI operations and schemas of the engine's objects, generated from their
//! declarations: a record schema, a create and a patch schema, a list, and the operations of
//! [`super::configure`]. The document's conventions (security, rate-limit and request-id
//! headers, Idempotency-Key, problem responses) are applied afterwards as for every route.

use rapport_domain::kit::ObjectSpec;
use serde_json::{Value, json};
use utoipa::openapi::OpenApi;
use utoipa::openapi::path::PathItem;

/// `competitor` → `Competitor`, `sla_policy` → `SlaPolicy`.
fn pascal(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
}

pub(super) fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

use super::schema::{body_schema, filter_schema, input_schema};

fn response_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// `a`, `a and b`, `a, b and c`.
fn listing(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn json_body(schema: Value) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema}}})
}

fn ok(description: &str, schema: Value) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": schema}}})
}

/// Adds every engine object's schemas, operations and tag to the document.
pub fn add(document: &mut OpenApi) {
    for spec in rapport_domain::objects::engine_objects() {
        add_object(document, spec);
    }
}

fn add_object(document: &mut OpenApi, spec: &'static ObjectSpec) {
    let one = spec.object.as_str();
    let many = spec.plural.as_ref();
    let name = pascal(one);
    let (body, input, patch, list) = (
        name.clone(),
        format!("{name}Input"),
        format!("{name}Patch"),
        format!("{name}List"),
    );
    let schemas = [
        (body.clone(), body_schema(spec)),
        (input.clone(), input_schema(spec, true)),
        (patch.clone(), input_schema(spec, false)),
        (
            list.clone(),
            json!({"type": "object", "required": ["data", "next_cursor"], "properties": {
                "data": {"type": "array", "items": schema_ref(&body)},
                "next_cursor": {"type": ["string", "null"], "description": "Where the next page starts; null on the last page."},
                "total": {"type": "integer", "format": "int64", "description": "The number of matching rows, with `include=total`."},
            }}),
        ),
    ];
    let components = document.components.get_or_insert_with(Default::default);
    for (key, schema) in schemas {
        if let Ok(schema) = serde_json::from_value(schema) {
            components.schemas.insert(key, schema);
        }
    }

    let tag = |summary: String, op: String, rest: Value| -> Value {
        let mut operation = json!({"tags": [many], "summary": summary, "operationId": op});
        if let (Some(target), Some(rest)) = (operation.as_object_mut(), rest.as_object()) {
            target.extend(rest.clone());
        }
        operation
    };
    let id_param = json!({"name": "id", "in": "path", "required": true,
        "description": format!("The {one}'s id."), "schema": {"type": "string", "format": "uuid"}});
    let if_match = |what: &str| {
        json!({"name": "If-Match", "in": "header", "required": false,
            "description": format!("The ETag the {what} is based on."), "schema": {"type": "string"}})
    };
    let external_param = json!({"name": "external_id", "in": "path", "required": true,
        "description": "Your system's id for the record.", "schema": {"type": "string", "maxLength": 255}});
    let query = |name: &str, description: &str, schema: Value| json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema});
    let sortable: Vec<String> = spec
        .fields
        .iter()
        .filter(|f| f.sortable)
        .map(|f| f.name.to_string())
        .collect();
    let searched: Vec<String> = spec
        .fields
        .iter()
        .filter(|f| f.searchable)
        .map(|f| f.name.to_string())
        .collect();
    let time = json!({"type": "string", "format": "date-time"});
    let mut filters: Vec<Value> = Vec::new();
    for f in spec.fields.iter().filter(|f| f.filterable) {
        match super::list::window(f) {
            Some((after, before)) => filters.extend([
                query(
                    &after,
                    &format!("Only records whose {} is at or after this.", f.name),
                    time.clone(),
                ),
                query(
                    &before,
                    &format!("Only records whose {} is before this.", f.name),
                    time.clone(),
                ),
            ]),
            None => filters.push(query(
                &f.name,
                &format!("Only records whose {} is this.", f.name),
                filter_schema(f.kind),
            )),
        }
    }
    if super::list::has_tags(spec) {
        filters.insert(
            0,
            query(
                "tag",
                "Only records with this tag.",
                json!({"type": "string"}),
            ),
        );
    }
    let paging = vec![
        query(
            "limit",
            "Rows per page, 1 to 200.",
            json!({"type": "integer", "format": "int32", "minimum": 1, "maximum": 200, "default": 50}),
        ),
        query(
            "cursor",
            "The `next_cursor` of the previous page.",
            json!({"type": "string", "minLength": 1}),
        ),
        query(
            "include",
            "`total` adds the number of matching rows to the answer.",
            json!({"type": "string", "pattern": "^total$"}),
        ),
    ];
    // What a list and an export select by: sort, `q`, the filters, the windows, the trash.
    let mut selection = vec![
        query(
            "sort",
            &format!(
                "Sort keys, comma-separated, `-` for descending: {}, custom.<key>. Default `-created_at`.",
                sortable.join(", ")
            ),
            json!({"type": "string"}),
        ),
        query(
            "q",
            &format!(
                "Case-insensitive substring search over {}.",
                listing(&searched)
            ),
            json!({"type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S"}),
        ),
    ];
    selection.extend(filters);
    selection.extend([
        query("created_after", "Created at or after.", time.clone()),
        query("created_before", "Created before.", time.clone()),
        query("updated_after", "Changed at or after.", time.clone()),
        query("updated_before", "Changed before.", time),
        query(
            "deleted",
            &format!("`true` lists the deleted {many} instead of the live ones."),
            json!({"type": "boolean"}),
        ),
    ]);
    let export_params: Vec<Value> = [
        query(
            "format",
            "`csv` (default) or `ndjson`.",
            json!({"type": "string", "enum": ["csv", "ndjson"]}),
        ),
        query(
            "bom",
            "`true` starts a CSV with the UTF-8 byte-order mark, so that Excel opens Chinese \
             (and any non-ASCII) text correctly.",
            json!({"type": "boolean", "default": false}),
        ),
    ]
    .into_iter()
    .chain(selection.iter().cloned())
    .collect();
    let history_params: Vec<Value> = std::iter::once(id_param.clone())
        .chain(paging.iter().cloned())
        .collect();
    // A computed list pages by `limit` and `cursor` too (it has no total).
    let duplicate_params: Vec<Value> = std::iter::once(id_param.clone())
        .chain(paging.iter().take(2).cloned())
        .collect();
    let list_params: Vec<Value> = paging.into_iter().chain(selection).collect();
    let record = schema_ref(&body);
    let mut under: Vec<(String, Value)> = Vec::new();
    for (field, parent) in super::listed_under(spec) {
        let parent_one = parent.object.as_str();
        let parent_id = json!({"name": "id", "in": "path", "required": true,
            "description": format!("The {parent_one}'s id."), "schema": {"type": "string", "format": "uuid"}});
        let params: Vec<Value> = std::iter::once(parent_id)
            .chain(list_params.iter().cloned())
            .collect();
        under.push((
            format!("/v1/{}/{{id}}/{many}", parent.plural),
            json!({
                "get": tag(format!("A {parent_one}'s {many}"), format!("list_{parent_one}_{many}"), json!({
                    "description": format!("The {many} whose `{}` is this {parent_one}; the same parameters as the list.", field.name),
                    "parameters": params,
                    "responses": {
                        "200": ok(&format!("A page of the {parent_one}'s {many}."), schema_ref(&list)),
                        "404": response_ref("NotFound"),
                    },
                })),
            }),
        ));
    }
    let mut paths = vec![
        (
            format!("/v1/{many}"),
            json!({
                "get": tag(format!("List {many}"), format!("list_{many}"), json!({
                    "parameters": list_params,
                    "responses": {"200": ok(&format!("A page of {many}."), schema_ref(&list))},
                })),
                "post": tag(format!("Create a {one}"), format!("create_{one}"), json!({
                    "requestBody": json_body(schema_ref(&input)),
                    "responses": {
                        "201": ok(&format!("The {one}."), record.clone()),
                        "409": response_ref("Conflict"),
                    },
                })),
            }),
        ),
        (
            format!("/v1/{many}/search"),
            json!({
                "post": tag(format!("Search {many} with a filter tree"), format!("search_{many}"), json!({
                    "requestBody": json_body(schema_ref("SearchRequest")),
                    "responses": {"200": ok(&format!("A page of matching {many}."), schema_ref(&list))},
                })),
            }),
        ),
        (
            format!("/v1/{many}/batch/upsert"),
            json!({
                "post": tag(format!("Create or change up to 1,000 {many}"), format!("batch_upsert_{many}"), json!({
                    "description": "Up to 1,000 records found by `id_property`: each created or updated (or left `unchanged`). One result per row in input order; with `all_or_none`, one failing row leaves the batch unwritten.",
                    "requestBody": json_body(schema_ref("BatchUpsertRequest")),
                    "responses": {"200": ok("One result per row.", schema_ref("BatchResponse"))},
                })),
            }),
        ),
        (
            format!("/v1/{many}/batch/delete"),
            json!({
                "post": tag(format!("Delete up to 1,000 {many}"), format!("batch_delete_{many}"), json!({
                    "requestBody": json_body(schema_ref("BatchDeleteRequest")),
                    "responses": {"200": ok("One result per row.", schema_ref("BatchResponse"))},
                })),
            }),
        ),
        (
            format!("/v1/{many}/external/{{external_id}}"),
            json!({
                "get": tag(format!("Read a {one} by external id"), format!("get_{one}_by_external_id"), json!({
                    "parameters": [external_param.clone()],
                    "responses": {"200": ok("The record.", record.clone()), "404": response_ref("NotFound")},
                })),
                "put": tag(format!("Create or change a {one} by external id"), format!("upsert_{one}_by_external_id"), json!({
                    "description": "Creates the record with this external id (201), or changes it (200) as a merge patch; an `external_id` in the body must equal the path's. Safe to retry.",
                    "parameters": [external_param],
                    "requestBody": json_body(schema_ref(&patch)),
                    "responses": {
                        "200": ok("The changed record.", record.clone()),
                        "201": ok("The created record.", record.clone()),
                        "409": response_ref("Conflict"),
                    },
                })),
            }),
        ),
        (
            format!("/v1/{many}/{{id}}"),
            json!({
                "get": tag(format!("Read a {one}"), format!("get_{one}"), json!({
                    "parameters": [id_param.clone()],
                    "responses": {"200": ok(&format!("The {one}."), record.clone()), "404": response_ref("NotFound")},
                })),
                "patch": tag(format!("Change a {one} (JSON merge patch)"), format!("update_{one}"), json!({
                    "parameters": [id_param.clone(), if_match("change")],
                    "requestBody": json_body(schema_ref(&patch)),
                    "responses": {
                        "200": ok(&format!("The changed {one}."), record.clone()),
                        "404": response_ref("NotFound"),
                        "409": response_ref("Conflict"),
                        "412": response_ref("VersionMismatch"),
                    },
                })),
                "delete": tag(format!("Delete a {one} (restorable)"), format!("delete_{one}"), json!({
                    "parameters": [id_param.clone(), if_match("deletion")],
                    "responses": {
                        "204": {"description": format!("The {one} is in the trash (`?deleted=true`).")},
                        "404": response_ref("NotFound"),
                        "412": response_ref("VersionMismatch"),
                    },
                })),
            }),
        ),
        (
            format!("/v1/{many}/{{id}}/restore"),
            json!({
                "post": tag(format!("Restore a deleted {one}"), format!("restore_{one}"), json!({
                    "parameters": [id_param.clone()],
                    "responses": {
                        "200": ok(&format!("The restored {one}."), record),
                        "404": response_ref("NotFound"),
                        "409": response_ref("Conflict"),
                    },
                })),
            }),
        ),
        (
            format!("/v1/{many}/{{id}}/history"),
            json!({
                "get": tag(format!("A {one}'s history"), format!("{one}_history"), json!({
                    "parameters": history_params,
                    "responses": {"200": ok("A page of changes, newest first.", schema_ref("HistoryList")), "404": response_ref("NotFound")},
                })),
            }),
        ),
    ];
    paths.extend(under);
    if spec.capabilities.merge {
        let reasons: Vec<String> = spec
            .fields
            .iter()
            .filter(|f| f.matching)
            .map(|f| format!("same_{}", f.name))
            .collect();
        let matching: Vec<String> = spec
            .fields
            .iter()
            .filter(|f| f.matching)
            .map(|f| f.name.to_string())
            .collect();
        let components = document.components.get_or_insert_with(Default::default);
        for (key, schema) in [
            (
                format!("{name}Duplicates"),
                json!({"type": "object", "description": "Likely duplicates, the likeliest first; `next_cursor` is null on the last page.",
                    "required": ["data", "next_cursor"], "properties": {
                    "data": {"type": "array", "items": {"type": "object", "required": ["reasons", "record"], "properties": {
                        "reasons": {"type": "array", "items": {"type": "string", "enum": reasons}},
                        "record": schema_ref(&body),
                    }}},
                    "next_cursor": {"type": ["string", "null"]},
                }}),
            ),
            (
                format!("{name}Merge"),
                json!({"type": "object", "description": "What a merge did (or, with `dry_run`, would do).",
                    "required": ["merged", "merged_ids", "changes", "dry_run"], "properties": {
                    "merged": schema_ref(&body),
                    "merged_ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
                    "changes": {"type": "object", "description": "The primary's changed fields.", "additionalProperties": schema_ref("ChangeBody")},
                    "dry_run": {"type": "boolean"},
                }}),
            ),
        ] {
            if let Ok(schema) = serde_json::from_value(schema) {
                components.schemas.insert(key, schema);
            }
        }
        paths.push((
            format!("/v1/{many}/{{id}}/duplicates"),
            json!({"get": tag(format!("Likely duplicates of a {one}"), format!("{one}_duplicates"), json!({
                "description": format!("Live {many} sharing a value with this one: {} (text ignoring case, a phone in E.164), with the reasons.", listing(&matching)),
                "parameters": duplicate_params,
                "responses": {"200": ok("Likely duplicates.", schema_ref(&format!("{name}Duplicates"))), "404": response_ref("NotFound"), "422": response_ref("ValidationFailed")},
            }))}),
        ));
        paths.push((
            format!("/v1/{many}/merge"),
            json!({"post": tag(format!("Merge duplicate {many} into one"), format!("merge_{many}"), json!({
                "description": "The primary's values win where present, empty ones are filled from the duplicates in order (an amount with its currency), tags and custom values unite, every record that named a duplicate names the primary, the duplicates are deleted with `merged_into`, and one `merged` event records it.",
                "requestBody": json_body(schema_ref("MergeRequest")),
                "responses": {"200": ok(&format!("The merged {one}."), schema_ref(&format!("{name}Merge"))), "404": response_ref("NotFound")},
            }))}),
        ));
    }
    if spec.capabilities.export {
        paths.push((
            format!("/v1/{many}/export"),
            json!({
                "get": tag(format!("Export {many}"), format!("export_{many}"), json!({
                    "description": "Every record the list with these filters would page through, streamed: CSV (a header line; lists joined with `;`; custom fields as `custom.<key>`) or NDJSON (one record per line as the API shows it). Owners, admins and managers export. A CSV text cell that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage return, or `'` before one of these) is written with a leading `'`; an import removes exactly that `'` again.",
                    "parameters": export_params,
                    "responses": {"200": {"description": "The records.", "content": {
                        "text/csv": {"schema": {"type": "string"}},
                        "application/x-ndjson": {"schema": {"type": "string"}},
                    }}},
                })),
            }),
        ));
    }
    for (path, item) in paths {
        match serde_json::from_value::<PathItem>(item) {
            Ok(item) => {
                document.paths.paths.insert(path, item);
            }
            Err(error) => tracing::error!(%error, %path, "cannot document an engine route"),
        }
    }
    let tags = document.tags.get_or_insert_with(Vec::new);
    if !tags.iter().any(|t| t.name == many) {
        let mut tag = utoipa::openapi::tag::Tag::new(many);
        tag.description = Some(spec.about.to_string());
        tags.push(tag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_engine_route_is_documented_with_its_schemas() {
        let mut document = OpenApi::default();
        add_object(&mut document, &rapport_domain::objects::competitor::SPEC);
        let paths: Vec<&String> = document.paths.paths.keys().collect();
        assert_eq!(paths.len(), 8, "{paths:?}");
        let schemas = &document.components.as_ref().unwrap().schemas;
        for name in [
            "Competitor",
            "CompetitorInput",
            "CompetitorPatch",
            "CompetitorList",
        ] {
            assert!(schemas.contains_key(name), "{name}");
        }
        let input = serde_json::to_value(&schemas["CompetitorInput"]).unwrap();
        assert_eq!(input["required"], json!(["name"]));
        assert_eq!(input["properties"]["notes"]["maxLength"], json!(5000));
        assert_eq!(pascal("sla_policy"), "SlaPolicy");
    }
}
