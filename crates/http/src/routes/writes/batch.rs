//! Batch upsert and batch delete: up to 1,000 rows a request, each with its own result, or
//! none written when `all_or_none` and one fails.

use actix_web::HttpResponse;
use rapport_domain::write::{IdProperty, MAX_BATCH, RowOutcome, RowStatus, RowTarget, WriteRow};
use rapport_domain::{AuthContext, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, Problem};
use crate::extract::parse_value;
use crate::request_id;
use crate::state::AppState;

use super::{Resource, check_external_id};

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

pub(super) fn row_failure(index: usize, error: ApiError) -> BatchRowResult {
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
pub(super) fn take_key(
    row: &mut Map<String, Value>,
    property: IdProperty,
) -> Result<String, ApiError> {
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
