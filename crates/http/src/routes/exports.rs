//! Exports: every record matching a list's filters, streamed page by page as CSV or NDJSON,
//! so that a million records never sit in memory at once.

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpResponse, web};
use futures_util::stream;
use rapport_domain::store::ListRequest;
use rapport_domain::{Action, AuthContext, ObjectType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::IntoParams;

use crate::auth::check;
use crate::error::ApiError;
use crate::formula;
use crate::import::definitions;
use crate::routes::writes::Resource;
use crate::state::AppState;

/// Records read from the database per page of an export.
const PAGE: u32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// A header line and one line per record; lists are joined with `;`, nested values are
    /// columns such as `address.city`, custom fields `custom.<key>`. Text that a spreadsheet
    /// would run as a formula starts with `'`.
    Csv,
    /// One JSON record per line, as the API shows it.
    Ndjson,
}

#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExportParams {
    /// `csv` (default) or `ndjson`.
    #[param(inline)]
    pub format: Option<ExportFormat>,
    /// `true` starts a CSV with the UTF-8 byte-order mark (for Excel).
    pub bom: Option<bool>,
}

/// How an export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExportOptions {
    pub format: ExportFormat,
    /// A CSV starts with the UTF-8 byte-order mark, by which Excel knows the text is UTF-8.
    pub bom: bool,
}

/// The export's options, and the list parameters that remain (as a query string).
pub(crate) fn split_options(query: &str) -> Result<(ExportOptions, String), ApiError> {
    let mut options = ExportOptions {
        format: ExportFormat::Csv,
        bom: false,
    };
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "format" => {
                options.format =
                    serde_json::from_value(Value::from(value.as_ref())).map_err(|_| {
                        ApiError::invalid("format", "invalid_value", "must be csv or ndjson")
                    })?;
            }
            "bom" => {
                options.bom = match value.as_ref() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ApiError::invalid(
                            "bom",
                            "invalid_value",
                            "must be true or false",
                        ));
                    }
                };
            }
            "limit" | "cursor" | "include" => {
                return Err(ApiError::invalid(
                    key.as_ref(),
                    "unknown_field",
                    "an export has every matching record; it takes no paging",
                ));
            }
            _ => {
                rest.append_pair(&key, &value);
            }
        }
    }
    if options.bom && options.format != ExportFormat::Csv {
        return Err(ApiError::invalid(
            "bom",
            "invalid_value",
            "applies to CSV only: NDJSON is read by programs, which want no byte-order mark",
        ));
    }
    Ok((options, rest.finish()))
}

/// A record's value at a dotted path, as CSV text. Text that a spreadsheet would run as a
/// formula gets a leading `'` (see [`formula`]); numbers, booleans and nested JSON are written
/// as they are.
fn cell(record: &Value, path: &str) -> String {
    let mut value = record;
    for part in path.split('.') {
        value = &value[part];
    }
    // Consent columns show the status.
    if path.starts_with("consent.") {
        value = &value["status"];
    }
    let text = |text: &str| formula::neutralise(text).into_owned();
    match value {
        Value::Null => String::new(),
        Value::String(value) => text(value),
        // `+86 138 0013 8000 (mobile); 0571 8888 6666 (work)`: the kind travels with its
        // number, so that an import of the export keeps it (`other`, the default, is left
        // out).
        Value::Array(items) if path == "phones" => text(
            &items
                .iter()
                .filter_map(|p| {
                    let number = p["number"].as_str()?;
                    Some(match p["kind"].as_str() {
                        Some(kind) if kind != "other" => format!("{number} ({kind})"),
                        _ => number.to_owned(),
                    })
                })
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Value::Array(items) if items.iter().all(Value::is_string) => text(
            &items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => other.to_string(),
    }
}

/// The bytes of one page of records.
fn render(options: ExportOptions, header: &[String], records: &[Value], first: bool) -> Bytes {
    let mut out = Vec::new();
    match options.format {
        ExportFormat::Ndjson => {
            for record in records {
                if serde_json::to_writer(&mut out, record).is_ok() {
                    out.push(b'\n');
                }
            }
        }
        ExportFormat::Csv => {
            if first && options.bom {
                out.extend_from_slice("\u{FEFF}".as_bytes());
            }
            let mut writer = csv::Writer::from_writer(&mut out);
            if first {
                let _ = writer.write_record(header);
            }
            for record in records {
                let row: Vec<String> = header.iter().map(|c| cell(record, c)).collect();
                let _ = writer.write_record(&row);
            }
            let _ = writer.flush();
            drop(writer);
        }
    }
    Bytes::from(out)
}

struct Cursor {
    request: ListRequest,
    first: bool,
    done: bool,
}

pub(crate) async fn export<R: Resource>(
    r: &'static R,
    state: web::Data<AppState>,
    ctx: AuthContext,
    options: ExportOptions,
    mut request: ListRequest,
) -> Result<HttpResponse, ApiError> {
    check(&ctx, Action::Read, ObjectType::Export)?;
    let mut header: Vec<String> = rapport_domain::objects::spec(r.object())
        .map(|spec| spec.export_columns())
        .unwrap_or_default();
    let custom = definitions(state.store.as_ref(), &ctx, r.object()).await?;
    header.extend(custom.iter().map(|d| format!("custom.{}", d.key)));
    request.page.limit = PAGE;
    request.page.with_total = false;
    // The first page is read before answering, so that a bad filter is still a 422.
    let first = r.list(state.store.as_ref(), &ctx, &request).await?;
    let start = Cursor {
        request,
        first: true,
        done: false,
    };
    let body = stream::unfold((start, Some(first)), move |(mut cursor, page)| {
        let state = state.clone();
        let ctx = ctx.clone();
        let header = header.clone();
        async move {
            if cursor.done {
                return None;
            }
            let page = match page {
                Some(page) => page,
                None => match r.list(state.store.as_ref(), &ctx, &cursor.request).await {
                    Ok(page) => page,
                    Err(error) => {
                        // The status is sent: cut the body short rather than end it cleanly.
                        tracing::error!(%error, "export stopped");
                        return Some((
                            Err(actix_web::error::ErrorInternalServerError("export stopped")),
                            (
                                Cursor {
                                    done: true,
                                    ..cursor
                                },
                                None,
                            ),
                        ));
                    }
                },
            };
            let records: Vec<Value> = page
                .items
                .into_iter()
                .map(|r| serde_json::to_value(R::Body::from(r)).unwrap_or(Value::Null))
                .collect();
            let bytes = render(options, &header, &records, cursor.first);
            cursor.first = false;
            match page.next {
                Some(next) => cursor.request.page.after = Some(next),
                None => cursor.done = true,
            }
            Some((Ok::<_, actix_web::Error>(bytes), (cursor, None)))
        }
    });
    let (content_type, extension) = match options.format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::Ndjson => ("application/x-ndjson", "ndjson"),
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{}.{extension}\"", r.spec().plural),
        ))
        .streaming(body))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_cells_are_neutralised_and_numbers_are_not() {
        let record = json!({
            "first_name": "=HYPERLINK(\"http://evil.example\")",
            "external_id": "-5",
            "order_count": -5,
            "phones": [{"number": "+86 138 0013 8000"}, {"number": "=1"}],
            "tags": ["@vip", "east"],
            "custom": {"note": "\tindented", "score": -1.5, "plain": "华东"},
            "active": true,
        });
        assert_eq!(
            cell(&record, "first_name"),
            "'=HYPERLINK(\"http://evil.example\")"
        );
        assert_eq!(cell(&record, "external_id"), "'-5");
        assert_eq!(cell(&record, "order_count"), "-5");
        assert_eq!(cell(&record, "phones"), "'+86 138 0013 8000; =1");
        assert_eq!(cell(&record, "tags"), "'@vip; east");
        assert_eq!(cell(&record, "custom.note"), "'\tindented");
        assert_eq!(cell(&record, "custom.score"), "-1.5");
        assert_eq!(cell(&record, "custom.plain"), "华东");
        assert_eq!(cell(&record, "active"), "true");
    }
}
