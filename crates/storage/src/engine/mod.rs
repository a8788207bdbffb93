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

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use rapport_domain::kit::record::{Record, RecordPatch};
use rapport_domain::kit::{FieldKind, ObjectSpec};
use rapport_domain::page::{Page, PageRequest};
use rapport_domain::query::{SortKey, Target};
use rapport_domain::record::{EventAction, RecordEvent};
use rapport_domain::store::{ListRequest, RecordStore};
use rapport_domain::write::{RowOutcome, RowTarget, WriteRow};
use rapport_domain::{AuthContext, StoreError, values};
use serde_json::Value;
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::events::NewEvent;
use crate::records::{Plan, cursor, deleted_changes};

pub(crate) mod chunk;
mod find;
pub(crate) mod follow;
mod layout;
pub(crate) mod merge;
pub(crate) mod owners;
pub(crate) mod resolve;
pub(crate) mod write;

pub(crate) use layout::{Bound, Layout, layout, storage_spec};

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
                FieldKind::Consent => {
                    let mut channels = serde_json::Map::new();
                    for channel in rapport_domain::kit::CONSENT_CHANNELS {
                        let status: Option<String> = row.try_get(format!("{column}_{channel}").as_str())?;
                        let at: Option<DateTime<Utc>> = row.try_get(format!("{column}_{channel}_at").as_str())?;
                        channels.insert((*channel).to_owned(), serde_json::json!({
                            "status": status.unwrap_or_else(|| "unknown".to_owned()),
                            "changed_at": at.map(|t| values::timestamp(&t)),
                        }));
                    }
                    Some(Value::Object(channels))
                }
                FieldKind::Address => {
                    let mut lines = serde_json::Map::new();
                    for line in rapport_domain::kit::ADDRESS_LINES {
                        let text: Option<String> = row.try_get(format!("{column}_{line}").as_str())?;
                        if let Some(text) = text {
                            lines.insert((*line).to_owned(), Value::from(text));
                        }
                    }
                    (!lines.is_empty()).then_some(Value::Object(lines))
                }
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
                FieldKind::Tags | FieldKind::Lines(_) | FieldKind::Emails | FieldKind::Phones => {
                    let list: Json<Value> = row.try_get(*column)?;
                    list.0.as_array().is_some_and(|items| !items.is_empty()).then_some(list.0)
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
            merged_into: row.try_get("merged_into")?,
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
        if !sql::is_visible(&mut *conn, ctx, &layout.storage, id).await? {
            return Err(StoreError::NotFound.into());
        }
        if let Some(into) = current.merged_into {
            return Err(StoreError::Merged { into }.into());
        }
        if current.deleted_at.is_none() {
            return Ok(current);
        }
        // A unique value another live record took meanwhile keeps this one in the trash.
        for (name, column) in &layout.unique {
            let mut qb = sql::Builder::new("select o.id from ");
            let (r_col, o_col) = if layout.folds(column) {
                (format!("lower(r.{column})"), format!("lower(o.{column})"))
            } else {
                (format!("r.{column}"), format!("o.{column}"))
            };
            qb.push(layout.storage.table).push(" o join ").push(layout.storage.table)
                .push(" r on ").push(r_col).push(" = ").push(o_col)
                .push(" where r.org_id = ").push_bind(ctx.org_id).push(" and r.id = ").push_bind(id)
                .push(" and o.org_id = ").push_bind(ctx.org_id)
                .push(" and o.deleted_at is null and o.id <> r.id limit 1");
            if let Some(holder) = qb.build_query_scalar::<Uuid>().fetch_optional(&mut *conn).await? {
                if layout.folds(column) {
                    // An email names the contact that has it, where the caller may see it.
                    let seen = sql::is_visible(&mut *conn, ctx, &layout.storage, holder).await?;
                    return Err(StoreError::DuplicateEmail { existing_id: seen.then_some(holder) }.into());
                }
                return Err(StoreError::Conflict { field: Some((*name).into()) }.into());
            }
        }
        sqlx::query(layout.restore).bind(ctx.org_id).bind(id).bind(at).execute(&mut *conn).await?;
        let changes = deleted_changes(current.deleted_at, None);
        let event = NewEvent { object: layout.spec.object, id, action: EventAction::Restored, changes: &changes, merged_ids: &[] };
        sql::append_events(&mut *conn, ctx, &[event], at).await?;
        sql::after(&mut *conn, ctx, layout.spec.object, &[(id, None, Some(&current.values))], at).await?;
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
                " and t.deleted_at is not null and t.merged_into is null"
            } else {
                " and t.deleted_at is null"
            });
            sql::push_visibility(qb, ctx, spec.object);
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
    async fn is_live(
        &self,
        ctx: &AuthContext,
        object: rapport_domain::ObjectType,
        id: Uuid,
    ) -> Result<bool, StoreError> {
        let Some(spec) = storage_spec(object) else {
            return Ok(false);
        };
        on_db!(&self.db, read, |pool, sql| sql::is_live_visible(
            pool, ctx, spec, id
        )
        .await)
    }

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
            at,
            &[]
        )
        .await?)
    }

    async fn duplicates(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        id: Uuid,
    ) -> Result<Vec<(Record, Vec<String>)>, StoreError> {
        let layout = layout(spec)?;
        on_db!(&self.db, read, |pool, sql| sql::duplicate_records(
            pool, ctx, layout, id
        )
        .await)
    }

    async fn merge(
        &self,
        ctx: &AuthContext,
        spec: &'static ObjectSpec,
        primary: Uuid,
        duplicates: &[Uuid],
        dry_run: bool,
    ) -> Result<rapport_domain::record::MergeOutcome<Record>, StoreError> {
        let layout = layout(spec)?;
        let at = crate::rows::now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let (outcome, commit) =
                sql::merge_records(&mut tx, ctx, layout, primary, duplicates, dry_run, at).await?;
            if commit {
                tx.commit().await?;
            }
            Ok(outcome)
        })
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
                let deleted: Vec<Uuid> = written
                    .outcomes
                    .iter()
                    .filter_map(|o| o.result.as_ref().ok().map(|(_, id)| *id))
                    .collect();
                let gone = sql::load_records(&mut *tx, ctx, layout, &deleted, false).await?;
                let touched: Vec<crate::rules::Touched<'_>> =
                    gone.iter().map(|r| (r.id, Some(&r.values), None)).collect();
                sql::after(&mut tx, ctx, spec.object, &touched, at).await?;
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
        let everyone = ctx.record_filter(spec.object) == rapport_domain::RecordFilter::All;
        on_db!(&self.db, read, |pool, sql| {
            let found = sql::load_records(pool, ctx, layout, &[id], true)
                .await?
                .pop();
            match found {
                Some(record)
                    if everyone || sql::is_visible(pool, ctx, &layout.storage, id).await? =>
                {
                    Ok(record)
                }
                _ => Err(sql::missing(pool, ctx, &layout.storage, id).await?.into()),
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
        let everyone = ctx.record_filter(spec.object) == rapport_domain::RecordFilter::All;
        on_db!(&self.db, read, |pool, sql| {
            let records = sql::load_records(pool, ctx, layout, ids, false).await?;
            if everyone {
                return Ok(records);
            }
            // Only what the caller may see (the feed names the others by id alone).
            let found: Vec<Uuid> = records.iter().map(|r| r.id).collect();
            let mut conn = pool.acquire().await?;
            let seen = sql::visible_among(&mut conn, ctx, &layout.storage, &found).await?;
            Ok(records
                .into_iter()
                .filter(|r| seen.contains(&r.id))
                .collect())
        })
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
