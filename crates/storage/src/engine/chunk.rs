//! How each database takes a chunk of an engine object's new and changed rows. PostgreSQL
//! binds one array per column and writes the chunk with two statements of constant text
//! (`insert … select … from unnest(…)` and `update … from unnest(…)`), so its prepared
//! statements are reused whatever the chunk's size. SQLite, which has no arrays, writes
//! multi-row inserts and one constant `update` per changed row in the same transaction (it
//! runs in-process: a statement costs a function call, not a round trip).

use chrono::{DateTime, Utc};
use rapport_domain::AuthContext;
use rapport_domain::kit::record;
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::{Bound, Layout};
use crate::error::DbError;

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
            Bound::Tags(v) => row.push_bind(v),
        };
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
                    Bound::Tags(v) => query.bind(v),
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
                (Array::Json(a), Bound::Tags(v)) => a.push(Json(Value::from(v.0))),
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
                Bound::Tags(_) => Array::Json(Vec::new()),
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
