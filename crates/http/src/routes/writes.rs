//! The writes every record object shares — create, change, upsert by external id, batch
//! upsert and batch delete — all through the store's one batch `write`, so that a single
//! write and a batch row behave exactly alike.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use async_trait::async_trait;
use rapport_domain::write::{IdProperty, MAX_BATCH, RowOutcome, RowStatus, RowTarget, WriteRow};
use rapport_domain::{AuthContext, ObjectType, Store, StoreError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, Problem};
use crate::extract::parse_value;
use crate::record::{IfMatch, created_record, etag, ok_record};
use crate::request_id;
use crate::state::AppState;

/// A record object as the write routes see it.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// Its declaration: the collection's path under `/v1` (`contacts`), the properties a
    /// batch may find records by.
    fn spec(&self) -> &'static rapport_domain::kit::ObjectSpec;
    fn object(&self) -> ObjectType {
        self.spec().object
    }
    type Input: DeserializeOwned;
    type Patch: Send + 'static;
    type Record: Send;
    type Body: Serialize + From<Self::Record>;

    /// Checks the input and turns it into the store's patch; problems name their JSON path.
    fn patch(&self, input: &Self::Input, ctx: &AuthContext) -> Result<Self::Patch, ApiError>;
    fn version(&self, record: &Self::Record) -> i64;

    async fn write(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        rows: Vec<WriteRow<Self::Patch>>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError>;
    async fn delete_many(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        targets: Vec<RowTarget>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError>;
    async fn get(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        id: Uuid,
    ) -> Result<Self::Record, StoreError>;
    async fn list(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        request: &rapport_domain::store::ListRequest,
    ) -> Result<rapport_domain::Page<Self::Record>, StoreError>;
    /// The live record with this external id, when the caller may see it.
    async fn find_external(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        external_id: &str,
    ) -> Result<Option<Uuid>, StoreError>;
}

/// Implements [`Resource`] for an object whose store has the batch methods.
#[macro_export]
macro_rules! resource {
    ($name:ident {
        object: $object:ident,
        spec: $spec:ident,
        input: $input:ty,
        patch: $patch:ty,
        record: $record:ty,
        body: $body:ty,
        store: $store:ident,
        to_patch: $to_patch:expr $(,)?
    }) => {
        pub struct $name;

        #[async_trait::async_trait]
        impl $crate::routes::writes::Resource for $name {
            fn spec(&self) -> &'static rapport_domain::kit::ObjectSpec {
                &rapport_domain::objects::$spec::SPEC
            }
            type Input = $input;
            type Patch = $patch;
            type Record = $record;
            type Body = $body;

            fn patch(
                &self,
                input: &$input,
                ctx: &rapport_domain::AuthContext,
            ) -> Result<$patch, $crate::error::ApiError> {
                let to_patch: fn(
                    &$input,
                    &rapport_domain::AuthContext,
                ) -> Result<$patch, $crate::error::ApiError> = $to_patch;
                to_patch(input, ctx)
            }

            fn version(&self, record: &$record) -> i64 {
                record.version
            }

            async fn write(
                &self,
                store: &dyn rapport_domain::Store,
                ctx: &rapport_domain::AuthContext,
                rows: Vec<rapport_domain::write::WriteRow<$patch>>,
                all_or_none: bool,
            ) -> Result<Vec<rapport_domain::write::RowOutcome>, rapport_domain::StoreError> {
                store.$store().write(ctx, rows, all_or_none).await
            }

            async fn delete_many(
                &self,
                store: &dyn rapport_domain::Store,
                ctx: &rapport_domain::AuthContext,
                targets: Vec<rapport_domain::write::RowTarget>,
                all_or_none: bool,
            ) -> Result<Vec<rapport_domain::write::RowOutcome>, rapport_domain::StoreError> {
                store.$store().delete_many(ctx, targets, all_or_none).await
            }

            async fn get(
                &self,
                store: &dyn rapport_domain::Store,
                ctx: &rapport_domain::AuthContext,
                id: uuid::Uuid,
            ) -> Result<$record, rapport_domain::StoreError> {
                store.$store().get(ctx, id).await
            }

            async fn list(
                &self,
                store: &dyn rapport_domain::Store,
                ctx: &rapport_domain::AuthContext,
                request: &rapport_domain::store::ListRequest,
            ) -> Result<rapport_domain::Page<$record>, rapport_domain::StoreError> {
                store.$store().list(ctx, request).await
            }

            async fn find_external(
                &self,
                store: &dyn rapport_domain::Store,
                ctx: &rapport_domain::AuthContext,
                external_id: &str,
            ) -> Result<Option<uuid::Uuid>, rapport_domain::StoreError> {
                let request = $crate::routes::writes::external_id_request(external_id);
                let page = store.$store().list(ctx, &request).await?;
                Ok(page.items.first().map(|record| record.id))
            }
        }
    };
}

/// The list request that finds a record by external id.
pub fn external_id_request(external_id: &str) -> rapport_domain::store::ListRequest {
    rapport_domain::store::ListRequest {
        filter: Some(crate::routes::records::RecordListParams::eq(
            "external_id",
            Value::from(external_id),
        )),
        page: rapport_domain::PageRequest {
            limit: 1,
            ..rapport_domain::PageRequest::default()
        },
        ..rapport_domain::store::ListRequest::default()
    }
}

/// The routes by external id and the batch routes of one object, documented.
#[macro_export]
macro_rules! integration_routes {
    (
        module: $module:ident,
        resource: $resource:ident,
        marker: $marker:ident,
        tag: $tag:tt,
        input: $input:ident,
        body: $body:ident,
        put_external: ($put_fn:ident, $put_path:tt, $put_op:tt, $put_summary:tt),
        get_external: ($get_fn:ident, $get_path:tt, $get_op:tt, $get_summary:tt),
        batch_upsert: ($upsert_fn:ident, $upsert_path:tt, $upsert_op:tt, $upsert_summary:tt),
        batch_delete: ($delete_fn:ident, $delete_path:tt, $delete_op:tt, $delete_summary:tt)
        // Owned objects: the 403 a write answers when it gives the record an owner outside
        // what the caller sees (`OwnerNotPermitted`).
        $(, owner_refusal: $refusal:ident)? $(,)?
    ) => {
        mod $module {
            use super::*;
            use actix_web::{get, post, put};

            #[doc = $put_summary]
            ///
            /// Creates the record with this external id (201), or changes it (200) as a merge
            /// patch; an `external_id` in the body must equal the path's. Safe to retry.
            #[utoipa::path(
                tag = $tag,
                operation_id = $put_op,
                params(("external_id" = String, Path, description = "Your system's id for the record.")),
                request_body = $input,
                responses(
                    (status = 200, description = "The changed record.", body = $body),
                    (status = 201, description = "The created record.", body = $body),
                    $((status = 403, response = $crate::error::responses::$refusal),)?
                    (status = 409, response = $crate::error::responses::Conflict),
                ),
            )]
            #[put($put_path)]
            pub(super) async fn $put_fn(
                auth: $crate::auth::Require<$crate::auth::Create<$crate::auth::obj::$marker>>,
                state: actix_web::web::Data<$crate::state::AppState>,
                external_id: actix_web::web::Path<String>,
                body: $crate::extract::Json<$input>,
            ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
                $crate::auth::check(&auth.ctx, rapport_domain::Action::Update, rapport_domain::ObjectType::$marker)?;
                $crate::routes::writes::put_external(&$resource, &state, &auth.ctx, external_id.into_inner(), &body).await
            }

            #[doc = $get_summary]
            #[utoipa::path(
                tag = $tag,
                operation_id = $get_op,
                params(("external_id" = String, Path, description = "Your system's id for the record.")),
                responses(
                    (status = 200, description = "The record.", body = $body),
                    (status = 404, response = $crate::error::responses::NotFound),
                ),
            )]
            #[get($get_path)]
            pub(super) async fn $get_fn(
                auth: $crate::auth::Require<$crate::auth::Read<$crate::auth::obj::$marker>>,
                state: actix_web::web::Data<$crate::state::AppState>,
                external_id: actix_web::web::Path<String>,
            ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
                let store = state.store.as_ref();
                let ctx = &auth.ctx;
                $crate::routes::writes::get_external(&$resource, &state, ctx, &external_id, async |value| {
                    $crate::routes::writes::Resource::find_external(&$resource, store, ctx, value).await
                })
                .await
            }

            #[doc = $upsert_summary]
            ///
            /// Up to 1,000 records found by `id_property`: each created or updated (or left
            /// `unchanged`). One result per row in input order; every failing row carries its
            /// problem, with `errors[].field` naming `records[<index>].<field>`. With `all_or_none`,
            /// one failing row leaves the batch unwritten.
            #[utoipa::path(
                tag = $tag,
                operation_id = $upsert_op,
                request_body = $crate::routes::writes::BatchUpsertRequest,
                responses(
                    (status = 200, description = "One result per row.", body = $crate::routes::writes::BatchResponse),
                ),
            )]
            #[post($upsert_path)]
            pub(super) async fn $upsert_fn(
                auth: $crate::auth::Require<$crate::auth::Create<$crate::auth::obj::$marker>>,
                state: actix_web::web::Data<$crate::state::AppState>,
                body: $crate::extract::Json<$crate::routes::writes::BatchUpsertRequest>,
            ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
                $crate::auth::check(&auth.ctx, rapport_domain::Action::Update, rapport_domain::ObjectType::$marker)?;
                $crate::routes::writes::batch_upsert(&$resource, &state, &auth.ctx, body.0).await
            }

            #[doc = $delete_summary]
            ///
            /// Up to 1,000 records found by `id_property`, each deleted (restorable); one result
            /// per row in input order.
            #[utoipa::path(
                tag = $tag,
                operation_id = $delete_op,
                request_body = $crate::routes::writes::BatchDeleteRequest,
                responses(
                    (status = 200, description = "One result per row.", body = $crate::routes::writes::BatchResponse),
                ),
            )]
            #[post($delete_path)]
            pub(super) async fn $delete_fn(
                auth: $crate::auth::Require<$crate::auth::Delete<$crate::auth::obj::$marker>>,
                state: actix_web::web::Data<$crate::state::AppState>,
                body: $crate::extract::Json<$crate::routes::writes::BatchDeleteRequest>,
            ) -> Result<actix_web::HttpResponse, $crate::error::ApiError> {
                $crate::routes::writes::batch_delete(&$resource, &state, &auth.ctx, body.0).await
            }
        }

        use $module::{$put_fn, $get_fn, $upsert_fn, $delete_fn};
    };
}

fn location<R: Resource>(r: &R, id: Uuid) -> String {
    format!("/v1/{}/{id}", r.spec().plural)
}

/// Writes one row and answers its outcome, or its error as the request's.
async fn write_one<R: Resource>(
    r: &R,
    state: &AppState,
    ctx: &AuthContext,
    target: RowTarget,
    patch: R::Patch,
) -> Result<(RowStatus, Uuid), ApiError> {
    let rows = vec![WriteRow { target, patch }];
    let outcome = r
        .write(state.store.as_ref(), ctx, rows, true)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("the store answered no outcome for one row"))?;
    Ok(outcome.result?)
}

/// `POST /v1/<object>`: 201 with the record and its `Location`.
pub async fn create<R: Resource>(
    r: &R,
    state: &AppState,
    ctx: &AuthContext,
    input: &R::Input,
) -> Result<HttpResponse, ApiError> {
    let patch = r.patch(input, ctx)?;
    // A retry of an attempt that created the record and then failed to answer.
    let recovered = ctx
        .idempotency
        .as_ref()
        .and_then(|i| i.recovered_creation(r.object()));
    let id = match recovered {
        Some(id) => id,
        None => write_one(r, state, ctx, RowTarget::Create, patch).await?.1,
    };
    let record = r.get(state.store.as_ref(), ctx, id).await?;
    Ok(created_record(
        location(r, id),
        r.version(&record),
        &R::Body::from(record),
    ))
}

/// `PATCH /v1/<object>/{id}`: 200 with the changed record.
pub async fn update<R: Resource>(
    r: &R,
    state: &AppState,
    ctx: &AuthContext,
    id: Uuid,
    if_match: IfMatch,
    input: &R::Input,
) -> Result<HttpResponse, ApiError> {
    let patch = r.patch(input, ctx)?;
    let target = RowTarget::Update {
        id,
        expected_version: if_match.0,
    };
    write_one(r, state, ctx, target, patch).await?;
    let record = r.get(state.store.as_ref(), ctx, id).await?;
    Ok(ok_record(r.version(&record), &R::Body::from(record)))
}

/// Longest external id.
pub const MAX_EXTERNAL_ID: usize = 255;

fn check_external_id(external_id: &str) -> Result<(), ApiError> {
    if external_id.trim().is_empty() || external_id.chars().count() > MAX_EXTERNAL_ID {
        return Err(ApiError::invalid(
            "external_id",
            "invalid_value",
            format!("must be 1 to {MAX_EXTERNAL_ID} characters"),
        ));
    }
    Ok(())
}

/// `PUT /v1/<object>/external/{external_id}`: creates (201) or updates (200) the record with
/// this external id.
pub async fn put_external<R: Resource>(
    r: &R,
    state: &AppState,
    ctx: &AuthContext,
    external_id: String,
    input: &R::Input,
) -> Result<HttpResponse, ApiError> {
    check_external_id(&external_id)?;
    let patch = r.patch(input, ctx)?;
    let target = RowTarget::Upsert {
        property: IdProperty::ExternalId,
        value: external_id,
    };
    let (status, id) = write_one(r, state, ctx, target, patch).await?;
    let record = r.get(state.store.as_ref(), ctx, id).await?;
    let version = r.version(&record);
    let body = R::Body::from(record);
    Ok(if status == RowStatus::Created {
        created_record(location(r, id), version, &body)
    } else {
        ok_record(version, &body)
    })
}

/// `DELETE /v1/<object>/{id}`: 204.
pub async fn delete<R: Resource>(
    r: &R,
    state: &AppState,
    ctx: &AuthContext,
    id: Uuid,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let target = RowTarget::Update {
        id,
        expected_version: if_match.0,
    };
    let outcome = r
        .delete_many(state.store.as_ref(), ctx, vec![target], true)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::internal("the store answered no outcome for one row"))?;
    outcome.result?;
    Ok(HttpResponse::NoContent().finish())
}

/// A batch upsert: rows found by one id property, each created or updated.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchUpsertRequest {
    /// How each row finds its record; every row must carry this property. `id` only updates.
    pub id_property: IdProperty,
    /// 1 to 1,000 records, each the object's input (as for a create) plus its key (`id` when
    /// `id_property` is `id`). Each row's problems, even not being an object, are reported in
    /// its own result, so a row may be any JSON value here.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 1000)]
    pub records: Vec<Value>,
    /// `true`: one failing row leaves the whole batch unwritten (the others answer
    /// `not_applied`). Default `false`: every valid row is written.
    #[serde(default)]
    pub all_or_none: bool,
}

/// A batch delete: rows found by one id property.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"id_property": "external_id", "records": [{"external_id": "ERP-1001"}]}))]
pub struct BatchDeleteRequest {
    pub id_property: IdProperty,
    /// 1 to 1,000 objects, each with only the id property: `{"external_id": "ERP-1001"}`;
    /// as for upserts, a bad row is reported in its own result.
    #[schema(value_type = Vec<serde_json::Value>, min_items = 1, max_items = 1000)]
    pub records: Vec<Value>,
    #[serde(default)]
    pub all_or_none: bool,
}

/// One row's outcome, in input order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchRowResult {
    /// The row's position in `records`, from 0.
    pub index: usize,
    pub status: RowStatus,
    /// The record's id; null when the row failed before a record was found or made.
    pub id: Option<Uuid>,
    /// Why the row failed: a problem document whose `errors` name `records[<index>].<field>`.
    pub error: Option<Problem>,
}

/// The outcome of a batch: one result per input row, in input order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    pub results: Vec<BatchRowResult>,
}

fn row_prefix(index: usize) -> String {
    format!("records[{index}]")
}

fn row_failure(index: usize, error: ApiError) -> BatchRowResult {
    let problem = error
        .prefixed(&row_prefix(index))
        .problem(request_id::current().to_string());
    BatchRowResult {
        index,
        status: RowStatus::Error,
        id: None,
        error: Some(problem),
    }
}

fn row_result(index: usize, outcome: RowOutcome) -> BatchRowResult {
    match outcome.result {
        Ok((status, id)) => BatchRowResult {
            index,
            status,
            id: Some(id),
            error: None,
        },
        Err(error) => row_failure(index, ApiError::from(error)),
    }
}

fn check_batch<R: Resource>(
    r: &R,
    property: IdProperty,
    records: &[Value],
) -> Result<(), ApiError> {
    if !r.spec().found_by(property) {
        let known: Vec<&str> = r.spec().natural_keys.iter().map(|p| p.as_str()).collect();
        return Err(ApiError::invalid(
            "id_property",
            "invalid_value",
            format!(
                "{} records are found by {}, not {}",
                r.object(),
                known.join(", "),
                property.as_str()
            ),
        ));
    }
    if records.is_empty() || records.len() > MAX_BATCH {
        return Err(ApiError::invalid(
            "records",
            "invalid_value",
            format!(
                "must hold 1 to {MAX_BATCH} records (it holds {})",
                records.len()
            ),
        ));
    }
    Ok(())
}

/// The key a row is found by: its `property` value, a non-empty string. For `id`, the key is
/// taken out of the object (the input has no `id` field).
fn take_key(row: &mut Map<String, Value>, property: IdProperty) -> Result<String, ApiError> {
    let name = property.as_str();
    let value = if property == IdProperty::Id {
        row.remove(name)
    } else {
        row.get(name).cloned()
    };
    match value {
        Some(Value::String(text)) if !text.trim().is_empty() => {
            if property == IdProperty::Id && Uuid::parse_str(&text).is_err() {
                return Err(ApiError::invalid(name, "invalid_value", "is not a UUID"));
            }
            if property == IdProperty::ExternalId {
                check_external_id(&text)?;
            }
            Ok(text)
        }
        Some(Value::String(_)) | None | Some(Value::Null) => Err(ApiError::invalid(
            name,
            "required",
            format!("every row needs its {name}: the batch's id_property"),
        )),
        Some(_) => Err(ApiError::invalid(name, "invalid_type", "must be a string")),
    }
}

fn row_object(value: Value) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::invalid(
            "",
            "invalid_type",
            "each record must be a JSON object",
        )),
    }
}

/// Runs the rows that parsed, then lays every row's result out in input order.
async fn run_batch<P>(
    parsed: Vec<Result<P, ApiError>>,
    all_or_none: bool,
    write: impl AsyncFnOnce(Vec<P>, bool) -> Result<Vec<RowOutcome>, StoreError>,
) -> Result<BatchResponse, ApiError> {
    let failed_to_parse = parsed.iter().any(Result::is_err);
    let mut valid = Vec::new();
    let mut slots = Vec::with_capacity(parsed.len());
    for item in parsed {
        match item {
            Ok(row) => {
                slots.push(Ok(valid.len()));
                valid.push(row);
            }
            Err(error) => slots.push(Err(error)),
        }
    }
    let outcomes: Vec<RowOutcome> = if all_or_none && failed_to_parse {
        valid
            .iter()
            .map(|_| RowOutcome::error(StoreError::NotApplied))
            .collect()
    } else if valid.is_empty() {
        Vec::new()
    } else {
        write(valid, all_or_none).await?
    };
    let mut outcomes: Vec<Option<RowOutcome>> = outcomes.into_iter().map(Some).collect();
    let results = slots
        .into_iter()
        .enumerate()
        .map(|(index, slot)| match slot {
            Ok(at) => match outcomes.get_mut(at).and_then(Option::take) {
                Some(outcome) => row_result(index, outcome),
                None => row_failure(index, ApiError::internal("no outcome for a row")),
            },
            Err(error) => row_failure(index, error),
        })
        .collect();
    Ok(BatchResponse { results })
}

/// One record of a batch or an import: its input checked and turned into a write, found by
/// `property` (None: a new record).
pub fn parse_row<R: Resource>(
    r: &R,
    value: Value,
    property: Option<IdProperty>,
    ctx: &AuthContext,
) -> Result<WriteRow<R::Patch>, ApiError> {
    let mut row = row_object(value)?;
    let key = property.map(|p| take_key(&mut row, p)).transpose()?;
    let input: R::Input = parse_value(Value::Object(row))?;
    let patch = r.patch(&input, ctx)?;
    let target = match (property, key) {
        (Some(IdProperty::Id), Some(key)) => RowTarget::Update {
            id: Uuid::parse_str(&key)
                .map_err(|_| ApiError::invalid("id", "invalid_value", "is not a UUID"))?,
            expected_version: None,
        },
        (Some(property), Some(value)) => RowTarget::Upsert { property, value },
        _ => RowTarget::Create,
    };
    Ok(WriteRow { target, patch })
}

/// `POST /v1/<object>/batch/upsert`.
pub async fn batch_upsert<R: Resource>(
    r: &R,
    state: &AppState,
    ctx: &AuthContext,
    request: BatchUpsertRequest,
) -> Result<HttpResponse, ApiError> {
    check_batch(r, request.id_property, &request.records)?;
    let property = request.id_property;
    let parsed: Vec<Result<WriteRow<R::Patch>, ApiError>> = request
        .records
        .into_iter()
        .map(|value| parse_row(r, value, Some(property), ctx))
        .collect();
    let store = state.store.as_ref();
    let response = run_batch(parsed, request.all_or_none, async |rows, all_or_none| {
        r.write(store, ctx, rows, all_or_none).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(response))
}

/// `POST /v1/<object>/batch/delete`.
pub async fn batch_delete<R: Resource>(
    r: &R,
    state: &AppState,
    ctx: &AuthContext,
    request: BatchDeleteRequest,
) -> Result<HttpResponse, ApiError> {
    check_batch(r, request.id_property, &request.records)?;
    let property = request.id_property;
    let parsed: Vec<Result<RowTarget, ApiError>> = request
        .records
        .into_iter()
        .map(|value| {
            let mut row = row_object(value)?;
            let key = take_key(&mut row, property)?;
            row.remove(property.as_str());
            if let Some(extra) = row.keys().next() {
                return Err(ApiError::invalid(
                    extra.clone(),
                    "unknown_field",
                    format!("a delete row names only its {}", property.as_str()),
                ));
            }
            Ok(RowTarget::Upsert {
                property,
                value: key,
            })
        })
        .collect();
    let store = state.store.as_ref();
    let response = run_batch(parsed, request.all_or_none, async |targets, all_or_none| {
        r.delete_many(store, ctx, targets, all_or_none).await
    })
    .await?;
    Ok(HttpResponse::Ok().json(response))
}

/// `GET /v1/<object>/external/{external_id}`.
pub async fn get_external<R: Resource>(
    r: &R,
    state: &AppState,
    ctx: &AuthContext,
    external_id: &str,
    find: impl AsyncFnOnce(&str) -> Result<Option<Uuid>, StoreError>,
) -> Result<HttpResponse, ApiError> {
    check_external_id(external_id)?;
    let id = find(external_id)
        .await?
        .ok_or_else(|| ApiError::not_found("No record has this external id."))?;
    let record = r.get(state.store.as_ref(), ctx, id).await?;
    Ok(HttpResponse::build(StatusCode::OK)
        .insert_header((actix_web::http::header::ETAG, etag(r.version(&record))))
        .json(R::Body::from(record)))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn a_row_key_must_be_a_non_empty_string() {
        let mut row = json!({"external_id": " "})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let error = take_key(&mut row, IdProperty::ExternalId).unwrap_err();
        assert_eq!(error.errors()[0].code, "required");
        let mut row = json!({"id": "not-a-uuid"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            take_key(&mut row, IdProperty::Id).unwrap_err().errors()[0].code,
            "invalid_value"
        );
        let mut row = json!({"sku": 7}).as_object().cloned().unwrap_or_default();
        assert_eq!(
            take_key(&mut row, IdProperty::Sku).unwrap_err().errors()[0].code,
            "invalid_type"
        );
    }

    #[test]
    fn an_id_key_leaves_the_row_and_other_keys_stay() {
        let id = Uuid::now_v7().to_string();
        let mut row = json!({"id": id, "name": "x"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(take_key(&mut row, IdProperty::Id).unwrap(), id);
        assert!(!row.contains_key("id"));
        let mut row = json!({"email": "a@b.example"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        take_key(&mut row, IdProperty::Email).unwrap();
        assert!(row.contains_key("email"));
    }

    #[test]
    fn row_errors_name_the_row_in_their_fields() {
        let result = row_failure(
            3,
            ApiError::invalid("email", "invalid_value", "is not an email"),
        );
        let problem = result.error.unwrap();
        assert_eq!(problem.errors[0].field, "records[3].email");
        assert_eq!(problem.code, ErrorCode::ValidationFailed.as_str());
    }
}
