//! Products: the per-object part over the shared record machinery and batch writes.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::custom_field;
use rapport_domain::page::{Page, PageRequest};
use rapport_domain::product::{self, Product, ProductData, ProductPatch};
use rapport_domain::query::{SortKey, Target};
use rapport_domain::record::{self, EventAction, RecordEvent};
use rapport_domain::store::{ListRequest, ProductStore};
use rapport_domain::write::{IdProperty, RowOutcome, RowStatus, RowTarget, WriteRow};
use rapport_domain::{AuthContext, FieldIssue, ObjectType, StoreError};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::events::NewEvent;
use crate::records::{Plan, Spec, cursor};
use crate::records::{Written, deleted_changes};

fn column(field: &str) -> Option<&'static str> {
    Some(match field {
        "id" => "id",
        "sku" => "sku",
        "name" => "sort_name",
        "category" => "category",
        "unit_price_minor" => "unit_price_minor",
        "currency" => "currency",
        "warranty_months" => "warranty_months",
        "active" => "active",
        "external_id" => "external_id",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        "created_by" => "created_by",
        _ => return None,
    })
}

pub(crate) static PRODUCTS: Spec = Spec {
    object: ObjectType::Product,
    table: "products",
    search_table: "product_search",
    columns: crate::records::Columns::Fn(column),
    relations: &[],
    catalog_fields: product::FIELDS,
    catalog_relations: product::RELATIONS,
    key_column: |property| match property {
        IdProperty::Id => Some(("id", false)),
        IdProperty::ExternalId => Some(("external_id", false)),
        IdProperty::Sku => Some(("sku", false)),
        _ => None,
    },
};

macro_rules! product_columns {
    () => {
        "id, org_id, sku, name, description, category, unit_price_minor, currency, warranty_months, \
         active, external_id, custom, version, created_at, updated_at, created_by, deleted_at, merged_into"
    };
}

const SELECT: &str = concat!(
    "select ",
    product_columns!(),
    " from products where org_id = $1 and id = $2"
);
/// The columns, for a `where` built by the caller.
const SELECT_WHERE: &str = concat!("select ", product_columns!(), " from products t where ");
const SELECT_BY_IDS: &str = concat!(
    "select ",
    product_columns!(),
    " from products t where t.org_id = "
);
const INSERT_PREFIX: &str = "insert into products (org_id, id, sku, name, sort_name, description, \
     category, unit_price_minor, currency, warranty_months, active, external_id, custom, \
     search_text, version, created_at, updated_at, created_by) ";
const UPDATE: &str = "update products set sku = $3, name = $4, sort_name = $5, description = $6, \
     category = $7, unit_price_minor = $8, currency = $9, warranty_months = $10, active = $11, \
     external_id = $12, custom = $13, search_text = $14, version = version + 1, updated_at = $15, \
     deleted_at = null where org_id = $1 and id = $2";
const RESTORE: &str = "update products set deleted_at = null, version = version + 1, updated_at = $3 \
     where org_id = $1 and id = $2";

#[derive(sqlx::FromRow)]
pub(crate) struct ProductRow {
    id: Uuid,
    org_id: Uuid,
    sku: String,
    name: String,
    description: Option<String>,
    category: Option<String>,
    unit_price_minor: Option<i64>,
    currency: Option<String>,
    warranty_months: Option<i64>,
    active: bool,
    external_id: Option<String>,
    custom: Json<Map<String, Value>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    created_by: Option<Uuid>,
    deleted_at: Option<DateTime<Utc>>,
    merged_into: Option<Uuid>,
}

impl From<ProductRow> for Product {
    fn from(row: ProductRow) -> Self {
        Product {
            id: row.id,
            org_id: row.org_id,
            data: ProductData {
                sku: row.sku,
                name: row.name,
                description: row.description,
                category: row.category,
                unit_price_minor: row.unit_price_minor,
                currency: row.currency,
                warranty_months: row.warranty_months,
                active: row.active,
                external_id: row.external_id,
            },
            custom: row.custom.0,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: row.created_by,
            deleted_at: row.deleted_at,
        }
    }
}

fn sort_value(product: &Product, key: &SortKey) -> Value {
    let time =
        |t: &DateTime<Utc>| Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    match &key.target {
        Target::Standard(info) => match info.name {
            "name" => Value::from(product.data.sort_name()),
            "created_at" => time(&product.created_at),
            "updated_at" => time(&product.updated_at),
            _ => Value::Null,
        },
        Target::Custom { key, kind } => match (product.custom.get(key), kind) {
            (Some(value), rapport_domain::query::FieldKind::Money) => {
                value.get("amount_minor").cloned().unwrap_or(Value::Null)
            }
            (Some(value), _) => value.clone(),
            (None, _) => Value::Null,
        },
        Target::Related { .. } => Value::Null,
    }
}

fn row_cursor(plan: &Plan, product: &Product) -> rapport_domain::Cursor {
    let values = plan.sort.iter().map(|k| sort_value(product, k)).collect();
    cursor(plan, values, product.id)
}

fn in_batch(field: &str, first: usize) -> StoreError {
    StoreError::Invalid(vec![FieldIssue::new(
        field,
        "duplicate_in_batch",
        format!("row {first} of this batch already has this {field}"),
    )])
}

pub(crate) struct Planned {
    id: Uuid,
    insert: bool,
    revive: bool,
    data: ProductData,
    custom: Map<String, Value>,
    changes: record::Changes,
}

enum Decision {
    Write(Box<Planned>),
    Unchanged(Uuid),
    Failed(StoreError),
}

/// A row's product before (if any), its data and custom values, or why it fails.
type Draft<'a> = Result<(Option<&'a Product>, ProductData, Map<String, Value>), StoreError>;

per_backend! {
    pub(crate) async fn load_products<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        ids: &[Uuid],
        live_only: bool,
    ) -> Result<Vec<Product>, crate::error::DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_BY_IDS);
        qb.push_bind(ctx.org_id);
        if live_only {
            qb.push(" and t.deleted_at is null");
        }
        qb.push(" and t.id in ");
        sql::push_list(&mut qb, ids.iter().copied());
        qb.push(" order by t.id");
        let rows: Vec<ProductRow> = qb.build_query_as().fetch_all(executor).await?;
        Ok(rows.into_iter().map(Product::from).collect())
    }

    async fn plan_products(
        conn: &mut Conn,
        ctx: &AuthContext,
        rows: &[WriteRow<ProductPatch>],
        at: DateTime<Utc>,
    ) -> Result<Vec<Decision>, crate::error::DbError> {
        let definitions = sql::custom_fields(&mut *conn, ctx.org_id, ObjectType::Product).await?;
        let mut ids = Vec::new();
        let mut external_ids = Vec::new();
        let mut skus = Vec::new();
        for row in rows {
            match &row.target {
                RowTarget::Update { id, .. } => ids.push(*id),
                RowTarget::Upsert { property: IdProperty::Id, value } => ids.extend(Uuid::parse_str(value).ok()),
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => external_ids.push(value.clone()),
                RowTarget::Upsert { property: IdProperty::Sku, value } => skus.push(value.clone()),
                _ => {}
            }
        }
        let mut existing: Vec<(Product, Option<Uuid>)> = Vec::new();
        if !ids.is_empty() || !external_ids.is_empty() || !skus.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_WHERE);
            sql::push_keyed_lookup(&mut qb, ctx.org_id, &ids, &external_ids, "t.deleted_at is null and t.sku", &skus);
            sql::push_lock_rows(&mut qb);
            let found: Vec<ProductRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
            existing = found.into_iter().map(|r| { let merged = r.merged_into; (Product::from(r), merged) }).collect();
        }
        let by_id: HashMap<Uuid, &Product> = existing.iter().map(|(p, _)| (p.id, p)).collect();
        let by_external: HashMap<&str, &Product> = existing.iter().filter_map(|(p, _)| p.data.external_id.as_deref().map(|e| (e, p))).collect();
        let by_sku: HashMap<&str, &Product> = existing.iter().filter(|(p, _)| p.deleted_at.is_none()).map(|(p, _)| (p.data.sku.as_str(), p)).collect();

        let mut targets_seen: HashMap<String, usize> = HashMap::new();
        let mut drafts: Vec<Draft<'_>> = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            let target_key = match &row.target {
                RowTarget::Create => None,
                RowTarget::Update { id, .. } => Some(format!("id:{id}")),
                RowTarget::Upsert { property, value } => Some(format!("{}:{value}", property.as_str())),
            };
            if let Some(key) = target_key {
                if let Some(first) = targets_seen.get(&key) {
                    drafts.push(Err(in_batch("id", *first)));
                    continue;
                }
                targets_seen.insert(key, index);
            }
            let found: Result<Option<&Product>, StoreError> = match &row.target {
                RowTarget::Create => Ok(None),
                RowTarget::Update { id, expected_version } => match by_id.get(id) {
                    Some(p) if p.deleted_at.is_none() => match expected_version {
                        Some(v) if *v != p.version => Err(StoreError::VersionMismatch { current: p.version }),
                        _ => Ok(Some(*p)),
                    },
                    _ => Err(StoreError::NotFound),
                },
                RowTarget::Upsert { property: IdProperty::Id, value } => match Uuid::parse_str(value).ok().and_then(|id| by_id.get(&id)) {
                    Some(p) if p.deleted_at.is_none() => Ok(Some(*p)),
                    _ => Err(StoreError::NotFound),
                },
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => Ok(by_external.get(value.as_str()).copied()),
                RowTarget::Upsert { property: IdProperty::Sku, value } => Ok(by_sku.get(value.as_str()).copied()),
                RowTarget::Upsert { property, .. } => Err(StoreError::Invalid(vec![FieldIssue::new("id_property", "invalid_value", format!("products are not found by {}", property.as_str()))])),
            };
            let before = match found {
                Ok(before) => before,
                Err(error) => {
                    drafts.push(Err(error));
                    continue;
                }
            };
            let mut data = before.map_or_else(ProductData::new_default, |p| p.data.clone()).apply(&row.patch);
            let mut issues = Vec::new();
            match &row.target {
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => match &row.patch.external_id {
                    Some(Some(given)) if given != value => issues.push(FieldIssue::new("external_id", "invalid_value", "differs from the external_id the row is found by")),
                    _ => data.external_id = Some(value.clone()),
                },
                RowTarget::Upsert { property: IdProperty::Sku, value } => match &row.patch.sku {
                    Some(given) if given != value => issues.push(FieldIssue::new("sku", "invalid_value", "differs from the sku the row is found by")),
                    _ => data.sku = value.clone(),
                },
                _ => {}
            }
            if let Err(found) = data.check() {
                issues.extend(found);
            }
            let empty = Map::new();
            let current = before.map_or(&empty, |p| &p.custom);
            let (custom, found) = custom_field::apply_all(&definitions, current, row.patch.custom.as_ref().unwrap_or(&empty));
            issues.extend(found);
            if issues.is_empty() {
                drafts.push(Ok((before, data, custom)));
            } else {
                drafts.push(Err(StoreError::Invalid(issues)));
            }
        }

        let mut wanted_skus: HashSet<String> = HashSet::new();
        let mut wanted_external: HashSet<String> = HashSet::new();
        let mut wanted_custom: HashMap<String, Vec<Value>> = HashMap::new();
        for (_, data, custom) in drafts.iter().flatten() {
            wanted_skus.insert(data.sku.clone());
            wanted_external.extend(data.external_id.clone());
            for def in definitions.iter().filter(|d| d.unique) {
                if let Some(value) = custom.get(&def.key) {
                    wanted_custom.entry(def.key.clone()).or_default().push(value.clone());
                }
            }
        }
        let mut sku_holders: HashMap<String, Uuid> = HashMap::new();
        if !wanted_skus.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new("select sku, id from products where org_id = ");
            qb.push_bind(ctx.org_id).push(" and deleted_at is null and sku in ");
            sql::push_list(&mut qb, wanted_skus.iter().cloned());
            let found: Vec<(String, Uuid)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            sku_holders.extend(found);
        }
        let mut external_holders: HashMap<String, Uuid> = HashMap::new();
        if !wanted_external.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new("select external_id, id from products where org_id = ");
            qb.push_bind(ctx.org_id).push(" and external_id in ");
            sql::push_list(&mut qb, wanted_external.iter().cloned());
            let found: Vec<(String, Uuid)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            external_holders.extend(found);
        }
        let custom_holders = sql::unique_holders(conn, &PRODUCTS, ctx.org_id, &definitions, &wanted_custom).await?;

        let mut claimed: HashMap<(String, String), usize> = HashMap::new();
        let mut decisions = Vec::with_capacity(rows.len());
        for (index, draft) in drafts.into_iter().enumerate() {
            let (before, data, custom) = match draft {
                Ok(draft) => draft,
                Err(error) => {
                    decisions.push(Decision::Failed(error));
                    continue;
                }
            };
            let id = before.map_or_else(Uuid::now_v7, |p| p.id);
            let issues = crate::records::unique_custom_issues(&definitions, &custom, id, &custom_holders, &mut claimed, index, |key| {
                FieldIssue::new(format!("custom.{key}"), "taken", "must be unique; another product has this value")
            });
            if !issues.is_empty() {
                decisions.push(Decision::Failed(StoreError::Invalid(issues)));
                continue;
            }
            if sku_holders.get(&data.sku).is_some_and(|h| *h != id) {
                decisions.push(Decision::Failed(StoreError::Conflict { field: Some("sku".into()) }));
                continue;
            }
            if let Some(first) = claimed.insert(("sku".into(), data.sku.clone()), index) {
                decisions.push(Decision::Failed(in_batch("sku", first)));
                continue;
            }
            if let Some(external_id) = &data.external_id {
                if external_holders.get(external_id).is_some_and(|h| *h != id) {
                    decisions.push(Decision::Failed(StoreError::Conflict { field: Some("external_id".into()) }));
                    continue;
                }
                if let Some(first) = claimed.insert(("external_id".into(), external_id.clone()), index) {
                    decisions.push(Decision::Failed(in_batch("external_id", first)));
                    continue;
                }
            }
            let revive = before.is_some_and(|p| p.deleted_at.is_some());
            let changes = match before {
                Some(before) => {
                    let after = Product { data: data.clone(), custom: custom.clone(), ..before.clone() };
                    let mut changes = record::diff(&before.fields(), &after.fields());
                    if revive {
                        changes.extend(deleted_changes(before.deleted_at, None));
                    }
                    changes
                }
                None => {
                    let fields = Product { id, org_id: ctx.org_id, data: data.clone(), custom: custom.clone(), version: 1, created_at: at, updated_at: at, created_by: Some(ctx.user_id), deleted_at: None }.fields();
                    record::diff(&Map::new(), &fields)
                }
            };
            if before.is_some() && changes.is_empty() {
                decisions.push(Decision::Unchanged(id));
                continue;
            }
            decisions.push(Decision::Write(Box::new(Planned { id, insert: before.is_none(), revive, data, custom, changes })));
        }
        Ok(decisions)
    }

    pub(crate) async fn write_products(
        conn: &mut Conn,
        ctx: &AuthContext,
        rows: &[WriteRow<ProductPatch>],
        all_or_none: bool,
        at: DateTime<Utc>,
    ) -> Result<Written, crate::error::DbError> {
        let decisions = plan_products(conn, ctx, rows, at).await?;
        if all_or_none && decisions.iter().any(|d| matches!(d, Decision::Failed(_))) {
            let outcomes = decisions.into_iter().map(|d| match d {
                Decision::Failed(error) => RowOutcome::error(error),
                _ => RowOutcome::error(rapport_domain::write::not_applied()),
            }).collect();
            return Ok(Written { outcomes, commit: false });
        }
        let planned: Vec<&Planned> = decisions.iter().filter_map(|d| match d {
            Decision::Write(p) => Some(p.as_ref()),
            _ => None,
        }).collect();
        let inserts: Vec<&&Planned> = planned.iter().filter(|p| p.insert).collect();
        for chunk in inserts.chunks(500) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(INSERT_PREFIX);
            qb.push_values(chunk, |mut row, p| {
                let d = &p.data;
                row.push_bind(ctx.org_id)
                    .push_bind(p.id)
                    .push_bind(d.sku.clone())
                    .push_bind(d.name.clone())
                    .push_bind(d.sort_name())
                    .push_bind(d.description.clone())
                    .push_bind(d.category.clone())
                    .push_bind(d.unit_price_minor)
                    .push_bind(d.currency.clone())
                    .push_bind(d.warranty_months)
                    .push_bind(d.active)
                    .push_bind(d.external_id.clone())
                    .push_bind(Json(p.custom.clone()))
                    .push_bind(d.search_text())
                    .push_bind(1_i64)
                    .push_bind(at)
                    .push_bind(at)
                    .push_bind(ctx.user_id);
            });
            qb.build().execute(&mut *conn).await?;
        }
        for p in planned.iter().filter(|p| !p.insert) {
            let d = &p.data;
            sqlx::query(UPDATE)
                .bind(ctx.org_id)
                .bind(p.id)
                .bind(&d.sku)
                .bind(&d.name)
                .bind(d.sort_name())
                .bind(&d.description)
                .bind(&d.category)
                .bind(d.unit_price_minor)
                .bind(&d.currency)
                .bind(d.warranty_months)
                .bind(d.active)
                .bind(&d.external_id)
                .bind(Json(&p.custom))
                .bind(d.search_text())
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        let ids: Vec<Uuid> = planned.iter().map(|p| p.id).collect();
        sql::index_search_many(conn, &PRODUCTS, &ids).await?;
        let events: Vec<NewEvent<'_>> = planned.iter().map(|p| NewEvent {
            object: ObjectType::Product,
            id: p.id,
            action: if p.insert { EventAction::Created } else if p.revive { EventAction::Restored } else { EventAction::Updated },
            changes: &p.changes,
            merged_ids: &[],
        }).collect();
        sql::append_events(conn, ctx, &events, at).await?;
        let outcomes = decisions.into_iter().map(|d| match d {
            Decision::Write(p) => RowOutcome::ok(if p.insert { RowStatus::Created } else { RowStatus::Updated }, p.id),
            Decision::Unchanged(id) => RowOutcome::ok(RowStatus::Unchanged, id),
            Decision::Failed(error) => RowOutcome::error(error),
        }).collect();
        Ok(Written { outcomes, commit: true })
    }
}

#[async_trait]
impl ProductStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, rows = rows.len()))]
    async fn write(
        &self,
        ctx: &AuthContext,
        rows: Vec<WriteRow<ProductPatch>>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        write_retrying!(self, ctx, |tx, sql, at| sql::write_products(
            &mut tx,
            ctx,
            &rows,
            all_or_none,
            at
        )
        .await?)
    }

    async fn delete_many(
        &self,
        ctx: &AuthContext,
        targets: Vec<RowTarget>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        let at = crate::rows::now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let written =
                sql::delete_records(&mut tx, ctx, &PRODUCTS, &targets, all_or_none, at).await?;
            if written.commit {
                tx.commit().await?;
            }
            Ok(written.outcomes)
        })
    }

    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Product, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            match sql::load_products(pool, ctx, &[id], true)
                .await?
                .into_iter()
                .next()
            {
                Some(product) => Ok(product),
                None => Err(StoreError::NotFound.into()),
            }
        })
    }

    async fn get_many(&self, ctx: &AuthContext, ids: &[Uuid]) -> Result<Vec<Product>, StoreError> {
        on_db!(&self.db, read, |pool, sql| sql::load_products(
            pool, ctx, ids, false
        )
        .await)
    }

    async fn restore(&self, ctx: &AuthContext, id: Uuid) -> Result<Product, StoreError> {
        let at = crate::rows::now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            // Restores of one record at once: one restores it, the others find it live.
            sql::lock_row(&mut tx, &PRODUCTS, ctx.org_id, id).await?;
            let current: Option<ProductRow> = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(current) = current.map(Product::from) else {
                return Err(StoreError::NotFound.into());
            };
            if current.deleted_at.is_none() {
                return Ok(current);
            }
            let taken: Option<Uuid> = sqlx::query_scalar(
                "select id from products where org_id = $1 and sku = $2 and deleted_at is null",
            )
            .bind(ctx.org_id)
            .bind(&current.data.sku)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Err(StoreError::Conflict {
                    field: Some("sku".into()),
                }
                .into());
            }
            sqlx::query(RESTORE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let changes = deleted_changes(current.deleted_at, None);
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Product,
                    id,
                    action: EventAction::Restored,
                    changes: &changes,
                    merged_ids: &[],
                }],
                at,
            )
            .await?;
            let restored: ProductRow = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Product::from(restored))
        })
    }

    async fn list(
        &self,
        ctx: &AuthContext,
        request: &ListRequest,
    ) -> Result<Page<Product>, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            let definitions = sql::custom_fields(pool, ctx.org_id, ObjectType::Product).await?;
            let plan = crate::records::plan(&PRODUCTS, request, &definitions)?;
            let base = |qb: &mut sql::Builder| {
                qb.push_bind(ctx.org_id).push(if request.deleted {
                    " and t.deleted_at is not null"
                } else {
                    " and t.deleted_at is null"
                });
                if let Some(filter) = &plan.filter {
                    qb.push(" and ");
                    sql::push_filter(qb, ctx, filter, &PRODUCTS, "t", false);
                }
                if let Some(q) = &request.q {
                    sql::push_search(qb, &PRODUCTS, q);
                }
            };
            let mut qb = sql::Builder::new(SELECT_BY_IDS);
            base(&mut qb);
            if let Some((values, after_id)) = &plan.after {
                sql::push_after(&mut qb, &PRODUCTS, &plan.sort, values, *after_id)?;
            }
            sql::push_order(&mut qb, &PRODUCTS, &plan.sort);
            qb.push(" limit ")
                .push_bind(i64::from(request.page.limit) + 1);
            let rows: Vec<ProductRow> = qb.build_query_as().fetch_all(pool).await?;
            let total = if request.page.with_total {
                let mut count =
                    sql::Builder::new("select count(*) from products t where t.org_id = ");
                base(&mut count);
                Some(count.build_query_scalar::<i64>().fetch_one(pool).await?)
            } else {
                None
            };
            let products: Vec<Product> = rows.into_iter().map(Product::from).collect();
            Ok(Page::from_rows(
                products,
                request.page.limit,
                |p| row_cursor(&plan, p),
                total,
            ))
        })
    }

    async fn history(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<RecordEvent>, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            if !sql::is_visible(pool, ctx, &PRODUCTS, id).await? {
                return Err(StoreError::NotFound.into());
            }
            sql::history(pool, ctx.org_id, ObjectType::Product, id, page).await
        })
    }
}
