//! CSV imports as jobs: upload a file (multipart) or send it in JSON, then follow the job's
//! progress and read the rows that failed.

use std::collections::BTreeMap;

use actix_multipart::Multipart;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use rapport_domain::import::{ImportJob, ImportRowError, ImportStatus, NewImport};
use rapport_domain::objects;
use rapport_domain::write::IdProperty;
use rapport_domain::{Action, AuthContext, ObjectType};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::{Create, Read, Require, check, obj};
use crate::error::{ApiError, ErrorCode};
use crate::extract::parse_json;
use crate::import::{FileEncoding, check_mapping, decode, definitions, inspect};
use crate::list::{ListQuery, NoFilter, PageParams};
use crate::state::AppState;
use crate::storable;

pub fn configure(config: &mut ServiceConfig) {
    config
        .service(list_imports)
        .service(create_import)
        .service(get_import)
        .service(list_import_errors);
}

/// An import job and its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportBody {
    pub id: Uuid,
    #[schema(value_type = String, example = "contact")]
    pub object: String,
    /// How rows find their records; null: every row creates one.
    pub id_property: Option<IdProperty>,
    /// CSV column → field.
    #[schema(example = json!({"E-mail": "email", "Name": "first_name"}))]
    pub mapping: BTreeMap<String, String>,
    pub file_name: Option<String>,
    pub status: ImportStatus,
    /// Records in the file.
    pub total: i64,
    /// Records handled so far (written, unchanged or failed).
    pub processed: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    /// Records not written; `GET /v1/imports/{id}/errors` says why.
    pub failed: i64,
    /// Why a failed job stopped.
    pub error: Option<String>,
    pub created_by: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<ImportJob> for ImportBody {
    fn from(job: ImportJob) -> Self {
        ImportBody {
            id: job.id,
            object: job.object.as_str().to_owned(),
            id_property: job.id_property,
            mapping: job.mapping.into_iter().collect(),
            file_name: job.file_name,
            status: job.status,
            total: job.counts.total,
            processed: job.counts.processed,
            created: job.counts.created,
            updated: job.counts.updated,
            unchanged: job.counts.unchanged,
            failed: job.counts.failed,
            error: job.error,
            created_by: job.user_id,
            created_at: job.created_at,
            updated_at: job.updated_at,
            finished_at: job.finished_at,
        }
    }
}

crate::list_envelope!(ImportList, ImportBody);

/// A row that was not written.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportErrorBody {
    /// The record's number in the file, from 1 (the header is not counted).
    pub row: i64,
    /// The line it starts on (the header is line 1; quoted fields may span lines).
    pub line: i64,
    /// The field, as mapped (`email`, `address.country`, `custom.region`); null for the whole
    /// row.
    pub field: Option<String>,
    #[schema(example = "invalid_value")]
    pub code: String,
    pub message: String,
}

impl From<ImportRowError> for ImportErrorBody {
    fn from(error: ImportRowError) -> Self {
        ImportErrorBody {
            row: error.row,
            line: error.line,
            field: error.field,
            code: error.code,
            message: error.message,
        }
    }
}

crate::list_envelope!(ImportErrorList, ImportErrorBody);

/// An import sent as JSON, the file's text included.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"object": "contact", "id_property": "email", "csv": "email,first_name\nwang.an@customer.example,安\n"}))]
pub struct ImportRequest {
    #[schema(value_type = crate::schema::ImportObject, example = "contact")]
    pub object: String,
    /// How rows find existing records (`external_id`, `email`, `domain`, `sku`, `number`,
    /// `id`); omit it to create a record per row.
    pub id_property: Option<IdProperty>,
    /// CSV column → field (`address.city`, `custom.region`, `line.sku` for orders). Without it
    /// every column must be named after its field, except those an export writes that no
    /// write sets (`version`, `created_at`, `updated_at`, figures Rapport computes, and `id`
    /// unless rows are found by it), which are left out: an export imports back as it is. The
    /// job's `mapping` lists the columns it reads. At most 1,000 columns.
    pub mapping: Option<BTreeMap<String, String>>,
    /// The CSV: UTF-8 with or without a byte-order mark, a header line, RFC 4180 quoting.
    pub csv: String,
    pub file_name: Option<String>,
}

/// An import uploaded as `multipart/form-data`: these parts and no others.
// Documentation only (the parts are read by hand); `deny_unknown_fields` makes utoipa say
// `additionalProperties: false`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct ImportUpload {
    /// The CSV file.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    #[schema(value_type = crate::schema::ImportObject, example = "contact")]
    pub object: String,
    pub id_property: Option<IdProperty>,
    /// The mapping as a JSON object: `{"E-mail": "email"}`.
    pub mapping: Option<String>,
    /// The file's encoding when it has no byte-order mark: `utf-8` (default), `gbk` or
    /// `gb18030` (Excel's CSV on Chinese Windows), `utf-16` (which needs the mark).
    #[schema(value_type = Option<FileEncoding>)]
    pub encoding: Option<String>,
}

/// What an upload names, however it came.
struct Upload {
    object: Option<String>,
    id_property: Option<IdProperty>,
    mapping: Option<BTreeMap<String, String>>,
    file_name: Option<String>,
    content: Option<Vec<u8>>,
    encoding: FileEncoding,
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("The upload is larger than the limit of {limit} bytes."),
    )
}

async fn read_payload(mut payload: web::Payload, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut body = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("Could not read the request body: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_id_property(text: &str) -> Result<IdProperty, ApiError> {
    serde_json::from_value(serde_json::Value::from(text.trim())).map_err(|_| {
        ApiError::invalid(
            "id_property",
            "invalid_value",
            "must be external_id, email, domain, sku, number or id",
        )
    })
}

fn parse_mapping(text: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let mapping = serde_json::from_str(text).map_err(|_| {
        ApiError::invalid(
            "mapping",
            "invalid_value",
            "must be a JSON object of CSV column to field: {\"E-mail\": \"email\"}",
        )
    })?;
    match storable::json_nul_path(text.as_bytes()) {
        Some(at) => Err(storable::refuse(format!("mapping.{at}"))),
        None => Ok(mapping),
    }
}

async fn read_multipart(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Upload, ApiError> {
    let mut multipart = Multipart::new(req.headers(), payload);
    let mut upload = Upload {
        object: None,
        id_property: None,
        mapping: None,
        file_name: None,
        content: None,
        encoding: FileEncoding::Utf8,
    };
    let mut size = 0_usize;
    while let Some(field) = multipart.next().await {
        let mut field = field.map_err(|e| {
            ApiError::new(
                ErrorCode::BadRequest,
                format!("Cannot read the multipart body: {e}"),
            )
        })?;
        let name = field.name().unwrap_or("").to_owned();
        let file_name = field
            .content_disposition()
            .and_then(|d| d.get_filename())
            .map(str::to_owned);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| {
                ApiError::new(
                    ErrorCode::BadRequest,
                    format!("Cannot read the part `{name}`: {e}"),
                )
            })?;
            size += chunk.len();
            if size > limit {
                return Err(too_large(limit));
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8(bytes.clone()).unwrap_or_default();
        match name.as_str() {
            "file" => {
                upload.file_name = file_name;
                upload.content = Some(bytes);
            }
            "object" => upload.object = Some(text().trim().to_owned()),
            "id_property" if !text().trim().is_empty() => {
                upload.id_property = Some(parse_id_property(&text())?);
            }
            "id_property" => {}
            "mapping" if !text().trim().is_empty() => {
                upload.mapping = Some(parse_mapping(&text())?)
            }
            "mapping" => {}
            "encoding" if !text().trim().is_empty() => {
                upload.encoding = FileEncoding::parse(&text())?;
            }
            "encoding" => {}
            other => {
                return Err(ApiError::invalid(
                    other,
                    "unknown_field",
                    "is not a part of an import upload (file, object, id_property, mapping, \
                     encoding)",
                ));
            }
        }
    }
    Ok(upload)
}

fn import_object(text: Option<&str>) -> Result<ObjectType, ApiError> {
    let known = || {
        objects::import_objects()
            .iter()
            .map(|o| o.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = text.ok_or_else(|| {
        ApiError::invalid(
            "object",
            "required",
            format!("is required: one of {}", known()),
        )
    })?;
    text.parse::<ObjectType>()
        .ok()
        .filter(|o| objects::import_objects().contains(o))
        .ok_or_else(|| {
            ApiError::invalid(
                "object",
                "invalid_value",
                format!("`{text}` is not one of {}", known()),
            )
        })
}

fn allowed_id_property(object: ObjectType, property: IdProperty) -> Result<(), ApiError> {
    if objects::spec(object).is_some_and(|spec| spec.found_by(property)) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "id_property",
            "invalid_value",
            format!("{object} records are not found by {}", property.as_str()),
        ))
    }
}

async fn queue(state: &AppState, ctx: &AuthContext, upload: Upload) -> Result<ImportJob, ApiError> {
    let object = import_object(upload.object.as_deref())?;
    // An import writes like a batch upsert does.
    check(ctx, Action::Create, object)?;
    check(ctx, Action::Update, object)?;
    if let Some(property) = upload.id_property {
        allowed_id_property(object, property)?;
    }
    let content = upload
        .content
        .ok_or_else(|| ApiError::invalid("file", "required", "send the CSV as the part `file`"))?;
    let content = decode(content, upload.encoding)?;
    let (headers, total) = inspect(&content)?;
    let definitions = definitions(state.store.as_ref(), ctx, object).await?;
    let mapping = check_mapping(
        object,
        &headers,
        upload.mapping.as_ref(),
        &definitions,
        upload.id_property,
    )?;
    let job = NewImport {
        object,
        id_property: upload.id_property,
        mapping,
        // Only shown back: characters a database cannot store or a terminal would act on go.
        file_name: upload
            .file_name
            .map(|n| n.chars().filter(|c| !c.is_control()).take(255).collect()),
        content,
        total,
    };
    Ok(state.store.imports().create(ctx, job).await?)
}

/// Import a CSV file
///
/// Send the file as `multipart/form-data` (parts `file`, `object`, and optionally
/// `id_property` and `mapping` as JSON) or as JSON with the file's text in `csv`. The file is
/// checked at once (encoding, header, mapping: 422); its rows are then written in the
/// background, 500 per transaction with the job's progress, through the same checks and
/// events as the API. Follow the job at `Location`. A server restart resumes the job where
/// its last chunk committed; no row is written twice or halfway. Empty cells leave fields as
/// they are; lists (`tags`, `emails`, `phones`) are separated by `;`; an order row holds one
/// line (`line.sku`, `line.quantity`, …).
#[utoipa::path(
    tag = "imports",
    operation_id = "create_import",
    request_body(content((ImportUpload = "multipart/form-data"), (ImportRequest = "application/json"))),
    responses(
        (status = 202, description = "The job, queued.", body = ImportBody),
    ),
)]
#[post("/imports")]
async fn create_import(
    auth: Require<Create<obj::Import>>,
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let limit = state.settings.upload_limit;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let upload = if content_type.starts_with("multipart/form-data") {
        read_multipart(&req, payload, limit).await?
    } else if content_type.starts_with("application/json") {
        let body = read_payload(payload, limit).await?;
        let request: ImportRequest = parse_json(&body)?;
        Upload {
            object: Some(request.object),
            id_property: request.id_property,
            mapping: request.mapping,
            file_name: request.file_name,
            content: Some(request.csv.into_bytes()),
            // JSON carries text, which is Unicode already.
            encoding: FileEncoding::Utf8,
        }
    } else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the CSV as multipart/form-data, or as JSON with the text in `csv`.",
        ));
    };
    let job = queue(&state, &auth.ctx, upload).await?;
    Ok(HttpResponse::build(StatusCode::ACCEPTED)
        .insert_header((header::LOCATION, format!("/v1/imports/{}", job.id)))
        .json(ImportBody::from(job)))
}

/// List imports
///
/// Newest first; owners and admins see every job of the organization, others their own.
#[utoipa::path(
    tag = "imports",
    operation_id = "list_imports",
    params(PageParams),
    responses((status = 200, description = "A page of import jobs.", body = ImportList)),
)]
#[get("/imports")]
async fn list_imports(
    auth: Require<Read<obj::Import>>,
    state: web::Data<AppState>,
    query: ListQuery<NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = state.store.imports().list(&auth.ctx, &query.page).await?;
    Ok(HttpResponse::Ok().json(ImportList::from_page(page, ImportBody::from)))
}

/// Read an import's progress
#[utoipa::path(
    tag = "imports",
    operation_id = "get_import",
    params(("id" = Uuid, Path, description = "The job's id.")),
    responses(
        (status = 200, description = "The job.", body = ImportBody),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/imports/{id}")]
async fn get_import(
    auth: Require<Read<obj::Import>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let job = state.store.imports().get(&auth.ctx, *id).await?;
    Ok(HttpResponse::Ok().json(ImportBody::from(job)))
}

/// The rows an import did not write
///
/// By row, each with the field and the reason, as a request would have been answered.
#[utoipa::path(
    tag = "imports",
    operation_id = "list_import_errors",
    params(("id" = Uuid, Path, description = "The job's id."), PageParams),
    responses(
        (status = 200, description = "A page of row errors.", body = ImportErrorList),
        (status = 404, response = crate::error::responses::NotFound),
    ),
)]
#[get("/imports/{id}/errors")]
async fn list_import_errors(
    auth: Require<Read<obj::Import>>,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    query: ListQuery<NoFilter>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .store
        .imports()
        .errors(&auth.ctx, *id, &query.page)
        .await?;
    Ok(HttpResponse::Ok().json(ImportErrorList::from_page(page, ImportErrorBody::from)))
}
