//! Contacts: the people a company deals with.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use rapport_domain::contact::{Contact, ContactPatch, MAX_EMAILS};
use rapport_domain::values::LifecycleStage;
use rapport_domain::{AuthContext, Email};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{Create, Delete, Read, Require, Update, obj};
use crate::error::ApiError;
use crate::extract::Json;
use crate::list::{ListQuery, PageParams};
use crate::record::{IfMatch, nullable, ok_record};
use crate::routes::records::{
    AddressBody, AddressInput, ConsentBody, ConsentInput, EventBody, HistoryList, MAX_NAME,
    MergeRequest, PhoneBody, PhoneInput, RecordListParams, SearchRequest, changes_body,
    custom_object, optional_text, parse_phones, parse_tags, patch_text, within_limit,
};
use crate::routes::writes;
use crate::state::AppState;
use crate::validate::{self, Check};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(upsert_contact_by_external_id)
        .service(get_contact_by_external_id)
        .service(batch_upsert_contacts)
        .service(batch_delete_contacts)
        .service(list_contacts)
        .service(create_contact)
        .service(search_contacts)
        .service(merge_contacts)
        .service(get_contact)
        .service(update_contact)
        .service(delete_contact)
        .service(restore_contact)
        .service(contact_history)
        .service(contact_duplicates)
        .service(company_contacts);
}

crate::resource!(ContactResource {
    object: Contact,
    spec: contact,
    input: ContactInput,
    patch: ContactPatch,
    record: Contact,
    body: ContactBody,
    store: contacts,
    to_patch: |input, ctx| input.to_patch(ctx),
});

crate::integration_routes! {
    module: contact_integration,
    resource: ContactResource,
    marker: Contact,
    tag: "contacts",
    input: ContactInput,
    body: ContactBody,
    put_external: (upsert_contact_by_external_id, "/contacts/external/{external_id}", "upsert_contact_by_external_id", "Create or change a contact by external id"),
    get_external: (get_contact_by_external_id, "/contacts/external/{external_id}", "get_contact_by_external_id", "Read a contact by external id"),
    batch_upsert: (batch_upsert_contacts, "/contacts/batch/upsert", "batch_upsert_contacts", "Create or change up to 1,000 contacts"),
    batch_delete: (batch_delete_contacts, "/contacts/batch/delete", "batch_delete_contacts", "Delete up to 1,000 contacts"),
    owner_refusal: OwnerNotPermitted,
}

/// A contact.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContactBody {
    pub id: Uuid,
    /// How the contact is called: "First Last" (family name first for Chinese, Japanese and
    /// Korean names), else the email.
    #[schema(example = "王安")]
    pub name: Option<String>,
    #[schema(example = "安")]
    pub first_name: Option<String>,
    #[schema(example = "王")]
    pub last_name: Option<String>,
    /// The primary email: unique among the organization's live contacts.
    #[schema(example = "wang.an@customer.example")]
    pub email: Option<String>,
    /// Additional emails.
    pub emails: Vec<String>,
    pub phones: Vec<PhoneBody>,
    pub title: Option<String>,
    pub company_id: Option<Uuid>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub lifecycle_stage_changed_at: Option<DateTime<Utc>>,
    pub lead_source: Option<String>,
    pub owner_id: Option<Uuid>,
    #[schema(example = "zh-CN")]
    pub language: Option<String>,
    #[schema(example = "Asia/Shanghai")]
    pub timezone: Option<String>,
    pub address: Option<AddressBody>,
    pub consent: ConsentBody,
    /// Your system's id for the contact; unique per organization.
    pub external_id: Option<String>,
    pub tags: Vec<String>,
    /// Custom field values by key.
    #[schema(value_type = Object, example = json!({"region": "华东"}))]
    pub custom: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub last_activity_at: Option<DateTime<Utc>>,
    /// When the contact's first paid or fulfilled order was placed.
    pub first_order_at: Option<DateTime<Utc>>,
    pub last_order_at: Option<DateTime<Utc>>,
    /// Paid and fulfilled orders.
    pub order_count: i64,
    /// The sum of those orders' totals, in minor units.
    pub revenue_minor: i64,
}

impl From<Contact> for ContactBody {
    fn from(contact: Contact) -> Self {
        let d = &contact.data;
        ContactBody {
            id: contact.id,
            name: d.display_name(),
            first_name: d.first_name.clone(),
            last_name: d.last_name.clone(),
            email: d.email.clone(),
            emails: d.emails.clone(),
            phones: d.phones.iter().map(PhoneBody::from).collect(),
            title: d.title.clone(),
            company_id: d.company_id,
            lifecycle_stage: d.lifecycle_stage,
            lifecycle_stage_changed_at: contact.lifecycle_stage_changed_at,
            lead_source: d.lead_source.clone(),
            owner_id: d.owner_id,
            language: d.language.clone(),
            timezone: d.timezone.clone(),
            address: AddressBody::from_address(&d.address),
            consent: ConsentBody::from(&d.consent),
            external_id: d.external_id.clone(),
            tags: d.tags.clone(),
            custom: contact.custom.clone(),
            version: contact.version,
            created_at: contact.created_at,
            updated_at: contact.updated_at,
            created_by: contact.created_by,
            deleted_at: contact.deleted_at,
            last_activity_at: contact.last_activity_at,
            first_order_at: contact.purchases.first_order_at,
            last_order_at: contact.purchases.last_order_at,
            order_count: contact.purchases.order_count,
            revenue_minor: contact.purchases.revenue_minor,
        }
    }
}

crate::list_envelope!(ContactList, ContactBody);
crate::record_answers!(
    ContactDuplicate,
    ContactDuplicates,
    ContactMerge,
    ContactBody
);

/// A contact to create, or a JSON merge patch of one: in a PATCH only the fields sent change,
/// and `null` clears a field.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "first_name": "安", "last_name": "王", "email": "wang.an@customer.example",
    "phones": [{"number": "+86 138 0013 8000", "kind": "mobile"}],
    "lifecycle_stage": "lead", "tags": ["vip"], "custom": {"region": "华东"},
    "consent": {"email": {"status": "opted_in"}}
}))]
pub struct ContactInput {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::schema::EmailAddress>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<crate::schema::EmailAddress>>, max_items = 20)]
    pub emails: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<PhoneInput>>, max_items = 20)]
    pub phones: Option<Option<Vec<PhoneInput>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub company_id: Option<Option<Uuid>>,
    /// The company by your system's id, instead of `company_id`.
    #[schema(max_length = 255)]
    pub company_external_id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<LifecycleStage>)]
    pub lifecycle_stage: Option<Option<LifecycleStage>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub lead_source: Option<Option<String>>,
    /// Default on creation: you.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Uuid>)]
    pub owner_id: Option<Option<Uuid>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 35, pattern = "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")]
    pub language: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 64, pattern = "^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*$")]
    pub timezone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<AddressInput>)]
    pub address: Option<Option<AddressInput>>,
    pub consent: Option<ConsentInput>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub external_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<crate::schema::Tag>>, max_items = 50)]
    pub tags: Option<Option<Vec<String>>>,
    /// Custom values by key; in a PATCH they merge into the current ones (a key set to null
    /// is removed).
    #[schema(value_type = Option<Object>)]
    pub custom: Option<Value>,
}

impl ContactInput {
    /// Checks every field; problems name their JSON path.
    pub fn to_patch(&self, ctx: &AuthContext) -> Result<ContactPatch, ApiError> {
        let mut check = Check::new();
        let region = ctx.settings.default_phone_region.as_deref();
        let emails = self.emails.as_ref().map(|list| {
            let list = list.as_deref().unwrap_or_default();
            if !within_limit(&mut check, "emails", list.len(), MAX_EMAILS, "emails") {
                return Vec::new();
            }
            list.iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    check
                        .field(&format!("emails[{i}]"), Email::parse(e))
                        .map(|e| e.as_str().to_owned())
                })
                .collect()
        });
        let phones = self
            .phones
            .as_ref()
            .map(|list| parse_phones(&mut check, list.as_deref().unwrap_or_default(), region));
        let patch = ContactPatch {
            first_name: patch_text(&mut check, "first_name", &self.first_name, MAX_NAME),
            last_name: patch_text(&mut check, "last_name", &self.last_name, MAX_NAME),
            email: self.email.as_ref().map(|v| {
                v.as_deref().and_then(|e| {
                    check
                        .field("email", Email::parse(e))
                        .map(|e| e.as_str().to_owned())
                })
            }),
            emails,
            phones,
            title: patch_text(&mut check, "title", &self.title, MAX_NAME),
            company_id: self.company_id,
            company_external_id: optional_text(
                &mut check,
                "company_external_id",
                &self.company_external_id,
                255,
            ),
            lifecycle_stage: self.lifecycle_stage,
            lead_source: patch_text(&mut check, "lead_source", &self.lead_source, MAX_NAME),
            owner_id: self.owner_id,
            language: self.language.as_ref().map(|v| {
                v.as_deref()
                    .and_then(|l| check.field("language", validate::locale(l)))
            }),
            timezone: self.timezone.as_ref().map(|v| {
                v.as_deref()
                    .and_then(|t| check.field("timezone", validate::timezone(t)))
            }),
            address: self
                .address
                .as_ref()
                .map(|v| v.as_ref().map(|a| a.parse(&mut check, "address"))),
            consent: self.consent.as_ref().map(ConsentInput::changes),
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

crate::record_list_params!(ContactListParams {
    /// Only the contacts of this company.
    company_id: Option<Uuid>,
    lifecycle_stage: Option<LifecycleStage>,
});

pub(crate) fn list_request(
    query: &ListQuery<ContactListParams>,
    company: Option<Uuid>,
) -> rapport_domain::store::ListRequest {
    let mut extra = Vec::new();
    if let Some(company) = company.or(query.filter.company_id) {
        extra.push(RecordListParams::eq("company_id", json!(company)));
    }
    if let Some(stage) = query.filter.lifecycle_stage {
        extra.push(RecordListParams::eq("lifecycle_stage", json!(stage)));
    }
    query.filter.common().request(query, extra)
}

/// List contacts
///
/// Keyset pages in any sort (`sort=-updated_at,name`, custom fields as `custom.<key>`), with
/// substring search (`q`) and filters. Paging while others insert returns every contact that
/// existed at the start exactly once.
#[utoipa::path(
    tag = "contacts",
    operation_id = "list_contacts",
    params(PageParams, ContactListParams),
    responses((status = 200, description = "A page of contacts.", body = ContactList)),
)]
#[get("/contacts")]
async fn list_contacts(
    auth: Require<Read<obj::Contact>>,
    state: web::Data<AppState>,
    query: ListQuery<ContactListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .contacts()
        .list(&auth.ctx, &list_request(&query, None))
        .await?;
    Ok(HttpResponse::Ok().json(ContactList::from_page(page, ContactBody::from)))
}

/// List a company's contacts
#[utoipa::path(
    tag = "contacts",
    operation_id = "list_company_contacts",
    params(("id" = Uuid, Path, description = "The company's id."), PageParams, ContactListParams),
    responses((status = 200, description = "A page of the company's contacts.", body = ContactList)),
)]
#[get("/companies/{id}/contacts")]
async fn company_contacts(
    auth: Require<Read<obj::Contact>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: ListQuery<ContactListParams>,
) -> Result<HttpResponse, ApiError> {
    // The company must exist for the caller: an unknown one is 404, not an empty list.
    crate::auth::check(
        &auth.ctx,
        rapport_domain::Action::Read,
        rapport_domain::ObjectType::Company,
    )?;
    if !state
        .store
        .records()
        .is_live(&auth.ctx, rapport_domain::ObjectType::Company, *id)
        .await?
    {
        return Err(rapport_domain::StoreError::NotFound.into());
    }
    let page = state
        .store
        .contacts()
        .list(&auth.ctx, &list_request(&query, Some(*id)))
        .await?;
    Ok(HttpResponse::Ok().json(ContactList::from_page(page, ContactBody::from)))
}

/// Search contacts with a filter tree
///
/// Conditions over standard fields, `custom.<key>` and the company's fields
/// (`company.industry`, `company.tier`), combined with `and`, `or` and `not`.
#[utoipa::path(
    tag = "contacts",
    operation_id = "search_contacts",
    request_body = SearchRequest,
    responses((status = 200, description = "A page of matching contacts.", body = ContactList)),
)]
#[post("/contacts/search")]
async fn search_contacts(
    auth: Require<Read<obj::Contact>>,
    state: web::Data<AppState>,
    body: Json<SearchRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = body.request()?;
    let page = state.store.contacts().list(&auth.ctx, &request).await?;
    Ok(HttpResponse::Ok().json(ContactList::from_page(page, ContactBody::from)))
}

/// Create a contact
///
/// A contact needs a first name, a last name or an email. The email must not belong to
/// another live contact (`409 duplicate_email` names it when you may see it). The owner
/// defaults to the caller; under `own` or `team` visibility it must be one whose records the
/// caller sees (`403 owner_not_permitted`, nothing written).
#[utoipa::path(
    tag = "contacts",
    operation_id = "create_contact",
    request_body = ContactInput,
    responses(
        (status = 201, description = "The contact.", body = ContactBody),
        (status = 403, response = crate::error::responses::OwnerNotPermitted),
        (status = 409, response = crate::error::responses::DuplicateEmail),
    ),
)]
#[post("/contacts")]
async fn create_contact(
    auth: Require<Create<obj::Contact>>,
    state: web::Data<AppState>,
    body: Json<ContactInput>,
) -> Result<HttpResponse, ApiError> {
    writes::create(&ContactResource, &state, &auth.ctx, &body).await
}

/// Read a contact
///
/// A contact merged into another answers 404 `record_merged` with `merged_into`.
#[utoipa::path(
    tag = "contacts",
    operation_id = "get_contact",
    params(("id" = Uuid, Path, description = "The contact's id.")),
    responses(
        (status = 200, description = "The contact.", body = ContactBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/contacts/{id}")]
async fn get_contact(
    auth: Require<Read<obj::Contact>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let contact = state.store.contacts().get(&auth.ctx, *id).await?;
    Ok(ok_record(contact.version, &ContactBody::from(contact)))
}

/// Change a contact (JSON merge patch)
///
/// Only the fields sent change; `null` clears one. Send `If-Match` with the ETag to avoid
/// overwriting someone else's change (412 on mismatch). Under `own` or `team` visibility, a
/// new owner must be one whose records the caller sees (`403 owner_not_permitted`, nothing
/// written).
#[utoipa::path(
    tag = "contacts",
    operation_id = "update_contact",
    params(
        ("id" = Uuid, Path, description = "The contact's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on."),
    ),
    request_body = ContactInput,
    responses(
        (status = 200, description = "The changed contact.", body = ContactBody),
        (status = 403, response = crate::error::responses::OwnerNotPermitted),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 409, response = crate::error::responses::DuplicateEmail),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/contacts/{id}")]
async fn update_contact(
    auth: Require<Update<obj::Contact>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<ContactInput>,
) -> Result<HttpResponse, ApiError> {
    writes::update(&ContactResource, &state, &auth.ctx, *id, if_match, &body).await
}

/// Delete a contact (restorable)
#[utoipa::path(
    tag = "contacts",
    operation_id = "delete_contact",
    params(
        ("id" = Uuid, Path, description = "The contact's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the deletion is based on."),
    ),
    responses(
        (status = 204, description = "The contact is in the trash (`?deleted=true`)."),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[delete("/contacts/{id}")]
async fn delete_contact(
    auth: Require<Delete<obj::Contact>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
) -> Result<HttpResponse, ApiError> {
    state
        .store
        .contacts()
        .delete(&auth.ctx, *id, if_match.0)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Restore a deleted contact
#[utoipa::path(
    tag = "contacts",
    operation_id = "restore_contact",
    params(("id" = Uuid, Path, description = "The contact's id.")),
    responses(
        (status = 200, description = "The restored contact.", body = ContactBody),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 409, response = crate::error::responses::DuplicateEmail),
    ),
)]
#[post("/contacts/{id}/restore")]
async fn restore_contact(
    auth: Require<Delete<obj::Contact>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let contact = state.store.contacts().restore(&auth.ctx, *id).await?;
    Ok(ok_record(contact.version, &ContactBody::from(contact)))
}

/// A contact's history
///
/// Every change, newest first: fields with old and new values, who and when.
#[utoipa::path(
    tag = "contacts",
    operation_id = "contact_history",
    params(("id" = Uuid, Path, description = "The contact's id."), PageParams),
    responses(
        (status = 200, description = "A page of changes, newest first.", body = HistoryList),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/contacts/{id}/history")]
async fn contact_history(
    auth: Require<Read<obj::Contact>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: ListQuery<crate::list::NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .contacts()
        .history(&auth.ctx, *id, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(HistoryList::from_page(page, EventBody::from)))
}

/// Likely duplicates of a contact
///
/// Contacts with the same email (ignoring case), the same normalised phone, or the same
/// name at the same company, with the reasons.
#[utoipa::path(
    tag = "contacts",
    operation_id = "contact_duplicates",
    params(("id" = Uuid, Path, description = "The contact's id.")),
    responses(
        (status = 200, description = "Likely duplicates.", body = ContactDuplicates),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/contacts/{id}/duplicates")]
async fn contact_duplicates(
    auth: Require<Read<obj::Contact>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let found = state.store.contacts().duplicates(&auth.ctx, *id).await?;
    Ok(HttpResponse::Ok().json(ContactDuplicates {
        data: found
            .into_iter()
            .map(|d| ContactDuplicate {
                reasons: d.reasons,
                record: ContactBody::from(d.record),
            })
            .collect(),
        next_cursor: None,
    }))
}

/// Merge duplicate contacts into one
///
/// The primary's values win where present; empty ones are filled from the duplicates; emails,
/// phones, tags and custom values unite; what pointed at a duplicate points at the primary;
/// the duplicates are deleted with `merged_into`. One `merged` event records it. With
/// `dry_run`, nothing changes and the answer shows the result.
#[utoipa::path(
    tag = "contacts",
    operation_id = "merge_contacts",
    request_body = MergeRequest,
    responses(
        (status = 200, description = "The merged contact.", body = ContactMerge),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[post("/contacts/merge")]
async fn merge_contacts(
    auth: Require<Update<obj::Contact>>,
    state: web::Data<AppState>,
    body: Json<MergeRequest>,
) -> Result<HttpResponse, ApiError> {
    crate::auth::check(
        &auth.ctx,
        rapport_domain::Action::Delete,
        rapport_domain::ObjectType::Contact,
    )?;
    let outcome = state
        .store
        .contacts()
        .merge(
            &auth.ctx,
            body.primary_id,
            &body.duplicate_ids,
            body.dry_run,
        )
        .await?;
    Ok(HttpResponse::Ok().json(ContactMerge {
        merged: ContactBody::from(outcome.merged),
        merged_ids: outcome.merged_ids,
        changes: changes_body(outcome.changes),
        dry_run: outcome.dry_run,
    }))
}
