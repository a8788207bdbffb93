//! Orders: the purchase history. Rapport computes every total; a contact's and a company's
//! purchase figures follow their orders.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use rapport_domain::order::{LineInput, MAX_LINES, Order, OrderLine, OrderPatch, OrderStatus};
use rapport_domain::{Action, AuthContext, Email, ObjectType, values};
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
    EventBody, HistoryList, RecordListParams, SearchRequest, custom_object, optional_text,
    patch_text,
};
use crate::routes::writes;
use crate::state::AppState;
use crate::validate::Check;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_orders)
        .service(create_order)
        .service(search_orders)
        .service(upsert_order_by_external_id)
        .service(get_order_by_external_id)
        .service(batch_upsert_orders)
        .service(batch_delete_orders)
        .service(get_order)
        .service(update_order)
        .service(delete_order)
        .service(restore_order)
        .service(order_history)
        .service(contact_orders)
        .service(company_orders);
}

/// An order line as stored: the product with its sku and name when the line was written.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineBody {
    pub product_id: Uuid,
    #[schema(example = "TEA-001")]
    pub sku: String,
    pub name: String,
    #[schema(example = 3)]
    pub quantity: i64,
    #[schema(example = 12900)]
    pub unit_price_minor: i64,
    /// For the whole line.
    #[schema(example = 900)]
    pub discount_minor: i64,
    /// `quantity × unit_price_minor − discount_minor`.
    #[schema(example = 37800)]
    pub total_minor: i64,
}

impl From<OrderLine> for OrderLineBody {
    fn from(line: OrderLine) -> Self {
        OrderLineBody {
            product_id: line.product_id,
            sku: line.sku,
            name: line.name,
            quantity: line.quantity,
            unit_price_minor: line.unit_price_minor,
            discount_minor: line.discount_minor,
            total_minor: line.total_minor,
        }
    }
}

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderBody {
    pub id: Uuid,
    /// Your order number; unique among the organization's live orders.
    #[schema(example = "SO-2026-0042")]
    pub number: Option<String>,
    pub external_id: Option<String>,
    pub contact_id: Option<Uuid>,
    pub company_id: Option<Uuid>,
    pub status: OrderStatus,
    pub ordered_at: DateTime<Utc>,
    #[schema(example = "CNY")]
    pub currency: String,
    pub lines: Vec<OrderLineBody>,
    /// The sum of the lines' totals.
    #[schema(example = 37800)]
    pub total_minor: i64,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<Order> for OrderBody {
    fn from(order: Order) -> Self {
        let d = order.data;
        OrderBody {
            id: order.id,
            number: d.number,
            external_id: d.external_id,
            contact_id: d.contact_id,
            company_id: d.company_id,
            status: d.status,
            ordered_at: d.ordered_at,
            currency: d.currency,
            lines: d.lines.into_iter().map(OrderLineBody::from).collect(),
            total_minor: d.total_minor,
            custom: order.custom,
            version: order.version,
            created_at: order.created_at,
            updated_at: order.updated_at,
            created_by: order.created_by,
            deleted_at: order.deleted_at,
        }
    }
}

crate::list_envelope!(OrderList, OrderBody);

/// A line as written: the product by `product_id` or `sku`; the unit price defaults to the
/// product's when it has one in the order's currency.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderLineInput {
    pub product_id: Option<Uuid>,
    #[schema(max_length = 100)]
    pub sku: Option<String>,
    #[schema(minimum = 1, example = 3)]
    pub quantity: i64,
    #[schema(minimum = 0)]
    pub unit_price_minor: Option<i64>,
    /// For the whole line; default 0.
    #[schema(minimum = 0)]
    pub discount_minor: Option<i64>,
}

/// An order to create, or a JSON merge patch of one. `lines`, when sent, replace the order's
/// lines as a whole. The contact may be named by `contact_id`, `contact_external_id` or
/// `contact_email`, the company by `company_id` or `company_external_id`; a new order of a
/// contact at a company counts for the company too.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "number": "SO-2026-0042", "contact_email": "wang.an@customer.example", "status": "paid",
    "ordered_at": "2026-11-20T08:30:00Z", "currency": "CNY",
    "lines": [{"sku": "TEA-001", "quantity": 3, "discount_minor": 900}]
}))]
pub struct OrderInput {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 100)]
    pub number: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub external_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub contact_id: Option<Option<Uuid>>,
    #[schema(max_length = 255)]
    pub contact_external_id: Option<String>,
    #[schema(value_type = Option<crate::schema::EmailAddress>)]
    pub contact_email: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub company_id: Option<Option<Uuid>>,
    #[schema(max_length = 255)]
    pub company_external_id: Option<String>,
    /// Default `pending`.
    pub status: Option<OrderStatus>,
    /// Default: now.
    pub ordered_at: Option<DateTime<Utc>>,
    /// ISO 4217; required on creation.
    #[schema(value_type = Option<crate::schema::Currency>)]
    pub currency: Option<String>,
    /// 1 to 500 lines.
    #[schema(min_items = 1, max_items = 500)]
    pub lines: Option<Vec<OrderLineInput>>,
    /// Optional: the total you computed. When it differs from Rapport's sum of the lines the
    /// write is refused (422 `mismatch` on `total_minor`).
    pub total_minor: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub custom: Option<Value>,
}

fn parse_lines(check: &mut Check, lines: &[OrderLineInput]) -> Vec<LineInput> {
    if lines.len() > MAX_LINES {
        check.push(FieldError::new(
            "lines",
            "out_of_range",
            format!("an order has at most {MAX_LINES} lines"),
        ));
        return Vec::new();
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let at = |field: &str| format!("lines[{i}].{field}");
            if line.quantity < 1 {
                check.push(FieldError::new(
                    at("quantity"),
                    "out_of_range",
                    "must be at least 1",
                ));
            }
            if line.unit_price_minor.is_some_and(|p| p < 0) {
                check.push(FieldError::new(
                    at("unit_price_minor"),
                    "out_of_range",
                    "must not be negative",
                ));
            }
            if line.discount_minor.is_some_and(|d| d < 0) {
                check.push(FieldError::new(
                    at("discount_minor"),
                    "out_of_range",
                    "must not be negative",
                ));
            }
            LineInput {
                product_id: line.product_id,
                sku: optional_text(check, &at("sku"), &line.sku, 100),
                quantity: line.quantity,
                unit_price_minor: line.unit_price_minor,
                discount_minor: line.discount_minor.unwrap_or(0),
            }
        })
        .collect()
}

impl OrderInput {
    pub fn to_patch(&self, _ctx: &AuthContext) -> Result<OrderPatch, ApiError> {
        let mut check = Check::new();
        let patch = OrderPatch {
            number: patch_text(&mut check, "number", &self.number, 100),
            external_id: patch_text(&mut check, "external_id", &self.external_id, 255),
            contact_id: self.contact_id,
            contact_external_id: optional_text(
                &mut check,
                "contact_external_id",
                &self.contact_external_id,
                255,
            ),
            contact_email: self.contact_email.as_deref().and_then(|e| {
                check
                    .field("contact_email", Email::parse(e))
                    .map(|e| e.as_str().to_owned())
            }),
            company_id: self.company_id,
            company_external_id: optional_text(
                &mut check,
                "company_external_id",
                &self.company_external_id,
                255,
            ),
            status: self.status,
            ordered_at: self.ordered_at,
            currency: self
                .currency
                .as_deref()
                .and_then(|c| check.field("currency", values::currency(c))),
            lines: self
                .lines
                .as_deref()
                .map(|lines| parse_lines(&mut check, lines)),
            total_minor: self.total_minor,
            custom: custom_object(&mut check, &self.custom),
        };
        check.finish()?;
        Ok(patch)
    }
}

crate::resource!(OrderResource {
    object: Order,
    spec: order,
    input: OrderInput,
    patch: OrderPatch,
    record: Order,
    body: OrderBody,
    store: orders,
    to_patch: |input, ctx| input.to_patch(ctx),
});

crate::integration_routes! {
    module: order_integration,
    resource: OrderResource,
    marker: Order,
    tag: "orders",
    input: OrderInput,
    body: OrderBody,
    put_external: (upsert_order_by_external_id, "/orders/external/{external_id}", "upsert_order_by_external_id", "Create or change an order by external id"),
    get_external: (get_order_by_external_id, "/orders/external/{external_id}", "get_order_by_external_id", "Read an order by external id"),
    batch_upsert: (batch_upsert_orders, "/orders/batch/upsert", "batch_upsert_orders", "Create or change up to 1,000 orders"),
    batch_delete: (batch_delete_orders, "/orders/batch/delete", "batch_delete_orders", "Delete up to 1,000 orders"),
}

/// The list parameters of orders.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderListParams {
    /// Sort keys, comma-separated, `-` for descending: ordered_at, total_minor, created_at,
    /// updated_at, custom.<key>. Default `-created_at`.
    pub sort: Option<String>,
    /// Case-insensitive substring search over number, external id and skus.
    #[param(min_length = 1, max_length = 200, pattern = r"\S")]
    pub q: Option<String>,
    pub status: Option<OrderStatus>,
    pub contact_id: Option<Uuid>,
    pub company_id: Option<Uuid>,
    pub ordered_after: Option<DateTime<Utc>>,
    pub ordered_before: Option<DateTime<Utc>>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    pub updated_after: Option<DateTime<Utc>>,
    pub updated_before: Option<DateTime<Utc>>,
    /// `true` lists the deleted orders instead of the live ones.
    pub deleted: Option<bool>,
}

pub(crate) fn list_request(
    query: &ListQuery<OrderListParams>,
    contact: Option<Uuid>,
    company: Option<Uuid>,
) -> rapport_domain::store::ListRequest {
    let f = &query.filter;
    let mut extra = Vec::new();
    if let Some(status) = f.status {
        extra.push(RecordListParams::eq("status", json!(status)));
    }
    if let Some(contact) = contact.or(f.contact_id) {
        extra.push(RecordListParams::eq("contact_id", json!(contact)));
    }
    if let Some(company) = company.or(f.company_id) {
        extra.push(RecordListParams::eq("company_id", json!(company)));
    }
    for (value, op) in [
        (f.ordered_after, rapport_domain::query::Op::Gte),
        (f.ordered_before, rapport_domain::query::Op::Lt),
    ] {
        if let Some(at) = value {
            extra.push(RecordListParams::condition(
                "ordered_at",
                op,
                json!(at.to_rfc3339()),
            ));
        }
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

/// List orders
#[utoipa::path(
    tag = "orders",
    operation_id = "list_orders",
    params(PageParams, OrderListParams),
    responses((status = 200, description = "A page of orders.", body = OrderList)),
)]
#[get("/orders")]
async fn list_orders(
    auth: Require<Read<obj::Order>>,
    state: web::Data<AppState>,
    query: ListQuery<OrderListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .orders()
        .list(&auth.ctx, &list_request(&query, None, None))
        .await?;
    Ok(HttpResponse::Ok().json(OrderList::from_page(page, OrderBody::from)))
}

/// A contact's orders
#[utoipa::path(
    tag = "orders",
    operation_id = "list_contact_orders",
    params(("id" = Uuid, Path, description = "The contact's id."), PageParams, OrderListParams),
    responses(
        (status = 200, description = "A page of the contact's orders.", body = OrderList),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/contacts/{id}/orders")]
async fn contact_orders(
    auth: Require<Read<obj::Order>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: ListQuery<OrderListParams>,
) -> Result<HttpResponse, ApiError> {
    crate::auth::check(&auth.ctx, Action::Read, ObjectType::Contact)?;
    state.store.contacts().get(&auth.ctx, *id).await?;
    let page = state
        .store
        .orders()
        .list(&auth.ctx, &list_request(&query, Some(*id), None))
        .await?;
    Ok(HttpResponse::Ok().json(OrderList::from_page(page, OrderBody::from)))
}

/// A company's orders
#[utoipa::path(
    tag = "orders",
    operation_id = "list_company_orders",
    params(("id" = Uuid, Path, description = "The company's id."), PageParams, OrderListParams),
    responses(
        (status = 200, description = "A page of the company's orders.", body = OrderList),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/companies/{id}/orders")]
async fn company_orders(
    auth: Require<Read<obj::Order>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: ListQuery<OrderListParams>,
) -> Result<HttpResponse, ApiError> {
    crate::auth::check(&auth.ctx, Action::Read, ObjectType::Company)?;
    state.store.companies().get(&auth.ctx, *id).await?;
    let page = state
        .store
        .orders()
        .list(&auth.ctx, &list_request(&query, None, Some(*id)))
        .await?;
    Ok(HttpResponse::Ok().json(OrderList::from_page(page, OrderBody::from)))
}

/// Search orders with a filter tree
///
/// Conditions over the order's fields, `custom.<key>`, and its contact's and company's
/// fields (`contact.lifecycle_stage`, `company.tier`).
#[utoipa::path(
    tag = "orders",
    operation_id = "search_orders",
    request_body = SearchRequest,
    responses((status = 200, description = "A page of matching orders.", body = OrderList)),
)]
#[post("/orders/search")]
async fn search_orders(
    auth: Require<Read<obj::Order>>,
    state: web::Data<AppState>,
    body: Json<SearchRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.request()?;
    let page = state.store.orders().list(&auth.ctx, &request).await?;
    Ok(HttpResponse::Ok().json(OrderList::from_page(page, OrderBody::from)))
}

/// Create an order
///
/// Rapport computes each line's total and the order's; a `total_minor` that disagrees is 422.
#[utoipa::path(
    tag = "orders",
    operation_id = "create_order",
    request_body = OrderInput,
    responses(
        (status = 201, description = "The order.", body = OrderBody),
        (status = 409, response = crate::error::responses::Conflict),
    ),
)]
#[post("/orders")]
async fn create_order(
    auth: Require<Create<obj::Order>>,
    state: web::Data<AppState>,
    body: Json<OrderInput>,
) -> Result<HttpResponse, ApiError> {
    writes::create(&OrderResource, &state, &auth.ctx, &body).await
}

/// Read an order
#[utoipa::path(
    tag = "orders",
    operation_id = "get_order",
    params(("id" = Uuid, Path, description = "The order's id.")),
    responses(
        (status = 200, description = "The order.", body = OrderBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/orders/{id}")]
async fn get_order(
    auth: Require<Read<obj::Order>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let order = state.store.orders().get(&auth.ctx, *id).await?;
    Ok(ok_record(order.version, &OrderBody::from(order)))
}

/// Change an order (JSON merge patch)
#[utoipa::path(
    tag = "orders",
    operation_id = "update_order",
    params(
        ("id" = Uuid, Path, description = "The order's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on."),
    ),
    request_body = OrderInput,
    responses(
        (status = 200, description = "The changed order.", body = OrderBody),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 409, response = crate::error::responses::Conflict),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/orders/{id}")]
async fn update_order(
    auth: Require<Update<obj::Order>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<OrderInput>,
) -> Result<HttpResponse, ApiError> {
    writes::update(&OrderResource, &state, &auth.ctx, *id, if_match, &body).await
}

/// Delete an order (restorable)
///
/// The contact's and company's purchase figures drop it at once.
#[utoipa::path(
    tag = "orders",
    operation_id = "delete_order",
    params(
        ("id" = Uuid, Path, description = "The order's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on."),
    ),
    responses(
        (status = 204, description = "The order is in the trash (`?deleted=true`)."),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[delete("/orders/{id}")]
async fn delete_order(
    auth: Require<Delete<obj::Order>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    writes::delete(&OrderResource, &state, &auth.ctx, *id, if_match).await
}

/// Restore a deleted order
#[utoipa::path(
    tag = "orders",
    operation_id = "restore_order",
    params(("id" = Uuid, Path, description = "The order's id.")),
    responses(
        (status = 200, description = "The restored order.", body = OrderBody),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 409, response = crate::error::responses::Conflict),
    ),
)]
#[post("/orders/{id}/restore")]
async fn restore_order(
    auth: Require<Delete<obj::Order>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let order = state.store.orders().restore(&auth.ctx, *id).await?;
    Ok(ok_record(order.version, &OrderBody::from(order)))
}

/// An order's history
#[utoipa::path(
    tag = "orders",
    operation_id = "order_history",
    params(("id" = Uuid, Path, description = "The order's id."), PageParams),
    responses(
        (status = 200, description = "A page of changes, newest first.", body = HistoryList),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/orders/{id}/history")]
async fn order_history(
    auth: Require<Read<obj::Order>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: ListQuery<crate::list::NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .orders()
        .history(&auth.ctx, *id, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(HistoryList::from_page(page, EventBody::from)))
}
