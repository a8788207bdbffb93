//! Products: the catalog that order lines refer to.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use rapport_domain::AuthContext;
use rapport_domain::product::{Product, ProductPatch};
use rapport_domain::values;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{Create, Delete, Read, Require, Update, obj};
use crate::error::{ApiError, FieldError};
use crate::extract::Json;
use crate::list::{ListQuery, PageParams};
use crate::record::{IfMatch, nullable, ok_record};
use crate::routes::records::{
    EventBody, HistoryList, MAX_NAME, RecordListParams, SearchRequest, custom_object, non_negative,
    patch_text,
};
use crate::routes::writes;
use crate::state::AppState;
use crate::validate::Check;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_products)
        .service(create_product)
        .service(search_products)
        .service(upsert_product_by_external_id)
        .service(get_product_by_external_id)
        .service(batch_upsert_products)
        .service(batch_delete_products)
        .service(get_product)
        .service(update_product)
        .service(delete_product)
        .service(restore_product)
        .service(product_history);
}

/// A product.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductBody {
    pub id: Uuid,
    /// Unique among the organization's live products.
    #[schema(example = "TEA-001")]
    pub sku: String,
    #[schema(example = "龙井茶 250 g")]
    pub name: String,
    pub description: Option<String>,
    #[schema(example = "tea")]
    pub category: Option<String>,
    /// The list price in minor units of `currency`; order lines default to it.
    #[schema(example = 12900)]
    pub unit_price_minor: Option<i64>,
    #[schema(example = "CNY")]
    pub currency: Option<String>,
    pub warranty_months: Option<i64>,
    pub active: bool,
    pub external_id: Option<String>,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<Product> for ProductBody {
    fn from(product: Product) -> Self {
        let d = product.data;
        ProductBody {
            id: product.id,
            sku: d.sku,
            name: d.name,
            description: d.description,
            category: d.category,
            unit_price_minor: d.unit_price_minor,
            currency: d.currency,
            warranty_months: d.warranty_months,
            active: d.active,
            external_id: d.external_id,
            custom: product.custom,
            version: product.version,
            created_at: product.created_at,
            updated_at: product.updated_at,
            created_by: product.created_by,
            deleted_at: product.deleted_at,
        }
    }
}

crate::list_envelope!(ProductList, ProductBody);

/// A product to create (`sku` and `name` required), or a JSON merge patch of one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "sku": "TEA-001", "name": "龙井茶 250 g", "category": "tea",
    "unit_price_minor": 12900, "currency": "CNY", "warranty_months": 0
}))]
pub struct ProductInput {
    #[schema(max_length = 100)]
    pub sku: Option<String>,
    #[schema(max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 5000)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub category: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub unit_price_minor: Option<Option<i64>>,
    /// ISO 4217; required with `unit_price_minor`.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::schema::Currency>)]
    pub currency: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub warranty_months: Option<Option<i64>>,
    /// Default `true`.
    pub active: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub external_id: Option<Option<String>>,
    #[schema(value_type = Option<Object>)]
    pub custom: Option<Value>,
}

fn required_text(
    check: &mut Check,
    field: &str,
    value: &Option<String>,
    max: usize,
) -> Option<String> {
    let text = value.as_deref()?;
    match values::text(text, max) {
        Ok(Some(text)) => Some(text),
        Ok(None) => {
            check.push(FieldError::new(field, "required", "must not be empty"));
            None
        }
        Err(message) => {
            check.push(FieldError::new(field, "invalid_value", message));
            None
        }
    }
}

impl ProductInput {
    pub fn to_patch(&self, _ctx: &AuthContext) -> Result<ProductPatch, ApiError> {
        let mut check = Check::new();
        let patch = ProductPatch {
            sku: required_text(&mut check, "sku", &self.sku, 100),
            name: required_text(&mut check, "name", &self.name, MAX_NAME),
            description: patch_text(&mut check, "description", &self.description, 5000),
            category: patch_text(&mut check, "category", &self.category, MAX_NAME),
            unit_price_minor: non_negative(&mut check, "unit_price_minor", self.unit_price_minor),
            currency: self.currency.as_ref().map(|v| {
                v.as_deref()
                    .and_then(|c| check.field("currency", values::currency(c)))
            }),
            warranty_months: non_negative(&mut check, "warranty_months", self.warranty_months),
            active: self.active,
            external_id: patch_text(&mut check, "external_id", &self.external_id, 255),
            custom: custom_object(&mut check, &self.custom),
        };
        check.finish()?;
        Ok(patch)
    }
}

crate::resource!(ProductResource {
    object: Product,
    spec: product,
    input: ProductInput,
    patch: ProductPatch,
    record: Product,
    body: ProductBody,
    store: products,
    to_patch: |input, ctx| input.to_patch(ctx),
});

crate::integration_routes! {
    module: product_integration,
    resource: ProductResource,
    marker: Product,
    tag: "products",
    input: ProductInput,
    body: ProductBody,
    put_external: (upsert_product_by_external_id, "/products/external/{external_id}", "upsert_product_by_external_id", "Create or change a product by external id"),
    get_external: (get_product_by_external_id, "/products/external/{external_id}", "get_product_by_external_id", "Read a product by external id"),
    batch_upsert: (batch_upsert_products, "/products/batch/upsert", "batch_upsert_products", "Create or change up to 1,000 products"),
    batch_delete: (batch_delete_products, "/products/batch/delete", "batch_delete_products", "Delete up to 1,000 products"),
}

/// The list parameters of products.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductListParams {
    /// Sort keys, comma-separated, `-` for descending: name, created_at, updated_at,
    /// custom.<key>. Default `-created_at`.
    pub sort: Option<String>,
    /// Case-insensitive substring search over sku, name and category.
    #[param(min_length = 1, max_length = 200, pattern = r"\S")]
    pub q: Option<String>,
    pub category: Option<String>,
    pub active: Option<bool>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
    /// `true` lists the deleted products instead of the live ones.
    pub deleted: Option<bool>,
}

pub(crate) fn list_request(
    query: &ListQuery<ProductListParams>,
) -> rapport_domain::store::ListRequest {
    let f = &query.filter;
    let mut extra = Vec::new();
    if let Some(category) = &f.category {
        extra.push(RecordListParams::eq("category", json!(category)));
    }
    if let Some(active) = f.active {
        extra.push(RecordListParams::eq("active", json!(active)));
    }
    RecordListParams {
        sort: f.sort.clone(),
        q: f.q.clone(),
        created_after: f.created_after,
        created_before: f.created_before,
        updated_after: f.updated_after,
        updated_before: f.updated_before,
        deleted: f.deleted,
        ..RecordListParams::default()
    }
    .request(query, extra)
}

/// List products
#[utoipa::path(
    tag = "products",
    operation_id = "list_products",
    params(PageParams, ProductListParams),
    responses((status = 200, description = "A page of products.", body = ProductList)),
)]
#[get("/products")]
async fn list_products(
    auth: Require<Read<obj::Product>>,
    state: web::Data<AppState>,
    query: ListQuery<ProductListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .products()
        .list(&auth.ctx, &list_request(&query))
        .await?;
    Ok(HttpResponse::Ok().json(ProductList::from_page(page, ProductBody::from)))
}

/// Search products with a filter tree
#[utoipa::path(
    tag = "products",
    operation_id = "search_products",
    request_body = SearchRequest,
    responses((status = 200, description = "A page of matching products.", body = ProductList)),
)]
#[post("/products/search")]
async fn search_products(
    auth: Require<Read<obj::Product>>,
    state: web::Data<AppState>,
    body: Json<SearchRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.request()?;
    let page = state.store.products().list(&auth.ctx, &request).await?;
    Ok(HttpResponse::Ok().json(ProductList::from_page(page, ProductBody::from)))
}

/// Create a product
///
/// The sku must not belong to another live product (409 `conflict` naming `sku`).
#[utoipa::path(
    tag = "products",
    operation_id = "create_product",
    request_body = ProductInput,
    responses(
        (status = 201, description = "The product.", body = ProductBody),
        (status = 409, response = crate::error::responses::Conflict),
    ),
)]
#[post("/products")]
async fn create_product(
    auth: Require<Create<obj::Product>>,
    state: web::Data<AppState>,
    body: Json<ProductInput>,
) -> Result<HttpResponse, ApiError> {
    writes::create(&ProductResource, &state, &auth.ctx, &body).await
}

/// Read a product
#[utoipa::path(
    tag = "products",
    operation_id = "get_product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses(
        (status = 200, description = "The product.", body = ProductBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/products/{id}")]
async fn get_product(
    auth: Require<Read<obj::Product>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let product = state.store.products().get(&auth.ctx, *id).await?;
    Ok(ok_record(product.version, &ProductBody::from(product)))
}

/// Change a product (JSON merge patch)
///
/// Orders keep the sku, name and price their lines had when written.
#[utoipa::path(
    tag = "products",
    operation_id = "update_product",
    params(
        ("id" = Uuid, Path, description = "The product's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on."),
    ),
    request_body = ProductInput,
    responses(
        (status = 200, description = "The changed product.", body = ProductBody),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 409, response = crate::error::responses::Conflict),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/products/{id}")]
async fn update_product(
    auth: Require<Update<obj::Product>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<ProductInput>,
) -> Result<HttpResponse, ApiError> {
    writes::update(&ProductResource, &state, &auth.ctx, *id, if_match, &body).await
}

/// Delete a product (restorable)
#[utoipa::path(
    tag = "products",
    operation_id = "delete_product",
    params(
        ("id" = Uuid, Path, description = "The product's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on."),
    ),
    responses(
        (status = 204, description = "The product is in the trash (`?deleted=true`)."),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[delete("/products/{id}")]
async fn delete_product(
    auth: Require<Delete<obj::Product>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    writes::delete(&ProductResource, &state, &auth.ctx, *id, if_match).await
}

/// Restore a deleted product
#[utoipa::path(
    tag = "products",
    operation_id = "restore_product",
    params(("id" = Uuid, Path, description = "The product's id.")),
    responses(
        (status = 200, description = "The restored product.", body = ProductBody),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 409, response = crate::error::responses::Conflict),
    ),
)]
#[post("/products/{id}/restore")]
async fn restore_product(
    auth: Require<Delete<obj::Product>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let product = state.store.products().restore(&auth.ctx, *id).await?;
    Ok(ok_record(product.version, &ProductBody::from(product)))
}

/// A product's history
#[utoipa::path(
    tag = "products",
    operation_id = "product_history",
    params(("id" = Uuid, Path, description = "The product's id."), PageParams),
    responses(
        (status = 200, description = "A page of changes, newest first.", body = HistoryList),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/products/{id}/history")]
async fn product_history(
    auth: Require<Read<obj::Product>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: ListQuery<crate::list::NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .products()
        .history(&auth.ctx, *id, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(HistoryList::from_page(page, EventBody::from)))
}
