//! CSV imports: reading the file, mapping columns to fields, and running a job chunk by chunk
//! through the very write path of the API (`writes::parse_row`, the store's batch `write`), so
//! an imported row is checked exactly like a request and writes the same events.

use std::collections::{BTreeMap, HashMap, HashSet};

use rapport_domain::custom_field::{CustomFieldDef, FieldType};
use rapport_domain::import::{ClaimedImport, ImportChunk, ImportJob, ImportRowError};
use rapport_domain::kit::{FieldKind, FieldSpec};
use rapport_domain::page::PageRequest;
use rapport_domain::write::{IdProperty, WriteRow};
use rapport_domain::{AuthContext, ObjectType, Store, StoreError};
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};
use crate::formula;
use crate::routes::records::too_many;
use crate::routes::writes::{self, Resource};
use crate::storable;

/// Most records in one file.
pub const MAX_ROWS: i64 = 1_000_000;

/// Most columns in one file, and entries in a mapping: far more than an object has fields
/// (about 35 and 200 custom ones), so that a file from another system with columns to drop
/// still fits.
pub const MAX_COLUMNS: usize = 1_000;

/// How a cell becomes a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Integer,
    Number,
    Boolean,
    /// `a; b; c`.
    List,
    /// Numbers separated by `;`.
    Phones,
    /// A consent status (`opted_in`), for `consent.<channel>`.
    Consent,
    /// `12900 CNY`.
    Money,
    /// JSON, as an export writes a list of lines.
    Json,
}

/// The columns an import may fill for an object's standard fields, and how each cell is
/// read: read from the object's declaration (writable fields, their other names, one column
/// per address line, consent channel and line field).
fn standard_fields(object: ObjectType) -> Vec<(String, Kind)> {
    let mut columns = Vec::new();
    if let Some(spec) = rapport_domain::objects::spec(object) {
        for field in spec.fields.iter().filter(|f| !f.read_only) {
            field_columns(field, "", &mut columns);
        }
    }
    columns
}

fn field_columns(field: &FieldSpec, prefix: &str, columns: &mut Vec<(String, Kind)>) {
    let name = format!("{prefix}{}", field.name);
    match field.kind {
        FieldKind::Address | FieldKind::Consent => {
            let kind = if field.kind == FieldKind::Consent {
                Kind::Consent
            } else {
                Kind::Text
            };
            columns.extend(field.columns().into_iter().map(|column| (column, kind)));
        }
        FieldKind::Lines(line) => {
            // All lines as the JSON an export writes, or one line per row.
            columns.push((name, Kind::Json));
            for part in line {
                // One line per row: `line.sku`, `line.quantity`…
                field_columns(part, "line.", columns);
            }
        }
        kind => {
            let read_as = match kind {
                FieldKind::Integer { .. } | FieldKind::Money => Kind::Integer,
                FieldKind::Boolean => Kind::Boolean,
                FieldKind::Emails | FieldKind::Tags => Kind::List,
                FieldKind::Phones => Kind::Phones,
                _ => Kind::Text,
            };
            columns.push((name, read_as));
        }
    }
    columns.extend(
        field
            .also_by
            .iter()
            .map(|other| (format!("{prefix}{other}"), Kind::Text)),
    );
}

fn custom_kind(def: &CustomFieldDef) -> Kind {
    match def.field_type {
        FieldType::Integer => Kind::Integer,
        FieldType::Number => Kind::Number,
        FieldType::Boolean => Kind::Boolean,
        FieldType::MultiSelect => Kind::List,
        FieldType::Money => Kind::Money,
        _ => Kind::Text,
    }
}

/// The kind of a field path an import may fill, or None.
fn kind_of(
    object: ObjectType,
    field: &str,
    definitions: &[CustomFieldDef],
    id_property: Option<IdProperty>,
) -> Option<Kind> {
    if field == "id" {
        return (id_property == Some(IdProperty::Id)).then_some(Kind::Text);
    }
    if let Some(key) = field.strip_prefix("custom.") {
        return definitions.iter().find(|d| d.key == key).map(custom_kind);
    }
    standard_fields(object)
        .into_iter()
        .find(|(name, _)| name == field)
        .map(|(_, kind)| kind)
}

/// Whether a column is one an export writes but no write sets — a read-only field, or `id`
/// unless rows are found by it — which an import without a mapping leaves out (the job's
/// mapping lists the columns it reads), so that an export imports back unchanged.
fn exported_only(object: ObjectType, column: &str, id_property: Option<IdProperty>) -> bool {
    if column == "id" {
        return id_property != Some(IdProperty::Id);
    }
    rapport_domain::objects::spec(object).is_some_and(|spec| {
        spec.fields
            .iter()
            .any(|field| field.read_only && field.columns().iter().any(|c| c == column))
    })
}

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

/// The file's text: UTF-8, without a byte-order mark.
pub fn decode(content: Vec<u8>) -> Result<Vec<u8>, ApiError> {
    let content = match content.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => rest.to_vec(),
        None => content,
    };
    if std::str::from_utf8(&content).is_err() {
        return Err(ApiError::invalid(
            "file",
            "invalid_value",
            "is not UTF-8 text; save the CSV as UTF-8",
        ));
    }
    Ok(content)
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

fn cell_value(kind: Kind, text: &str) -> Result<Value, &'static str> {
    let list = || {
        text.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Value::from(s.to_owned()))
            .collect::<Vec<_>>()
    };
    Ok(match kind {
        Kind::Text => Value::from(text),
        Kind::Integer => Value::from(text.parse::<i64>().map_err(|_| "must be a whole number")?),
        Kind::Number => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or("must be a number")?,
        Kind::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "y" => Value::Bool(true),
            "false" | "no" | "0" | "n" => Value::Bool(false),
            _ => return Err("must be true or false"),
        },
        Kind::List => Value::Array(list()),
        Kind::Phones => Value::Array(
            list()
                .into_iter()
                .map(|number| serde_json::json!({ "number": number }))
                .collect(),
        ),
        Kind::Consent => serde_json::json!({ "status": text }),
        Kind::Json => serde_json::from_str(text).map_err(|_| "must be JSON")?,
        Kind::Money => {
            let (amount, currency) = text
                .split_once(' ')
                .ok_or("must be an amount in minor units and a currency: 12900 CNY")?;
            let amount = amount
                .trim()
                .parse::<i64>()
                .map_err(|_| "must be an amount in minor units and a currency: 12900 CNY")?;
            serde_json::json!({ "amount_minor": amount, "currency": currency.trim() })
        }
    })
}

/// Puts `value` at a dotted path; `line.<field>` fills the order's single line.
fn set_path(row: &mut Map<String, Value>, path: &str, value: Value) {
    if let Some(field) = path.strip_prefix("line.") {
        let lines = row
            .entry("lines")
            .or_insert_with(|| Value::Array(vec![Value::Object(Map::new())]));
        if let Some(Value::Object(line)) = lines.as_array_mut().and_then(|l| l.first_mut()) {
            line.insert(field.to_owned(), value);
        }
        return;
    }
    match path.split_once('.') {
        Some((head, rest)) => {
            let inner = row.entry(head).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = inner {
                set_path(inner, rest, value);
            }
        }
        None => {
            row.insert(path.to_owned(), value);
        }
    }
}

/// A mapped column: where it is, what it is called, which field it fills and how its cells
/// read.
struct Column {
    index: usize,
    header: String,
    field: String,
    kind: Kind,
}

/// Where each mapped column is and how its cells read.
fn columns(
    job: &ImportJob,
    headers: &[String],
    definitions: &[CustomFieldDef],
) -> Result<Vec<Column>, String> {
    let positions: HashMap<&str, usize> = headers
        .iter()
        .enumerate()
        .map(|(index, header)| (header.as_str(), index))
        .collect();
    job.mapping
        .iter()
        .map(|(header, field)| {
            let index = *positions
                .get(header.as_str())
                .ok_or_else(|| format!("the file has no column `{header}`"))?;
            let kind = kind_of(job.object, field, definitions, job.id_property)
                .ok_or_else(|| format!("`{field}` is no longer a field an import can fill"))?;
            Ok(Column {
                index,
                header: header.clone(),
                field: field.clone(),
                kind,
            })
        })
        .collect()
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
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_bom_is_dropped_and_other_encodings_refused() {
        assert_eq!(decode(b"\xEF\xBB\xBFa,b\n".to_vec()).unwrap(), b"a,b\n");
        assert!(decode(b"\xff\xfea\x00".to_vec()).is_err());
    }

    #[test]
    fn quoted_fields_may_hold_newlines_and_commas() {
        let content = "first_name,title\n\"王\",\"Line one\nline two, still\"\nLi,CTO\n";
        let (headers, total) = inspect(content.as_bytes()).unwrap();
        assert_eq!(headers, ["first_name", "title"]);
        assert_eq!(total, 2);
    }

    #[test]
    fn cells_become_typed_values_at_their_paths() {
        let mut row = Map::new();
        set_path(
            &mut row,
            "address.city",
            cell_value(Kind::Text, "上海").unwrap(),
        );
        set_path(
            &mut row,
            "tags",
            cell_value(Kind::List, "vip; east ;").unwrap(),
        );
        set_path(
            &mut row,
            "custom.size",
            cell_value(Kind::Integer, "42").unwrap(),
        );
        set_path(&mut row, "line.sku", cell_value(Kind::Text, "TEA").unwrap());
        set_path(
            &mut row,
            "line.quantity",
            cell_value(Kind::Integer, "3").unwrap(),
        );
        set_path(
            &mut row,
            "consent.email",
            cell_value(Kind::Consent, "opted_in").unwrap(),
        );
        assert_eq!(
            Value::Object(row),
            json!({"address": {"city": "上海"}, "tags": ["vip", "east"], "custom": {"size": 42},
                   "lines": [{"sku": "TEA", "quantity": 3}], "consent": {"email": {"status": "opted_in"}}})
        );
        assert!(cell_value(Kind::Integer, "4.5").is_err());
        assert_eq!(cell_value(Kind::Boolean, "Yes").unwrap(), json!(true));
        assert_eq!(
            cell_value(Kind::Money, "12900 CNY").unwrap(),
            json!({"amount_minor": 12900, "currency": "CNY"})
        );
    }

    #[test]
    fn files_with_too_many_columns_or_a_nul_in_a_name_are_refused() {
        let wide = (0..=MAX_COLUMNS)
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(",");
        let error = inspect(format!("{wide}\n").as_bytes()).unwrap_err();
        assert_eq!(
            (
                error.errors()[0].field.as_str(),
                error.errors()[0].code.as_ref()
            ),
            ("file", "too_many")
        );
        let error = inspect(b"email,no\0te\nx@y.example,1\n").unwrap_err();
        assert_eq!(error.errors()[0].code, "invalid_character");
        assert!(error.errors()[0].message.contains("column 2"));
    }

    #[test]
    fn an_oversized_mapping_is_refused_before_any_entry_is_read() {
        let mapping: BTreeMap<String, String> = (0..=MAX_COLUMNS)
            .map(|i| (format!("c{i}"), "email".to_owned()))
            .collect();
        let error = check_mapping(ObjectType::Contact, &[], Some(&mapping), &[], None).unwrap_err();
        assert_eq!(error.errors().len(), 1);
        assert_eq!(error.errors()[0].field, "mapping");
    }

    #[test]
    fn neutralised_cells_read_as_what_was_exported() {
        assert_eq!(
            cell_value(Kind::List, formula::restore("'@vip; east")).unwrap(),
            json!(["@vip", "east"])
        );
        assert_eq!(
            cell_value(Kind::Text, formula::restore("'=HYPERLINK(\"x\")")).unwrap(),
            json!("=HYPERLINK(\"x\")")
        );
        assert_eq!(
            cell_value(Kind::Integer, formula::restore("-5")).unwrap(),
            json!(-5)
        );
    }

    #[test]
    fn columns_map_to_known_fields_only() {
        let headers = vec!["E-mail".to_owned(), "Name".to_owned()];
        let mapping = BTreeMap::from([
            ("E-mail".to_owned(), "email".to_owned()),
            ("Name".to_owned(), "first_name".to_owned()),
        ]);
        let pairs = check_mapping(
            ObjectType::Contact,
            &headers,
            Some(&mapping),
            &[],
            Some(IdProperty::Email),
        )
        .unwrap();
        assert_eq!(
            pairs,
            [
                ("E-mail".to_owned(), "email".to_owned()),
                ("Name".to_owned(), "first_name".to_owned())
            ]
        );
        let unmapped = check_mapping(ObjectType::Contact, &headers, None, &[], None).unwrap_err();
        assert_eq!(unmapped.errors().len(), 2);
        let no_key = check_mapping(
            ObjectType::Contact,
            &headers,
            Some(&mapping),
            &[],
            Some(IdProperty::ExternalId),
        )
        .unwrap_err();
        assert_eq!(no_key.errors()[0].field, "id_property");
    }
}
