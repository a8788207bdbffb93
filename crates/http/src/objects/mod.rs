//! The engine's routes: every object the registry marks `engine` gets its collection under
//! `/v1/{plural}` from its declaration alone — list, search, create, read, merge-patch with
//! If-Match, delete and restore, history, upsert and read by external id, batch upsert and
//! delete — through the same write paths as every other object ([`writes`]). Its OpenAPI
//! operations and schemas are generated from the declaration too ([`document`]).

use std::sync::LazyLock;

use actix_web::{HttpRequest, HttpResponse, web};
use async_trait::async_trait;
use rapport_domain::kit::record::{self, Record, RecordPatch};
use rapport_domain::kit::{FieldKind, FieldSpec, ObjectSpec};
use rapport_domain::store::ListRequest;
use rapport_domain::write::{RowOutcome, RowTarget, WriteRow};
use rapport_domain::{Action, AuthContext, ObjectType, Page, Store, StoreError};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::auth::{Auth, check};
use crate::error::ApiError;
use crate::extract::Json;
use crate::list::parse_list;
use crate::record::{IfMatch, ok_record};
use crate::routes::exports;
use crate::routes::records::{EventBody, HistoryList, MergeRequest, SearchRequest, changes_body};
use crate::routes::writes::{self, BatchDeleteRequest, BatchUpsertRequest, Resource};
use crate::state::AppState;

pub mod document;
pub mod list;
mod schema;

/// An engine object as the write routes see it: its declaration.
pub struct EngineResource(pub &'static ObjectSpec);

/// One resource per engine object, for the life of the process.
static RESOURCES: LazyLock<Vec<EngineResource>> = LazyLock::new(|| {
    rapport_domain::objects::engine_objects()
        .map(EngineResource)
        .collect()
});

/// A record as the API shows it (see [`Record::to_json`]).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct RecordBody(Value);

impl From<Record> for RecordBody {
    fn from(record: Record) -> Self {
        RecordBody(
            rapport_domain::objects::spec(record.object)
                .map_or(Value::Null, |spec| record.to_json(spec)),
        )
    }
}

/// A page of records.
#[derive(Debug, Serialize)]
struct RecordList {
    data: Vec<RecordBody>,
    next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<i64>,
}

impl From<Page<Record>> for RecordList {
    fn from(page: Page<Record>) -> Self {
        RecordList {
            next_cursor: page.next.as_ref().map(rapport_domain::Cursor::encode),
            total: page.total,
            data: page.items.into_iter().map(RecordBody::from).collect(),
        }
    }
}

#[async_trait]
impl Resource for EngineResource {
    type Input = Map<String, Value>;
    type Patch = RecordPatch;
    type Record = Record;
    type Body = RecordBody;

    fn spec(&self) -> &'static ObjectSpec {
        self.0
    }

    fn patch(&self, input: &Map<String, Value>, _: &AuthContext) -> Result<RecordPatch, ApiError> {
        record::check_input(self.0, input).map_err(|issues| StoreError::Invalid(issues).into())
    }

    fn version(&self, record: &Record) -> i64 {
        record.version
    }

    async fn write(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        rows: Vec<WriteRow<RecordPatch>>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        store.records().write(ctx, self.0, rows, all_or_none).await
    }

    async fn delete_many(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        targets: Vec<RowTarget>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        store
            .records()
            .delete_many(ctx, self.0, targets, all_or_none)
            .await
    }

    async fn get(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        id: Uuid,
    ) -> Result<Record, StoreError> {
        store.records().get(ctx, self.0, id).await
    }

    async fn list(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        request: &ListRequest,
    ) -> Result<Page<Record>, StoreError> {
        store.records().list(ctx, self.0, request).await
    }

    async fn find_external(
        &self,
        store: &dyn Store,
        ctx: &AuthContext,
        external_id: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let request = writes::external_id_request(external_id);
        let page = store.records().list(ctx, self.0, &request).await?;
        Ok(page.items.first().map(|record| record.id))
    }
}

/// The caller, allowed `action` on the resource's object.
fn allowed(auth: Auth, r: &EngineResource, action: Action) -> Result<AuthContext, ApiError> {
    check(&auth.0, action, r.object())?;
    Ok(auth.0)
}

async fn list(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Read)?;
    let request = list::request(r.0, req.query_string())?;
    let page = r.list(state.store.as_ref(), &ctx, &request).await?;
    Ok(HttpResponse::Ok().json(RecordList::from(page)))
}

/// A likely duplicate and why (`same_<field>`).
#[derive(Debug, Serialize)]
struct DuplicateBody {
    reasons: Vec<String>,
    record: RecordBody,
}

async fn duplicates(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: crate::list::ListQuery<crate::list::NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Read)?;
    query.expect_sort(DUPLICATE_SORT)?;
    let found = state.store.records().duplicates(&ctx, r.0, *id).await?;
    // The likeliest first, as the store ranks them; a page starts after the record its
    // cursor names (a list computed afresh for each page).
    let start = match &query.page.after {
        Some(cursor) => found
            .iter()
            .position(|(record, _)| record.id == cursor.id)
            .map_or(found.len(), |at| at + 1),
        None => 0,
    };
    let limit = query.page.limit as usize;
    let page: Vec<_> = found.into_iter().skip(start).take(limit + 1).collect();
    let next_cursor = (page.len() > limit)
        .then(|| {
            rapport_domain::page::Cursor::new(DUPLICATE_SORT, Vec::new(), page[limit - 1].0.id)
        })
        .map(|cursor| cursor.encode());
    let data: Vec<DuplicateBody> = page
        .into_iter()
        .take(limit)
        .map(|(record, reasons)| DuplicateBody {
            reasons,
            record: RecordBody::from(record),
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"data": data, "next_cursor": next_cursor})))
}

/// The sort a duplicates cursor remembers: the store's ranking.
const DUPLICATE_SORT: &str = "likeliest";

async fn merge(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    body: Json<MergeRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Update)?;
    check(&ctx, Action::Delete, r.object())?;
    let outcome = state
        .store
        .records()
        .merge(
            &ctx,
            r.0,
            body.primary_id,
            &body.duplicate_ids,
            body.dry_run,
        )
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "merged": RecordBody::from(outcome.merged),
        "merged_ids": outcome.merged_ids,
        "changes": changes_body(outcome.changes),
        "dry_run": outcome.dry_run,
    })))
}

/// The records listed under another record (`GET /v1/contacts/{id}/orders`): the parent
/// must be live and visible to the caller, who may read both objects.
async fn list_under(
    r: &'static EngineResource,
    field: &'static FieldSpec,
    parent: ObjectType,
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Read)?;
    check(&ctx, Action::Read, parent)?;
    let request = list::request_under(r.0, req.query_string(), &field.name, *id)?;
    if !state.store.records().is_live(&ctx, parent, *id).await? {
        return Err(StoreError::NotFound.into());
    }
    let page = r.list(state.store.as_ref(), &ctx, &request).await?;
    Ok(HttpResponse::Ok().json(RecordList::from(page)))
}

/// The references an object's records are listed under, with the declaration of the object
/// each names.
pub fn listed_under(
    spec: &'static ObjectSpec,
) -> impl Iterator<Item = (&'static FieldSpec, &'static ObjectSpec)> {
    spec.fields.iter().filter_map(|field| match field.kind {
        FieldKind::Reference(target) if field.listed_under => {
            rapport_domain::objects::spec(target).map(|parent| (field, parent))
        }
        _ => None,
    })
}

async fn export(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Read)?;
    let (options, rest) = exports::split_options(req.query_string())?;
    let request = list::request(r.0, &rest)?;
    exports::export(r, state, ctx, options, request).await
}

async fn search(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    body: Json<SearchRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Read)?;
    let request = body.request()?;
    let page = r.list(state.store.as_ref(), &ctx, &request).await?;
    Ok(HttpResponse::Ok().json(RecordList::from(page)))
}

async fn create(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    body: Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Create)?;
    writes::create(r, &state, &ctx, &body).await
}

async fn get(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Read)?;
    let record = r.get(state.store.as_ref(), &ctx, *id).await?;
    Ok(ok_record(record.version, &RecordBody::from(record)))
}

async fn update(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Update)?;
    writes::update(r, &state, &ctx, *id, if_match, &body).await
}

async fn delete(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Delete)?;
    writes::delete(r, &state, &ctx, *id, if_match).await
}

async fn restore(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Delete)?;
    let record = state.store.records().restore(&ctx, r.0, *id).await?;
    Ok(ok_record(record.version, &RecordBody::from(record)))
}

async fn history(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Read)?;
    let query = parse_list::<crate::list::NoFilter>(req.query_string())?;
    let page = state
        .store
        .records()
        .history(&ctx, r.0, *id, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(HistoryList::from_page(page, EventBody::from)))
}

async fn put_external(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    external_id: web::Path<String>,
    body: Json<Map<String, Value>>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Create)?;
    check(&ctx, Action::Update, r.object())?;
    writes::put_external(r, &state, &ctx, external_id.into_inner(), &body).await
}

async fn get_external(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    external_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Read)?;
    let store = state.store.as_ref();
    writes::get_external(r, &state, &ctx, &external_id, async |value| {
        r.find_external(store, &ctx, value).await
    })
    .await
}

async fn batch_upsert(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    body: Json<BatchUpsertRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Create)?;
    check(&ctx, Action::Update, r.object())?;
    writes::batch_upsert(r, &state, &ctx, body.0).await
}

async fn batch_delete(
    r: &'static EngineResource,
    auth: Auth,
    state: web::Data<AppState>,
    body: Json<BatchDeleteRequest>,
) -> Result<HttpResponse, ApiError> {
    let ctx = allowed(auth, r, Action::Delete)?;
    writes::batch_delete(r, &state, &ctx, body.0).await
}

/// Registers every engine object's routes (inside the `/v1` scope); literal paths before
/// `{id}`, so that `/competitors/search` is not read as an id.
pub fn configure(config: &mut web::ServiceConfig) {
    for r in RESOURCES.iter() {
        let base = format!("/{}", r.0.plural);
        config
            .service(
                web::resource(base.clone())
                    .route(web::get().to(move |a, s, q| list(r, a, s, q)))
                    .route(web::post().to(move |a, s, b| create(r, a, s, b))),
            )
            .service(
                web::resource(format!("{base}/search"))
                    .route(web::post().to(move |a, s, b| search(r, a, s, b))),
            )
            .service(
                web::resource(format!("{base}/batch/upsert"))
                    .route(web::post().to(move |a, s, b| batch_upsert(r, a, s, b))),
            )
            .service(
                web::resource(format!("{base}/batch/delete"))
                    .route(web::post().to(move |a, s, b| batch_delete(r, a, s, b))),
            )
            .service(
                web::resource(format!("{base}/external/{{external_id}}"))
                    .route(web::get().to(move |a, s, e| get_external(r, a, s, e)))
                    .route(web::put().to(move |a, s, e, b| put_external(r, a, s, e, b))),
            )
            .configure(|config| {
                if r.0.capabilities.merge {
                    config
                        .service(
                            web::resource(format!("{base}/merge"))
                                .route(web::post().to(move |a, s, b| merge(r, a, s, b))),
                        )
                        .service(
                            web::resource(format!("{base}/{{id}}/duplicates"))
                                .route(web::get().to(move |a, s, i, q| duplicates(r, a, s, i, q))),
                        );
                }
                if r.0.capabilities.export {
                    config.service(
                        web::resource(format!("{base}/export"))
                            .route(web::get().to(move |a, s, q| export(r, a, s, q))),
                    );
                }
            })
            .service(
                web::resource(format!("{base}/{{id}}"))
                    .route(web::get().to(move |a, s, i| get(r, a, s, i)))
                    .route(web::patch().to(move |a, s, i, m, b| update(r, a, s, i, m, b)))
                    .route(web::delete().to(move |a, s, i, m| delete(r, a, s, i, m))),
            )
            .service(
                web::resource(format!("{base}/{{id}}/restore"))
                    .route(web::post().to(move |a, s, i| restore(r, a, s, i))),
            )
            .service(
                web::resource(format!("{base}/{{id}}/history"))
                    .route(web::get().to(move |a, s, i, q| history(r, a, s, i, q))),
            );
        for (field, parent) in listed_under(r.0) {
            let object = parent.object;
            config.service(
                web::resource(format!("/{}/{{id}}/{}", parent.plural, r.0.plural)).route(
                    web::get().to(move |a, s, i, q| list_under(r, field, object, a, s, i, q)),
                ),
            );
        }
    }
}

/// The engine objects, for generic code that dispatches on an object type.
pub fn resource(object: ObjectType) -> Option<&'static EngineResource> {
    RESOURCES.iter().find(|r| r.0.object == object)
}
