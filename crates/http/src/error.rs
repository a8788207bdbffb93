//! Problem documents (RFC 9457) for every error, from one table of codes.
//!
//! `ErrorCode` is declared once below with its HTTP status and title; the problem document,
//! the OpenAPI `Problem.code` enum and the README's table all come from it.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use rapport_domain::StoreError;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::{Content, Ref, Response, ResponseBuilder};

use crate::request_id;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

macro_rules! error_codes {
    ($($variant:ident => $status:ident, $code:literal, $title:literal, $when:literal;)*) => {
        /// A stable, snake_case error code; clients switch on it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $($variant,)* }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => StatusCode::$status,)* }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            pub fn title(self) -> &'static str {
                match self { $(ErrorCode::$variant => $title,)* }
            }

            /// When a client gets this code.
            pub fn when(self) -> &'static str {
                match self { $(ErrorCode::$variant => $when,)* }
            }

            /// The name of its response in the OpenAPI components (`NotFound`).
            pub fn response_name(self) -> &'static str {
                match self { $(ErrorCode::$variant => stringify!($variant),)* }
            }
        }

        /// One documented response per code, for `responses((status = 404, response = NotFound))`
        /// in `#[utoipa::path]`.
        pub mod responses {
            $(
                pub struct $variant;

                impl<'r> utoipa::ToResponse<'r> for $variant {
                    fn response() -> (&'r str, utoipa::openapi::RefOr<utoipa::openapi::Response>) {
                        (
                            stringify!($variant),
                            utoipa::openapi::RefOr::T(super::problem_response(
                                super::ErrorCode::$variant,
                            )),
                        )
                    }
                }
            )*
        }
    };
}

error_codes! {
    BadRequest => BAD_REQUEST, "bad_request", "Bad request",
        "The request cannot be read (a bad header, a body that cannot be received).";
    MalformedJson => BAD_REQUEST, "malformed_json", "Malformed JSON",
        "The body is not valid JSON; `line` and `column` say where the parser stopped.";
    Unauthenticated => UNAUTHORIZED, "unauthenticated", "Authentication required",
        "No credential, or one that is invalid, expired or revoked.";
    InvalidCredentials => UNAUTHORIZED, "invalid_credentials", "Invalid credentials",
        "The email or password is wrong (which one is not said).";
    Forbidden => FORBIDDEN, "forbidden", "Not allowed",
        "The credential is valid but its role or scopes do not allow this.";
    SignupClosed => FORBIDDEN, "signup_closed", "Sign-up closed",
        "This installation does not create organizations through the API (RAPPORT_SIGNUP=closed).";
    CorsOriginNotAllowed => FORBIDDEN, "cors_origin_not_allowed", "Origin not allowed",
        "A browser's preflight from an origin that `RAPPORT_CORS_ORIGINS` does not allow (with no origins configured, none is); the operator can add it.";
    OwnerNotPermitted => FORBIDDEN, "owner_not_permitted", "Owner not permitted",
        "Record visibility lets you give a record only to an owner whose records you see (`own`: yourself; `team`: your team; managers: the teams they manage); nothing was written. Role or scope refusals are `forbidden`, also 403.";
    NotFound => NOT_FOUND, "not_found", "Not found",
        "No such route, or no such record in your organization.";
    RecordMerged => NOT_FOUND, "record_merged", "Record merged",
        "The record was merged into another; `merged_into` names it.";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed",
        "The path exists but not for this method; `Allow` lists the methods it takes.";
    RequestTimeout => REQUEST_TIMEOUT, "request_timeout", "Request timeout",
        "The request body stopped arriving: no byte of it for `RAPPORT_BODY_TIMEOUT` seconds (60 by default); the connection is closed.";
    Conflict => CONFLICT, "conflict", "Conflict",
        "The write collides with existing data (a unique value, a state that forbids it).";
    LastOwner => CONFLICT, "last_owner", "Last owner",
        "The change would leave the organization without an active owner.";
    IdempotencyRequestInProgress => CONFLICT, "idempotency_request_in_progress", "Request in progress",
        "A request with this `Idempotency-Key` is still running; retry after `Retry-After` seconds.";
    SecretNotReplayed => CONFLICT, "secret_not_replayed", "Secret not replayed",
        "A retry with the `Idempotency-Key` of a request that showed a secret once (an API key, a webhook secret, an invitation token): the secret is not kept, so it is not shown again; `Location` names what was made.";
    ApiKeyLimit => CONFLICT, "api_key_limit", "Too many API keys",
        "The user already holds as many live API keys as allowed (`RAPPORT_API_KEYS_PER_USER`); revoke one first.";
    DuplicateEmail => CONFLICT, "duplicate_email", "Duplicate email",
        "Another live contact already has this email; `existing_id` names it when you may see it.";
    VersionMismatch => PRECONDITION_FAILED, "version_mismatch", "Version mismatch",
        "`If-Match` names a version other than the record's current one; nothing was changed.";
    CursorExpired => GONE, "cursor_expired", "Cursor expired",
        "The change-feed cursor is older than the feed's retention; start again without `after` and reconcile.";
    PayloadTooLarge => PAYLOAD_TOO_LARGE, "payload_too_large", "Payload too large",
        "The body is larger than the configured limit (1 MiB by default).";
    UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Unsupported media type",
        "The body is not sent as `application/json`.";
    ValidationFailed => UNPROCESSABLE_ENTITY, "validation_failed", "Invalid input",
        "Some input is invalid: a wrong type, a missing or unknown field, a bad value; `errors` lists each.";
    AccountExists => CONFLICT, "account_exists", "Account exists",
        "Sign-up with the email of an existing account and another password: sign in, or sign up with that account's password to add an organization to it.";
    OrganizationRequired => UNPROCESSABLE_ENTITY, "organization_required", "Organization required",
        "You belong to several organizations: sign in again with `organization_id`, one of `organizations`.";
    InvitationInvalid => NOT_FOUND, "invitation_invalid", "Invitation invalid",
        "No pending invitation has this token: it was never issued, has expired, was used or was revoked.";
    IdempotencyKeyReused => UNPROCESSABLE_ENTITY, "idempotency_key_reused", "Idempotency key reused",
        "This `Idempotency-Key` was used with a different request (method, path or body); use a new key.";
    NotApplied => FAILED_DEPENDENCY, "not_applied", "Not applied",
        "A batch row that was valid but not written: another row failed and the batch is `all_or_none`.";
    RateLimited => TOO_MANY_REQUESTS, "rate_limited", "Too many requests",
        "The user, the organization or (without a valid credential) the client address used up its requests for now; `Retry-After` says when to try again.";
    LoginThrottled => TOO_MANY_REQUESTS, "login_throttled", "Too many failed sign-ins",
        "10 failed sign-ins for this email in 15 minutes; `Retry-After` says when to try again.";
    Internal => INTERNAL_SERVER_ERROR, "internal_error", "Internal error",
        "A fault on the server; it is logged with the request id.";
    ServiceUnavailable => SERVICE_UNAVAILABLE, "service_unavailable", "Service unavailable",
        "The database cannot be reached; retry later.";
    ServerBusy => SERVICE_UNAVAILABLE, "server_busy", "Server busy",
        "Too many password checks are waiting; retry after `Retry-After` seconds.";
}

impl ErrorCode {
    /// The code for a bare status that reached the client without one of ours (a response
    /// from a library, a guard, …).
    pub fn for_status(status: StatusCode) -> ErrorCode {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|c| c.status() == status)
            .unwrap_or(if status.is_server_error() {
                ErrorCode::Internal
            } else {
                ErrorCode::BadRequest
            })
    }

    /// The problem `type` URI of this code.
    pub fn type_uri(self) -> String {
        format!("urn:rapport:problem:{}", self.as_str())
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One offending input of a validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the offending input (`address.country`, `phones[0].number`), or the name of
    /// the query parameter or header.
    #[schema(example = "email")]
    pub field: String,
    /// A stable snake_case code: `required`, `invalid_type`, `unknown_field`, `invalid_value`…
    #[schema(example = "invalid_value")]
    pub code: Cow<'static, str>,
    /// What is wrong, for a human.
    #[schema(example = "is not an email address")]
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem document: the body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:rapport:problem:validation_failed",
    "title": "Invalid input",
    "status": 422,
    "detail": "1 field is invalid; see errors",
    "code": "validation_failed",
    "request_id": "0193a1d2-6c1f-7c3e-9a4b-2f6d8e0c1b5a",
    "errors": [{"field": "email", "code": "invalid_value", "message": "is not an email address"}]
}))]
pub struct Problem {
    /// A URI naming the kind of problem (`urn:rapport:problem:<code>`).
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: &'static str,
    pub status: u16,
    /// What happened in this case, for a human.
    pub detail: String,
    /// The stable error code; see the table in the README.
    #[schema(value_type = String, example = "not_found")]
    pub code: &'static str,
    /// Equal to the response's `X-Request-Id` header.
    pub request_id: String,
    /// For validation problems: each offending input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For `record_merged`: the record this one was merged into.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub merged_into: Option<uuid::Uuid>,
    /// For `duplicate_email`: the contact that has the email, when you may see it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub existing_id: Option<uuid::Uuid>,
    /// For `organization_required`: the organizations the signed-in person may choose from.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub organizations: Vec<OrganizationChoice>,
    /// For `malformed_json`: where the parser stopped (1-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// An organization to sign in to, offered when a person belongs to several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OrganizationChoice {
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    #[schema(example = "Acme Trading Co.")]
    pub name: String,
    /// Your role there.
    #[schema(example = "sales")]
    pub role: String,
}

/// The error every handler and extractor returns; it renders as a problem document.
/// Boxed: errors are the cold path, and `Result<T, ApiError>` stays one pointer wide.
#[derive(Debug)]
pub struct ApiError(Box<Details>);

#[derive(Debug)]
struct Details {
    code: ErrorCode,
    detail: String,
    errors: Vec<FieldError>,
    merged_into: Option<uuid::Uuid>,
    existing_id: Option<uuid::Uuid>,
    organizations: Vec<OrganizationChoice>,
    position: Option<(usize, usize)>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The cause of a 5xx, logged with the request id and never shown to the client.
    cause: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        ApiError(Box::new(Details {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            merged_into: None,
            existing_id: None,
            organizations: Vec::new(),
            position: None,
            headers: Vec::new(),
            cause: None,
        }))
    }

    /// A 422 listing every offending input.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!("{}: {}", errors[0].field, errors[0].message),
            n => format!("{n} inputs are invalid; see errors"),
        };
        ApiError::new(ErrorCode::ValidationFailed, detail).with_errors(errors)
    }

    /// A 422 about one input.
    pub fn invalid(
        field: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::validation(vec![FieldError::new(field, code, message)])
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::NotFound, detail)
    }

    /// A 500 whose cause is logged, not shown.
    pub fn internal(cause: impl fmt::Display) -> Self {
        let mut error = ApiError::new(
            ErrorCode::Internal,
            "The server failed to answer this request; it has been logged with the request id.",
        );
        error.0.cause = Some(cause.to_string());
        error
    }

    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.0.errors = errors;
        self
    }

    pub fn with_organizations(mut self, organizations: Vec<OrganizationChoice>) -> Self {
        self.0.organizations = organizations;
        self
    }

    pub fn with_merged_into(mut self, id: uuid::Uuid) -> Self {
        self.0.merged_into = Some(id);
        self
    }

    /// Where a JSON parser stopped: line and column, 1-based.
    pub fn with_position(mut self, line: usize, column: usize) -> Self {
        self.0.position = Some((line, column));
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.0.headers.push((name, value));
        self
    }

    /// The same error about a part of a larger input: every field path gets `prefix`
    /// (`records[3]` turns `email` into `records[3].email`).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        for error in &mut self.0.errors {
            error.field = if error.field.is_empty() {
                prefix.to_owned()
            } else if error.field.starts_with('[') {
                format!("{prefix}{}", error.field)
            } else {
                format!("{prefix}.{}", error.field)
            };
        }
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    pub fn detail(&self) -> &str {
        &self.0.detail
    }

    pub fn errors(&self) -> &[FieldError] {
        &self.0.errors
    }

    pub fn problem(&self, request_id: String) -> Problem {
        let this = &self.0;
        let status = this.code.status();
        Problem {
            type_uri: this.code.type_uri(),
            title: this.code.title(),
            status: status.as_u16(),
            detail: this.detail.clone(),
            code: this.code.as_str(),
            request_id,
            errors: this.errors.clone(),
            merged_into: this.merged_into,
            existing_id: this.existing_id,
            organizations: this.organizations.clone(),
            line: this.position.map(|(line, _)| line),
            column: this.position.map(|(_, column)| column),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.0.code, self.0.detail)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.0.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let request_id = request_id::current();
        if let Some(cause) = &self.0.cause {
            tracing::error!(request_id = %request_id, code = %self.0.code, cause = %cause, "request failed");
        }
        let mut response = HttpResponseBuilder::new(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        for (name, value) in &self.0.headers {
            response.insert_header((name.clone(), value.clone()));
        }
        response.json(self.problem(request_id.to_string()))
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => ApiError::not_found("No such record."),
            StoreError::Conflict { field: Some(field) } => ApiError::new(
                ErrorCode::Conflict,
                format!("Another record already has this {field}."),
            )
            .with_errors(vec![FieldError::new(
                field.clone(),
                "taken",
                "is already taken by another record",
            )]),
            StoreError::VersionMismatch { current } => crate::record::version_mismatch(current),
            StoreError::InvalidReference { field } => {
                ApiError::invalid(field, "not_found", "names no record of your organization")
            }
            StoreError::Invalid(issues) => ApiError::validation(
                issues
                    .into_iter()
                    .map(|i| FieldError::new(i.field, i.code, i.message))
                    .collect(),
            ),
            // The holder is named only when the caller may see it; otherwise the detail is the
            // one every conflict with an unnamed record has ("Another record already has this
            // …"), and the email is still not free.
            StoreError::DuplicateEmail { existing_id } => {
                let detail = match existing_id {
                    Some(id) => format!("Contact {id} already has this email."),
                    None => "Another record already has this email.".to_owned(),
                };
                let mut error = ApiError::new(ErrorCode::DuplicateEmail, detail).with_errors(vec![
                    FieldError::new("email", "taken", "belongs to another live contact"),
                ]);
                error.0.existing_id = existing_id;
                error
            }
            StoreError::OwnerNotPermitted => ApiError::new(
                ErrorCode::OwnerNotPermitted,
                "You may give this record only to an owner whose records you see; nothing was written.",
            )
            .with_errors(vec![FieldError::new(
                "owner_id",
                "not_permitted",
                "is not an owner whose records you see (yourself, or with team visibility your team)",
            )]),
            StoreError::Merged { into } => ApiError::new(
                ErrorCode::RecordMerged,
                format!("The record was merged into {into}."),
            )
            .with_merged_into(into),
            StoreError::NotApplied => ApiError::new(
                ErrorCode::NotApplied,
                "This row is valid but was not written: another row failed and the batch is all or none.",
            ),
            StoreError::CursorExpired => ApiError::new(
                ErrorCode::CursorExpired,
                "Changes after this cursor are older than the feed keeps; start again without `after` and reconcile with a full list.",
            ),
            StoreError::ApiKeyLimit { limit } => ApiError::new(
                ErrorCode::ApiKeyLimit,
                format!("You already hold {limit} live API keys, the most allowed; revoke one first."),
            ),
            StoreError::LastOwner => ApiError::new(
                ErrorCode::LastOwner,
                "The organization must keep at least one active owner; make another user owner first.",
            ),
            StoreError::Conflict { field: None } => ApiError::new(
                ErrorCode::Conflict,
                "The request conflicts with an existing record.",
            ),
            StoreError::Unavailable(reason) => {
                tracing::warn!(reason = %reason, "database unavailable");
                ApiError::new(
                    ErrorCode::ServiceUnavailable,
                    "The database is unavailable; retry later.",
                )
                .with_header(header::RETRY_AFTER, HeaderValue::from_static("1"))
            }
            StoreError::Internal(cause) => ApiError::internal(error_chain(cause.as_ref())),
        }
    }
}

/// `outer: inner: innermost`, for logs.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The documented response of one error code.
pub fn problem_response(code: ErrorCode) -> Response {
    let mut builder = ResponseBuilder::new()
        .description(format!("{}: {}", code.title(), code.when()))
        .content(
            PROBLEM_JSON,
            Content::new(Some(Ref::from_schema_name("Problem"))),
        )
        .header_ref("X-Request-Id", header_ref("X-Request-Id"));
    match code {
        ErrorCode::MethodNotAllowed => builder = builder.header_ref("Allow", header_ref("Allow")),
        ErrorCode::RateLimited => {
            for name in [
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
            ] {
                builder = builder.header_ref(name, header_ref(name));
            }
        }
        ErrorCode::ServiceUnavailable | ErrorCode::ServerBusy => {
            builder = builder.header_ref("Retry-After", header_ref("Retry-After"));
        }
        _ => {}
    }
    builder.build()
}

/// A reference to a header of the document's components (`#/components/headers/ETag`).
pub(crate) fn header_ref(name: &str) -> Ref {
    Ref::new(format!("#/components/headers/{name}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_with_error_statuses() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "{text} declared twice");
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text} is not snake_case"
            );
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }

    #[test]
    fn a_bare_status_maps_to_its_code() {
        assert_eq!(
            ErrorCode::for_status(StatusCode::PAYLOAD_TOO_LARGE),
            ErrorCode::PayloadTooLarge
        );
        assert_eq!(
            ErrorCode::for_status(StatusCode::IM_A_TEAPOT),
            ErrorCode::BadRequest
        );
        assert_eq!(
            ErrorCode::for_status(StatusCode::BAD_GATEWAY),
            ErrorCode::Internal
        );
    }

    #[test]
    fn one_invalid_field_is_named_in_the_detail() {
        let error = ApiError::invalid("address.country", "invalid_value", "is not ISO 3166-1");
        let problem = error.problem("r1".into());
        assert_eq!(problem.status, 422);
        assert_eq!(problem.detail, "address.country: is not ISO 3166-1");
        assert_eq!(problem.errors.len(), 1);
    }
}
