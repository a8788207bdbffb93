//! Companies (accounts).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use rapport_domain::AuthContext;
use rapport_domain::company::{Company, CompanyPatch};
use rapport_domain::values::{self, LifecycleStage, Phone, PhoneKind, Tier};
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
    AddressBody, AddressInput, EventBody, HistoryList, MAX_NAME, MergeRequest, RecordListParams,
    SearchRequest, changes_body, custom_object, non_negative, optional_text, parse_tags,
    patch_text,
};
use crate::routes::writes;
use crate::state::AppState;
use crate::validate::Check;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(upsert_company_by_external_id)
        .service(get_company_by_external_id)
        .service(batch_upsert_companies)
        .service(batch_delete_companies)
        .service(list_companies)
        .service(create_company)
        .service(search_companies)
        .service(merge_companies)
        .service(get_company)
        .service(update_company)
        .service(delete_company)
        .service(restore_company)
        .service(company_history)
        .service(company_duplicates);
}

crate::resource!(CompanyResource {
    object: Company,
    spec: company,
    input: CompanyInput,
    patch: CompanyPatch,
    record: Company,
    body: CompanyBody,
    store: companies,
    to_patch: |input, ctx| input.to_patch(ctx),
});

crate::integration_routes! {
    module: company_integration,
    resource: CompanyResource,
    marker: Company,
    tag: "companies",
    input: CompanyInput,
    body: CompanyBody,
    put_external: (upsert_company_by_external_id, "/companies/external/{external_id}", "upsert_company_by_external_id", "Create or change a company by external id"),
    get_external: (get_company_by_external_id, "/companies/external/{external_id}", "get_company_by_external_id", "Read a company by external id"),
    batch_upsert: (batch_upsert_companies, "/companies/batch/upsert", "batch_upsert_companies", "Create or change up to 1,000 companies"),
    batch_delete: (batch_delete_companies, "/companies/batch/delete", "batch_delete_companies", "Delete up to 1,000 companies"),
    owner_refusal: OwnerNotPermitted,
}

/// A company (account).
#[derive(Debug, Serialize, ToSchema)]
pub struct CompanyBody {
    pub id: Uuid,
    #[schema(example = "Acme Trading Co.")]
    pub name: String,
    /// Lower case, without scheme or `www.`.
    #[schema(example = "acme.example")]
    pub domain: Option<String>,
    #[schema(example = "retail")]
    pub industry: Option<String>,
    pub employee_count: Option<i64>,
    /// In minor units of `currency`.
    #[schema(example = 12990000)]
    pub annual_revenue_minor: Option<i64>,
    /// ISO 4217.
    #[schema(example = "CNY")]
    pub currency: Option<String>,
    /// As written.
    pub phone: Option<String>,
    /// E.164, null when the phone cannot be read.
    pub phone_e164: Option<String>,
    pub website: Option<String>,
    pub address: Option<AddressBody>,
    pub parent_company_id: Option<Uuid>,
    pub tier: Option<Tier>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub lifecycle_stage_changed_at: Option<DateTime<Utc>>,
    pub owner_id: Option<Uuid>,
    pub source: Option<String>,
    /// Your system's id for the company; unique per organization.
    pub external_id: Option<String>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub custom: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub last_activity_at: Option<DateTime<Utc>>,
    /// When the company's first paid or fulfilled order was placed.
    pub first_order_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
    /// Paid and fulfilled orders.
    pub order_count: i64,
    /// The sum of those orders' totals, in minor units.
    pub revenue_minor: i64,
}

impl From<Company> for CompanyBody {
    fn from(company: Company) -> Self {
        let d = company.data;
        CompanyBody {
            id: company.id,
            name: d.name,
            domain: d.domain,
            industry: d.industry,
            employee_count: d.employee_count,
            annual_revenue_minor: d.annual_revenue_minor,
            currency: d.currency,
            phone: d.phone.as_ref().map(|p| p.number.clone()),
            phone_e164: d.phone.and_then(|p| p.e164),
            website: d.website,
            address: AddressBody::from_address(&d.address),
            parent_company_id: d.parent_company_id,
            tier: d.tier,
            lifecycle_stage: d.lifecycle_stage,
            lifecycle_stage_changed_at: company.lifecycle_stage_changed_at,
            owner_id: d.owner_id,
            source: d.source,
            external_id: d.external_id,
            tags: d.tags,
            custom: company.custom,
            version: company.version,
            created_at: company.created_at,
            updated_at: company.updated_at,
            created_by: company.created_by,
            deleted_at: company.deleted_at,
            last_activity_at: company.last_activity_at,
            first_order_at: company.purchases.first_order_at,
            last_order_at: company.purchases.last_order_at,
            order_count: company.purchases.order_count,
            revenue_minor: company.purchases.revenue_minor,
        }
    }
}

crate::list_envelope!(CompanyList, CompanyBody);
crate::record_answers!(
    CompanyDuplicate,
    CompanyDuplicates,
    CompanyMerge,
    CompanyBody
);

/// A company to create (`name` required), or a JSON merge patch of one.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Acme Trading Co.", "domain": "acme.example", "industry": "retail",
    "annual_revenue_minor": 12990000, "currency": "CNY", "tier": "a",
    "address": {"city": "Shanghai", "country": "CN"}, "custom": {"region": "华东"}
}))]
pub struct CompanyInput {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 253)]
    pub domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub industry: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub employee_count: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    pub annual_revenue_minor: Option<Option<i64>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::schema::Currency>)]
    pub currency: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = r"^\s*https?://[^\s/?#]+\S*\s*$")]
    pub website: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<AddressInput>)]
    pub address: Option<Option<AddressInput>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub parent_company_id: Option<Option<Uuid>>,
    /// The parent by your system's id, instead of `parent_company_id`.
    #[schema(max_length = 255)]
    pub parent_external_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Tier>)]
    pub tier: Option<Option<Tier>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<LifecycleStage>)]
    pub lifecycle_stage: Option<Option<LifecycleStage>>,
    /// Default on creation: you.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub source: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub external_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<crate::schema::Tag>>, max_items = 50)]
    pub tags: Option<Option<Vec<String>>>,
    #[schema(value_type = Option<Object>)]
    pub custom: Option<Value>,
}

impl CompanyInput {
    pub fn to_patch(&self, ctx: &AuthContext) -> Result<CompanyPatch, ApiError> {
        let mut check = Check::new();
        let region = ctx.settings.default_phone_region.as_deref();
        let name = match &self.name {
            None => None,
            Some(None) => {
                check.push(FieldError::new(
                    "name",
                    "required",
                    "a company needs a name",
                ));
                None
            }
            Some(Some(text)) => match values::text(text, MAX_NAME) {
                Ok(Some(name)) => Some(name),
                Ok(None) => {
                    check.push(FieldError::new(
                        "name",
                        "required",
                        "a company needs a name",
                    ));
                    None
                }
                Err(message) => {
                    check.push(FieldError::new("name", "invalid_value", message));
                    None
                }
            },
        };
        let patch = CompanyPatch {
            name,
            domain: self.domain.as_ref().map(|v| {
                v.as_deref()
                    .and_then(|d| check.field("domain", values::domain(d)))
            }),
            industry: patch_text(&mut check, "industry", &self.industry, MAX_NAME),
            employee_count: non_negative(&mut check, "employee_count", self.employee_count),
            annual_revenue_minor: non_negative(
                &mut check,
                "annual_revenue_minor",
                self.annual_revenue_minor,
            ),
            currency: self.currency.as_ref().map(|v| {
                v.as_deref()
                    .and_then(|c| check.field("currency", values::currency(c)))
            }),
            phone: self.phone.as_ref().map(|v| {
                v.as_deref()
                    .and_then(|p| check.field("phone", Phone::new(p, PhoneKind::Work, region)))
            }),
            website: self.website.as_ref().map(|v| {
                v.as_deref()
                    .and_then(|w| check.field("website", values::url(w)))
            }),
            address: self
                .address
                .as_ref()
                .map(|v| v.as_ref().map(|a| a.parse(&mut check, "address"))),
            parent_company_id: self.parent_company_id,
            parent_external_id: optional_text(
                &mut check,
                "parent_external_id",
                &self.parent_external_id,
                255,
            ),
            tier: self.tier,
            lifecycle_stage: self.lifecycle_stage,
            owner_id: self.owner_id,
            source: patch_text(&mut check, "source", &self.source, MAX_NAME),
            external_id: patch_text(&mut check, "external_id", &self.external_id, 255),
            tags: self
                .tags
                .as_ref()
                .map(|v| parse_tags(&mut check, v.as_deref().unwrap_or_default())),
            custom: custom_object(&mut check, &self.custom),
        };
        check.finish()?;
        Ok(patch)
    }
}

crate::record_list_params!(CompanyListParams {
    /// Only the subsidiaries of this company.
    parent_company_id: Option<Uuid>,
    tier: Option<Tier>,
    lifecycle_stage: Option<LifecycleStage>,
});

pub(crate) fn list_request(
    query: &ListQuery<CompanyListParams>,
) -> rapport_domain::store::ListRequest {
    let mut extra = Vec::new();
    if let Some(parent) = query.filter.parent_company_id {
        extra.push(RecordListParams::eq("parent_company_id", json!(parent)));
    }
    if let Some(tier) = query.filter.tier {
        extra.push(RecordListParams::eq("tier", json!(tier)));
    }
    if let Some(stage) = query.filter.lifecycle_stage {
        extra.push(RecordListParams::eq("lifecycle_stage", json!(stage)));
    }
    query.filter.common().request(query, extra)
}

/// List companies
#[utoipa::path(
    tag = "companies",
    operation_id = "list_companies",
    params(PageParams, CompanyListParams),
    responses((status = 200, description = "A page of companies.", body = CompanyList)),
)]
#[get("/companies")]
async fn list_companies(
    auth: Require<Read<obj::Company>>,
    state: web::Data<AppState>,
    query: ListQuery<CompanyListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .companies()
        .list(&auth.ctx, &list_request(&query))
        .await?;
    Ok(HttpResponse::Ok().json(CompanyList::from_page(page, CompanyBody::from)))
}

/// Search companies with a filter tree
///
/// Conditions over standard fields, `custom.<key>` and the parent company's fields
/// (`parent.industry`), combined with `and`, `or` and `not`.
#[utoipa::path(
    tag = "companies",
    operation_id = "search_companies",
    request_body = SearchRequest,
    responses((status = 200, description = "A page of matching companies.", body = CompanyList)),
)]
#[post("/companies/search")]
async fn search_companies(
    auth: Require<Read<obj::Company>>,
    state: web::Data<AppState>,
    body: Json<SearchRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.request()?;
    let page = state.store.companies().list(&auth.ctx, &request).await?;
    Ok(HttpResponse::Ok().json(CompanyList::from_page(page, CompanyBody::from)))
}

/// Create a company
///
/// The owner defaults to the caller. Under `own` or `team` visibility, the owner must be one
/// whose records the caller sees (`403 owner_not_permitted`, nothing written).
#[utoipa::path(
    tag = "companies",
    operation_id = "create_company",
    request_body = CompanyInput,
    responses(
        (status = 201, description = "The company.", body = CompanyBody),
        (status = 403, response = crate::error::responses::OwnerNotPermitted),
    ),
)]
#[post("/companies")]
async fn create_company(
    auth: Require<Create<obj::Company>>,
    state: web::Data<AppState>,
    body: Json<CompanyInput>,
) -> Result<HttpResponse, ApiError> {
    writes::create(&CompanyResource, &state, &auth.ctx, &body).await
}

/// Read a company
///
/// A company merged into another answers 404 `record_merged` with `merged_into`.
#[utoipa::path(
    tag = "companies",
    operation_id = "get_company",
    params(("id" = Uuid, Path, description = "The company's id.")),
    responses(
        (status = 200, description = "The company.", body = CompanyBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/companies/{id}")]
async fn get_company(
    auth: Require<Read<obj::Company>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let company = state.store.companies().get(&auth.ctx, *id).await?;
    Ok(ok_record(company.version, &CompanyBody::from(company)))
}

/// Change a company (JSON merge patch)
///
/// Under `own` or `team` visibility, a new owner must be one whose records the caller sees
/// (`403 owner_not_permitted`, nothing written).
#[utoipa::path(
    tag = "companies",
    operation_id = "update_company",
    params(
        ("id" = Uuid, Path, description = "The company's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on."),
    ),
    request_body = CompanyInput,
    responses(
        (status = 200, description = "The changed company.", body = CompanyBody),
        (status = 403, response = crate::error::responses::OwnerNotPermitted),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/companies/{id}")]
async fn update_company(
    auth: Require<Update<obj::Company>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<CompanyInput>,
) -> Result<HttpResponse, ApiError> {
    writes::update(&CompanyResource, &state, &auth.ctx, *id, if_match, &body).await
}

/// Delete a company (restorable)
#[utoipa::path(
    tag = "companies",
    operation_id = "delete_company",
    params(
        ("id" = Uuid, Path, description = "The company's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on."),
    ),
    responses(
        (status = 204, description = "The company is in the trash (`?deleted=true`)."),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[delete("/companies/{id}")]
async fn delete_company(
    auth: Require<Delete<obj::Company>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    state
        .store
        .companies()
        .delete(&auth.ctx, *id, if_match.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Restore a deleted company
#[utoipa::path(
    tag = "companies",
    operation_id = "restore_company",
    params(("id" = Uuid, Path, description = "The company's id.")),
    responses(
        (status = 200, description = "The restored company.", body = CompanyBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[post("/companies/{id}/restore")]
async fn restore_company(
    auth: Require<Delete<obj::Company>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let company = state.store.companies().restore(&auth.ctx, *id).await?;
    Ok(ok_record(company.version, &CompanyBody::from(company)))
}

/// A company's history
#[utoipa::path(
    tag = "companies",
    operation_id = "company_history",
    params(("id" = Uuid, Path, description = "The company's id."), PageParams),
    responses(
        (status = 200, description = "A page of changes, newest first.", body = HistoryList),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/companies/{id}/history")]
async fn company_history(
    auth: Require<Read<obj::Company>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: ListQuery<crate::list::NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .companies()
        .history(&auth.ctx, *id, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(HistoryList::from_page(page, EventBody::from)))
}

/// Likely duplicates of a company
///
/// Companies with the same domain, the same name (ignoring case) or the same normalised
/// phone, with the reasons.
#[utoipa::path(
    tag = "companies",
    operation_id = "company_duplicates",
    params(("id" = Uuid, Path, description = "The company's id.")),
    responses(
        (status = 200, description = "Likely duplicates.", body = CompanyDuplicates),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/companies/{id}/duplicates")]
async fn company_duplicates(
    auth: Require<Read<obj::Company>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let found = state.store.companies().duplicates(&auth.ctx, *id).await?;
    Ok(HttpResponse::Ok().json(CompanyDuplicates {
        data: found
            .into_iter()
            .map(|d| CompanyDuplicate {
                reasons: d.reasons,
                record: CompanyBody::from(d.record),
            })
            .collect(),
        next_cursor: None,
    }))
}

/// Merge duplicate companies into one
///
/// As for contacts: the primary's values win where present, empty ones are filled from the
/// duplicates, tags and custom values unite, contacts and subsidiaries of the duplicates move
/// to the primary, the duplicates are deleted with `merged_into`, and one `merged` event
/// records it.
#[utoipa::path(
    tag = "companies",
    operation_id = "merge_companies",
    request_body = MergeRequest,
    responses(
        (status = 200, description = "The merged company.", body = CompanyMerge),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[post("/companies/merge")]
async fn merge_companies(
    auth: Require<Update<obj::Company>>,
    state: web::Data<AppState>,
    body: Json<MergeRequest>,
) -> Result<HttpResponse, ApiError> {
    crate::auth::check(
        &auth.ctx,
        rapport_domain::Action::Delete,
        rapport_domain::ObjectType::Company,
    )?;
    let outcome = state
        .store
        .companies()
        .merge(
            &auth.ctx,
            body.primary_id,
            &body.duplicate_ids,
            body.dry_run,
        )
        .await?;
    Ok(HttpResponse::Ok().json(CompanyMerge {
        merged: CompanyBody::from(outcome.merged),
        merged_ids: outcome.merged_ids,
        changes: changes_body(outcome.changes),
        dry_run: outcome.dry_run,
    }))
}
