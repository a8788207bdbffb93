//! Property tests of CSV imports: whatever bytes are uploaded, with whatever mapping and id
//! property, the checks at upload answer a job or a 4xx problem naming what is wrong, never a
//! panic; and a file that passes them is read by the worker to exactly the number of records
//! the job counted, each record becoming a write or row errors with codes.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;
use rapport_domain::access::OrganizationSettings;
use rapport_domain::custom_field::FieldType;
use rapport_domain::import::{ImportCounts, ImportJob, ImportStatus};
use rapport_domain::objects::import_objects;
use rapport_domain::{Credential, Role};
use uuid::Uuid;

use super::*;

/// One custom field of every type, on every object.
const CUSTOM: &[(&str, FieldType)] = &[
    ("region", FieldType::Text),
    ("score", FieldType::Integer),
    ("ratio", FieldType::Number),
    ("vip", FieldType::Boolean),
    ("born", FieldType::Date),
    ("seen", FieldType::Datetime),
    ("size", FieldType::Select),
    ("labels", FieldType::MultiSelect),
    ("site", FieldType::Url),
    ("mail", FieldType::Email),
    ("fax", FieldType::Phone),
    ("budget", FieldType::Money),
];

fn definitions(object: ObjectType) -> Vec<CustomFieldDef> {
    CUSTOM
        .iter()
        .map(|(key, field_type)| CustomFieldDef {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            object,
            key: (*key).to_owned(),
            label: (*key).to_owned(),
            field_type: *field_type,
            options: if field_type.has_options() {
                vec!["s".to_owned(), "m".to_owned(), "l".to_owned()]
            } else {
                Vec::new()
            },
            required: false,
            unique: false,
            version: 1,
            created_at: chrono::DateTime::UNIX_EPOCH,
            updated_at: chrono::DateTime::UNIX_EPOCH,
        })
        .collect()
}

/// The columns an import of `object` takes by name.
fn fields_of(object: ObjectType) -> Vec<String> {
    standard_fields(object)
        .into_iter()
        .map(|(name, _)| name.to_owned())
        .chain(CUSTOM.iter().map(|(key, _)| format!("custom.{key}")))
        .collect()
}

/// Column names: every field any object takes, custom ones, and a few that are no field.
fn column_names() -> Vec<String> {
    let mut names: Vec<String> = import_objects()
        .into_iter()
        .flat_map(standard_fields)
        .map(|(name, _)| name.to_owned())
        .collect();
    names.sort();
    names.dedup();
    names.extend(CUSTOM.iter().map(|(key, _)| format!("custom.{key}")));
    names.extend(["id", "shoe_size", "", " email ", "E-mail", "名字"].map(str::to_owned));
    names
}

/// A cell: typed values of every kind, near misses, and text that CSV must quote.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => any::<String>(),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<f64>().prop_map(|n| n.to_string()),
        1 => select(WORDS).prop_map(str::to_owned),
        1 => (any::<i64>(), select(CURRENCIES)).prop_map(|(n, c)| format!("{n} {c}")),
        1 => select(AWKWARD).prop_map(str::to_owned),
        1 => Just(String::new()),
    ]
}

const WORDS: &[&str] = &[
    "true", "no", "Y", "1", "maybe", "opted_in", "lead", "paid", "a",
];
const CURRENCIES: &[&str] = &["CNY", "usd", "", "XXXX"];
const AWKWARD: &[&str] = &[
    "wang@c.example",
    "not-an-email",
    "+86 138 0013 8000; 010-1234",
    "vip; east ;",
    "2026-11-23",
    "2026-11-23T08:00:00Z",
    "0193a1d2-6c1f-7c3e-9a4b-2f6d8e0c1b5a",
    "\"quoted, with comma\"",
    "line one\nline two",
    "\"unbalanced",
    "a\"b",
    "=1+2",
    "'; drop table contacts; --",
    "华东",
    "\u{feff}",
];
const ID_PROPERTIES: &[IdProperty] = &[
    IdProperty::Id,
    IdProperty::ExternalId,
    IdProperty::Email,
    IdProperty::Domain,
    IdProperty::Sku,
    IdProperty::Number,
];

/// Quotes a field as a spreadsheet would, or leaves it raw (which may break the file).
fn field_text(text: &str, quote: bool) -> String {
    if quote {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A CSV file: a header, rows of varying width, quoted or raw, LF or CRLF, maybe a BOM, and
/// now and then a byte changed at random.
fn csv_file(object: ObjectType) -> impl Strategy<Value = Vec<u8>> {
    let header = prop::collection::vec(
        prop_oneof![
            8 => select(fields_of(object)),
            2 => select(column_names()),
            1 => any::<String>(),
        ],
        0..8,
    );
    let rows = prop::collection::vec(prop::collection::vec((cell(), any::<bool>()), 0..9), 0..12);
    (
        header,
        rows,
        any::<bool>(),
        any::<bool>(),
        prop::option::weighted(0.2, (any::<prop::sample::Index>(), any::<u8>())),
    )
        .prop_map(|(header, rows, bom, crlf, corrupt)| {
            let newline = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            let line = |cells: Vec<String>| cells.join(",");
            text.push_str(&line(
                header
                    .iter()
                    .map(|h| field_text(h, h.contains(',')))
                    .collect(),
            ));
            for row in rows {
                text.push_str(newline);
                text.push_str(&line(row.iter().map(|(c, q)| field_text(c, *q)).collect()));
            }
            text.push_str(newline);
            let mut bytes = text.into_bytes();
            if let Some((at, byte)) = corrupt {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes
        })
}

fn upload() -> impl Strategy<Value = Upload> {
    let property = prop::option::of(select(ID_PROPERTIES));
    let mapping = prop::option::weighted(
        0.5,
        prop::collection::btree_map(
            prop_oneof![select(column_names()), any::<String>()],
            prop_oneof![4 => select(column_names()), 1 => any::<String>()],
            0..6,
        ),
    );
    let file = |object| {
        prop_oneof![
            6 => csv_file(object),
            1 => prop::collection::vec(any::<u8>(), 0..200),
        ]
    };
    select(import_objects())
        .prop_flat_map(move |object| {
            (
                Just(object),
                property.clone(),
                mapping.clone(),
                file(object),
            )
        })
        .prop_map(|(object, id_property, mapping, file)| Upload {
            object,
            id_property,
            mapping,
            file,
        })
}

#[derive(Debug, Clone)]
struct Upload {
    object: ObjectType,
    id_property: Option<IdProperty>,
    mapping: Option<BTreeMap<String, String>>,
    file: Vec<u8>,
}

/// What the upload checks let through.
struct Checked {
    content: Vec<u8>,
    headers: Vec<String>,
    total: i64,
    mapping: Vec<(String, String)>,
}

/// The upload checks, in the order the route runs them.
fn check_upload(upload: &Upload) -> Result<Checked, ApiError> {
    let content = decode(upload.file.clone(), FileEncoding::Utf8)?;
    let (headers, total) = inspect(&content)?;
    let mapping = check_mapping(
        upload.object,
        &headers,
        upload.mapping.as_ref(),
        &definitions(upload.object),
        upload.id_property,
    )?;
    Ok(Checked {
        content,
        headers,
        total,
        mapping,
    })
}

fn context() -> AuthContext {
    AuthContext {
        org_id: Uuid::nil(),
        user_id: Uuid::from_u128(1),
        role: Role::Owner,
        team_id: None,
        credential: Credential::System,
        settings: OrganizationSettings::default(),
        ip: None,
        idempotency: None,
        import: None,
    }
}

/// The worker's run over a checked file, as `ImportRun::start` sets it up.
fn run_for(upload: &Upload, checked: Checked) -> ImportRun {
    let Checked {
        content,
        headers,
        total,
        mapping,
    } = checked;
    let job = ImportJob {
        id: Uuid::nil(),
        org_id: Uuid::nil(),
        object: upload.object,
        id_property: upload.id_property,
        mapping,
        file_name: None,
        status: ImportStatus::Running,
        counts: ImportCounts {
            total,
            ..ImportCounts::default()
        },
        error: None,
        user_id: Uuid::from_u128(1),
        api_key_id: None,
        created_at: chrono::DateTime::UNIX_EPOCH,
        updated_at: chrono::DateTime::UNIX_EPOCH,
        finished_at: None,
    };
    let columns = columns(&job, &headers, &definitions(upload.object)).unwrap();
    ImportRun {
        claimed: ClaimedImport {
            job,
            content: Vec::new(),
            ctx: context(),
        },
        records: csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(true)
            .from_reader(std::io::Cursor::new(content)),
        columns,
        headers: headers.len(),
        processed: 0,
    }
}

/// One record through the worker's conversion: a write or errors with codes.
fn convert(run: &ImportRun, record: &csv::StringRecord) -> Result<bool, Vec<FieldError>> {
    let ctx = &run.claimed.ctx;
    let written = match crate::objects::resource(run.claimed.job.object) {
        Some(r) => run.to_write(r, ctx, record).map(|_| ()),
        None => return Ok(false),
    };
    written.map(|()| true)
}

/// The route's checks, then the worker's reading and conversion of what they let through.
fn upload_is_a_job_or_a_client_error(upload: &Upload) -> Result<(), TestCaseError> {
    let checked = match check_upload(upload) {
        Ok(checked) => checked,
        Err(error) => {
            prop_assert!(error.code().status().is_client_error(), "{error:?}");
            prop_assert!(!error.detail().is_empty());
            if error.code() == crate::error::ErrorCode::ValidationFailed {
                prop_assert!(!error.errors().is_empty(), "{error:?}");
            }
            return Ok(());
        }
    };
    let total = checked.total;
    prop_assert!((0..=MAX_ROWS).contains(&total));
    prop_assert!(
        checked
            .mapping
            .iter()
            .all(|(header, _)| checked.headers.contains(header))
    );
    let mut run = run_for(upload, checked);
    let mut record = csv::StringRecord::new();
    let mut read = 0_i64;
    while run
        .records
        .read_record(&mut record)
        .map_err(|e| TestCaseError::fail(format!("record {}: {e}", read + 1)))?
    {
        read += 1;
        if let Err(errors) = convert(&run, &record) {
            prop_assert!(!errors.is_empty());
            prop_assert!(
                errors
                    .iter()
                    .all(|e| !e.code.is_empty() && !e.message.is_empty()),
                "{errors:?}"
            );
        }
    }
    prop_assert_eq!(
        read,
        total,
        "the worker reads every record the job counted, no more"
    );
    Ok(())
}

fn cell_is_a_value_or_a_message(text: &str, path: &str) -> Result<(), TestCaseError> {
    let kinds = [
        Kind::Text,
        Kind::Integer,
        Kind::Number,
        Kind::Boolean,
        Kind::List,
        Kind::Phones,
        Kind::Consent,
        Kind::Money,
    ];
    for kind in kinds {
        match cell_value(kind, text) {
            Ok(value) => {
                let mut row = Map::new();
                set_path(&mut row, path, value);
                if !path.is_empty() {
                    prop_assert!(!row.is_empty());
                }
            }
            Err(message) => prop_assert!(!message.is_empty()),
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_upload_is_a_job_or_a_client_error_and_the_worker_reads_what_was_counted(
        upload in upload(),
    ) {
        upload_is_a_job_or_a_client_error(&upload)?;
    }

    #[test]
    fn any_cell_of_any_kind_is_a_value_or_a_message(
        text in cell(),
        path in select(column_names()),
    ) {
        cell_is_a_value_or_a_message(&text, &path)?;
    }
}
