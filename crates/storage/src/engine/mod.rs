//! The engine: one store for every object served from its declaration alone. A declaration
//! ([`ObjectSpec`]) becomes a [`Layout`] once — its columns and its constant SQL — and every
//! read and write below is ordinary generic code over that layout, for both databases.
//!
//! The table layout an engine object's migration creates: one column per writable field,
//! named as the field (text, bigint, boolean, date, timestamp; tags as a JSON array whose
//! values are also `tag` keys in `record_keys`); beside each sortable text field a lower-case
//! `<field>_sort` column that sorts and filters use; and the columns every record has (`id`,
//! `org_id`, `custom`, `search_text`, `version`, `created_at`, `updated_at`, `created_by`,
//! `deleted_at`, `merged_into`; on SQLite also `rid` and the FTS5 table `<table>_search`).

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::kit::record::{self, Record, RecordPatch};
use rapport_domain::kit::{FieldKind, FieldSpec, ObjectSpec};
use rapport_domain::page::{Page, PageRequest};
use rapport_domain::query::{SortKey, Target};
use rapport_domain::record::{EventAction, RecordEvent};
use rapport_domain::store::{ListRequest, RecordStore};
use rapport_domain::write::{IdProperty, RowOutcome, RowTarget, WriteRow};
use rapport_domain::{AuthContext, ObjectType, StoreError, values};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::events::NewEvent;
use crate::records::{Columns, Plan, Spec, cursor, deleted_changes};

pub(crate) mod chunk;
pub(crate) mod write;

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
    pub keys: Vec<(IdProperty, &'static str)>,
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

impl Layout {
    fn new(spec: &'static ObjectSpec) -> Layout {
        let table: &'static str = spec.table.as_ref();
        let fields: Vec<(&'static FieldSpec, &'static str)> = record::writable(spec)
            .map(|field| (field, field.name.as_ref()))
            .collect();
        let sorted: Vec<(&'static str, &'static str)> = fields
            .iter()
            .filter(|(field, _)| field.sortable && is_text(field.kind))
            .map(|(field, column)| (field.name.as_ref(), leak(format!("{column}_sort"))))
            .collect();
        let mut columns: Vec<(&'static str, &'static str)> = vec![("id", "id")];
        columns.extend(fields.iter().map(|(field, column)| {
            let sort = sorted.iter().find(|(name, _)| *name == field.name);
            (field.name.as_ref(), sort.map_or(*column, |(_, sort)| *sort))
        }));
        columns.extend(
            ["created_at", "updated_at", "created_by"]
                .iter()
                .map(|c| (*c, *c)),
        );
        let field_columns: Vec<&str> = fields.iter().map(|(_, c)| *c).collect();
        let sort_columns: Vec<&str> = sorted.iter().map(|(_, c)| *c).collect();
        let select_where = format!(
            "select t.id, t.org_id, {}t.custom, t.version, t.created_at, t.updated_at, \
             t.created_by, t.deleted_at from {table} t where ",
            field_columns
                .iter()
                .map(|c| format!("t.{c}, "))
                .collect::<String>()
        );
        let select = format!("{select_where}t.org_id = ");
        let unique: Vec<(&'static str, &'static str)> = fields
            .iter()
            .filter(|(field, _)| field.unique)
            .map(|(field, column)| (field.name.as_ref(), *column))
            .collect();
        // Every natural key but id and external id names a unique field of its name.
        let keys: Vec<(IdProperty, &'static str)> = spec
            .natural_keys
            .iter()
            .filter(|key| !matches!(key, IdProperty::Id | IdProperty::ExternalId))
            .filter_map(|key| {
                let found = unique.iter().find(|(name, _)| *name == key.as_str());
                debug_assert!(
                    found.is_some(),
                    "{}: {} is no unique field",
                    spec.object,
                    key.as_str()
                );
                found.map(|(_, column)| (*key, *column))
            })
            .collect();
        let mut storage_keys = vec![
            (IdProperty::Id, "id", false),
            (IdProperty::ExternalId, "external_id", false),
        ];
        storage_keys.extend(keys.iter().map(|(key, column)| (*key, *column, false)));
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
            .map(|(field, _)| pg_array(field.kind))
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
        let storage = Spec {
            object: spec.object,
            table,
            search_table: leak(format!("{table}_search")),
            columns: Columns::Table(columns),
            relations: &[],
            catalog_fields: Box::leak(record::catalog(spec).into_boxed_slice()),
            catalog_relations: &[],
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

    /// The values to bind for a record's fields and sort columns, in `insert`/`update` order.
    fn bound(&self, values: &serde_json::Map<String, Value>) -> Vec<Bound> {
        let mut bound: Vec<Bound> = self
            .fields
            .iter()
            .map(|(field, _)| Bound::of(field.kind, values.get(field.name.as_ref())))
            .collect();
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
        FieldKind::Tags => "jsonb[]",
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
enum Bound {
    Text(Option<String>),
    Integer(Option<i64>),
    Boolean(Option<bool>),
    Date(Option<NaiveDate>),
    Time(Option<DateTime<Utc>>),
    Id(Option<Uuid>),
    Tags(Json<Vec<String>>),
}

impl Bound {
    fn of(kind: FieldKind, value: Option<&Value>) -> Bound {
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
            FieldKind::Tags => Bound::Tags(Json(
                value
                    .and_then(Value::as_array)
                    .map(|items| {
                        items
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            )),
            _ => Bound::Text(text.map(str::to_owned)),
        }
    }
}

/// A value of a list's sort key, for its cursor.
fn sort_value(record: &Record, key: &SortKey) -> Value {
    match &key.target {
        Target::Standard(info) => match info.name {
            "created_at" => Value::from(values::timestamp(&record.created_at)),
            "updated_at" => Value::from(values::timestamp(&record.updated_at)),
            name => match record.value(name) {
                Value::String(text) => Value::from(text.to_lowercase()),
                other => other.clone(),
            },
        },
        Target::Custom { key, kind } => match (record.custom.get(key), kind) {
            (Some(value), rapport_domain::query::FieldKind::Money) => {
                value.get("amount_minor").cloned().unwrap_or(Value::Null)
            }
            (Some(value), _) => value.clone(),
            (None, _) => Value::Null,
        },
        Target::Related { .. } => Value::Null,
    }
}

fn row_cursor(plan: &Plan, record: &Record) -> rapport_domain::Cursor {
    let values = plan.sort.iter().map(|k| sort_value(record, k)).collect();
    cursor(plan, values, record.id)
}

per_backend! {
    use sqlx::Row;

    /// A row of `Layout::select` as a record.
    fn decode(layout: &Layout, row: &<Db as sqlx::Database>::Row) -> Result<Record, sqlx::Error> {
        let mut values = serde_json::Map::new();
        for (field, column) in &layout.fields {
            let value = match field.kind {
                FieldKind::Integer { .. } | FieldKind::Money => {
                    row.try_get::<Option<i64>, _>(*column)?.map(Value::from)
                }
                FieldKind::Boolean => row.try_get::<Option<bool>, _>(*column)?.map(Value::from),
                FieldKind::Date => row
                    .try_get::<Option<NaiveDate>, _>(*column)?
                    .map(|d| Value::from(d.to_string())),
                FieldKind::Timestamp => row
                    .try_get::<Option<DateTime<Utc>>, _>(*column)?
                    .map(|t| Value::from(values::timestamp(&t))),
                FieldKind::Reference(_) | FieldKind::Id => row
                    .try_get::<Option<Uuid>, _>(*column)?
                    .map(|id| Value::from(id.to_string())),
                FieldKind::Tags => {
                    let tags: Json<Vec<String>> = row.try_get(*column)?;
                    (!tags.0.is_empty()).then(|| Value::from(tags.0))
                }
                _ => row.try_get::<Option<String>, _>(*column)?.map(Value::from),
            };
            if let Some(value) = value {
                values.insert(field.name.to_string(), value);
            }
        }
        let custom: Json<serde_json::Map<String, Value>> = row.try_get("custom")?;
        Ok(Record {
            object: layout.spec.object,
            id: row.try_get("id")?,
            values,
            custom: custom.0,
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            created_by: row.try_get("created_by")?,
            deleted_at: row.try_get("deleted_at")?,
        })
    }

    /// Runs a select of `Layout::select` and decodes its rows.
    pub(crate) async fn fetch_records<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        layout: &Layout,
        qb: &mut sql::Builder,
    ) -> Result<Vec<Record>, crate::error::DbError> {
        let rows = qb.build().fetch_all(executor).await?;
        Ok(rows.iter().map(|row| decode(layout, row)).collect::<Result<_, _>>()?)
    }

    /// The records among `ids` (live only, or deleted too), in id order: one probe of the
    /// primary key per id (see `chunk`).
    pub(crate) async fn load_records<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        layout: &Layout,
        ids: &[Uuid],
        live_only: bool,
    ) -> Result<Vec<Record>, crate::error::DbError> {
        let keys = crate::engine::chunk::Keys::ids(ids.to_vec());
        let mut records = sql::find_keyed(executor, ctx.org_id, layout, "id", live_only, keys, false).await?;
        records.sort_by_key(|record| record.id);
        Ok(records)
    }

    /// Restores a deleted record (a live one is answered as it is).
    pub(crate) async fn restore_record(
        conn: &mut Conn,
        ctx: &AuthContext,
        layout: &Layout,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<Record, crate::error::DbError> {
        // Restores of one record at once: one restores it, the others find it live.
        sql::lock_row(&mut *conn, &layout.storage, ctx.org_id, id).await?;
        let Some(current) = load_records(&mut *conn, ctx, layout, &[id], false).await?.pop() else {
            return Err(StoreError::NotFound.into());
        };
        if current.deleted_at.is_none() {
            return Ok(current);
        }
        // A unique value another live record took meanwhile keeps this one in the trash.
        for (name, column) in &layout.unique {
            let mut qb = sql::Builder::new("select o.id from ");
            qb.push(layout.storage.table).push(" o join ").push(layout.storage.table)
                .push(" r on r.").push(*column).push(" = o.").push(*column)
                .push(" where r.org_id = ").push_bind(ctx.org_id).push(" and r.id = ").push_bind(id)
                .push(" and o.org_id = ").push_bind(ctx.org_id)
                .push(" and o.deleted_at is null and o.id <> r.id limit 1");
            if qb.build_query_scalar::<Uuid>().fetch_optional(&mut *conn).await?.is_some() {
                return Err(StoreError::Conflict { field: Some((*name).into()) }.into());
            }
        }
        sqlx::query(layout.restore).bind(ctx.org_id).bind(id).bind(at).execute(&mut *conn).await?;
        let changes = deleted_changes(current.deleted_at, None);
        let event = NewEvent { object: layout.spec.object, id, action: EventAction::Restored, changes: &changes, merged_ids: &[] };
        sql::append_events(&mut *conn, ctx, &[event], at).await?;
        load_records(&mut *conn, ctx, layout, &[id], false).await?.pop().ok_or_else(|| StoreError::NotFound.into())
    }

    pub(crate) async fn list_records(
        pool: &sqlx::Pool<Db>,
        ctx: &AuthContext,
        layout: &Layout,
        request: &ListRequest,
    ) -> Result<Page<Record>, crate::error::DbError> {
        let spec = &layout.storage;
        let definitions = sql::custom_fields(pool, ctx.org_id, spec.object).await?;
        let plan = crate::records::plan(spec, request, &definitions)?;
        let base = |qb: &mut sql::Builder| {
            qb.push_bind(ctx.org_id).push(if request.deleted {
                " and t.deleted_at is not null"
            } else {
                " and t.deleted_at is null"
            });
            if let Some(filter) = &plan.filter {
                qb.push(" and ");
                sql::push_filter(qb, ctx, filter, spec, "t", false);
            }
            if let Some(q) = &request.q {
                sql::push_search(qb, spec, q);
            }
        };
        let mut qb = sql::Builder::new(layout.select);
        base(&mut qb);
        if let Some((values, after_id)) = &plan.after {
            sql::push_after(&mut qb, spec, &plan.sort, values, *after_id)?;
        }
        sql::push_order(&mut qb, spec, &plan.sort);
        qb.push(" limit ").push_bind(i64::from(request.page.limit) + 1);
        let records = fetch_records(pool, layout, &mut qb).await?;
        let total = if request.page.with_total {
            let mut count = sql::Builder::new("select count(*) from ");
            count.push(spec.table).push(" t where t.org_id = ");
            base(&mut count);
            Some(count.build_query_scalar::<i64>().fetch_one(pool).await?)
        } else {
            None
        };
        Ok(Page::from_rows(records, request.page.limit, |r| row_cursor(&plan, r), total))
    }
}

#[async_trait]
impl RecordStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, object = %spec.object, rows = rows.len()))]
    async fn write(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        rows: Vec<WriteRow<RecordPatch>>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        let layout = layout(spec)?;
        write_retrying!(self, ctx, |tx, sql, at| sql::write_records(
            &mut tx,
            ctx,
            layout,
            &rows,
            all_or_none,
            at
        )
        .await?)
    }

    async fn delete_many(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        targets: Vec<RowTarget>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        let layout = layout(spec)?;
        let at = crate::rows::now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let written =
                sql::delete_records(&mut tx, ctx, &layout.storage, &targets, all_or_none, at)
                    .await?;
            if written.commit {
                tx.commit().await?;
            }
            Ok(written.outcomes)
        })
    }

    async fn get(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        id: Uuid,
    ) -> Result<Record, StoreError> {
        let layout = layout(spec)?;
        on_db!(&self.db, read, |pool, sql| {
            match sql::load_records(pool, ctx, layout, &[id], true)
                .await?
                .pop()
            {
                Some(record) => Ok(record),
                None => Err(StoreError::NotFound.into()),
            }
        })
    }

    async fn get_many(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        ids: &[Uuid],
    ) -> Result<Vec<Record>, StoreError> {
        let layout = layout(spec)?;
        on_db!(&self.db, read, |pool, sql| sql::load_records(
            pool, ctx, layout, ids, false
        )
        .await)
    }

    async fn restore(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        id: Uuid,
    ) -> Result<Record, StoreError> {
        let layout = layout(spec)?;
        let at = crate::rows::now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let record = sql::restore_record(&mut tx, ctx, layout, id, at).await?;
            tx.commit().await?;
            Ok(record)
        })
    }

    async fn list(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        request: &ListRequest,
    ) -> Result<Page<Record>, StoreError> {
        let layout = layout(spec)?;
        on_db!(&self.db, read, |pool, sql| sql::list_records(
            pool, ctx, layout, request
        )
        .await)
    }

    async fn history(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<RecordEvent>, StoreError> {
        let layout = layout(spec)?;
        on_db!(&self.db, read, |pool, sql| {
            if !sql::is_visible(pool, ctx, &layout.storage, id).await? {
                return Err(StoreError::NotFound.into());
            }
            sql::history(pool, ctx.org_id, spec.object, id, page).await
        })
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
