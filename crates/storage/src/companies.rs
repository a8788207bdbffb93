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
use rapport_domain::write::{IdProperty, RowOutcome, RowStatus, RowTarget, WriteRow};
use rapport_domain::{AuthContext, FieldIssue, ObjectType, StoreError};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::contacts::CONTACTS;
use crate::events::NewEvent;
use crate::records::{Plan, RelationSpec, Spec, cursor};
use crate::records::{Written, check_merge_ids, deleted_changes};
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
    columns: crate::records::Columns::Fn(column),
    relations: &[RelationSpec {
        name: "parent",
        spec: &COMPANIES,
        foreign_key: "parent_company_id",
    }],
    catalog_fields: company::FIELDS,
    catalog_relations: company::RELATIONS,
    keys: &[
        (IdProperty::Id, "id", false),
        (IdProperty::ExternalId, "external_id", false),
        (IdProperty::Domain, "domain", true),
    ],
};

macro_rules! company_columns {
    () => {
        "id, org_id, name, domain, industry, employee_count, annual_revenue_minor, currency, \
         phone, phone_e164, website, address_street, address_city, address_region, \
         address_postal_code, address_country, parent_company_id, tier, lifecycle_stage, \
         lifecycle_stage_changed_at, owner_id, source, external_id, tags, custom, version, \
         created_at, updated_at, created_by, deleted_at, last_activity_at, merged_into, \
         first_order_at, last_order_at, order_count, revenue_minor"
    };
}

const SELECT: &str = concat!(
    "select ",
    company_columns!(),
    " from companies where org_id = $1 and id = $2"
);
/// The columns, for a `where` built by the caller.
const SELECT_WHERE: &str = concat!("select ", company_columns!(), " from companies t where ");
const SELECT_BY_IDS: &str = concat!(
    "select ",
    company_columns!(),
    " from companies t where t.org_id = "
);

// The data columns, in the order UPDATE binds them ($3 to $27).
const INSERT_PREFIX: &str = "insert into companies (org_id, id, name, sort_name, domain, industry, \
     employee_count, annual_revenue_minor, currency, phone, phone_e164, website, address_street, \
     address_city, address_region, address_postal_code, address_country, parent_company_id, tier, \
     lifecycle_stage, lifecycle_stage_changed_at, owner_id, source, external_id, tags, custom, \
     search_text, version, created_at, updated_at, created_by) ";
const UPDATE: &str = "update companies set name = $3, sort_name = $4, domain = $5, industry = $6, \
     employee_count = $7, annual_revenue_minor = $8, currency = $9, phone = $10, phone_e164 = $11, \
     website = $12, address_street = $13, address_city = $14, address_region = $15, \
     address_postal_code = $16, address_country = $17, parent_company_id = $18, tier = $19, \
     lifecycle_stage = $20, lifecycle_stage_changed_at = $21, owner_id = $22, source = $23, \
     external_id = $24, tags = $25, custom = $26, search_text = $27, version = version + 1, \
     updated_at = $28, deleted_at = null where org_id = $1 and id = $2";
const SOFT_DELETE: &str = "update companies set deleted_at = $3, merged_into = $4, version = version + 1, \
     updated_at = $3 where org_id = $1 and id = $2";
const RESTORE: &str = "update companies set deleted_at = null, version = version + 1, updated_at = $3 \
     where org_id = $1 and id = $2";
const PARENT_OF: &str =
    "select parent_company_id from companies where org_id = $1 and id = $2 and deleted_at is null";
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
    merged_into: Option<Uuid>,
    first_order_at: Option<DateTime<Utc>>,
    last_order_at: Option<DateTime<Utc>>,
    order_count: i64,
    revenue_minor: i64,
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
            purchases: record::Purchases {
                first_order_at: row.first_order_at,
                last_order_at: row.last_order_at,
                order_count: row.order_count,
                revenue_minor: row.revenue_minor,
            },
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

pub(crate) struct Planned {
    pub id: Uuid,
    pub insert: bool,
    pub revive: bool,
    pub before: Option<Company>,
    pub data: CompanyData,
    pub custom: Map<String, Value>,
    pub stage_at: Option<DateTime<Utc>>,
    pub stage_changed: bool,
    pub changes: record::Changes,
}

pub(crate) enum Decision {
    Write(Box<Planned>),
    Unchanged(Uuid),
    Failed(StoreError),
}

fn in_batch(field: &str, first: usize) -> StoreError {
    StoreError::Invalid(vec![FieldIssue::new(
        field,
        "duplicate_in_batch",
        format!("row {first} of this batch already has this {field}"),
    )])
}

/// A row's custom values after checking, with what was wrong and whether it gives the company
/// an owner outside what the caller sees (None: the row failed before).
type Shaped = Option<(Map<String, Value>, Vec<FieldIssue>, bool)>;

per_backend! {
    pub(crate) async fn load_company(conn: &mut Conn, org_id: Uuid, id: Uuid) -> Result<Company, crate::error::DbError> {
        let row: CompanyRow = sqlx::query_as(SELECT).bind(org_id).bind(id).fetch_one(&mut *conn).await?;
        Ok(Company::try_from(row)?)
    }

    pub(crate) async fn load_visible_companies<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        ids: &[Uuid],
    ) -> Result<Vec<Company>, crate::error::DbError> {
        load_companies(executor, ctx, ids, true).await
    }

    pub(crate) async fn load_companies<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        ids: &[Uuid],
        live_only: bool,
    ) -> Result<Vec<Company>, crate::error::DbError> {
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
        sql::push_visibility(&mut qb, ctx, ObjectType::Company);
        qb.push(" order by t.id");
        let rows: Vec<CompanyRow> = qb.build_query_as().fetch_all(executor).await?;
        Ok(companies(rows)?)
    }

    /// The company's contacts search its (new) name.
    pub(crate) async fn contacts_follow_name(conn: &mut Conn, org_id: Uuid, id: Uuid, name: &str) -> Result<(), crate::error::DbError> {
        sqlx::query(CONTACTS_FOLLOW_NAME).bind(org_id).bind(id).bind(name.to_lowercase()).execute(&mut *conn).await?;
        sql::reindex_search_where(conn, &CONTACTS, org_id, "company_id", id).await?;
        Ok(())
    }

    /// Whether making `parent` the parent of `id` keeps the hierarchy acyclic and shallow.
    async fn check_parent(conn: &mut Conn, org_id: Uuid, id: Uuid, parent: Uuid) -> Result<Option<FieldIssue>, crate::error::DbError> {
        let mut current = Some(parent);
        let mut depth = 0;
        while let Some(ancestor) = current {
            if ancestor == id {
                return Ok(Some(FieldIssue::new("parent_company_id", "cycle", "would make the company its own ancestor")));
            }
            depth += 1;
            if depth > MAX_DEPTH {
                return Ok(Some(FieldIssue::new("parent_company_id", "too_deep", format!("hierarchies are at most {MAX_DEPTH} levels deep"))));
            }
            let next: Option<Option<Uuid>> = sqlx::query_scalar(PARENT_OF).bind(org_id).bind(ancestor).fetch_optional(&mut *conn).await?;
            match next {
                Some(next) => current = next,
                None if ancestor == parent => {
                    return Ok(Some(FieldIssue::new("parent_company_id", "not_found", "names no live company of your organization")));
                }
                None => break,
            }
        }
        Ok(None)
    }

    /// Decides every row without writing (see `plan_contacts`).
    pub(crate) async fn plan_companies(
        conn: &mut Conn,
        ctx: &AuthContext,
        rows: &[WriteRow<CompanyPatch>],
        at: DateTime<Utc>,
    ) -> Result<Vec<Decision>, crate::error::DbError> {
        use std::collections::{HashMap, HashSet};
        let definitions = sql::custom_fields(&mut *conn, ctx.org_id, ObjectType::Company).await?;
        let mut ids = Vec::new();
        let mut external_ids = Vec::new();
        let mut domains = Vec::new();
        for row in rows {
            match &row.target {
                RowTarget::Update { id, .. } => ids.push(*id),
                RowTarget::Upsert { property: IdProperty::Id, value } => ids.extend(Uuid::parse_str(value).ok()),
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => external_ids.push(value.clone()),
                RowTarget::Upsert { property: IdProperty::Domain, value } => domains.push(value.to_lowercase()),
                _ => {}
            }
            external_ids.extend(row.patch.parent_external_id.clone());
        }
        let mut existing: Vec<Company> = Vec::new();
        let mut merged: HashMap<Uuid, Uuid> = HashMap::new();
        if !ids.is_empty() || !external_ids.is_empty() || !domains.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_WHERE);
            sql::push_keyed_lookup(&mut qb, ctx.org_id, &ids, &external_ids, "t.deleted_at is null and t.domain", &domains);
            sql::push_lock_rows(&mut qb);
            let found: Vec<CompanyRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
            for row in found {
                if let Some(into) = row.merged_into {
                    merged.insert(row.id, into);
                }
                existing.push(Company::try_from(row)?);
            }
        }
        let existing_ids: Vec<Uuid> = existing.iter().map(|c| c.id).collect();
        // A record the caller may not see is answered as one that does not exist (or, for a
        // key that must stay unique, as a conflict that names nothing); so is a parent.
        let visible = sql::visible_among(conn, ctx, &COMPANIES, &existing_ids).await?;
        let merged_visible = |id: &Uuid| merged.get(id).filter(|_| visible.contains(id)).map_or(StoreError::NotFound, |into| StoreError::Merged { into: *into });
        let by_id: HashMap<Uuid, &Company> = existing.iter().map(|c| (c.id, c)).collect();
        let by_external: HashMap<&str, &Company> = existing.iter().filter_map(|c| c.data.external_id.as_deref().map(|e| (e, c))).collect();
        let mut by_domain: HashMap<String, Vec<&Company>> = HashMap::new();
        for c in existing.iter().filter(|c| c.deleted_at.is_none()) {
            if let Some(domain) = &c.data.domain {
                by_domain.entry(domain.clone()).or_default().push(c);
            }
        }

        struct Draft<'a> {
            before: Option<&'a Company>,
            data: CompanyData,
            revive: bool,
            issues: Vec<FieldIssue>,
        }
        let mut drafts: Vec<Result<Draft<'_>, StoreError>> = Vec::with_capacity(rows.len());
        let mut targets_seen: HashMap<String, usize> = HashMap::new();
        for (index, row) in rows.iter().enumerate() {
            let patch = &row.patch;
            let target_key = match &row.target {
                RowTarget::Create => None,
                RowTarget::Update { id, .. } => Some(format!("id:{id}")),
                RowTarget::Upsert { property, value } => Some(format!("{}:{}", property.as_str(), value.to_lowercase())),
            };
            if let Some(key) = target_key {
                if let Some(first) = targets_seen.get(&key) {
                    let field = match &row.target {
                        RowTarget::Upsert { property, .. } => property.as_str(),
                        _ => "id",
                    };
                    drafts.push(Err(in_batch(field, *first)));
                    continue;
                }
                targets_seen.insert(key, index);
            }
            let found: Result<Option<&Company>, StoreError> = match &row.target {
                RowTarget::Create => Ok(None),
                RowTarget::Update { id, expected_version } => match by_id.get(id) {
                    Some(c) if c.deleted_at.is_none() && visible.contains(id) => match expected_version {
                        Some(v) if *v != c.version => Err(StoreError::VersionMismatch { current: c.version }),
                        _ => Ok(Some(*c)),
                    },
                    _ => Err(merged_visible(id)),
                },
                RowTarget::Upsert { property: IdProperty::Id, value } => match Uuid::parse_str(value).ok().and_then(|id| by_id.get(&id)) {
                    Some(c) if c.deleted_at.is_none() && visible.contains(&c.id) => Ok(Some(*c)),
                    Some(c) => Err(merged_visible(&c.id)),
                    None => Err(StoreError::NotFound),
                },
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => match by_external.get(value.as_str()) {
                    Some(c) if !visible.contains(&c.id) => Err(StoreError::Conflict { field: Some("external_id".into()) }),
                    Some(c) if merged.contains_key(&c.id) => Err(StoreError::Merged { into: merged[&c.id] }),
                    Some(c) => Ok(Some(*c)),
                    None => Ok(None),
                },
                RowTarget::Upsert { property: IdProperty::Domain, value } => match by_domain.get(&value.to_lowercase()).map(Vec::as_slice) {
                    Some([c]) if !visible.contains(&c.id) => Err(StoreError::Conflict { field: Some("domain".into()) }),
                    Some([c]) => Ok(Some(*c)),
                    Some([_, _, ..]) => Err(StoreError::Invalid(vec![FieldIssue::new("domain", "ambiguous", "several companies have this domain; upsert them by id or external_id")])),
                    _ => Ok(None),
                },
                RowTarget::Upsert { property, .. } => Err(StoreError::Invalid(vec![FieldIssue::new("id_property", "invalid_value", format!("companies are not found by {}", property.as_str()))])),
            };
            let before = match found {
                Ok(before) => before,
                Err(error) => {
                    drafts.push(Err(error));
                    continue;
                }
            };
            let mut issues = Vec::new();
            let mut data = match before {
                Some(c) => c.data.apply(patch),
                None => {
                    let mut data = CompanyData::default().apply(patch);
                    if patch.owner_id.is_none() {
                        data.owner_id = Some(ctx.user_id);
                    }
                    data
                }
            };
            match &row.target {
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => match &patch.external_id {
                    Some(Some(given)) if given != value => issues.push(FieldIssue::new("external_id", "invalid_value", "differs from the external_id the row is found by")),
                    _ => data.external_id = Some(value.clone()),
                },
                RowTarget::Upsert { property: IdProperty::Domain, value } => match &patch.domain {
                    Some(Some(given)) if !given.eq_ignore_ascii_case(value) => issues.push(FieldIssue::new("domain", "invalid_value", "differs from the domain the row is found by")),
                    _ if data.domain.is_none() => data.domain = Some(value.to_lowercase()),
                    _ => {}
                },
                _ => {}
            }
            if let Some(parent_external) = &patch.parent_external_id {
                match by_external.get(parent_external.as_str()).filter(|c| c.deleted_at.is_none() && visible.contains(&c.id)) {
                    Some(parent) => data.parent_company_id = Some(parent.id),
                    None => issues.push(FieldIssue::new("parent_external_id", "not_found", "names no live company of your organization")),
                }
            }
            if before.is_none() && data.name.is_empty() {
                issues.push(FieldIssue::new("name", "required", "a company needs a name"));
            }
            let revive = before.is_some_and(|c| c.deleted_at.is_some());
            drafts.push(Ok(Draft { before, data, revive, issues }));
        }

        let mut owner_ids: HashSet<Uuid> = HashSet::new();
        for draft in drafts.iter().flatten() {
            if let Some(owner) = draft.data.owner_id
                && draft.before.and_then(|b| b.data.owner_id) != Some(owner)
            {
                owner_ids.insert(owner);
            }
        }
        let active_owners: HashSet<Uuid> = if owner_ids.is_empty() {
            HashSet::new()
        } else {
            let mut qb = sqlx::QueryBuilder::<Db>::new("select id from users where org_id = ");
            qb.push_bind(ctx.org_id).push(" and active and id in ");
            sql::push_list(&mut qb, owner_ids.iter().copied());
            let found: Vec<Uuid> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
            found.into_iter().collect()
        };
        let permitted_owners = sql::permitted_owners(conn, ctx, ObjectType::Company, &owner_ids).await?;
        // The parents rows set anew must be companies the caller sees.
        let new_parents: Vec<Uuid> = drafts
            .iter()
            .flatten()
            .filter_map(|d| d.data.parent_company_id.filter(|p| d.before.and_then(|b| b.data.parent_company_id) != Some(*p)))
            .collect();
        let visible_parents = sql::visible_among(conn, ctx, &COMPANIES, &new_parents).await?;

        // Per row: parent, owner, rules, custom values.
        let mut shaped: Vec<Shaped> = Vec::with_capacity(rows.len());
        for (index, (row, draft)) in rows.iter().zip(drafts.iter_mut()).enumerate() {
            let Ok(draft) = draft else {
                shaped.push(None);
                continue;
            };
            let _ = index;
            let mut issues = std::mem::take(&mut draft.issues);
            let id = draft.before.map_or(Uuid::nil(), |b| b.id);
            if let Some(parent) = draft.data.parent_company_id
                && draft.before.and_then(|b| b.data.parent_company_id) != Some(parent)
            {
                if !visible_parents.contains(&parent) {
                    issues.push(FieldIssue::new("parent_company_id", "not_found", "names no live company of your organization"));
                } else if let Some(issue) = check_parent(conn, ctx.org_id, id, parent).await? {
                    issues.push(issue);
                }
            }
            if let Some(owner) = draft.data.owner_id
                && draft.before.and_then(|b| b.data.owner_id) != Some(owner)
                && !active_owners.contains(&owner)
            {
                issues.push(FieldIssue::new("owner_id", "not_found", "names no active user of your organization"));
            }
            if let Err(found) = draft.data.check() {
                issues.extend(found);
            }
            let empty = Map::new();
            let current = draft.before.map_or(&empty, |b| &b.custom);
            let (custom, found) = custom_field::apply_all(&definitions, current, row.patch.custom.as_ref().unwrap_or(&empty));
            issues.extend(found);
            let owner_refused = crate::records::owner_refused(permitted_owners.as_ref(), draft.before.map(|b| b.data.owner_id), draft.data.owner_id);
            shaped.push(Some((custom, issues, owner_refused)));
        }

        let mut wanted_external: HashSet<String> = HashSet::new();
        let mut wanted_custom: HashMap<String, Vec<Value>> = HashMap::new();
        for (draft, shape) in drafts.iter().zip(&shaped) {
            let (Ok(draft), Some((custom, _, _))) = (draft, shape) else { continue };
            wanted_external.extend(draft.data.external_id.clone());
            for def in definitions.iter().filter(|d| d.unique) {
                if let Some(value) = custom.get(&def.key) {
                    wanted_custom.entry(def.key.clone()).or_default().push(value.clone());
                }
            }
        }
        let mut external_holders: HashMap<String, Uuid> = HashMap::new();
        if !wanted_external.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new("select external_id, id from companies where org_id = ");
            qb.push_bind(ctx.org_id).push(" and external_id in ");
            sql::push_list(&mut qb, wanted_external.iter().cloned());
            let found: Vec<(String, Uuid)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            external_holders.extend(found);
        }
        let custom_holders = sql::unique_holders(conn, &COMPANIES, ctx.org_id, &definitions, &wanted_custom).await?;
        let holders: Vec<Uuid> = custom_holders.values().copied().collect();
        let visible_holders = sql::visible_among(conn, ctx, &COMPANIES, &holders).await?;

        let mut claimed_external: HashMap<String, usize> = HashMap::new();
        let mut claimed_custom: HashMap<(String, String), usize> = HashMap::new();
        let mut decisions = Vec::with_capacity(rows.len());
        for (index, (draft, shape)) in drafts.into_iter().zip(shaped).enumerate() {
            let (draft, (custom, mut issues, owner_refused)) = match (draft, shape) {
                (Ok(draft), Some(shape)) => (draft, shape),
                (Err(error), _) => {
                    decisions.push(Decision::Failed(error));
                    continue;
                }
                (Ok(_), None) => {
                    decisions.push(Decision::Failed(StoreError::internal("row without shape")));
                    continue;
                }
            };
            let id = draft.before.map_or_else(Uuid::now_v7, |b| b.id);
            for def in definitions.iter().filter(|d| d.unique) {
                let Some(value) = custom.get(&def.key) else { continue };
                let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                let key = (def.key.clone(), text);
                if let Some(holder) = custom_holders.get(&key).filter(|h| **h != id) {
                    issues.push(crate::records::custom_taken(&def.key, visible_holders.named(*holder)));
                } else if let Some(first) = claimed_custom.get(&key) {
                    issues.push(FieldIssue::new(format!("custom.{}", def.key), "duplicate_in_batch", format!("row {first} of this batch already has this value")));
                } else {
                    claimed_custom.insert(key, index);
                }
            }
            if !issues.is_empty() {
                decisions.push(Decision::Failed(StoreError::Invalid(issues)));
                continue;
            }
            // Before any conflict: a write the caller may not make tells nothing of other records.
            if owner_refused {
                decisions.push(Decision::Failed(StoreError::OwnerNotPermitted));
                continue;
            }
            if let Some(external_id) = &draft.data.external_id {
                if external_holders.get(external_id).is_some_and(|h| *h != id) {
                    decisions.push(Decision::Failed(StoreError::Conflict { field: Some("external_id".into()) }));
                    continue;
                }
                if let Some(first) = claimed_external.get(external_id) {
                    decisions.push(Decision::Failed(in_batch("external_id", *first)));
                    continue;
                }
                claimed_external.insert(external_id.clone(), index);
            }
            let (changes, stage_changed, stage_at) = match draft.before {
                Some(before) => {
                    let after = Company { data: draft.data.clone(), custom: custom.clone(), ..before.clone() };
                    let mut changes = record::diff(&before.fields(), &after.fields());
                    if draft.revive {
                        changes.extend(deleted_changes(before.deleted_at, None));
                    }
                    let stage_changed = draft.data.lifecycle_stage != before.data.lifecycle_stage;
                    let stage_at = if stage_changed { draft.data.lifecycle_stage.map(|_| at) } else { before.lifecycle_stage_changed_at };
                    (changes, stage_changed, stage_at)
                }
                None => {
                    let fields = Company {
                        id,
                        org_id: ctx.org_id,
                        data: draft.data.clone(),
                        custom: custom.clone(),
                        version: 1,
                        created_at: at,
                        updated_at: at,
                        created_by: Some(ctx.user_id),
                        deleted_at: None,
                        last_activity_at: None,
                        lifecycle_stage_changed_at: None,
                        purchases: record::Purchases::default(),
                    }
                    .fields();
                    (record::diff(&Map::new(), &fields), draft.data.lifecycle_stage.is_some(), draft.data.lifecycle_stage.map(|_| at))
                }
            };
            if draft.before.is_some() && changes.is_empty() {
                decisions.push(Decision::Unchanged(id));
                continue;
            }
            decisions.push(Decision::Write(Box::new(Planned {
                id,
                insert: draft.before.is_none(),
                revive: draft.revive,
                before: draft.before.cloned(),
                data: draft.data,
                custom,
                stage_at,
                stage_changed,
                changes,
            })));
        }
        Ok(decisions)
    }

    pub(crate) async fn apply_companies(
        conn: &mut Conn,
        ctx: &AuthContext,
        planned: &[&Planned],
        at: DateTime<Utc>,
    ) -> Result<(), crate::error::DbError> {
        let columns: Vec<(&Planned, Columns<'_>)> = planned.iter().map(|p| (*p, Columns::new(&p.data, &p.custom, p.stage_at))).collect();
        let inserts: Vec<&(&Planned, Columns<'_>)> = columns.iter().filter(|(p, _)| p.insert).collect();
        for chunk in inserts.chunks(400) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(INSERT_PREFIX);
            qb.push_values(chunk, |mut row, (p, c)| {
                let d = c.data;
                row.push_bind(ctx.org_id)
                    .push_bind(p.id)
                    .push_bind(d.name.clone())
                    .push_bind(c.sort_name.clone())
                    .push_bind(d.domain.clone())
                    .push_bind(d.industry.clone())
                    .push_bind(d.employee_count)
                    .push_bind(d.annual_revenue_minor)
                    .push_bind(d.currency.clone())
                    .push_bind(d.phone.as_ref().map(|p| p.number.clone()))
                    .push_bind(d.phone.as_ref().and_then(|p| p.e164.clone()))
                    .push_bind(d.website.clone())
                    .push_bind(d.address.street.clone())
                    .push_bind(d.address.city.clone())
                    .push_bind(d.address.region.clone())
                    .push_bind(d.address.postal_code.clone())
                    .push_bind(d.address.country.clone())
                    .push_bind(d.parent_company_id)
                    .push_bind(d.tier.map(Tier::as_str))
                    .push_bind(d.lifecycle_stage.map(LifecycleStage::as_str))
                    .push_bind(c.stage_changed_at)
                    .push_bind(d.owner_id)
                    .push_bind(d.source.clone())
                    .push_bind(d.external_id.clone())
                    .push_bind(Json(d.tags.clone()))
                    .push_bind(Json(c.custom.clone()))
                    .push_bind(c.search_text.clone())
                    .push_bind(1_i64)
                    .push_bind(at)
                    .push_bind(at)
                    .push_bind(ctx.user_id);
            });
            qb.build().execute(&mut *conn).await?;
        }
        for (p, c) in columns.iter().filter(|(p, _)| !p.insert) {
            bind_columns!(sqlx::query(UPDATE).bind(ctx.org_id).bind(p.id), c).bind(at).execute(&mut *conn).await?;
            if p.before.as_ref().is_some_and(|b| b.data.name != p.data.name) {
                contacts_follow_name(conn, ctx.org_id, p.id, &p.data.name).await?;
            }
        }
        let keys: Vec<(Uuid, Vec<(&'static str, String)>)> = columns.iter().map(|(p, c)| (p.id, c.keys())).collect();
        sql::replace_keys_many(conn, ctx.org_id, ObjectType::Company, &keys).await?;
        let ids: Vec<Uuid> = planned.iter().map(|p| p.id).collect();
        sql::index_search_many(conn, &COMPANIES, &ids).await?;
        let stages: Vec<(Uuid, Option<LifecycleStage>, Option<LifecycleStage>)> = planned
            .iter()
            .filter(|p| p.stage_changed)
            .map(|p| (p.id, p.before.as_ref().and_then(|b| b.data.lifecycle_stage), p.data.lifecycle_stage))
            .collect();
        sql::record_lifecycles(conn, ctx, ObjectType::Company, &stages, at).await?;
        Ok(())
    }

    pub(crate) async fn write_companies(
        conn: &mut Conn,
        ctx: &AuthContext,
        rows: &[WriteRow<CompanyPatch>],
        all_or_none: bool,
        at: DateTime<Utc>,
    ) -> Result<Written, crate::error::DbError> {
        let decisions = plan_companies(conn, ctx, rows, at).await?;
        if all_or_none && decisions.iter().any(|d| matches!(d, Decision::Failed(_))) {
            let outcomes = decisions
                .into_iter()
                .map(|d| match d {
                    Decision::Failed(error) => RowOutcome::error(error),
                    _ => RowOutcome::error(rapport_domain::write::not_applied()),
                })
                .collect();
            return Ok(Written { outcomes, commit: false });
        }
        let planned: Vec<&Planned> = decisions.iter().filter_map(|d| match d {
            Decision::Write(p) => Some(p.as_ref()),
            _ => None,
        }).collect();
        apply_companies(conn, ctx, &planned, at).await?;
        let events: Vec<NewEvent<'_>> = planned
            .iter()
            .map(|p| NewEvent {
                object: ObjectType::Company,
                id: p.id,
                action: if p.insert { EventAction::Created } else if p.revive { EventAction::Restored } else { EventAction::Updated },
                changes: &p.changes,
                merged_ids: &[],
            })
            .collect();
        sql::append_events(conn, ctx, &events, at).await?;
        let outcomes = decisions
            .into_iter()
            .map(|d| match d {
                Decision::Write(p) => RowOutcome::ok(if p.insert { RowStatus::Created } else { RowStatus::Updated }, p.id),
                Decision::Unchanged(id) => RowOutcome::ok(RowStatus::Unchanged, id),
                Decision::Failed(error) => RowOutcome::error(error),
            })
            .collect();
        Ok(Written { outcomes, commit: true })
    }
}

#[async_trait]
impl CompanyStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, rows = rows.len()))]
    async fn write(
        &self,
        ctx: &AuthContext,
        rows: Vec<WriteRow<CompanyPatch>>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        write_retrying!(self, ctx, |tx, sql, at| sql::write_companies(
            &mut tx,
            ctx,
            &rows,
            all_or_none,
            at
        )
        .await?)
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, rows = targets.len()))]
    async fn delete_many(
        &self,
        ctx: &AuthContext,
        targets: Vec<RowTarget>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let written =
                sql::delete_records(&mut tx, ctx, &COMPANIES, &targets, all_or_none, at).await?;
            if written.commit {
                tx.commit().await?;
            }
            Ok(written.outcomes)
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
                None => Err(sql::missing(pool, ctx, &COMPANIES, id).await?.into()),
            }
        })
    }

    async fn get_many(&self, ctx: &AuthContext, ids: &[Uuid]) -> Result<Vec<Company>, StoreError> {
        on_db!(&self.db, read, |pool, sql| sql::load_companies(
            pool, ctx, ids, false
        )
        .await)
    }

    async fn delete(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let outcomes = self
            .delete_many(
                ctx,
                vec![RowTarget::Update {
                    id,
                    expected_version,
                }],
                true,
            )
            .await?;
        match outcomes.into_iter().next().map(|o| o.result) {
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => Err(error),
            None => Err(StoreError::NotFound),
        }
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, company = %id))]
    async fn restore(&self, ctx: &AuthContext, id: Uuid) -> Result<Company, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            // Restores of one record at once: one restores it, the others find it live.
            sql::lock_row(&mut tx, &COMPANIES, ctx.org_id, id).await?;
            let current: Option<CompanyRow> = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(current) = current else {
                return Err(StoreError::NotFound.into());
            };
            if let Some(into) = current.merged_into {
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
                    sql::push_filter(qb, ctx, filter, &COMPANIES, "t", false);
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
                return Err(sql::missing(pool, ctx, &COMPANIES, id).await?.into());
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
                    return Err(sql::missing(&mut *tx, ctx, &COMPANIES, *id).await?.into());
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
            let row = WriteRow {
                target: RowTarget::Update {
                    id: primary,
                    expected_version: None,
                },
                patch: CompanyPatch::replacing(&data, custom),
            };
            let decisions =
                sql::plan_companies(&mut tx, ctx, std::slice::from_ref(&row), at).await?;
            match decisions.into_iter().next() {
                Some(Decision::Write(planned)) => {
                    sql::apply_companies(&mut tx, ctx, &[planned.as_ref()], at).await?
                }
                Some(Decision::Failed(error)) => return Err(error.into()),
                _ => {}
            }
            // Contacts moved over search the primary's name.
            sql::contacts_follow_name(&mut tx, ctx.org_id, primary, &data.name).await?;
            sql::refresh_company_purchases(&mut tx, ctx.org_id, &[primary]).await?;
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
    ("orders", "company_id"),
];
