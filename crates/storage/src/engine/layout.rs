//! An engine object's table layout and statements, derived once from its declaration (see
//! the table layout in [`super`]), and how a field's value is bound.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::kit::record;
use rapport_domain::kit::{FieldKind, FieldSpec, ObjectSpec};
use rapport_domain::write::IdProperty;
use rapport_domain::{ObjectType, StoreError};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use rapport_domain::query::RelationInfo;

use crate::records::{RelationSpec, Spec};

/// An engine object's storage: its declaration, the shared record machinery's view of it,
/// and its statements (constant for the object, so prepared statements are reused).
pub(crate) struct Layout {
    pub spec: &'static ObjectSpec,
    pub storage: Spec,
    /// The writable fields with their columns, in declaration order.
    pub fields: Vec<(&'static FieldSpec, &'static str)>,
    /// The lower-case sort column of each sortable text field.
    pub sorted: Vec<(&'static str, &'static str)>,
    /// The fields unique among live records, with their columns.
    pub unique: Vec<(&'static str, &'static str)>,
    /// The natural keys besides `id` and `external_id`, with the unique field each names.
    /// The natural keys besides `id` and `external_id`: the field each names, its column, and
    /// whether the field is unique (else a key finds a record while one live record has it).
    pub keys: Vec<(IdProperty, &'static str, bool)>,
    /// `select <columns> from <table> t where t.org_id = ` — the caller adds the rest.
    pub select: &'static str,
    /// `select <columns> from <table> t where ` — for lookups whose branches each name the
    /// tenant (see `push_key_branch`).
    pub select_where: &'static str,
    pub insert: &'static str,
    /// Binds: org, id, the fields, the sort columns, custom, search text, updated_at.
    pub update: &'static str,
    /// PostgreSQL's chunk insert: binds org, time, user, then one array per column (ids, the
    /// written columns); see `chunk`.
    pub insert_unnest: &'static str,
    /// PostgreSQL's chunk update: binds org, time, then the same arrays.
    pub update_unnest: &'static str,
    pub restore: &'static str,
}

static LAYOUTS: LazyLock<HashMap<ObjectType, &'static Layout>> = LazyLock::new(|| {
    rapport_domain::objects::engine_objects()
        .map(|spec| (spec.object, &*Box::leak(Box::new(Layout::new(spec)))))
        .collect()
});

/// How the shared record machinery sees any object with records: its layout's view.
pub(crate) fn storage_spec(object: ObjectType) -> Option<&'static Spec> {
    let spec = rapport_domain::objects::spec(object).filter(|spec| spec.engine)?;
    layout(spec).ok().map(|layout| &layout.storage)
}

/// The relations filters may follow: each reference, named for its role (`contact.email`
/// for `contact_id`), to the object it names, found when a filter follows it.
fn relations(
    fields: &[(&'static FieldSpec, &'static str)],
) -> (Vec<RelationSpec>, Vec<RelationInfo>) {
    let mut specs = Vec::new();
    let mut infos = Vec::new();
    for (field, column) in fields {
        let FieldKind::Reference(target) = field.kind else {
            continue;
        };
        // The related object's filterable fields (its own relations are not followed).
        let Some(spec) = rapport_domain::objects::spec(target).filter(|spec| spec.engine) else {
            continue;
        };
        let catalog: &'static [rapport_domain::query::FieldInfo] =
            Box::leak(record::catalog(spec).into_boxed_slice());
        // Named for the role: `contact_id` → `contact`, `parent_company_id` → `parent`.
        let base: &'static str = field.name.strip_suffix("_id").unwrap_or(&field.name);
        let name = base
            .strip_suffix(target.as_str())
            .and_then(|role| role.strip_suffix('_'))
            .unwrap_or(base);
        specs.push(RelationSpec {
            name,
            object: target,
            foreign_key: column,
        });
        infos.push(RelationInfo {
            name,
            fields: catalog,
        });
    }
    (specs, infos)
}

/// The layout of an engine object.
pub(crate) fn layout(spec: &ObjectSpec) -> Result<&'static Layout, StoreError> {
    LAYOUTS
        .get(&spec.object)
        .copied()
        .ok_or(StoreError::NotFound)
}

fn leak(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// The columns a field is stored in: its own, or one per line of an address
/// (`address_street`…).
fn columns_of(field: &FieldSpec, column: &'static str) -> Vec<&'static str> {
    match field.kind {
        FieldKind::Address => rapport_domain::kit::ADDRESS_LINES
            .iter()
            .map(|line| leak(format!("{column}_{line}")))
            .collect(),
        // Per channel its status and when it changed.
        FieldKind::Consent => rapport_domain::kit::CONSENT_CHANNELS
            .iter()
            .flat_map(|channel| {
                [
                    leak(format!("{column}_{channel}")),
                    leak(format!("{column}_{channel}_at")),
                ]
            })
            .collect(),
        _ => vec![column],
    }
}

/// The PostgreSQL array type of each of a field's columns.
fn pg_arrays(field: &FieldSpec) -> Vec<&'static str> {
    match field.kind {
        FieldKind::Address => vec!["text[]"; rapport_domain::kit::ADDRESS_LINES.len()],
        FieldKind::Consent => rapport_domain::kit::CONSENT_CHANNELS
            .iter()
            .flat_map(|_| ["text[]", "timestamptz[]"])
            .collect(),
        kind => vec![pg_array(kind)],
    }
}

impl Layout {
    pub(crate) fn new(spec: &'static ObjectSpec) -> Layout {
        let table: &'static str = spec.table.as_ref();
        let fields: Vec<(&'static FieldSpec, &'static str)> = record::stored(spec)
            .map(|field| (field, field.name.as_ref()))
            .collect();
        let sorted: Vec<(&'static str, &'static str)> = fields
            .iter()
            .filter(|(field, _)| field.sortable && is_text(field.kind))
            .map(|(field, column)| (field.name.as_ref(), leak(format!("{column}_sort"))))
            .collect();
        let mut columns: Vec<(&'static str, &'static str)> = vec![("id", "id")];
        for (field, column) in &fields {
            if field.kind == FieldKind::Address {
                let lines = field.columns().into_iter().map(leak);
                columns.extend(lines.zip(columns_of(field, column)));
                continue;
            }
            if field.kind == FieldKind::Consent {
                // A channel filters by its status column.
                let channels = field.columns().into_iter().map(leak);
                columns.extend(channels.zip(columns_of(field, column).into_iter().step_by(2)));
                continue;
            }
            let sort = sorted.iter().find(|(name, _)| *name == field.name);
            columns.push((field.name.as_ref(), sort.map_or(*column, |(_, sort)| *sort)));
        }
        columns.extend(
            ["created_at", "updated_at", "created_by"]
                .iter()
                .map(|c| (*c, *c)),
        );
        let field_columns: Vec<&str> = fields
            .iter()
            .flat_map(|(field, column)| columns_of(field, column))
            .collect();
        let sort_columns: Vec<&str> = sorted.iter().map(|(_, c)| *c).collect();
        let select_where = format!(
            "select t.id, t.org_id, {}t.custom, t.version, t.created_at, t.updated_at, \
             t.created_by, t.deleted_at, t.merged_into from {table} t where ",
            field_columns
                .iter()
                .map(|c| format!("t.{c}, "))
                .collect::<String>()
        );
        let select = format!("{select_where}t.org_id = ");
        let unique: Vec<(&'static str, &'static str)> = fields
            .iter()
            .filter(|(field, _)| field.unique && !field.read_only)
            .map(|(field, column)| (field.name.as_ref(), *column))
            .collect();
        // Every natural key but id and external id names a field of its name: a unique one,
        // or one that finds a record while only one live record has the value.
        let keys: Vec<(IdProperty, &'static str, bool)> = spec
            .natural_keys
            .iter()
            .filter(|key| !matches!(key, IdProperty::Id | IdProperty::ExternalId))
            .filter_map(|key| {
                let found = fields.iter().find(|(field, _)| field.name == key.as_str());
                debug_assert!(
                    found.is_some(),
                    "{}: {} is no field",
                    spec.object,
                    key.as_str()
                );
                found.map(|(field, column)| (*key, *column, field.unique))
            })
            .collect();
        let mut storage_keys = vec![
            (IdProperty::Id, "id", false),
            (IdProperty::ExternalId, "external_id", false),
        ];
        storage_keys.extend(keys.iter().map(|(key, column, _)| {
            let folded = fields
                .iter()
                .any(|(field, c)| c == column && field.kind == FieldKind::Email);
            (*key, *column, folded)
        }));
        let written: Vec<&str> = field_columns
            .iter()
            .chain(&sort_columns)
            .copied()
            .chain(["custom", "search_text"])
            .collect();
        let insert = format!(
            "insert into {table} (org_id, id, {}, version, created_at, updated_at, created_by) ",
            written.join(", ")
        );
        let update = format!(
            "update {table} set {}, version = version + 1, updated_at = ${}, deleted_at = null \
             where org_id = $1 and id = $2",
            written
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ${}", i + 3))
                .collect::<Vec<_>>()
                .join(", "),
            written.len() + 3
        );
        // PostgreSQL binds one array per column: each written column's array type.
        let arrays: Vec<&str> = fields
            .iter()
            .flat_map(|(field, _)| pg_arrays(field))
            .chain(sort_columns.iter().map(|_| "text[]"))
            .chain(["jsonb[]", "text[]"])
            .collect();
        let unnest = |first: usize| {
            std::iter::once("uuid[]")
                .chain(arrays.iter().copied())
                .enumerate()
                .map(|(i, kind)| format!("${}::{kind}", first + i))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let insert_unnest = format!(
            "insert into {table} (org_id, id, {}, version, created_at, updated_at, created_by) \
             select $1, u.*, 1, $2, $2, $3 from unnest({}) as u",
            written.join(", "),
            unnest(4)
        );
        let update_unnest = format!(
            "update {table} as t set {}, version = t.version + 1, updated_at = $2, \
             deleted_at = null from unnest({}) as u (id, {}) where t.org_id = $1 and t.id = u.id",
            written
                .iter()
                .map(|c| format!("{c} = u.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
            unnest(3),
            written.join(", ")
        );
        let restore = format!(
            "update {table} set deleted_at = null, version = version + 1, updated_at = $3 \
             where org_id = $1 and id = $2"
        );
        let (relation_specs, relation_infos) = relations(&fields);
        let storage = Spec {
            object: spec.object,
            table,
            search_table: leak(format!("{table}_search")),
            columns,
            relations: Box::leak(relation_specs.into_boxed_slice()),
            catalog_fields: Box::leak(record::catalog(spec).into_boxed_slice()),
            catalog_relations: Box::leak(relation_infos.into_boxed_slice()),
            keys: Box::leak(storage_keys.into_boxed_slice()),
        };
        Layout {
            spec,
            storage,
            fields,
            sorted,
            unique,
            keys,
            select: leak(select),
            select_where: leak(select_where),
            insert: leak(insert),
            update: leak(update),
            insert_unnest: leak(insert_unnest),
            update_unnest: leak(update_unnest),
            restore: leak(restore),
        }
    }

    /// Whether a column compares without case (an email's), so that lookups and uniqueness
    /// use `lower(<column>)`.
    pub(crate) fn folds(&self, column: &str) -> bool {
        self.fields
            .iter()
            .any(|(field, c)| *c == column && field.kind == FieldKind::Email)
    }

    /// A value of `column` as lookups and uniqueness compare it (lower case where folded).
    pub(crate) fn key_text(&self, column: &str, value: &str) -> String {
        if self.folds(column) {
            value.to_lowercase()
        } else {
            value.to_owned()
        }
    }

    /// The values to bind for a record's fields and sort columns, in `insert`/`update` order.
    pub(crate) fn bound(&self, values: &serde_json::Map<String, Value>) -> Vec<Bound> {
        let mut bound: Vec<Bound> = Vec::new();
        for (field, _) in &self.fields {
            let value = values.get(field.name.as_ref());
            if field.kind == FieldKind::Consent {
                for channel in rapport_domain::kit::CONSENT_CHANNELS {
                    let line = value.and_then(|v| v.get(*channel));
                    let status = line.and_then(|l| l.get("status")).and_then(Value::as_str);
                    bound.push(Bound::Text(Some(status.unwrap_or("unknown").to_owned())));
                    let at = line.and_then(|l| l.get("changed_at"));
                    bound.push(Bound::of(FieldKind::Timestamp, at));
                }
                continue;
            }
            if field.kind == FieldKind::Address {
                bound.extend(rapport_domain::kit::ADDRESS_LINES.iter().map(|line| {
                    Bound::Text(
                        value
                            .and_then(|v| v.get(*line))
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    )
                }));
            } else {
                bound.push(Bound::of(field.kind, value));
            }
        }
        bound.extend(self.sorted.iter().map(|(name, _)| {
            Bound::Text(
                values
                    .get(*name)
                    .and_then(Value::as_str)
                    .map(str::to_lowercase)
                    .or(Some(String::new())),
            )
        }));
        bound
    }
}

/// The PostgreSQL array type a field's column binds as (see `Bound::of`).
fn pg_array(kind: FieldKind) -> &'static str {
    match kind {
        FieldKind::Integer { .. } | FieldKind::Money => "bigint[]",
        FieldKind::Boolean => "boolean[]",
        FieldKind::Date => "date[]",
        FieldKind::Timestamp => "timestamptz[]",
        FieldKind::Reference(_) | FieldKind::Id => "uuid[]",
        FieldKind::Tags | FieldKind::Lines(_) | FieldKind::Emails | FieldKind::Phones => "jsonb[]",
        _ => "text[]",
    }
}

fn is_text(kind: FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::Text { .. }
            | FieldKind::Url
            | FieldKind::Domain
            | FieldKind::Currency
            | FieldKind::Country
            | FieldKind::Enum(_)
    )
}

/// A field's value as the database stores it.
pub(crate) enum Bound {
    Text(Option<String>),
    Integer(Option<i64>),
    Boolean(Option<bool>),
    Date(Option<NaiveDate>),
    Time(Option<DateTime<Utc>>),
    Id(Option<Uuid>),
    /// Tags and lines: a JSON array (empty when none).
    Json(Json<Value>),
}

impl Bound {
    pub(crate) fn of(kind: FieldKind, value: Option<&Value>) -> Bound {
        let text = value.and_then(Value::as_str);
        match kind {
            FieldKind::Integer { .. } | FieldKind::Money => {
                Bound::Integer(value.and_then(Value::as_i64))
            }
            FieldKind::Boolean => Bound::Boolean(value.and_then(Value::as_bool)),
            FieldKind::Date => Bound::Date(text.and_then(|t| t.parse().ok())),
            FieldKind::Timestamp => Bound::Time(
                text.and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.with_timezone(&Utc)),
            ),
            FieldKind::Reference(_) | FieldKind::Id => {
                Bound::Id(text.and_then(|t| Uuid::parse_str(t).ok()))
            }
            FieldKind::Tags | FieldKind::Lines(_) | FieldKind::Emails | FieldKind::Phones => {
                Bound::Json(Json(
                    value
                        .filter(|v| v.is_array())
                        .cloned()
                        .unwrap_or_else(|| Value::Array(Vec::new())),
                ))
            }
            _ => Bound::Text(text.map(str::to_owned)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_has_one_column_per_writable_field_and_a_sort_column_per_sorted_text() {
        let layout = layout(&rapport_domain::objects::competitor::SPEC).unwrap();
        assert!(layout.insert.starts_with(
            "insert into competitors (org_id, id, external_id, name, website, strengths, \
             weaknesses, notes, tags, name_sort, custom, search_text, version,"
        ));
        assert!(
            layout
                .update
                .contains("name_sort = $10, custom = $11, search_text = $12")
        );
        assert!(layout.update.contains("updated_at = $13"));
        assert_eq!(layout.storage.column("name"), Some("name_sort"));
        assert_eq!(layout.storage.column("notes"), Some("notes"));
        assert_eq!(layout.storage.column("version"), None);
        assert_eq!(layout.storage.search_table, "competitors_search");
        // PostgreSQL's chunk statements: one array per column, in the same order.
        assert!(layout.insert_unnest.contains(
            "select $1, u.*, 1, $2, $2, $3 from unnest($4::uuid[], $5::text[], $6::text[], \
             $7::text[], $8::text[], $9::text[], $10::text[], $11::jsonb[], $12::text[], \
             $13::jsonb[], $14::text[]) as u"
        ));
        assert!(layout.update_unnest.contains(
            "from unnest($3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], \
             $8::text[], $9::text[], $10::jsonb[], $11::text[], $12::jsonb[], $13::text[]) as u \
             (id, external_id, name, website, strengths, weaknesses, notes, tags, name_sort, \
             custom, search_text) where t.org_id = $1 and t.id = u.id"
        ));
    }
}
