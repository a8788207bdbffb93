//! The keys table (tags, emails, phones), unique custom values, the organization's custom
//! field definitions, SQLite's search index and lifecycle notes, for every record table.

use chrono::{DateTime, Utc};
use rapport_domain::custom_field::{CustomFieldDef, FieldType};
use rapport_domain::values::LifecycleStage;
use rapport_domain::{AuthContext, ObjectType};
use serde_json::Value;
use uuid::Uuid;

use super::Spec;
use crate::error::DbError;

per_backend! {
    /// For each unique custom field: which live record (other than the rows' own) holds each
    /// of the given values.
    pub(crate) async fn unique_holders(
        conn: &mut Conn,
        spec: &Spec,
        org_id: Uuid,
        definitions: &[CustomFieldDef],
        values: &std::collections::HashMap<String, Vec<Value>>,
    ) -> Result<std::collections::HashMap<(String, String), Uuid>, DbError> {
        let mut holders = std::collections::HashMap::new();
        for def in definitions.iter().filter(|d| d.unique) {
            let Some(wanted) = values.get(&def.key).filter(|v| !v.is_empty()) else { continue };
            let kind = rapport_domain::query::custom_kind(def.field_type);
            let mut qb = sql::Builder::new("select t.id, ");
            sql::push_custom_expr(&mut qb, "t", &def.key, kind);
            qb.push(" from ").push(spec.table).push(" t where t.org_id = ").push_bind(org_id).push(" and t.deleted_at is null and ");
            sql::push_custom_expr(&mut qb, "t", &def.key, kind);
            qb.push(" in ");
            if def.field_type == FieldType::Integer {
                sql::push_list(&mut qb, wanted.iter().filter_map(Value::as_i64));
                let rows: Vec<(Uuid, Option<i64>)> = qb.build_query_as().fetch_all(&mut *conn).await?;
                for (id, value) in rows {
                    if let Some(value) = value {
                        holders.insert((def.key.clone(), value.to_string()), id);
                    }
                }
            } else {
                sql::push_list(&mut qb, wanted.iter().filter_map(|v| v.as_str().map(str::to_owned)));
                let rows: Vec<(Uuid, Option<String>)> = qb.build_query_as().fetch_all(&mut *conn).await?;
                for (id, value) in rows {
                    if let Some(value) = value {
                        holders.insert((def.key.clone(), value), id);
                    }
                }
            }
        }
        Ok(holders)
    }

    /// Adds and removes single keys of records, for writes that changed only some of them.
    pub(crate) async fn change_keys(
        conn: &mut Conn,
        org_id: Uuid,
        object: ObjectType,
        removed: &[(Uuid, &'static str, String)],
        added: &[(Uuid, &'static str, String)],
    ) -> Result<(), DbError> {
        for chunk in removed.chunks(300) {
            let mut delete = sql::Builder::new("delete from record_keys where org_id = ");
            delete.push_bind(org_id).push(" and object_type = ").push_bind(object.as_str());
            delete.push(" and (object_id, kind, value) in (");
            let mut list = delete.separated(", ");
            for (id, kind, value) in chunk {
                list.push("(").push_bind_unseparated(*id).push_unseparated(", ");
                list.push_bind_unseparated(*kind).push_unseparated(", ");
                list.push_bind_unseparated(value.clone()).push_unseparated(")");
            }
            delete.push(")");
            delete.build().execute(&mut *conn).await?;
        }
        insert_keys(conn, org_id, object, added).await
    }

    async fn insert_keys(
        conn: &mut Conn,
        org_id: Uuid,
        object: ObjectType,
        rows: &[(Uuid, &'static str, String)],
    ) -> Result<(), DbError> {
        for chunk in rows.chunks(1000) {
            let mut insert = sql::Builder::new("insert into record_keys (org_id, object_type, object_id, kind, value) ");
            insert.push_values(chunk, |mut row, (id, kind, value)| {
                row.push_bind(org_id)
                    .push_bind(object.as_str())
                    .push_bind(*id)
                    .push_bind(*kind)
                    .push_bind(value.clone());
            });
            insert.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Re-indexes many records' search text (SQLite; PostgreSQL indexes the column).
    pub(crate) async fn index_search_many(conn: &mut Conn, spec: &Spec, ids: &[Uuid]) -> Result<(), DbError> {
        if BACKEND != rapport_domain::Backend::Sqlite || ids.is_empty() {
            return Ok(());
        }
        for chunk in ids.chunks(500) {
            let mut delete = sql::Builder::new("delete from ");
            delete.push(spec.search_table).push(" where rowid in (select rid from ").push(spec.table).push(" where id in ");
            sql::push_list(&mut delete, chunk.iter().copied());
            delete.push(")");
            delete.build().execute(&mut *conn).await?;
            let mut insert = sql::Builder::new("insert into ");
            insert.push(spec.search_table).push(" (rowid, text) select rid, search_text from ").push(spec.table).push(" where id in ");
            sql::push_list(&mut insert, chunk.iter().copied());
            insert.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// Notes many lifecycle stage changes.
    pub(crate) async fn record_lifecycles(
        conn: &mut Conn,
        ctx: &AuthContext,
        object: ObjectType,
        changes: &[(Uuid, Option<LifecycleStage>, Option<LifecycleStage>)],
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        for chunk in changes.chunks(500) {
            let mut qb = sql::Builder::new("insert into lifecycle_changes (org_id, object_type, object_id, from_stage, to_stage, changed_at, actor_id) ");
            qb.push_values(chunk, |mut row, (id, from, to)| {
                row.push_bind(ctx.org_id)
                    .push_bind(object.as_str())
                    .push_bind(*id)
                    .push_bind(from.map(LifecycleStage::as_str))
                    .push_bind(to.map(LifecycleStage::as_str))
                    .push_bind(at)
                    .push_bind(ctx.user_id);
            });
            qb.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The organization's custom field definitions of an object.
    pub(crate) async fn custom_fields<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        org_id: Uuid,
        object: ObjectType,
    ) -> Result<Vec<CustomFieldDef>, DbError> {
        let rows: Vec<crate::custom_fields::CustomFieldRow> =
            sqlx::query_as(crate::custom_fields::SELECT_FOR_OBJECT)
                .bind(org_id)
                .bind(object.as_str())
                .fetch_all(executor)
                .await?;
        Ok(rows
            .into_iter()
            .map(CustomFieldDef::try_from)
            .collect::<Result<Vec<_>, _>>()?)
    }
}
