//! Custom field definitions per organization and object. Deleting one also removes the
//! values records hold under its key.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::custom_field::{
    CustomFieldDef, CustomFieldPatch, FieldType, MAX_FIELDS_PER_OBJECT, NewCustomField,
};
use rapport_domain::page::{Cursor, Page, PageRequest};
use rapport_domain::store::CustomFieldStore;
use rapport_domain::{AuthContext, Backend, FieldIssue, ObjectType, StoreError};
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::error::unique_on;
use crate::rows::now;

macro_rules! custom_field_columns {
    () => {
        "id, org_id, object, key, label, field_type, options, required, is_unique, version, created_at, updated_at"
    };
}

pub(crate) const SELECT_FOR_OBJECT: &str = concat!(
    "select ",
    custom_field_columns!(),
    " from custom_fields where org_id = $1 and object = $2 order by key"
);
const SELECT: &str = concat!(
    "select ",
    custom_field_columns!(),
    " from custom_fields where org_id = $1 and id = $2"
);
const LIST: &str = concat!(
    "select ",
    custom_field_columns!(),
    " from custom_fields where org_id = $1 and ($2 or object = $3) and ($4 or id > $5) order by id limit $6"
);
const COUNT_FOR_OBJECT: &str =
    "select count(*) from custom_fields where org_id = $1 and object = $2";
const INSERT: &str = "insert into custom_fields \
     (id, org_id, object, key, label, field_type, options, required, is_unique, version, created_at, updated_at) \
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10)";
const LOCK: &str = "update custom_fields set version = version where org_id = $1 and id = $2";
const UPDATE: &str = "update custom_fields set label = $3, options = $4, required = $5, is_unique = $6, \
     version = version + 1, updated_at = $7 where org_id = $1 and id = $2";
const DELETE: &str = "delete from custom_fields where org_id = $1 and id = $2";

pub(crate) const CUSTOM_FIELD_SORT: &str = "id";

/// The table of an object that carries custom values.
pub(crate) fn table_of(object: ObjectType) -> Option<&'static str> {
    let spec = rapport_domain::objects::spec(object)?;
    spec.capabilities
        .custom_fields
        .then_some(spec.table.as_ref())
}

#[derive(sqlx::FromRow)]
pub(crate) struct CustomFieldRow {
    id: Uuid,
    org_id: Uuid,
    object: String,
    key: String,
    label: String,
    field_type: String,
    options: Json<Vec<String>>,
    required: bool,
    is_unique: bool,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<CustomFieldRow> for CustomFieldDef {
    type Error = StoreError;
    fn try_from(row: CustomFieldRow) -> Result<Self, StoreError> {
        Ok(CustomFieldDef {
            object: row
                .object
                .parse()
                .map_err(|e| StoreError::internal(format!("custom field object: {e}")))?,
            field_type: row
                .field_type
                .parse::<FieldType>()
                .map_err(|e| StoreError::internal(format!("custom field type: {e}")))?,
            id: row.id,
            org_id: row.org_id,
            key: row.key,
            label: row.label,
            options: row.options.0,
            required: row.required,
            unique: row.is_unique,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

fn field_cursor(def: &CustomFieldDef) -> Cursor {
    Cursor::new(CUSTOM_FIELD_SORT, Vec::new(), def.id)
}

per_backend! {
    /// Whether live records of `object` already share a value of `key` (before making it
    /// unique).
    pub(crate) async fn has_duplicate_values(
        conn: &mut Conn,
        org_id: Uuid,
        object: ObjectType,
        key: &str,
        field_type: FieldType,
    ) -> Result<bool, crate::error::DbError> {
        let Some(table) = table_of(object) else { return Ok(false) };
        let kind = rapport_domain::query::custom_kind(field_type);
        let mut qb = sqlx::QueryBuilder::<Db>::new("select 1 from ");
        qb.push(table).push(" t where t.org_id = ").push_bind(org_id).push(" and t.deleted_at is null and ");
        sql::push_custom_expr(&mut qb, "t", key, kind);
        qb.push(" is not null group by ");
        sql::push_custom_expr(&mut qb, "t", key, kind);
        qb.push(" having count(*) > 1 limit 1");
        let found: Option<i32> = qb.build_query_scalar().fetch_optional(&mut *conn).await?;
        Ok(found.is_some())
    }

    /// Removes `key` from the custom values of every record of `object`.
    pub(crate) async fn strip_values(
        conn: &mut Conn,
        org_id: Uuid,
        object: ObjectType,
        key: &str,
    ) -> Result<(), crate::error::DbError> {
        let Some(table) = table_of(object) else { return Ok(()) };
        let mut qb = sqlx::QueryBuilder::<Db>::new("update ");
        qb.push(table);
        if BACKEND == Backend::Sqlite {
            let path = format!("$.\"{key}\"");
            qb.push(" set custom = json_remove(custom, ").push_bind(path.clone())
                .push(") where org_id = ").push_bind(org_id)
                .push(" and json_type(custom, ").push_bind(path).push(") is not null");
        } else {
            qb.push(" set custom = custom - ").push_bind(key.to_owned())
                .push(" where org_id = ").push_bind(org_id)
                .push(" and custom ? ").push_bind(key.to_owned());
        }
        qb.build().execute(&mut *conn).await?;
        Ok(())
    }
}

#[async_trait]
impl CustomFieldStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(
        &self,
        ctx: &AuthContext,
        object: Option<ObjectType>,
        page: &PageRequest,
    ) -> Result<Page<CustomFieldDef>, StoreError> {
        let after = page.after.as_ref().map(|c| c.id);
        on_db!(&self.db, read, |pool| {
            let rows: Vec<CustomFieldRow> = sqlx::query_as(LIST)
                .bind(ctx.org_id)
                .bind(object.is_none())
                .bind(object.map(ObjectType::as_str).unwrap_or_default())
                .bind(after.is_none())
                .bind(after.unwrap_or_default())
                .bind(i64::from(page.limit) + 1)
                .fetch_all(pool)
                .await?;
            let defs = rows
                .into_iter()
                .map(CustomFieldDef::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_rows(defs, page.limit, field_cursor, None))
        })
    }

    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<CustomFieldDef, StoreError> {
        on_db!(&self.db, read, |pool| {
            let row: CustomFieldRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(pool)
                .await?;
            Ok(CustomFieldDef::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn create(
        &self,
        ctx: &AuthContext,
        field: NewCustomField,
    ) -> Result<CustomFieldDef, StoreError> {
        let id = Uuid::now_v7();
        let at = now();
        on_db!(&self.db, write, |pool| {
            let mut tx = pool.begin().await?;
            let count: i64 = sqlx::query_scalar(COUNT_FOR_OBJECT)
                .bind(ctx.org_id)
                .bind(field.object.as_str())
                .fetch_one(&mut *tx)
                .await?;
            if count >= MAX_FIELDS_PER_OBJECT as i64 {
                return Err(StoreError::Invalid(vec![FieldIssue::new(
                    "object",
                    "too_many",
                    format!(
                        "{} already has {MAX_FIELDS_PER_OBJECT} custom fields",
                        field.object
                    ),
                )])
                .into());
            }
            sqlx::query(INSERT)
                .bind(id)
                .bind(ctx.org_id)
                .bind(field.object.as_str())
                .bind(&field.key)
                .bind(&field.label)
                .bind(field.field_type.as_str())
                .bind(Json(&field.options))
                .bind(field.required)
                .bind(field.unique)
                .bind(at)
                .execute(&mut *tx)
                .await
                .map_err(unique_on("key"))?;
            let row: CustomFieldRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(CustomFieldDef::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, field = %id))]
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: CustomFieldPatch,
        expected_version: Option<i64>,
    ) -> Result<CustomFieldDef, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let locked = sqlx::query(LOCK)
                .bind(ctx.org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if locked == 0 {
                return Err(StoreError::NotFound.into());
            }
            let current: CustomFieldRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            let current = CustomFieldDef::try_from(current)?;
            if let Some(expected) = expected_version
                && expected != current.version
            {
                return Err(StoreError::VersionMismatch {
                    current: current.version,
                }
                .into());
            }
            let unique = patch.unique.unwrap_or(current.unique);
            if unique
                && !current.unique
                && sql::has_duplicate_values(
                    &mut tx,
                    ctx.org_id,
                    current.object,
                    &current.key,
                    current.field_type,
                )
                .await?
            {
                return Err(StoreError::Invalid(vec![FieldIssue::new(
                    "unique",
                    "conflict",
                    "records already share values of this field; make them distinct first",
                )])
                .into());
            }
            sqlx::query(UPDATE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(patch.label.as_ref().unwrap_or(&current.label))
                .bind(Json(patch.options.as_ref().unwrap_or(&current.options)))
                .bind(patch.required.unwrap_or(current.required))
                .bind(unique)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let row: CustomFieldRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(CustomFieldDef::try_from(row)?)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, field = %id))]
    async fn delete(&self, ctx: &AuthContext, id: Uuid) -> Result<(), StoreError> {
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let current: Option<CustomFieldRow> = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(current) = current else {
                return Err(StoreError::NotFound.into());
            };
            let current = CustomFieldDef::try_from(current)?;
            sqlx::query(DELETE)
                .bind(ctx.org_id)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sql::strip_values(&mut tx, ctx.org_id, current.object, &current.key).await?;
            tx.commit().await?;
            Ok(())
        })
    }
}
