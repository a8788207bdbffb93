//! The OpenAPI document: generated from the routes (utoipa-actix-web collects every
//! `.service()`), then the conventions every operation shares are applied here, once — the
//! security schemes, the problem responses of the error table, the standard headers.

use actix_web::App;
use serde_json::json;
use utoipa::OpenApi;
use utoipa::openapi::Required;
use utoipa::openapi::header::{Header, HeaderBuilder};
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa_actix_web::AppExt;

use crate::error::{ErrorCode, FieldError, Problem, header_ref, problem_response};
use crate::routes::records::{ChangeBody, HistoryList, MergeRequest, SearchRequest};
use crate::routes::writes::{BatchDeleteRequest, BatchResponse, BatchUpsertRequest};

mod create_rules;

pub const BEARER_JWT: &str = "bearer_jwt";
pub const API_KEY: &str = "api_key";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Rapport",
        description = "Rapport is an API-first CRM: companies and contacts, the sales pipeline, \
interactions, service tickets, marketing and analytics behind one REST/JSON API.\n\n\
Conventions: JSON in `snake_case`; ids are UUIDs; times RFC 3339 UTC; money is integer minor \
units plus an ISO 4217 currency. Every error is an RFC 9457 problem document \
(`application/problem+json`) with a stable `code` and the `request_id` of the response's \
`X-Request-Id` header. Authenticate with `Authorization: Bearer <access token or API key>`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "auth", description = "Sign up, sign in, refresh and sign out. Access tokens are JWTs valid 15 minutes; refresh tokens rotate on every use."),
        (name = "me", description = "The signed-in user's own profile and password."),
        (name = "organization", description = "Your organization: its name and settings such as record visibility."),
        (name = "users", description = "The organization's users, their roles, teams and activation (owners and admins)."),
        (name = "teams", description = "Teams of users; a manager sees the records of the teams they manage."),
        (name = "api-keys", description = "API keys for scripts and integrations: `Authorization: Bearer rpk_…`."),
        (name = "audit-log", description = "Sign-ins, failed sign-ins, keys, roles and activation changes (owners and admins)."),
        (name = "contacts", description = "People: profiles, phones, consent, tags and custom fields; lists, search, history, duplicates and merge."),
        (name = "companies", description = "Companies (accounts) and their hierarchy; lists, search, history, duplicates and merge."),
        (name = "products", description = "The catalog order lines refer to: sku, price, warranty."),
        (name = "orders", description = "Purchase history: orders with lines, totals computed by Rapport; they keep contacts' and companies' purchase figures current."),
        (name = "changes", description = "The change feed: every committed change in commit order, resumable from a cursor; the log webhooks deliver from."),
        (name = "webhooks", description = "Signed, retried deliveries of the change feed's events to your URL, with every attempt on record (owners and admins)."),
        (name = "imports", description = "CSV imports as background jobs with progress and per-row errors; resumable across restarts."),
        (name = "custom-fields", description = "Custom field definitions per object: what `custom` may hold and how it is checked."),
        (name = "ops", description = "Liveness, readiness and metrics, for operators and orchestrators."),
        (name = "docs", description = "This document and its interactive reference."),
    ),
    servers((url = "/", description = "The server that serves this document")),
    components(schemas(
        Problem,
        FieldError,
        SearchRequest,
        BatchUpsertRequest,
        BatchDeleteRequest,
        BatchResponse,
        HistoryList,
        MergeRequest,
        ChangeBody,
    )),
)]
struct BaseDocument;

/// The whole document, as `GET /openapi.json` serves it and `openapi/openapi.json` keeps it.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, mut document) = App::new()
        .into_utoipa_app()
        .openapi(BaseDocument::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    create_rules::apply(&mut document);
    crate::objects::document::add(&mut document);
    apply_conventions(&mut document);
    document
}

/// The document as `GET /openapi.json` serves it, with the route table 405 answers read.
pub fn served() -> crate::state::ServedDocument {
    let document = document();
    crate::state::ServedDocument {
        routes: crate::fallback::RouteTable::from_document(&document),
        json: to_json(&document).into(),
    }
}

/// Pretty JSON with a final newline, byte for byte what is committed.
pub fn to_json(document: &utoipa::openapi::OpenApi) -> String {
    let mut text = serde_json::to_string_pretty(document)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise the document: {e}\"}}"));
    text.push('\n');
    text
}

fn integer_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        ))
        .description(Some(description))
        .build()
}

fn string_header(description: &str) -> Header {
    HeaderBuilder::new()
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .description(Some(description))
        .build()
}

fn apply_conventions(document: &mut utoipa::openapi::OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);

    components.security_schemes.insert(
        BEARER_JWT.into(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "An access token from `POST /v1/auth/login` or `/v1/auth/signup`, valid 15 minutes.",
                ))
                .build(),
        )),
    );
    components.security_schemes.insert(
        API_KEY.into(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("rpk_…")
                .description(Some(
                    "An API key (`rpk_…`) from `POST /v1/api-keys`, sent as a bearer token.",
                ))
                .build(),
        )),
    );

    let headers = [
        (
            "X-Request-Id",
            string_header(
                "The request's id: the client's `X-Request-Id` when it sent a sane one, else generated. Quote it when reporting a problem.",
            ),
        ),
        (
            "RateLimit-Limit",
            integer_header("Requests the credential may make per minute."),
        ),
        (
            "RateLimit-Remaining",
            integer_header("Requests left in the credential's bucket."),
        ),
        (
            "RateLimit-Reset",
            integer_header("Seconds until the bucket is full again."),
        ),
        (
            "Retry-After",
            integer_header("Seconds to wait before retrying."),
        ),
        ("Allow", string_header("The methods the path answers.")),
        (
            "ETag",
            string_header(
                "The record's version as a strong entity tag; send it back in `If-Match`.",
            ),
        ),
        ("Location", string_header("The URL of the created record.")),
        (
            "Idempotent-Replayed",
            string_header(
                "`true` when this is the stored answer to an earlier request with the same `Idempotency-Key`.",
            ),
        ),
    ];
    for (name, header) in headers {
        components.headers.insert(name.into(), RefOr::T(header));
    }

    for code in ErrorCode::ALL {
        components.responses.insert(
            code.response_name().into(),
            RefOr::T(problem_response(*code)),
        );
    }

    // `Problem.code` lists every code of the table.
    if let Some(RefOr::T(Schema::Object(problem))) = components.schemas.get_mut("Problem")
        && let Some(RefOr::T(Schema::Object(code))) = problem.properties.get_mut("code")
    {
        code.enum_values = Some(ErrorCode::ALL.iter().map(|c| json!(c.as_str())).collect());
    }

    // Records carry a version, and their responses an ETag.
    let versioned: std::collections::HashSet<String> = components
        .schemas
        .iter()
        .filter(|(_, schema)| {
            matches!(schema, RefOr::T(Schema::Object(object)) if object.properties.contains_key("version"))
        })
        .map(|(name, _)| format!("#/components/schemas/{name}"))
        .collect();

    for (path, item) in document.paths.paths.iter_mut() {
        for (method, operation) in [
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ] {
            if let Some(operation) = operation
                && path.starts_with("/v1/")
                && !path.starts_with("/v1/auth/")
            {
                document_idempotency(method, operation);
            }
        }
        for operation in operations_mut(item) {
            apply_operation_conventions(path, operation, &versioned);
        }
    }
    prune_unreferenced(document);
}

/// Drops the response and header components nothing refers to, so that the document
/// describes what this API does, not every error it could in principle name.
fn prune_unreferenced(document: &mut utoipa::openapi::OpenApi) {
    // Responses first: a pruned response may have been the only user of a header.
    let references = references_in(document);
    if let Some(components) = document.components.as_mut() {
        components
            .responses
            .retain(|name, _| references.contains(&format!("#/components/responses/{name}")));
    }
    let references = references_in(document);
    if let Some(components) = document.components.as_mut() {
        components
            .headers
            .retain(|name, _| references.contains(&format!("#/components/headers/{name}")));
    }
}

fn references_in(document: &utoipa::openapi::OpenApi) -> std::collections::HashSet<String> {
    let mut references = std::collections::HashSet::new();
    if let Ok(json) = serde_json::to_value(document) {
        collect_references(&json, &mut references);
    }
    references
}

fn collect_references(value: &serde_json::Value, out: &mut std::collections::HashSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, item) in map {
                match (key.as_str(), item) {
                    ("$ref", serde_json::Value::String(target)) => {
                        out.insert(target.clone());
                    }
                    _ => collect_references(item, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|i| collect_references(i, out)),
        _ => {}
    }
}

pub(crate) fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.options,
        &mut item.head,
        &mut item.patch,
        &mut item.trace,
    ]
    .into_iter()
    .flatten()
}

fn is_public(operation: &Operation) -> bool {
    matches!(&operation.security, Some(reqs) if reqs.iter().all(|r| *r == SecurityRequirement::default()))
}

/// Writes take an `Idempotency-Key`; their answers may be replays.
fn document_idempotency(method: &str, operation: &mut Operation) {
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(format!(
            "Makes a retried {} safe: the same key with the same request answers the first \
             response again (with `Idempotent-Replayed: true`), with another request 422 \
             `idempotency_key_reused`, while the first still runs 409 \
             `idempotency_request_in_progress`. Per credential, kept 24 hours. 1 to 255 \
             printable ASCII characters; a UUID is a good key.",
            method.to_uppercase()
        )))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(255))
                .pattern(Some("^[ -~]+$")),
        ))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(RefOr::T(parameter));
    let responses = &mut operation.responses.responses;
    responses.entry("409".to_owned()).or_insert_with(|| {
        RefOr::Ref(Ref::from_response_name(
            ErrorCode::IdempotencyRequestInProgress.response_name(),
        ))
    });
    responses.entry("422".to_owned()).or_insert_with(|| {
        RefOr::Ref(Ref::from_response_name(
            ErrorCode::IdempotencyKeyReused.response_name(),
        ))
    });
    for (status, response) in responses.iter_mut() {
        if let (true, RefOr::T(response)) = (status.starts_with('2'), response) {
            response
                .headers
                .entry("Idempotent-Replayed".into())
                .or_insert_with(|| RefOr::Ref(header_ref("Idempotent-Replayed")));
        }
    }
}

fn apply_operation_conventions(
    path: &str,
    operation: &mut Operation,
    versioned: &std::collections::HashSet<String>,
) {
    let public = is_public(operation);
    if operation.security.is_none() {
        operation.security = Some(vec![
            SecurityRequirement::new(BEARER_JWT, Vec::<String>::new()),
            SecurityRequirement::new(API_KEY, Vec::<String>::new()),
        ]);
    }
    let has_body = operation.request_body.is_some();
    let has_query = operation
        .parameters
        .iter()
        .flatten()
        .any(|p| matches!(p, RefOr::T(param) if param.parameter_in == ParameterIn::Query));

    let mut standard: Vec<(&str, ErrorCode)> = vec![("500", ErrorCode::Internal)];
    if !public {
        standard.extend([
            ("401", ErrorCode::Unauthenticated),
            ("403", ErrorCode::Forbidden),
            ("429", ErrorCode::RateLimited),
            ("503", ErrorCode::ServiceUnavailable),
        ]);
    }
    if has_body {
        standard.extend([
            ("400", ErrorCode::MalformedJson),
            ("408", ErrorCode::RequestTimeout),
            ("413", ErrorCode::PayloadTooLarge),
            ("415", ErrorCode::UnsupportedMediaType),
            ("422", ErrorCode::ValidationFailed),
        ]);
    }
    if has_query {
        standard.push(("422", ErrorCode::ValidationFailed));
    }
    if path.contains('{') {
        // A path parameter names a record, which may not exist (or be another tenant's), and
        // holds no character the database cannot store.
        standard.push(("404", ErrorCode::NotFound));
        standard.push(("422", ErrorCode::ValidationFailed));
    }
    if path.starts_with("/v1/") && public {
        // Public API operations (sign-up, login) are throttled too.
        standard.push(("429", ErrorCode::RateLimited));
    }
    let responses = &mut operation.responses.responses;
    for (status, code) in standard {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(code.response_name())));
    }

    // Every inline (success) response carries the request id, and the rate-limit headers
    // where a credential is metered; records carry their ETag, creations their Location.
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response {
            let is_record = response.content.values().any(|content| {
                matches!(content, RefOr::T(content)
                    if matches!(&content.schema, Some(RefOr::Ref(r)) if versioned.contains(&r.ref_location)))
            });
            if is_record && status.starts_with('2') {
                response
                    .headers
                    .entry("ETag".into())
                    .or_insert_with(|| RefOr::Ref(header_ref("ETag")));
            }
            if status == "201" {
                response
                    .headers
                    .entry("Location".into())
                    .or_insert_with(|| RefOr::Ref(header_ref("Location")));
            }
            response
                .headers
                .entry("X-Request-Id".into())
                .or_insert_with(|| RefOr::Ref(header_ref("X-Request-Id")));
            // Public /v1 operations are metered per client address.
            if !public || path.starts_with("/v1/") {
                for name in ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"] {
                    response
                        .headers
                        .entry(name.into())
                        .or_insert_with(|| RefOr::Ref(header_ref(name)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::error::PROBLEM_JSON;

    #[test]
    fn every_operation_has_summary_tags_security_an_error_response_and_a_unique_id() {
        let mut document = document();
        let declared_tags: HashSet<String> = document
            .tags
            .iter()
            .flatten()
            .map(|t| t.name.clone())
            .collect();
        let mut ids = HashSet::new();
        for (path, item) in document.paths.paths.iter_mut() {
            for op in operations_mut(item) {
                let id = op.operation_id.clone().unwrap_or_default();
                assert!(!id.is_empty(), "{path}: no operationId");
                assert!(
                    ids.insert(id.clone()),
                    "{path}: operationId {id} used twice"
                );
                assert!(
                    op.summary.as_deref().is_some_and(|s| !s.is_empty()),
                    "{path} {id}: no summary"
                );
                let tags = op.tags.clone().unwrap_or_default();
                assert!(!tags.is_empty(), "{path} {id}: no tags");
                for tag in tags {
                    assert!(
                        declared_tags.contains(&tag),
                        "{path} {id}: tag {tag} is not declared"
                    );
                }
                assert!(op.security.is_some(), "{path} {id}: no security");
                assert!(
                    op.responses
                        .responses
                        .keys()
                        .any(|s| s.starts_with('4') || s.starts_with('5')),
                    "{path} {id}: no error response"
                );
            }
        }
    }

    #[test]
    fn the_problem_code_enum_is_the_error_table() {
        let document = document();
        let json = serde_json::to_value(&document).unwrap();
        let codes = &json["components"]["schemas"]["Problem"]["properties"]["code"]["enum"];
        assert_eq!(codes.as_array().map(Vec::len), Some(ErrorCode::ALL.len()));
        assert!(json["components"]["responses"]["Internal"]["content"][PROBLEM_JSON].is_object());
    }
}
