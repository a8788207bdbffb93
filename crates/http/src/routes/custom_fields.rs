//! Custom field definitions: what `custom` may hold per object, and how it is checked.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use rapport_domain::ObjectType;
use rapport_domain::custom_field::{
    self, CustomFieldDef, CustomFieldPatch, FieldType, NewCustomField,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{Create, Delete, Read, Require, Update, obj};
use crate::error::{ApiError, FieldError};
use crate::extract::Json;
use crate::list::{ListQuery, PageParams};
use crate::record::{IfMatch, created_record, ok_record};
use crate::state::AppState;
use crate::validate::{self, Check};

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_custom_fields)
        .service(create_custom_field)
        .service(get_custom_field)
        .service(update_custom_field)
        .service(delete_custom_field);
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomFieldBody {
    pub id: Uuid,
    /// The object whose records carry the field.
    pub object: ObjectType,
    /// The key in `custom`: a-z, 0-9 and _.
    #[schema(example = "region")]
    pub key: String,
    #[schema(example = "Sales region")]
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The allowed values of select and multi_select fields.
    #[schema(example = json!(["华东", "华北", "华南"]))]
    pub options: Vec<String>,
    /// Every write must leave a value.
    pub required: bool,
    /// No two live records of the object share a value.
    pub unique: bool,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<CustomFieldDef> for CustomFieldBody {
    fn from(def: CustomFieldDef) -> Self {
        CustomFieldBody {
            id: def.id,
            object: def.object,
            key: def.key,
            label: def.label,
            field_type: def.field_type,
            options: def.options,
            required: def.required,
            unique: def.unique,
            version: def.version,
            created_at: def.created_at,
            updated_at: def.updated_at,
        }
    }
}

crate::list_envelope!(CustomFieldList, CustomFieldBody);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomFieldRequest {
    #[schema(value_type = crate::schema::CustomFieldObject)]
    pub object: ObjectType,
    /// The key in `custom`: a-z first, then a-z, 0-9 and _, at most 63.
    #[schema(example = "region", pattern = "^[a-z][a-z0-9_]{0,62}$")]
    pub key: String,
    #[schema(
        example = "Sales region",
        min_length = 1,
        max_length = 200,
        pattern = r"\S"
    )]
    pub label: String,
    /// text, number, integer, boolean, date, datetime, select, multi_select, url, email,
    /// phone or money.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Required for select and multi_select (1 to 200, distinct); not allowed otherwise.
    #[serde(default)]
    #[schema(max_items = 200)]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
    /// For text, integer, email, phone and url fields.
    #[serde(default)]
    pub unique: bool,
}

/// The label, options, required and unique may change; the object, key and type may not
/// (delete the field and make a new one).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomFieldRequest {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub label: Option<String>,
    #[schema(max_items = 200)]
    pub options: Option<Vec<String>>,
    pub required: Option<bool>,
    pub unique: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomFieldFilter {
    /// Only the fields of this object.
    pub object: Option<ObjectType>,
}

/// List custom field definitions
#[utoipa::path(
    tag = "custom-fields",
    operation_id = "list_custom_fields",
    params(PageParams, CustomFieldFilter),
    responses((status = 200, description = "A page of definitions.", body = CustomFieldList)),
)]
#[get("/custom-fields")]
async fn list_custom_fields(
    auth: Require<Read<obj::CustomField>>,
    state: web::Data<AppState>,
    query: ListQuery<CustomFieldFilter>,
) -> Result<HttpResponse, ApiError> {
    query.expect_sort("id")?;
    let page = state
        .store
        .custom_fields()
        .list(&auth.ctx, query.filter.object, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(CustomFieldList::from_page(page, CustomFieldBody::from)))
}

/// Define a custom field
#[utoipa::path(
    tag = "custom-fields",
    operation_id = "create_custom_field",
    request_body = CreateCustomFieldRequest,
    responses(
        (status = 201, description = "The definition.", body = CustomFieldBody),
        (status = 409, response = crate::error::responses::Conflict),
    ),
)]
#[post("/custom-fields")]
async fn create_custom_field(
    auth: Require<Create<obj::CustomField>>,
    state: web::Data<AppState>,
    body: Json<CreateCustomFieldRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let mut check = Check::new();
    let custom_objects = rapport_domain::objects::custom_field_objects();
    if !custom_objects.contains(&body.object) {
        let known: Vec<&str> = custom_objects.iter().map(|o| o.as_str()).collect();
        check.push(FieldError::new(
            "object",
            "invalid_value",
            format!("carries no custom fields; use {}", known.join(" or ")),
        ));
    }
    let key = check.field("key", custom_field::key(&body.key));
    let label = check.field("label", validate::name(&body.label));
    let options = check.field(
        "options",
        custom_field::options(body.field_type, &body.options),
    );
    if body.unique && !body.field_type.can_be_unique() {
        check.push(FieldError::new(
            "unique",
            "invalid_value",
            "only text, integer, email, phone and url fields can be unique",
        ));
    }
    let (Some(key), Some(label), Some(options)) = (key, label, options) else {
        return Err(check.into_error());
    };
    check.finish()?;
    let field = NewCustomField {
        object: body.object,
        key,
        label,
        field_type: body.field_type,
        options,
        required: body.required,
        unique: body.unique,
    };
    let def = state.store.custom_fields().create(&auth.ctx, field).await?;
    Ok(created_record(
        format!("/v1/custom-fields/{}", def.id),
        def.version,
        &CustomFieldBody::from(def),
    ))
}

/// Read a custom field definition
#[utoipa::path(
    tag = "custom-fields",
    operation_id = "get_custom_field",
    params(("id" = Uuid, Path, description = "The definition's id.")),
    responses(
        (status = 200, description = "The definition.", body = CustomFieldBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/custom-fields/{id}")]
async fn get_custom_field(
    auth: Require<Read<obj::CustomField>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let def = state.store.custom_fields().get(&auth.ctx, *id).await?;
    Ok(ok_record(def.version, &CustomFieldBody::from(def)))
}

/// Change a custom field definition
///
/// Making a field unique fails (422) while live records share a value. Making it required
/// applies from the next write of each record.
#[utoipa::path(
    tag = "custom-fields",
    operation_id = "update_custom_field",
    params(
        ("id" = Uuid, Path, description = "The definition's id."),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on."),
    ),
    request_body = UpdateCustomFieldRequest,
    responses(
        (status = 200, description = "The changed definition.", body = CustomFieldBody),
        (status = 404, response = crate::error::responses::NotFound),
        (status = 412, response = crate::error::responses::VersionMismatch),
    ),
)]
#[patch("/custom-fields/{id}")]
async fn update_custom_field(
    auth: Require<Update<obj::CustomField>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    if_match: IfMatch,
    body: Json<UpdateCustomFieldRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let current = state.store.custom_fields().get(&auth.ctx, *id).await?;
    let mut check = Check::new();
    let label = body
        .label
        .as_deref()
        .map(|l| check.field("label", validate::name(l)));
    let options = body
        .options
        .as_ref()
        .map(|o| check.field("options", custom_field::options(current.field_type, o)));
    if body.unique == Some(true) && !current.field_type.can_be_unique() {
        check.push(FieldError::new(
            "unique",
            "invalid_value",
            "only text, integer, email, phone and url fields can be unique",
        ));
    }
    check.finish()?;
    let patch = CustomFieldPatch {
        label: label.flatten(),
        options: options.flatten(),
        required: body.required,
        unique: body.unique,
    };
    let def = state
        .store
        .custom_fields()
        .update(&auth.ctx, *id, patch, if_match.0)
        .await?;
    Ok(ok_record(def.version, &CustomFieldBody::from(def)))
}

/// Delete a custom field definition
///
/// Also removes the values records hold under its key. Final.
#[utoipa::path(
    tag = "custom-fields",
    operation_id = "delete_custom_field",
    params(("id" = Uuid, Path, description = "The definition's id.")),
    responses(
        (status = 204, description = "The field and its values are gone."),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[delete("/custom-fields/{id}")]
async fn delete_custom_field(
    auth: Require<Delete<obj::CustomField>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.store.custom_fields().delete(&auth.ctx, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}
