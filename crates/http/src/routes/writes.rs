//! The writes every record object shares — create, change, upsert by external id, batch
//! upsert and batch delete — all through the store's one batch `write`, so that a single
//! write and a batch row behave exactly alike.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use async_trait::async_trait;
use rapport_domain::write::{IdProperty, RowOutcome, RowStatus, RowTarget, WriteRow};
use rapport_domain::{AuthContext, ObjectType, Store, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::record::{IfMatch, created_record, etag, ok_record};
use crate::state::AppState;

mod batch;

pub use batch::*;

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
mod tests;
