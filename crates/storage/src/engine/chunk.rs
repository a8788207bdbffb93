//! How each database takes a chunk of an engine object's new and changed rows. PostgreSQL
//! binds one array per column and writes the chunk with two statements of constant text
//! (`insert … select … from unnest(…)` and `update … from unnest(…)`), so its prepared
//! statements are reused whatever the chunk's size. SQLite, which has no arrays, writes
//! multi-row inserts and one constant `update` per changed row in the same transaction (it
//! runs in-process: a statement costs a function call, not a round trip).
//!
//! The lookups a chunk needs (the records its rows name, who holds a unique value) are here
//! too. On PostgreSQL they probe the index once per key (`unnest` of the keys, each joined
//! laterally to its one record): an `in (…)` list is planned from statistics, and a table no
//! one has analyzed yet looks small, so the planner read every row of the tenant and compared
//! each with the whole list — a batch took seconds at 60,000 rows. A probe per key costs the
//! same on any statistics.

use chrono::{DateTime, Utc};
use rapport_domain::AuthContext;
use rapport_domain::kit::record::{self, Record};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Bound, Layout};
use crate::error::DbError;

/// The keys a lookup finds records by, sorted (so that concurrent writers lock rows in one
/// order).
pub(crate) enum Keys {
    Ids(Vec<Uuid>),
    Texts(Vec<String>),
}

impl Keys {
    pub(crate) fn ids(mut ids: Vec<Uuid>) -> Keys {
        ids.sort_unstable();
        ids.dedup();
        Keys::Ids(ids)
    }

    pub(crate) fn texts(mut texts: Vec<String>) -> Keys {
        texts.sort_unstable();
        texts.dedup();
        Keys::Texts(texts)
    }

    /// The same keys compared without case, where the column is folded (an email).
    fn folded(self, fold: bool) -> Keys {
        match self {
            Keys::Texts(texts) if fold => {
                Keys::texts(texts.into_iter().map(|t| t.to_lowercase()).collect())
            }
            keys => keys,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Keys::Ids(ids) => ids.is_empty(),
            Keys::Texts(texts) => texts.is_empty(),
        }
    }
}

/// The expression a lookup compares: the column, or its lower case where it is folded.
fn compared(layout: &Layout, column: &str) -> String {
    if layout.folds(column) {
        format!("lower(t.{column})")
    } else {
        format!("t.{column}")
    }
}

/// The condition's left side: the compared expression, which for a folded column also says
/// the column has a value, so that the partial index on `lower(<column>) where <column> is
/// not null` serves the lookup (neither database infers that from `lower(…) = …`).
fn matched(layout: &Layout, column: &str) -> String {
    if layout.folds(column) {
        format!("t.{column} is not null and lower(t.{column})")
    } else {
        format!("t.{column}")
    }
}

/// A row to write: its id, values and custom values.
pub(crate) struct Row<'a> {
    pub id: Uuid,
    pub values: &'a Map<String, Value>,
    pub custom: &'a Map<String, Value>,
}

pub(crate) mod sqlite {
    use super::*;
    use sqlx::query_builder::Separated;
    use sqlx::{Sqlite, SqliteConnection};

    /// SQLite binds at most 32,766 values a statement; chunks stay well below on any object.
    fn per_statement(layout: &Layout) -> usize {
        (30_000 / (layout.fields.len() + layout.sorted.len() + 8)).clamp(1, 500)
    }

    fn push_bound(row: &mut Separated<'_, Sqlite, &'static str>, bound: Bound) {
        match bound {
            Bound::Text(v) => row.push_bind(v),
            Bound::Integer(v) => row.push_bind(v),
            Bound::Boolean(v) => row.push_bind(v),
            Bound::Date(v) => row.push_bind(v),
            Bound::Time(v) => row.push_bind(v),
            Bound::Id(v) => row.push_bind(v),
            Bound::Json(v) => row.push_bind(v),
        };
    }

    fn push_in(
        qb: &mut sqlx::QueryBuilder<Sqlite>,
        layout: &Layout,
        org_id: Uuid,
        column: &str,
        live_only: bool,
        keys: Keys,
    ) {
        qb.push("(t.org_id = ").push_bind(org_id);
        if live_only {
            qb.push(" and t.deleted_at is null");
        }
        qb.push(" and ").push(matched(layout, column)).push(" in ");
        match keys {
            Keys::Ids(ids) => crate::records::sqlite::push_list(qb, ids),
            Keys::Texts(texts) => crate::records::sqlite::push_list(qb, texts),
        }
        qb.push(")");
    }

    /// The records whose `column` is one of `keys` (live ones only, or deleted ones too); a
    /// transaction's writes lock the whole database on SQLite, so `_lock` asks nothing more.
    pub(crate) async fn find_keyed<'e>(
        executor: impl sqlx::Executor<'e, Database = Sqlite>,
        org_id: Uuid,
        layout: &Layout,
        column: &str,
        live_only: bool,
        keys: Keys,
        _lock: bool,
    ) -> Result<Vec<Record>, DbError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Sqlite>::new(layout.select_where);
        push_in(
            &mut qb,
            layout,
            org_id,
            column,
            live_only,
            keys.folded(layout.folds(column)),
        );
        crate::engine::sqlite::fetch_records(executor, layout, &mut qb).await
    }

    /// Every live record whose `column` is one of `keys` (a key that is not unique).
    pub(crate) async fn find_all_keyed(
        conn: &mut SqliteConnection,
        org_id: Uuid,
        layout: &Layout,
        column: &str,
        keys: Keys,
    ) -> Result<Vec<Record>, DbError> {
        find_keyed(conn, org_id, layout, column, true, keys, true).await
    }

    /// Which record holds each of `values` in the text `column`.
    pub(crate) async fn key_holders(
        conn: &mut SqliteConnection,
        org_id: Uuid,
        layout: &Layout,
        column: &str,
        live_only: bool,
        values: Vec<String>,
    ) -> Result<Vec<(String, Uuid)>, DbError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Sqlite>::new("select ");
        qb.push(compared(layout, column))
            .push(", t.id from ")
            .push(layout.storage.table)
            .push(" t where ");
        let keys = Keys::texts(values).folded(layout.folds(column));
        push_in(&mut qb, layout, org_id, column, live_only, keys);
        Ok(qb.build_query_as().fetch_all(&mut *conn).await?)
    }

    pub(crate) async fn insert_rows(
        conn: &mut SqliteConnection,
        ctx: &AuthContext,
        layout: &Layout,
        rows: &[Row<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        for chunk in rows.chunks(per_statement(layout)) {
            let mut qb = sqlx::QueryBuilder::<Sqlite>::new(layout.insert);
            qb.push_values(chunk, |mut row, r| {
                row.push_bind(ctx.org_id).push_bind(r.id);
                for bound in layout.bound(r.values) {
                    push_bound(&mut row, bound);
                }
                row.push_bind(Json(r.custom.clone()))
                    .push_bind(record::search_text(layout.spec, r.values))
                    .push_bind(1_i64)
                    .push_bind(at)
                    .push_bind(at)
                    .push_bind(ctx.user_id);
            });
            qb.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub(crate) async fn update_rows(
        conn: &mut SqliteConnection,
        ctx: &AuthContext,
        layout: &Layout,
        rows: &[Row<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        for r in rows {
            let mut query = sqlx::query(layout.update).bind(ctx.org_id).bind(r.id);
            for bound in layout.bound(r.values) {
                query = match bound {
                    Bound::Text(v) => query.bind(v),
                    Bound::Integer(v) => query.bind(v),
                    Bound::Boolean(v) => query.bind(v),
                    Bound::Date(v) => query.bind(v),
                    Bound::Time(v) => query.bind(v),
                    Bound::Id(v) => query.bind(v),
                    Bound::Json(v) => query.bind(v),
                };
            }
            query
                .bind(Json(r.custom))
                .bind(record::search_text(layout.spec, r.values))
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }
}

pub(crate) mod postgres {
    use super::*;
    use chrono::NaiveDate;
    use sqlx::PgConnection;
    use sqlx::postgres::PgArguments;
    use sqlx::query::Query;

    /// One column of a chunk, as the array it is bound as.
    enum Array {
        Text(Vec<Option<String>>),
        Integer(Vec<Option<i64>>),
        Boolean(Vec<Option<bool>>),
        Date(Vec<Option<NaiveDate>>),
        Time(Vec<Option<DateTime<Utc>>>),
        Id(Vec<Option<Uuid>>),
        Json(Vec<Json<Value>>),
    }

    impl Array {
        fn push(&mut self, bound: Bound) {
            match (self, bound) {
                (Array::Text(a), Bound::Text(v)) => a.push(v),
                (Array::Integer(a), Bound::Integer(v)) => a.push(v),
                (Array::Boolean(a), Bound::Boolean(v)) => a.push(v),
                (Array::Date(a), Bound::Date(v)) => a.push(v),
                (Array::Time(a), Bound::Time(v)) => a.push(v),
                (Array::Id(a), Bound::Id(v)) => a.push(v),
                (Array::Json(a), Bound::Json(v)) => a.push(v),
                // A column's values are all of its field's kind.
                _ => unreachable!("a value of another kind than its column"),
            }
        }

        fn of(bound: &Bound) -> Array {
            match bound {
                Bound::Text(_) => Array::Text(Vec::new()),
                Bound::Integer(_) => Array::Integer(Vec::new()),
                Bound::Boolean(_) => Array::Boolean(Vec::new()),
                Bound::Date(_) => Array::Date(Vec::new()),
                Bound::Time(_) => Array::Time(Vec::new()),
                Bound::Id(_) => Array::Id(Vec::new()),
                Bound::Json(_) => Array::Json(Vec::new()),
            }
        }

        fn bind<'q>(
            self,
            query: Query<'q, sqlx::Postgres, PgArguments>,
        ) -> Query<'q, sqlx::Postgres, PgArguments> {
            match self {
                Array::Text(v) => query.bind(v),
                Array::Integer(v) => query.bind(v),
                Array::Boolean(v) => query.bind(v),
                Array::Date(v) => query.bind(v),
                Array::Time(v) => query.bind(v),
                Array::Id(v) => query.bind(v),
                Array::Json(v) => query.bind(v),
            }
        }
    }

    /// The chunk as one array per column, in `Layout::written` order after the ids.
    fn arrays(layout: &Layout, rows: &[Row<'_>]) -> (Vec<Uuid>, Vec<Array>) {
        let mut ids = Vec::with_capacity(rows.len());
        let mut columns: Vec<Array> = Vec::new();
        let mut custom = Vec::with_capacity(rows.len());
        let mut search = Vec::with_capacity(rows.len());
        for r in rows {
            ids.push(r.id);
            for (i, bound) in layout.bound(r.values).into_iter().enumerate() {
                if columns.len() == i {
                    columns.push(Array::of(&bound));
                }
                columns[i].push(bound);
            }
            custom.push(Json(Value::Object(r.custom.clone())));
            search.push(Some(record::search_text(layout.spec, r.values)));
        }
        columns.push(Array::Json(custom));
        columns.push(Array::Text(search));
        (ids, columns)
    }

    /// `unnest($1::<type>[]) as k(v) cross join lateral (<select> … <compared> = k.v limit 1`:
    /// the caller closes the parenthesis. `compared` is the column's expression
    /// (see [`compared`]).
    fn push_probe(
        qb: &mut sqlx::QueryBuilder<sqlx::Postgres>,
        select: &str,
        org_id: Uuid,
        compared: &str,
        live_only: bool,
        keys: Keys,
        limit_one: bool,
    ) {
        qb.push("unnest(");
        match keys {
            Keys::Ids(ids) => qb.push_bind(ids).push("::uuid[]"),
            Keys::Texts(texts) => qb.push_bind(texts).push("::text[]"),
        };
        qb.push(") as k(v) cross join lateral (").push(select);
        qb.push("t.org_id = ").push_bind(org_id);
        if live_only {
            qb.push(" and t.deleted_at is null");
        }
        qb.push(" and ").push(compared).push(" = k.v");
        if limit_one {
            qb.push(" limit 1");
        }
    }

    /// The records whose `column` is one of `keys` (live ones only, or deleted ones too),
    /// locked for a write with `lock`.
    pub(crate) async fn find_keyed<'e>(
        executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
        org_id: Uuid,
        layout: &Layout,
        column: &str,
        live_only: bool,
        keys: Keys,
        lock: bool,
    ) -> Result<Vec<Record>, DbError> {
        let found = Probe {
            column,
            live_only,
            lock,
            every: false,
        };
        probe_records(executor, org_id, layout, found, keys).await
    }

    /// Every live record whose `column` is one of `keys` (a key that is not unique), locked.
    pub(crate) async fn find_all_keyed(
        conn: &mut PgConnection,
        org_id: Uuid,
        layout: &Layout,
        column: &str,
        keys: Keys,
    ) -> Result<Vec<Record>, DbError> {
        let found = Probe {
            column,
            live_only: true,
            lock: true,
            every: true,
        };
        probe_records(&mut *conn, org_id, layout, found, keys).await
    }

    /// What a probe compares and takes: one record per key, or every one.
    struct Probe<'c> {
        column: &'c str,
        live_only: bool,
        lock: bool,
        every: bool,
    }

    async fn probe_records<'e>(
        executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
        org_id: Uuid,
        layout: &Layout,
        probe: Probe<'_>,
        keys: Keys,
    ) -> Result<Vec<Record>, DbError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("select t.* from ");
        let keys = keys.folded(layout.folds(probe.column));
        push_probe(
            &mut qb,
            layout.select_where,
            org_id,
            &matched(layout, probe.column),
            probe.live_only,
            keys,
            !probe.every,
        );
        qb.push(if probe.lock { " for update) t" } else { ") t" });
        crate::engine::postgres::fetch_records(executor, layout, &mut qb).await
    }

    /// Which record holds each of `values` in the text `column`.
    pub(crate) async fn key_holders(
        conn: &mut PgConnection,
        org_id: Uuid,
        layout: &Layout,
        column: &str,
        live_only: bool,
        values: Vec<String>,
    ) -> Result<Vec<(String, Uuid)>, DbError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let select = format!("select t.id from {} t where ", layout.storage.table);
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new("select k.v, h.id from ");
        let keys = Keys::texts(values).folded(layout.folds(column));
        push_probe(
            &mut qb,
            &select,
            org_id,
            &matched(layout, column),
            live_only,
            keys,
            true,
        );
        qb.push(") h");
        Ok(qb.build_query_as().fetch_all(&mut *conn).await?)
    }

    /// Rows per statement: bounded, so that one chunk's arrays stay a few megabytes.
    const PER_STATEMENT: usize = 1000;

    pub(crate) async fn insert_rows(
        conn: &mut PgConnection,
        ctx: &AuthContext,
        layout: &Layout,
        rows: &[Row<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        for chunk in rows.chunks(PER_STATEMENT) {
            let (ids, columns) = arrays(layout, chunk);
            let mut query = sqlx::query(layout.insert_unnest)
                .bind(ctx.org_id)
                .bind(at)
                .bind(ctx.user_id)
                .bind(ids);
            for column in columns {
                query = column.bind(query);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }

    pub(crate) async fn update_rows(
        conn: &mut PgConnection,
        ctx: &AuthContext,
        layout: &Layout,
        rows: &[Row<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        for chunk in rows.chunks(PER_STATEMENT) {
            let (ids, columns) = arrays(layout, chunk);
            let mut query = sqlx::query(layout.update_unnest)
                .bind(ctx.org_id)
                .bind(at)
                .bind(ids);
            for column in columns {
                query = column.bind(query);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(())
    }
}
