//! CSV imports: reading the file, mapping columns to fields, and running a job chunk by chunk
//! through the very write path of the API (`writes::parse_row`, the store's batch `write`), so
//! an imported row is checked exactly like a request and writes the same events.

use std::collections::{BTreeMap, HashSet};

use rapport_domain::custom_field::CustomFieldDef;
use rapport_domain::import::{ClaimedImport, ImportChunk, ImportRowError};
use rapport_domain::page::PageRequest;
use rapport_domain::write::{IdProperty, WriteRow};
use rapport_domain::{AuthContext, ObjectType, Store, StoreError};
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};
use crate::formula;
use crate::routes::records::too_many;
use crate::routes::writes::{self, Resource};
use crate::storable;

mod columns;
mod encoding;

use columns::*;
pub use encoding::{FileEncoding, decode};

/// Most records in one file.
pub const MAX_ROWS: i64 = 1_000_000;

/// Most columns in one file, and entries in a mapping: far more than an object has fields
/// (about 35 and 200 custom ones), so that a file from another system with columns to drop
/// still fits.
pub const MAX_COLUMNS: usize = 1_000;

/// Every custom field definition of an object.
pub async fn definitions(
    store: &dyn Store,
    ctx: &AuthContext,
    object: ObjectType,
) -> Result<Vec<CustomFieldDef>, StoreError> {
    let mut all = Vec::new();
    let mut page = PageRequest {
        limit: 200,
        ..PageRequest::default()
    };
    loop {
        let found = store.custom_fields().list(ctx, Some(object), &page).await?;
        all.extend(found.items);
        match found.next {
            Some(next) => page.after = Some(next),
            None => return Ok(all),
        }
    }
}

fn reader(content: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(content)
}

/// The header and the number of records, or why the file cannot be read.
pub fn inspect(content: &[u8]) -> Result<(Vec<String>, i64), ApiError> {
    let mut csv = reader(content);
    let headers: Vec<String> = csv
        .headers()
        .map_err(|e| {
            ApiError::invalid(
                "file",
                "invalid_value",
                format!("cannot read the header: {e}"),
            )
        })?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if headers.len() > MAX_COLUMNS {
        return Err(ApiError::validation(vec![too_many(
            "file",
            headers.len(),
            MAX_COLUMNS,
            "columns",
        )]));
    }
    if let Some(at) = headers.iter().position(|h| storable::has_nul(h)) {
        return Err(ApiError::validation(vec![FieldError::new(
            "file",
            storable::INVALID_CHARACTER,
            format!(
                "the name of column {} holds a NUL character (U+0000), which the database cannot store",
                at + 1
            ),
        )]));
    }
    if headers.iter().all(String::is_empty) {
        return Err(ApiError::invalid(
            "file",
            "required",
            "the first line must name the columns",
        ));
    }
    let mut seen = HashSet::new();
    for header in &headers {
        if !header.is_empty() && !seen.insert(header.as_str()) {
            return Err(ApiError::invalid(
                "file",
                "invalid_value",
                format!("the column `{header}` appears twice"),
            ));
        }
    }
    let mut total = 0_i64;
    let mut record = csv::ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(true) => total += 1,
            Ok(false) => break,
            Err(e) => {
                return Err(ApiError::invalid(
                    "file",
                    "invalid_value",
                    format!("cannot read record {}: {e}", total + 1),
                ));
            }
        }
        if total > MAX_ROWS {
            return Err(ApiError::invalid(
                "file",
                "out_of_range",
                format!("holds more than {MAX_ROWS} records; split it"),
            ));
        }
    }
    Ok((headers, total))
}

/// Which column fills which field: the mapping given (CSV header → field), or every column
/// by its own name. Answers `(header, field)` in the file's column order.
pub fn check_mapping(
    object: ObjectType,
    headers: &[String],
    mapping: Option<&BTreeMap<String, String>>,
    definitions: &[CustomFieldDef],
    id_property: Option<IdProperty>,
) -> Result<Vec<(String, String)>, ApiError> {
    let mut errors = Vec::new();
    if let Some(mapping) = mapping
        && mapping.len() > MAX_COLUMNS
    {
        return Err(ApiError::validation(vec![too_many(
            "mapping",
            mapping.len(),
            MAX_COLUMNS,
            "columns",
        )]));
    }
    let columns: HashSet<&str> = headers.iter().map(String::as_str).collect();
    let pairs: Vec<(String, String)> = match mapping {
        Some(mapping) => {
            for header in mapping.keys() {
                if !columns.contains(header.as_str()) {
                    errors.push(FieldError::new(
                        format!("mapping.{header}"),
                        "not_found",
                        "is not a column of the file",
                    ));
                }
            }
            headers
                .iter()
                .filter_map(|h| mapping.get(h).map(|f| (h.clone(), f.trim().to_owned())))
                .collect()
        }
        None => headers
            .iter()
            .filter(|h| !h.is_empty() && !exported_only(object, h, id_property))
            .map(|h| (h.clone(), h.clone()))
            .collect(),
    };
    let mut fields = HashSet::new();
    for (header, field) in &pairs {
        let at = match mapping {
            Some(_) => format!("mapping.{header}"),
            None => format!("file.columns.{header}"),
        };
        if kind_of(object, field, definitions, id_property).is_none() {
            errors.push(FieldError::new(
                at,
                "unknown_field",
                format!("`{field}` is not a field a {object} import can fill (custom fields as custom.<key>; map or drop the column)"),
            ));
        } else if !fields.insert(field.as_str()) {
            errors.push(FieldError::new(
                at,
                "invalid_value",
                format!("a second column fills `{field}`"),
            ));
        }
    }
    if let Some(property) = id_property
        && !fields.contains(property.as_str())
    {
        errors.push(FieldError::new(
            "id_property",
            "required",
            format!(
                "rows are found by {}, but no column fills it",
                property.as_str()
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    Ok(pairs)
}

/// A job being worked on: the rows left of its file, chunk by chunk.
pub struct ImportRun {
    pub claimed: ClaimedImport,
    /// The file, positioned at the next record.
    records: csv::Reader<std::io::Cursor<Vec<u8>>>,
    columns: Vec<Column>,
    headers: usize,
    pub processed: i64,
}

/// Why a job cannot go on.
#[derive(Debug)]
pub enum RunError {
    /// The database is away: leave the job for later (its lease runs out, and it resumes).
    Unavailable(StoreError),
    /// The job cannot finish: it fails with this reason.
    Fatal(String),
}

impl From<StoreError> for RunError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => RunError::Unavailable(error),
            other => RunError::Fatal(other.to_string()),
        }
    }
}

impl ImportRun {
    pub async fn start(
        store: &dyn Store,
        mut claimed: ClaimedImport,
    ) -> Result<ImportRun, RunError> {
        let job = &claimed.job;
        let definitions = definitions(store, &claimed.ctx, job.object).await?;
        let (headers, _) = inspect(&claimed.content)
            .map_err(|e| RunError::Fatal(format!("the file cannot be read: {e}")))?;
        let columns = columns(job, &headers, &definitions).map_err(RunError::Fatal)?;
        let processed = job.counts.processed;
        let mut records = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(std::io::Cursor::new(std::mem::take(&mut claimed.content)));
        // Resume after the records a previous worker committed.
        let mut skipped = csv::ByteRecord::new();
        for _ in 0..processed {
            if !records
                .read_byte_record(&mut skipped)
                .map_err(|e| RunError::Fatal(format!("the file cannot be read: {e}")))?
            {
                break;
            }
        }
        Ok(ImportRun {
            records,
            claimed,
            columns,
            headers: headers.len(),
            processed,
        })
    }

    pub fn done(&self) -> bool {
        self.processed >= self.claimed.job.counts.total
    }

    /// Writes the next `size` records; their progress commits with them.
    pub async fn next_chunk(&mut self, store: &dyn Store, size: usize) -> Result<(), RunError> {
        let object = self.claimed.job.object;
        match crate::objects::resource(object) {
            Some(r) if r.0.capabilities.import => self.chunk(r, store, size).await,
            _ => Err(RunError::Fatal(format!(
                "{object} records cannot be imported"
            ))),
        }
    }

    async fn chunk<R: Resource>(
        &mut self,
        r: &R,
        store: &dyn Store,
        size: usize,
    ) -> Result<(), RunError> {
        let ctx = &self.claimed.ctx;
        let mut rows: Vec<WriteRow<R::Patch>> = Vec::new();
        let mut chunk = ImportChunk {
            import_id: self.claimed.job.id,
            processed_to: self.processed,
            rows: Vec::new(),
            errors: Vec::new(),
        };
        let mut record = csv::StringRecord::new();
        for _ in 0..size {
            let row = chunk.processed_to + 1;
            let more = self
                .records
                .read_record(&mut record)
                .map_err(|e| RunError::Fatal(format!("record {row}: {e}")))?;
            if !more {
                break;
            }
            chunk.processed_to = row;
            let line = record
                .position()
                .map_or(0, |p| i64::try_from(p.line()).unwrap_or(i64::MAX));
            match self.to_write(r, ctx, &record) {
                Ok(write) => {
                    rows.push(write);
                    chunk.rows.push((row, line));
                }
                Err(errors) => chunk
                    .errors
                    .extend(errors.into_iter().map(|e| ImportRowError {
                        row,
                        line,
                        field: (!e.field.is_empty()).then_some(e.field),
                        code: e.code.into_owned(),
                        message: e.message,
                    })),
            }
        }
        if chunk.processed_to == self.processed {
            return Err(RunError::Fatal(format!(
                "the file ended after {} of {} records",
                self.processed, self.claimed.job.counts.total
            )));
        }
        if rows.is_empty() {
            store.imports().record_chunk(ctx, &chunk).await?;
        } else {
            let mut ctx = ctx.clone();
            ctx.import = Some(chunk.clone());
            r.write(store, &ctx, rows, false).await?;
        }
        self.processed = chunk.processed_to;
        Ok(())
    }

    /// One record as a write, or what is wrong with it (fields named by their input path).
    fn to_write<R: Resource>(
        &self,
        r: &R,
        ctx: &AuthContext,
        record: &csv::StringRecord,
    ) -> Result<WriteRow<R::Patch>, Vec<FieldError>> {
        if record.len() != self.headers {
            return Err(vec![FieldError::new(
                "",
                "column_count",
                format!(
                    "has {} fields where the header has {}",
                    record.len(),
                    self.headers
                ),
            )]);
        }
        let mut row = Map::new();
        let mut errors = Vec::new();
        for column in &self.columns {
            let text = record.get(column.index).unwrap_or("").trim();
            if text.is_empty() {
                continue;
            }
            if storable::has_nul(text) {
                errors.push(FieldError::new(
                    column.field.clone(),
                    storable::INVALID_CHARACTER,
                    format!(
                        "the column `{}` holds a NUL character (U+0000), which the database cannot store",
                        column.header
                    ),
                ));
                continue;
            }
            // What an export neutralised (`'=x`) imports as it was (`=x`).
            match cell_value(column.kind, formula::restore(text)) {
                Ok(value) => set_path(&mut row, &column.field, value),
                Err(message) => errors.push(FieldError::new(
                    column.field.clone(),
                    "invalid_type",
                    message,
                )),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        writes::parse_row(r, Value::Object(row), self.claimed.job.id_property, ctx).map_err(
            |error| match error.errors() {
                [] => vec![FieldError::new("", error.code().as_str(), error.detail())],
                list => list.to_vec(),
            },
        )
    }
}

#[cfg(test)]
mod properties;

#[cfg(test)]
mod tests;
