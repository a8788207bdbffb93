//! Companies: the per-object part (columns, keys, hierarchy, search text, merge) over the
//! shared record machinery.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::company::{self, Company, CompanyData, CompanyPatch};
use rapport_domain::custom_field;
use rapport_domain::page::{Page, PageRequest};
use rapport_domain::query::{SortKey, Target};
use rapport_domain::record::{
    self, Duplicate, DuplicateReason, EventAction, MergeOutcome, RecordEvent,
};
use rapport_domain::store::{CompanyStore, ListRequest};
use rapport_domain::values::{Address, LifecycleStage, Phone, PhoneKind, Tier};
use rapport_domain::{AuthContext, FieldIssue, ObjectType, StoreError};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::contacts::{CONTACTS, check_merge_ids, custom_patch_of, deleted_changes};
use crate::events::NewEvent;
use crate::records::{Plan, RelationSpec, Spec, cursor};
use crate::rows::now;

fn column(field: &str) -> Option<&'static str> {
    Some(match field {
        "id" => "id",
        "name" => "sort_name",
        "domain" => "domain",
        "industry" => "industry",
        "employee_count" => "employee_count",
        "annual_revenue_minor" => "annual_revenue_minor",
        "currency" => "currency",
        "website" => "website",
        "address.city" => "address_city",
        "address.region" => "address_region",
        "address.postal_code" => "address_postal_code",
        "address.country" => "address_country",
        "parent_company_id" => "parent_company_id",
        "tier" => "tier",
        "lifecycle_stage" => "lifecycle_stage",
        "owner_id" => "owner_id",
        "source" => "source",
        "external_id" => "external_id",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        "last_activity_at" => "last_activity_at",
        "created_by" => "created_by",
        _ => return None,
    })
}

pub(crate) static COMPANIES: Spec = Spec {
    object: ObjectType::Company,
    table: "companies",
    search_table: "company_search",
    column,
    relations: &[RelationSpec {
        name: "parent",
        spec: &COMPANIES,
        foreign_key: "parent_company_id",
    }],
    catalog_fields: company::FIELDS,
    catalog_relations: company::RELATIONS,
};

macro_rules! company_columns {
    () => {
        "id, org_id, name, domain, industry, employee_count, annual_revenue_minor, currency, \
         phone, phone_e164, website, address_street, address_city, address_region, \
         address_postal_code, address_country, parent_company_id, tier, lifecycle_stage, \
         lifecycle_stage_changed_at, owner_id, source, external_id, tags, custom, version, \
         created_at, updated_at, created_by, deleted_at, last_activity_at"
    };
}

const SELECT: &str = concat!(
    "select ",
    company_columns!(),
    " from companies where org_id = $1 and id = $2"
);
const SELECT_BY_IDS: &str = concat!(
    "select ",
    company_columns!(),
    " from companies t where t.org_id = "
);

// The data columns, in the order both statements bind them ($3 to $28).
const INSERT: &str = "insert into companies (org_id, id, name, sort_name, domain, industry, \
     employee_count, annual_revenue_minor, currency, phone, phone_e164, website, address_street, \
     address_city, address_region, address_postal_code, address_country, parent_company_id, tier, \
     lifecycle_stage, lifecycle_stage_changed_at, owner_id, source, external_id, tags, custom, \
     search_text, version, created_at, updated_at, created_by) values ($1, $2, $3, $4, $5, $6, $7, \
     $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, \
     $27, 1, $28, $28, $29)";
const UPDATE: &str = "update companies set name = $3, sort_name = $4, domain = $5, industry = $6, \
     employee_count = $7, annual_revenue_minor = $8, currency = $9, phone = $10, phone_e164 = $11, \
     website = $12, address_street = $13, address_city = $14, address_region = $15, \
     address_postal_code = $16, address_country = $17, parent_company_id = $18, tier = $19, \
     lifecycle_stage = $20, lifecycle_stage_changed_at = $21, owner_id = $22, source = $23, \
     external_id = $24, tags = $25, custom = $26, search_text = $27, version = version + 1, \
     updated_at = $28 where org_id = $1 and id = $2";
const SOFT_DELETE: &str = "update companies set deleted_at = $3, merged_into = $4, version = version + 1, \
     updated_at = $3 where org_id = $1 and id = $2";
const RESTORE: &str = "update companies set deleted_at = null, version = version + 1, updated_at = $3 \
     where org_id = $1 and id = $2";
const PARENT_OF: &str =
    "select parent_company_id from companies where org_id = $1 and id = $2 and deleted_at is null";
const EXTERNAL_ID_OWNER: &str =
    "select id from companies where org_id = $1 and external_id = $2 and id <> $3 limit 1";
const CLEAR_EXTERNAL_ID: &str =
    "update companies set external_id = null where org_id = $1 and id = $2";
/// Contacts search their company's name too.
const CONTACTS_FOLLOW_NAME: &str = "update contacts set search_text = search_own || ' ' || $3 \
     where org_id = $1 and company_id = $2";
const SAME_KEYS: &str = "select distinct k2.object_id, k2.kind from record_keys k1 \
     join record_keys k2 on k2.org_id = k1.org_id and k2.object_type = k1.object_type \
     and k2.kind = k1.kind and k2.value = k1.value \
     where k1.org_id = $1 and k1.object_type = 'company' and k1.object_id = $2 \
     and k1.kind in ('domain', 'phone') and k2.object_id <> $2 limit 200";
const SAME_NAME: &str = "select id from companies where org_id = $1 and sort_name = $2 and id <> $3 \
     and deleted_at is null limit 50";

/// A hierarchy deeper than this is refused (and stops the cycle check).
const MAX_DEPTH: usize = 50;

#[derive(sqlx::FromRow)]
pub(crate) struct CompanyRow {
    id: Uuid,
    org_id: Uuid,
    name: String,
    domain: Option<String>,
    industry: Option<String>,
    employee_count: Option<i64>,
    annual_revenue_minor: Option<i64>,
    currency: Option<String>,
    phone: Option<String>,
    phone_e164: Option<String>,
    website: Option<String>,
    address_street: Option<String>,
    address_city: Option<String>,
    address_region: Option<String>,
    address_postal_code: Option<String>,
    address_country: Option<String>,
    parent_company_id: Option<Uuid>,
    tier: Option<String>,
    lifecycle_stage: Option<String>,
    lifecycle_stage_changed_at: Option<DateTime<Utc>>,
    owner_id: Option<Uuid>,
    source: Option<String>,
    external_id: Option<String>,
    tags: Json<Vec<String>>,
    custom: Json<Map<String, Value>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    created_by: Option<Uuid>,
    deleted_at: Option<DateTime<Utc>>,
    last_activity_at: Option<DateTime<Utc>>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::internal(format!("unreadable company {what}: {e}"))
}

impl TryFrom<CompanyRow> for Company {
    type Error = StoreError;
    fn try_from(row: CompanyRow) -> Result<Self, StoreError> {
        Ok(Company {
            id: row.id,
            org_id: row.org_id,
            data: CompanyData {
                name: row.name,
                domain: row.domain,
                industry: row.industry,
                employee_count: row.employee_count,
                annual_revenue_minor: row.annual_revenue_minor,
                currency: row.currency,
                phone: row.phone.map(|number| Phone {
                    number,
                    kind: PhoneKind::Work,
                    e164: row.phone_e164,
                }),
                website: row.website,
                address: Address {
                    street: row.address_street,
                    city: row.address_city,
                    region: row.address_region,
                    postal_code: row.address_postal_code,
                    country: row.address_country,
                },
                parent_company_id: row.parent_company_id,
                tier: row
                    .tier
                    .map(|t| t.parse::<Tier>().map_err(|e| corrupt("tier", e)))
                    .transpose()?,
                lifecycle_stage: row
                    .lifecycle_stage
                    .map(|s| {
                        s.parse::<LifecycleStage>()
                            .map_err(|e| corrupt("lifecycle stage", e))
                    })
                    .transpose()?,
                owner_id: row.owner_id,
                source: row.source,
                external_id: row.external_id,
                tags: row.tags.0,
            },
            custom: row.custom.0,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: row.created_by,
            deleted_at: row.deleted_at,
            last_activity_at: row.last_activity_at,
            lifecycle_stage_changed_at: row.lifecycle_stage_changed_at,
        })
    }
}

fn companies(rows: Vec<CompanyRow>) -> Result<Vec<Company>, StoreError> {
    rows.into_iter().map(Company::try_from).collect()
}

pub(crate) struct Columns<'a> {
    data: &'a CompanyData,
    custom: &'a Map<String, Value>,
    sort_name: String,
    search_text: String,
    stage_changed_at: Option<DateTime<Utc>>,
}

impl<'a> Columns<'a> {
    fn new(
        data: &'a CompanyData,
        custom: &'a Map<String, Value>,
        stage_changed_at: Option<DateTime<Utc>>,
    ) -> Self {
        Columns {
            data,
            custom,
            sort_name: data.sort_name(),
            search_text: data.search_text(),
            stage_changed_at,
        }
    }

    fn keys(&self) -> Vec<(&'static str, String)> {
        let mut keys: Vec<(&'static str, String)> =
            self.data.tags.iter().map(|t| ("tag", t.clone())).collect();
        if let Some(domain) = &self.data.domain {
            keys.push(("domain", domain.clone()));
        }
        if let Some(e164) = self.data.phone.as_ref().and_then(|p| p.e164.clone()) {
            keys.push(("phone", e164));
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

/// Binds the data columns ($3 to $27) of INSERT and UPDATE.
macro_rules! bind_columns {
    ($query:expr, $c:expr) => {{
        let c = $c;
        let d = c.data;
        $query
            .bind(&d.name)
            .bind(&c.sort_name)
            .bind(&d.domain)
            .bind(&d.industry)
            .bind(d.employee_count)
            .bind(d.annual_revenue_minor)
            .bind(&d.currency)
            .bind(d.phone.as_ref().map(|p| p.number.clone()))
            .bind(d.phone.as_ref().and_then(|p| p.e164.clone()))
            .bind(&d.website)
            .bind(&d.address.street)
            .bind(&d.address.city)
            .bind(&d.address.region)
            .bind(&d.address.postal_code)
            .bind(&d.address.country)
            .bind(d.parent_company_id)
            .bind(d.tier.map(Tier::as_str))
            .bind(d.lifecycle_stage.map(LifecycleStage::as_str))
            .bind(c.stage_changed_at)
            .bind(d.owner_id)
            .bind(&d.source)
            .bind(&d.external_id)
            .bind(Json(&d.tags))
            .bind(Json(c.custom))
            .bind(&c.search_text)
    }};
}

fn sort_value(company: &Company, key: &SortKey) -> Value {
    let time =
        |t: &DateTime<Utc>| Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    match &key.target {
        Target::Standard(info) => match info.name {
            "name" => Value::from(company.data.sort_name()),
            "created_at" => time(&company.created_at),
            "updated_at" => time(&company.updated_at),
            "last_activity_at" => company.last_activity_at.as_ref().map_or(Value::Null, time),
            _ => Value::Null,
        },
        Target::Custom { key, kind } => match (company.custom.get(key), kind) {
            (Some(value), rapport_domain::query::FieldKind::Money) => {
                value.get("amount_minor").cloned().unwrap_or(Value::Null)
            }
            (Some(value), _) => value.clone(),
            (None, _) => Value::Null,
        },
        Target::Related { .. } => Value::Null,
    }
}

fn row_cursor(plan: &Plan, company: &Company) -> rapport_domain::Cursor {
    let values = plan.sort.iter().map(|k| sort_value(company, k)).collect();
    cursor(plan, values, company.id)
}

fn invalid(issues: Vec<FieldIssue>) -> StoreError {
    StoreError::Invalid(issues)
}

per_backend! {
    /// The checks of a write that need the database; returns the checked custom values.
    pub(crate) async fn check_company_write(
        conn: &mut Conn,
        ctx: &AuthContext,
        id: Uuid,
        data: &CompanyData,
        before: Option<&Company>,
        custom_patch: &Map<String, Value>,
    ) -> Result<Map<String, Value>, crate::error::DbError> {
        let mut issues = Vec::new();
        if let Some(parent) = data.parent_company_id
            && before.and_then(|b| b.data.parent_company_id) != Some(parent)
        {
            // Walk up from the parent: meeting this company again is a cycle.
            let mut current = Some(parent);
            let mut depth = 0;
            while let Some(ancestor) = current {
                if ancestor == id {
                    issues.push(FieldIssue::new("parent_company_id", "cycle", "would make the company its own ancestor"));
                    break;
                }
                depth += 1;
                if depth > MAX_DEPTH {
                    issues.push(FieldIssue::new("parent_company_id", "too_deep", format!("hierarchies are at most {MAX_DEPTH} levels deep")));
                    break;
                }
                let next: Option<Option<Uuid>> = sqlx::query_scalar(PARENT_OF)
                    .bind(ctx.org_id)
                    .bind(ancestor)
                    .fetch_optional(&mut *conn)
                    .await?;
                match next {
                    Some(next) => current = next,
                    None if ancestor == parent => {
                        issues.push(FieldIssue::new("parent_company_id", "not_found", "names no live company of your organization"));
                        break;
                    }
                    None => break,
                }
            }
        }
        if let Some(owner) = data.owner_id
            && before.and_then(|b| b.data.owner_id) != Some(owner)
            && !sql::is_active_user(conn, ctx.org_id, owner).await?
        {
            issues.push(FieldIssue::new("owner_id", "not_found", "names no active user of your organization"));
        }
        let definitions = sql::custom_fields(&mut *conn, ctx.org_id, ObjectType::Company).await?;
        let empty = Map::new();
        let current = before.map_or(&empty, |b| &b.custom);
        let (custom, found) = custom_field::apply_all(&definitions, current, custom_patch);
        issues.extend(found);
        issues.extend(sql::check_unique_custom(conn, &COMPANIES, ctx.org_id, id, &definitions, &custom).await?);
        if let Some(external_id) = &data.external_id
            && before.and_then(|b| b.data.external_id.as_ref()) != Some(external_id)
        {
            let taken: Option<Uuid> = sqlx::query_scalar(EXTERNAL_ID_OWNER)
                .bind(ctx.org_id)
                .bind(external_id)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            if taken.is_some() && issues.is_empty() {
                return Err(StoreError::Conflict { field: Some("external_id".into()) }.into());
            }
        }
        if issues.is_empty() { Ok(custom) } else { Err(invalid(issues).into()) }
    }

    pub(crate) async fn write_company_row(
        conn: &mut Conn,
        ctx: &AuthContext,
        id: Uuid,
        columns: &Columns<'_>,
        insert: bool,
        at: DateTime<Utc>,
    ) -> Result<(), crate::error::DbError> {
        if insert {
            bind_columns!(sqlx::query(INSERT).bind(ctx.org_id).bind(id), columns)
                .bind(at)
                .bind(ctx.user_id)
                .execute(&mut *conn)
                .await?;
        } else {
            bind_columns!(sqlx::query(UPDATE).bind(ctx.org_id).bind(id), columns)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        sql::replace_keys(conn, ctx.org_id, ObjectType::Company, id, &columns.keys()).await?;
        sql::index_search(conn, &COMPANIES, id).await?;
        Ok(())
    }

    /// The company's contacts search its (new) name.
    pub(crate) async fn contacts_follow_name(conn: &mut Conn, org_id: Uuid, id: Uuid, name: &str) -> Result<(), crate::error::DbError> {
        sqlx::query(CONTACTS_FOLLOW_NAME).bind(org_id).bind(id).bind(name.to_lowercase()).execute(&mut *conn).await?;
        sql::reindex_search_where(conn, &CONTACTS, org_id, "company_id", id).await?;
        Ok(())
    }

    pub(crate) async fn load_company(conn: &mut Conn, org_id: Uuid, id: Uuid) -> Result<Company, crate::error::DbError> {
        let row: CompanyRow = sqlx::query_as(SELECT).bind(org_id).bind(id).fetch_one(&mut *conn).await?;
        Ok(Company::try_from(row)?)
    }

    pub(crate) async fn load_visible_companies<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        ids: &[Uuid],
    ) -> Result<Vec<Company>, crate::error::DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_BY_IDS);
        qb.push_bind(ctx.org_id).push(" and t.deleted_at is null and t.id in (");
        let mut ids_list = qb.separated(", ");
        for id in ids {
            ids_list.push_bind(*id);
        }
        qb.push(")");
        sql::push_visibility(&mut qb, ctx, ObjectType::Company);
        qb.push(" order by t.id");
        let rows: Vec<CompanyRow> = qb.build_query_as().fetch_all(executor).await?;
        Ok(companies(rows)?)
    }
}

#[async_trait]
impl CompanyStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn create(
        &self,
        ctx: &AuthContext,
        data: CompanyData,
        custom: Map<String, Value>,
    ) -> Result<Company, StoreError> {
        data.check().map_err(invalid)?;
        let id = Uuid::now_v7();
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let custom = sql::check_company_write(&mut tx, ctx, id, &data, None, &custom).await?;
            let stage_at = data.lifecycle_stage.map(|_| at);
            let columns = Columns::new(&data, &custom, stage_at);
            sql::write_company_row(&mut tx, ctx, id, &columns, true, at).await?;
            if data.lifecycle_stage.is_some() {
                sql::record_lifecycle(
                    &mut tx,
                    ctx,
                    ObjectType::Company,
                    id,
                    None,
                    data.lifecycle_stage,
                    at,
                )
                .await?;
            }
            let company = sql::load_company(&mut tx, ctx.org_id, id).await?;
            let changes = record::diff(&Map::new(), &company.fields());
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Company,
                    id,
                    action: EventAction::Created,
                    changes: &changes,
                    merged_ids: &[],
                }],
                at,
            )
            .await?;
            tx.commit().await?;
            Ok(company)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, company = %id))]
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Company, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            match sql::load_visible_companies(pool, ctx, &[id])
                .await?
                .into_iter()
                .next()
            {
                Some(company) => Ok(company),
                None => Err(sql::missing(pool, &COMPANIES, ctx.org_id, id).await?.into()),
            }
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, company = %id))]
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: CompanyPatch,
        expected_version: Option<i64>,
    ) -> Result<Company, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            if !sql::lock_live(&mut tx, ctx, &COMPANIES, id).await? {
                return Err(sql::missing(&mut *tx, &COMPANIES, ctx.org_id, id)
                    .await?
                    .into());
            }
            let before = sql::load_company(&mut tx, ctx.org_id, id).await?;
            if let Some(expected) = expected_version
                && expected != before.version
            {
                return Err(StoreError::VersionMismatch {
                    current: before.version,
                }
                .into());
            }
            let data = before.data.apply(&patch);
            data.check().map_err(invalid)?;
            let custom_patch = patch.custom.clone().unwrap_or_default();
            let custom =
                sql::check_company_write(&mut tx, ctx, id, &data, Some(&before), &custom_patch)
                    .await?;
            let stage_changed = data.lifecycle_stage != before.data.lifecycle_stage;
            let stage_at = if stage_changed {
                data.lifecycle_stage.map(|_| at)
            } else {
                before.lifecycle_stage_changed_at
            };
            let after = Company {
                data: data.clone(),
                custom: custom.clone(),
                ..before.clone()
            };
            let changes = record::diff(&before.fields(), &after.fields());
            if changes.is_empty() {
                return Ok(before);
            }
            let columns = Columns::new(&data, &custom, stage_at);
            sql::write_company_row(&mut tx, ctx, id, &columns, false, at).await?;
            if data.name != before.data.name {
                sql::contacts_follow_name(&mut tx, ctx.org_id, id, &data.name).await?;
            }
            if stage_changed {
                sql::record_lifecycle(
                    &mut tx,
                    ctx,
                    ObjectType::Company,
                    id,
                    before.data.lifecycle_stage,
                    data.lifecycle_stage,
                    at,
                )
                .await?;
            }
            let company = sql::load_company(&mut tx, ctx.org_id, id).await?;
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Company,
                    id,
                    action: EventAction::Updated,
                    changes: &changes,
                    merged_ids: &[],
                }],
                at,
            )
            .await?;
            tx.commit().await?;
            Ok(company)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, company = %id))]
    async fn delete(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            if !sql::lock_live(&mut tx, ctx, &COMPANIES, id).await? {
                return Err(sql::missing(&mut *tx, &COMPANIES, ctx.org_id, id)
                    .await?
                    .into());
            }
            let before = sql::load_company(&mut tx, ctx.org_id, id).await?;
            if let Some(expected) = expected_version
                && expected != before.version
            {
                return Err(StoreError::VersionMismatch {
                    current: before.version,
                }
                .into());
            }
            sqlx::query(SOFT_DELETE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(at)
                .bind(None::<Uuid>)
                .execute(&mut *tx)
                .await?;
            let changes = deleted_changes(None, Some(at));
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Company,
                    id,
                    action: EventAction::Deleted,
                    changes: &changes,
                    merged_ids: &[],
                }],
                at,
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, company = %id))]
    async fn restore(&self, ctx: &AuthContext, id: Uuid) -> Result<Company, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let current: Option<CompanyRow> = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(current) = current else {
                return Err(StoreError::NotFound.into());
            };
            let merged_into: Option<Option<Uuid>> =
                sqlx::query_scalar("select merged_into from companies where id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(into) = merged_into.flatten() {
                return Err(StoreError::Merged { into }.into());
            }
            let current = Company::try_from(current)?;
            if !sql::is_visible(&mut *tx, ctx, &COMPANIES, id).await? {
                return Err(StoreError::NotFound.into());
            }
            if current.deleted_at.is_none() {
                return Ok(current);
            }
            sqlx::query(RESTORE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let company = sql::load_company(&mut tx, ctx.org_id, id).await?;
            let changes = deleted_changes(current.deleted_at, None);
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Company,
                    id,
                    action: EventAction::Restored,
                    changes: &changes,
                    merged_ids: &[],
                }],
                at,
            )
            .await?;
            tx.commit().await?;
            Ok(company)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(
        &self,
        ctx: &AuthContext,
        request: &ListRequest,
    ) -> Result<Page<Company>, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            let definitions = sql::custom_fields(pool, ctx.org_id, ObjectType::Company).await?;
            let plan = crate::records::plan(&COMPANIES, request, &definitions)?;
            let base = |qb: &mut sql::Builder| {
                qb.push_bind(ctx.org_id).push(if request.deleted {
                    " and t.deleted_at is not null and t.merged_into is null"
                } else {
                    " and t.deleted_at is null"
                });
                sql::push_visibility(qb, ctx, ObjectType::Company);
                if let Some(filter) = &plan.filter {
                    qb.push(" and ");
                    sql::push_filter(qb, filter, &COMPANIES, "t", false);
                }
                if let Some(q) = &request.q {
                    sql::push_search(qb, &COMPANIES, q);
                }
            };
            let mut qb = sql::Builder::new(SELECT_BY_IDS);
            base(&mut qb);
            if let Some((values, after_id)) = &plan.after {
                sql::push_after(&mut qb, &COMPANIES, &plan.sort, values, *after_id)?;
            }
            sql::push_order(&mut qb, &COMPANIES, &plan.sort);
            qb.push(" limit ")
                .push_bind(i64::from(request.page.limit) + 1);
            let rows: Vec<CompanyRow> = qb.build_query_as().fetch_all(pool).await?;
            let total = if request.page.with_total {
                let mut count =
                    sql::Builder::new("select count(*) from companies t where t.org_id = ");
                base(&mut count);
                Some(count.build_query_scalar::<i64>().fetch_one(pool).await?)
            } else {
                None
            };
            Ok(Page::from_rows(
                companies(rows)?,
                request.page.limit,
                |c| row_cursor(&plan, c),
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
            if !sql::is_visible(pool, ctx, &COMPANIES, id).await? {
                return Err(StoreError::NotFound.into());
            }
            sql::history(pool, ctx.org_id, ObjectType::Company, id, page).await
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, company = %id))]
    async fn duplicates(
        &self,
        ctx: &AuthContext,
        id: Uuid,
    ) -> Result<Vec<Duplicate<Company>>, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            let Some(company) = sql::load_visible_companies(pool, ctx, &[id])
                .await?
                .into_iter()
                .next()
            else {
                return Err(sql::missing(pool, &COMPANIES, ctx.org_id, id).await?.into());
            };
            let mut reasons: std::collections::BTreeMap<Uuid, Vec<DuplicateReason>> =
                Default::default();
            let same: Vec<(Uuid, String)> = sqlx::query_as(SAME_KEYS)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_all(pool)
                .await?;
            for (other, kind) in same {
                let reason = if kind == "domain" {
                    DuplicateReason::SameDomain
                } else {
                    DuplicateReason::SamePhone
                };
                reasons.entry(other).or_default().push(reason);
            }
            let named: Vec<Uuid> = sqlx::query_scalar(SAME_NAME)
                .bind(ctx.org_id)
                .bind(company.data.sort_name())
                .bind(id)
                .fetch_all(pool)
                .await?;
            for other in named {
                reasons
                    .entry(other)
                    .or_default()
                    .push(DuplicateReason::SameName);
            }
            let ids: Vec<Uuid> = reasons.keys().copied().collect();
            let found = sql::load_visible_companies(pool, ctx, &ids).await?;
            Ok(found
                .into_iter()
                .map(|record| {
                    let mut why = reasons.remove(&record.id).unwrap_or_default();
                    why.sort();
                    why.dedup();
                    Duplicate {
                        record,
                        reasons: why,
                    }
                })
                .collect())
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, primary = %primary))]
    async fn merge(
        &self,
        ctx: &AuthContext,
        primary: Uuid,
        duplicates: &[Uuid],
        dry_run: bool,
    ) -> Result<MergeOutcome<Company>, StoreError> {
        check_merge_ids(primary, duplicates)?;
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let mut all: Vec<Uuid> = duplicates.to_vec();
            all.push(primary);
            all.sort();
            for id in &all {
                if !sql::lock_live(&mut tx, ctx, &COMPANIES, *id).await? {
                    return Err(sql::missing(&mut *tx, &COMPANIES, ctx.org_id, *id)
                        .await?
                        .into());
                }
            }
            let target = sql::load_company(&mut tx, ctx.org_id, primary).await?;
            let mut dups = Vec::new();
            for id in duplicates {
                dups.push(sql::load_company(&mut tx, ctx.org_id, *id).await?);
            }
            let (data, custom) = company::merge(&target, &dups);
            let merged = Company {
                data: data.clone(),
                custom: custom.clone(),
                version: target.version + 1,
                updated_at: at,
                ..target.clone()
            };
            let changes = record::diff(&target.fields(), &merged.fields());
            if dry_run {
                return Ok(MergeOutcome {
                    merged: Company {
                        version: target.version,
                        updated_at: target.updated_at,
                        ..merged
                    },
                    merged_ids: duplicates.to_vec(),
                    changes,
                    dry_run: true,
                });
            }
            for dup in &dups {
                sqlx::query(SOFT_DELETE)
                    .bind(ctx.org_id)
                    .bind(dup.id)
                    .bind(at)
                    .bind(Some(primary))
                    .execute(&mut *tx)
                    .await?;
                if dup.data.external_id.is_some() && data.external_id == dup.data.external_id {
                    sqlx::query(CLEAR_EXTERNAL_ID)
                        .bind(ctx.org_id)
                        .bind(dup.id)
                        .execute(&mut *tx)
                        .await?;
                }
                for (table, column) in COMPANY_REFERENCES {
                    sql::repoint(&mut tx, table, column, ctx.org_id, dup.id, primary).await?;
                }
            }
            let custom = sql::check_company_write(
                &mut tx,
                ctx,
                primary,
                &data,
                Some(&target),
                &custom_patch_of(&target.custom, &custom),
            )
            .await?;
            let stage_changed = data.lifecycle_stage != target.data.lifecycle_stage;
            let stage_at = if stage_changed {
                Some(at)
            } else {
                target.lifecycle_stage_changed_at
            };
            let columns = Columns::new(&data, &custom, stage_at);
            sql::write_company_row(&mut tx, ctx, primary, &columns, false, at).await?;
            // Contacts moved over search the primary's name.
            sql::contacts_follow_name(&mut tx, ctx.org_id, primary, &data.name).await?;
            if stage_changed {
                sql::record_lifecycle(
                    &mut tx,
                    ctx,
                    ObjectType::Company,
                    primary,
                    target.data.lifecycle_stage,
                    data.lifecycle_stage,
                    at,
                )
                .await?;
            }
            let result = sql::load_company(&mut tx, ctx.org_id, primary).await?;
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Company,
                    id: primary,
                    action: EventAction::Merged,
                    changes: &changes,
                    merged_ids: duplicates,
                }],
                at,
            )
            .await?;
            tx.commit().await?;
            Ok(MergeOutcome {
                merged: result,
                merged_ids: duplicates.to_vec(),
                changes,
                dry_run: false,
            })
        })
    }
}

/// The tables whose rows point at a company, repointed to the primary of a merge. Every
/// object that references companies joins this list.
const COMPANY_REFERENCES: &[(&str, &str)] = &[
    ("contacts", "company_id"),
    ("companies", "parent_company_id"),
];
