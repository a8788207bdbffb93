//! Orders: the purchase history. Rapport computes the totals and keeps the purchase
//! aggregates of contacts and companies current in the same transaction.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::custom_field;
use rapport_domain::order::{
    self, LineInput, Order, OrderData, OrderLine, OrderPatch, OrderStatus, line_total, order_total,
};
use rapport_domain::page::{Page, PageRequest};
use rapport_domain::query::{SortKey, Target};
use rapport_domain::record::{self, EventAction, RecordEvent};
use rapport_domain::store::{ListRequest, OrderStore};
use rapport_domain::write::{IdProperty, RowOutcome, RowStatus, RowTarget, WriteRow};
use rapport_domain::{AuthContext, FieldIssue, ObjectType, StoreError};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::events::NewEvent;
use crate::records::Written;
use crate::records::{Plan, RelationSpec, Spec, cursor};

fn column(field: &str) -> Option<&'static str> {
    Some(match field {
        "id" => "id",
        "number" => "number",
        "external_id" => "external_id",
        "contact_id" => "contact_id",
        "company_id" => "company_id",
        "status" => "status",
        "ordered_at" => "ordered_at",
        "currency" => "currency",
        "total_minor" => "total_minor",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        "created_by" => "created_by",
        _ => return None,
    })
}

pub(crate) static ORDERS: Spec = Spec {
    object: ObjectType::Order,
    table: "orders",
    search_table: "order_search",
    columns: crate::records::Columns::Fn(column),
    relations: &[
        RelationSpec {
            name: "contact",
            spec: &crate::contacts::CONTACTS,
            foreign_key: "contact_id",
        },
        RelationSpec {
            name: "company",
            spec: &crate::companies::COMPANIES,
            foreign_key: "company_id",
        },
    ],
    catalog_fields: order::FIELDS,
    catalog_relations: order::RELATIONS,
    keys: &[
        (IdProperty::Id, "id", false),
        (IdProperty::ExternalId, "external_id", false),
        (IdProperty::Number, "number", false),
    ],
};

macro_rules! order_columns {
    () => {
        "id, org_id, number, external_id, contact_id, company_id, status, ordered_at, currency, \
         total_minor, lines, custom, version, created_at, updated_at, created_by, deleted_at"
    };
}

/// The columns, for a `where` built by the caller.
const SELECT_WHERE: &str = concat!("select ", order_columns!(), " from orders t where ");
const SELECT_BY_IDS: &str = concat!(
    "select ",
    order_columns!(),
    " from orders t where t.org_id = "
);
const INSERT_PREFIX: &str = "insert into orders (org_id, id, number, external_id, contact_id, \
     company_id, status, ordered_at, currency, total_minor, lines, custom, search_text, version, \
     created_at, updated_at, created_by) ";
const UPDATE: &str = "update orders set number = $3, external_id = $4, contact_id = $5, company_id = $6, \
     status = $7, ordered_at = $8, currency = $9, total_minor = $10, lines = $11, custom = $12, \
     search_text = $13, version = version + 1, updated_at = $14, deleted_at = null \
     where org_id = $1 and id = $2";

/// Recomputes the purchases (paid and fulfilled orders) of contacts or companies.
macro_rules! refresh_sql {
    ($table:literal, $column:literal) => {
        concat!(
            "update ", $table, " set ",
            "first_order_at = (select min(o.ordered_at) from orders o where o.org_id = ", $table, ".org_id and o.", $column, " = ", $table, ".id and o.deleted_at is null and o.status in ('paid', 'fulfilled')), ",
            "last_order_at = (select max(o.ordered_at) from orders o where o.org_id = ", $table, ".org_id and o.", $column, " = ", $table, ".id and o.deleted_at is null and o.status in ('paid', 'fulfilled')), ",
            "order_count = (select count(*) from orders o where o.org_id = ", $table, ".org_id and o.", $column, " = ", $table, ".id and o.deleted_at is null and o.status in ('paid', 'fulfilled')), ",
            "revenue_minor = (select coalesce(sum(o.total_minor), 0) from orders o where o.org_id = ", $table, ".org_id and o.", $column, " = ", $table, ".id and o.deleted_at is null and o.status in ('paid', 'fulfilled')) ",
            "where org_id = "
        )
    };
}

const RESTORE: &str = "update orders set deleted_at = null, version = version + 1, updated_at = $3 \
     where org_id = $1 and id = $2";

const REFRESH_CONTACTS: &str = refresh_sql!("contacts", "contact_id");
const REFRESH_COMPANIES: &str = refresh_sql!("companies", "company_id");

#[derive(sqlx::FromRow)]
pub(crate) struct OrderRow {
    id: Uuid,
    org_id: Uuid,
    number: Option<String>,
    external_id: Option<String>,
    contact_id: Option<Uuid>,
    company_id: Option<Uuid>,
    status: String,
    ordered_at: DateTime<Utc>,
    currency: String,
    total_minor: i64,
    lines: Json<Vec<OrderLine>>,
    custom: Json<Map<String, Value>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    created_by: Option<Uuid>,
    deleted_at: Option<DateTime<Utc>>,
}

impl TryFrom<OrderRow> for Order {
    type Error = StoreError;
    fn try_from(row: OrderRow) -> Result<Self, StoreError> {
        Ok(Order {
            id: row.id,
            org_id: row.org_id,
            data: OrderData {
                number: row.number,
                external_id: row.external_id,
                contact_id: row.contact_id,
                company_id: row.company_id,
                status: row
                    .status
                    .parse::<OrderStatus>()
                    .map_err(StoreError::internal)?,
                ordered_at: row.ordered_at,
                currency: row.currency,
                lines: row.lines.0,
                total_minor: row.total_minor,
            },
            custom: row.custom.0,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: row.created_by,
            deleted_at: row.deleted_at,
        })
    }
}

fn orders(rows: Vec<OrderRow>) -> Result<Vec<Order>, StoreError> {
    rows.into_iter().map(Order::try_from).collect()
}

fn sort_value(order: &Order, key: &SortKey) -> Value {
    let time =
        |t: &DateTime<Utc>| Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    match &key.target {
        Target::Standard(info) => match info.name {
            "ordered_at" => time(&order.data.ordered_at),
            "total_minor" => Value::from(order.data.total_minor),
            "created_at" => time(&order.created_at),
            "updated_at" => time(&order.updated_at),
            _ => Value::Null,
        },
        Target::Custom { key, .. } => order.custom.get(key).cloned().unwrap_or(Value::Null),
        Target::Related { .. } => Value::Null,
    }
}

fn row_cursor(plan: &Plan, order: &Order) -> rapport_domain::Cursor {
    let values = plan.sort.iter().map(|k| sort_value(order, k)).collect();
    cursor(plan, values, order.id)
}

fn in_batch(field: &str, first: usize) -> StoreError {
    StoreError::Invalid(vec![FieldIssue::new(
        field,
        "duplicate_in_batch",
        format!("row {first} of this batch already has this {field}"),
    )])
}

struct Planned {
    id: Uuid,
    insert: bool,
    revive: bool,
    before: Option<Order>,
    data: OrderData,
    custom: Map<String, Value>,
    changes: record::Changes,
}

enum Decision {
    Write(Box<Planned>),
    Unchanged(Uuid),
    Failed(StoreError),
}

/// What the lines of a batch may name.
struct Products {
    by_id: HashMap<Uuid, (String, String, Option<i64>, Option<String>)>,
    by_sku: HashMap<String, Uuid>,
}

/// Resolves the lines' products and computes their totals.
fn resolve_lines(
    lines: &[LineInput],
    currency: &str,
    products: &Products,
    issues: &mut Vec<FieldIssue>,
) -> Vec<OrderLine> {
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let at = |field: &str| format!("lines[{i}].{field}");
        let by_sku = line
            .sku
            .as_ref()
            .and_then(|s| products.by_sku.get(s).copied());
        let product_id = match (line.product_id, &line.sku) {
            (Some(id), Some(_)) if by_sku != Some(id) => {
                issues.push(FieldIssue::new(
                    at("sku"),
                    "invalid_value",
                    "names another product than product_id",
                ));
                continue;
            }
            (Some(id), _) => id,
            (None, Some(sku)) => match by_sku {
                Some(id) => id,
                None => {
                    issues.push(FieldIssue::new(
                        at("sku"),
                        "not_found",
                        format!("no live product has the sku {sku}"),
                    ));
                    continue;
                }
            },
            (None, None) => {
                issues.push(FieldIssue::new(
                    at("product_id"),
                    "required",
                    "a line names its product by product_id or sku",
                ));
                continue;
            }
        };
        let Some((sku, name, price, product_currency)) = products.by_id.get(&product_id) else {
            issues.push(FieldIssue::new(
                at("product_id"),
                "not_found",
                "names no live product of your organization",
            ));
            continue;
        };
        let unit_price = match (line.unit_price_minor, price, product_currency) {
            (Some(price), _, _) => price,
            (None, Some(price), Some(c)) if c == currency => *price,
            _ => {
                issues.push(FieldIssue::new(
                    at("unit_price_minor"),
                    "required",
                    format!("the product has no price in {currency}; give unit_price_minor"),
                ));
                continue;
            }
        };
        match line_total(line.quantity, unit_price, line.discount_minor) {
            Ok(total) => out.push(OrderLine {
                product_id,
                sku: sku.clone(),
                name: name.clone(),
                quantity: line.quantity,
                unit_price_minor: unit_price,
                discount_minor: line.discount_minor,
                total_minor: total,
            }),
            Err(message) => issues.push(FieldIssue::new(
                at("discount_minor"),
                "invalid_value",
                message,
            )),
        }
    }
    out
}

/// A contact an order may name: id, external id, lower-case email, company.
type ContactKeys = (Uuid, Option<String>, Option<String>, Option<Uuid>);
/// A product a line may name: id, sku, name, price, currency.
type ProductKeys = (Uuid, String, String, Option<i64>, Option<String>);
/// A row's order before (if any), its data and custom values, or why it fails.
type Draft<'a> = Result<(Option<&'a Order>, OrderData, Map<String, Value>), StoreError>;

per_backend! {
    pub(crate) async fn load_orders<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        ids: &[Uuid],
        live_only: bool,
    ) -> Result<Vec<Order>, crate::error::DbError> {
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
        let rows: Vec<OrderRow> = qb.build_query_as().fetch_all(executor).await?;
        Ok(orders(rows)?)
    }

    /// Recomputes the purchase aggregates of these contacts or companies.
    pub(crate) async fn refresh_purchases(
        conn: &mut Conn,
        org_id: Uuid,
        object: ObjectType,
        ids: &[Uuid],
    ) -> Result<(), crate::error::DbError> {
        let statement = match object {
            ObjectType::Contact => REFRESH_CONTACTS,
            ObjectType::Company => REFRESH_COMPANIES,
            _ => return Ok(()),
        };
        for chunk in ids.chunks(500) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(statement);
            qb.push_bind(org_id).push(" and id in ");
            sql::push_list(&mut qb, chunk.iter().copied());
            qb.build().execute(&mut *conn).await?;
        }
        Ok(())
    }

    async fn plan_orders(
        conn: &mut Conn,
        ctx: &AuthContext,
        rows: &[WriteRow<OrderPatch>],
        at: DateTime<Utc>,
    ) -> Result<Vec<Decision>, crate::error::DbError> {
        let definitions = sql::custom_fields(&mut *conn, ctx.org_id, ObjectType::Order).await?;
        // The orders the rows target.
        let mut ids = Vec::new();
        let mut external_ids = Vec::new();
        let mut numbers = Vec::new();
        for row in rows {
            match &row.target {
                RowTarget::Update { id, .. } => ids.push(*id),
                RowTarget::Upsert { property: IdProperty::Id, value } => ids.extend(Uuid::parse_str(value).ok()),
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => external_ids.push(value.clone()),
                RowTarget::Upsert { property: IdProperty::Number, value } => numbers.push(value.clone()),
                _ => {}
            }
        }
        let mut existing: Vec<Order> = Vec::new();
        if !ids.is_empty() || !external_ids.is_empty() || !numbers.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_WHERE);
            sql::push_keyed_lookup(&mut qb, ctx.org_id, &ids, &external_ids, "t.deleted_at is null and t.number", &numbers);
            sql::push_lock_rows(&mut qb);
            let found: Vec<OrderRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
            existing = orders(found)?;
        }
        let by_id: HashMap<Uuid, &Order> = existing.iter().map(|o| (o.id, o)).collect();
        let by_external: HashMap<&str, &Order> = existing.iter().filter_map(|o| o.data.external_id.as_deref().map(|e| (e, o))).collect();
        let by_number: HashMap<&str, &Order> = existing.iter().filter(|o| o.deleted_at.is_none()).filter_map(|o| o.data.number.as_deref().map(|n| (n, o))).collect();

        // Everything the rows refer to: contacts, companies, products.
        let mut contact_ids = HashSet::new();
        let mut contact_external = HashSet::new();
        let mut contact_emails = HashSet::new();
        let mut company_ids = HashSet::new();
        let mut company_external = HashSet::new();
        let mut product_ids = HashSet::new();
        let mut skus = HashSet::new();
        for row in rows {
            let p = &row.patch;
            contact_ids.extend(p.contact_id.flatten());
            contact_external.extend(p.contact_external_id.clone());
            contact_emails.extend(p.contact_email.as_ref().map(|e| e.to_lowercase()));
            company_ids.extend(p.company_id.flatten());
            company_external.extend(p.company_external_id.clone());
            for line in p.lines.iter().flatten() {
                product_ids.extend(line.product_id);
                skus.extend(line.sku.clone());
            }
        }
        for order in &existing {
            product_ids.extend(order.data.lines.iter().map(|l| l.product_id));
        }
        // (id, external_id, lower(email), company_id)
        let mut contacts: Vec<ContactKeys> = Vec::new();
        if !contact_ids.is_empty() || !contact_external.is_empty() || !contact_emails.is_empty() {
            const SELECT: &str = "select id, external_id, lower(email), company_id from contacts where ";
            let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT);
            sql::push_key_branch(&mut qb, "", ctx.org_id, "deleted_at is null and id", contact_ids.iter().copied().chain([Uuid::nil()]));
            qb.push(" union ").push(SELECT);
            sql::push_key_branch(&mut qb, "", ctx.org_id, "deleted_at is null and external_id", contact_external.iter().cloned().chain([String::new()]));
            qb.push(" union ").push(SELECT);
            let emails = contact_emails.iter().cloned().chain([String::new()]);
            sql::push_key_branch(&mut qb, "", ctx.org_id, "deleted_at is null and email is not null and lower(email)", emails);
            contacts = qb.build_query_as().fetch_all(&mut *conn).await?;
        }
        let mut companies: Vec<(Uuid, Option<String>)> = Vec::new();
        let company_of_contacts: Vec<Uuid> = contacts.iter().filter_map(|c| c.3).collect();
        if !company_ids.is_empty() || !company_external.is_empty() || !company_of_contacts.is_empty() {
            const SELECT: &str = "select id, external_id from companies where ";
            let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT);
            let ids = company_ids.iter().copied().chain(company_of_contacts.iter().copied()).chain([Uuid::nil()]);
            sql::push_key_branch(&mut qb, "", ctx.org_id, "deleted_at is null and id", ids);
            qb.push(" union ").push(SELECT);
            sql::push_key_branch(&mut qb, "", ctx.org_id, "deleted_at is null and external_id", company_external.iter().cloned().chain([String::new()]));
            companies = qb.build_query_as().fetch_all(&mut *conn).await?;
        }
        let mut product_rows: Vec<ProductKeys> = Vec::new();
        if !product_ids.is_empty() || !skus.is_empty() {
            const SELECT: &str = "select id, sku, name, unit_price_minor, currency from products where ";
            let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT);
            sql::push_key_branch(&mut qb, "", ctx.org_id, "deleted_at is null and id", product_ids.iter().copied().chain([Uuid::nil()]));
            qb.push(" union ").push(SELECT);
            sql::push_key_branch(&mut qb, "", ctx.org_id, "deleted_at is null and sku", skus.iter().cloned().chain([String::new()]));
            product_rows = qb.build_query_as().fetch_all(&mut *conn).await?;
        }
        let products = Products {
            by_sku: product_rows.iter().map(|p| (p.1.clone(), p.0)).collect(),
            by_id: product_rows.into_iter().map(|p| (p.0, (p.1, p.2, p.3, p.4))).collect(),
        };
        // Contacts and companies the caller may not see are named exactly like ones that do
        // not exist, whether by id, external id or email; an order keeps the contact and
        // company it already has, seen or not.
        let found_contacts: Vec<Uuid> = contacts.iter().map(|c| c.0).collect();
        let visible_contacts = sql::visible_among(conn, ctx, &crate::contacts::CONTACTS, &found_contacts).await?;
        let found_companies: Vec<Uuid> = companies.iter().map(|c| c.0).collect();
        let visible_companies = sql::visible_among(conn, ctx, &crate::companies::COMPANIES, &found_companies).await?;
        let live_contacts: HashMap<Uuid, Option<Uuid>> = contacts.iter().map(|c| (c.0, c.3)).collect();
        let contacts_by_external: HashMap<&str, Uuid> = contacts.iter().filter(|c| visible_contacts.contains(&c.0)).filter_map(|c| c.1.as_deref().map(|e| (e, c.0))).collect();
        let contacts_by_email: HashMap<&str, Uuid> = contacts.iter().filter(|c| visible_contacts.contains(&c.0)).filter_map(|c| c.2.as_deref().map(|e| (e, c.0))).collect();
        let live_companies: HashSet<Uuid> = companies.iter().map(|c| c.0).collect();
        let companies_by_external: HashMap<&str, Uuid> = companies.iter().filter(|c| visible_companies.contains(&c.0)).filter_map(|c| c.1.as_deref().map(|e| (e, c.0))).collect();

        let mut targets_seen: HashMap<String, usize> = HashMap::new();
        let mut drafts: Vec<Draft<'_>> = Vec::with_capacity(rows.len());
        for (index, row) in rows.iter().enumerate() {
            let p = &row.patch;
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
            let found: Result<Option<&Order>, StoreError> = match &row.target {
                RowTarget::Create => Ok(None),
                RowTarget::Update { id, expected_version } => match by_id.get(id) {
                    Some(o) if o.deleted_at.is_none() => match expected_version {
                        Some(v) if *v != o.version => Err(StoreError::VersionMismatch { current: o.version }),
                        _ => Ok(Some(*o)),
                    },
                    _ => Err(StoreError::NotFound),
                },
                RowTarget::Upsert { property: IdProperty::Id, value } => match Uuid::parse_str(value).ok().and_then(|id| by_id.get(&id)) {
                    Some(o) if o.deleted_at.is_none() => Ok(Some(*o)),
                    _ => Err(StoreError::NotFound),
                },
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => Ok(by_external.get(value.as_str()).copied()),
                RowTarget::Upsert { property: IdProperty::Number, value } => Ok(by_number.get(value.as_str()).copied()),
                RowTarget::Upsert { property, .. } => Err(StoreError::Invalid(vec![FieldIssue::new("id_property", "invalid_value", format!("orders are not found by {}", property.as_str()))])),
            };
            let before = match found {
                Ok(before) => before,
                Err(error) => {
                    drafts.push(Err(error));
                    continue;
                }
            };
            let mut issues = Vec::new();
            let pick = |patch: &Option<Option<String>>, current: Option<&Option<String>>| match patch {
                Some(value) => value.clone(),
                None => current.cloned().flatten(),
            };
            let mut number = pick(&p.number, before.map(|o| &o.data.number));
            let mut external_id = pick(&p.external_id, before.map(|o| &o.data.external_id));
            match &row.target {
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => match &p.external_id {
                    Some(Some(given)) if given != value => issues.push(FieldIssue::new("external_id", "invalid_value", "differs from the external_id the row is found by")),
                    _ => external_id = Some(value.clone()),
                },
                RowTarget::Upsert { property: IdProperty::Number, value } => match &p.number {
                    Some(Some(given)) if given != value => issues.push(FieldIssue::new("number", "invalid_value", "differs from the number the row is found by")),
                    _ => number = Some(value.clone()),
                },
                _ => {}
            }
            // The contact, by id, external id or email.
            let named_contact = [p.contact_id.flatten().is_some(), p.contact_external_id.is_some(), p.contact_email.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            if named_contact > 1 {
                issues.push(FieldIssue::new("contact_id", "invalid_value", "name the contact one way: contact_id, contact_external_id or contact_email"));
            }
            let contact_id = if let Some(external) = &p.contact_external_id {
                let found = contacts_by_external.get(external.as_str()).copied();
                if found.is_none() {
                    issues.push(FieldIssue::new("contact_external_id", "not_found", "names no live contact of your organization"));
                }
                found
            } else if let Some(email) = &p.contact_email {
                let found = contacts_by_email.get(email.to_lowercase().as_str()).copied();
                if found.is_none() {
                    issues.push(FieldIssue::new("contact_email", "not_found", "names no live contact of your organization"));
                }
                found
            } else {
                match p.contact_id {
                    Some(value) => value,
                    None => before.and_then(|o| o.data.contact_id),
                }
            };
            if let Some(contact) = contact_id
                && p.contact_id.flatten() == Some(contact)
                && (!live_contacts.contains_key(&contact)
                    || (before.and_then(|o| o.data.contact_id) != Some(contact) && !visible_contacts.contains(&contact)))
            {
                issues.push(FieldIssue::new("contact_id", "not_found", "names no live contact of your organization"));
            }
            let mut company_id = if let Some(external) = &p.company_external_id {
                let found = companies_by_external.get(external.as_str()).copied();
                if found.is_none() {
                    issues.push(FieldIssue::new("company_external_id", "not_found", "names no live company of your organization"));
                }
                found
            } else {
                match p.company_id {
                    Some(value) => value,
                    None => before.and_then(|o| o.data.company_id),
                }
            };
            if let Some(company) = company_id
                && p.company_id.flatten() == Some(company)
                && (!live_companies.contains(&company)
                    || (before.and_then(|o| o.data.company_id) != Some(company) && !visible_companies.contains(&company)))
            {
                issues.push(FieldIssue::new("company_id", "not_found", "names no live company of your organization"));
            }
            // A new order of a contact at a company counts for the company too.
            if before.is_none() && company_id.is_none() && p.company_id.is_none() {
                company_id = contact_id.and_then(|c| live_contacts.get(&c).copied().flatten());
            }
            let currency = match (&p.currency, before) {
                (Some(currency), _) => Some(currency.clone()),
                (None, Some(o)) => Some(o.data.currency.clone()),
                (None, None) => {
                    issues.push(FieldIssue::new("currency", "required", "an order needs a currency (ISO 4217)"));
                    None
                }
            };
            let currency = currency.unwrap_or_default();
            let lines = match (&p.lines, before) {
                (Some(lines), _) => resolve_lines(lines, &currency, &products, &mut issues),
                (None, Some(o)) if o.data.currency != currency => {
                    issues.push(FieldIssue::new("lines", "required", "send the lines again when the currency changes"));
                    o.data.lines.clone()
                }
                (None, Some(o)) => o.data.lines.clone(),
                (None, None) => Vec::new(),
            };
            let total = match order_total(&lines) {
                Ok(total) => total,
                Err(message) => {
                    issues.push(FieldIssue::new("lines", "invalid_value", message));
                    0
                }
            };
            if let Some(claimed) = p.total_minor
                && claimed != total
                && issues.is_empty()
            {
                issues.push(FieldIssue::new("total_minor", "mismatch", format!("is {claimed}, but the lines add up to {total}")));
            }
            let data = OrderData {
                number,
                external_id,
                contact_id,
                company_id,
                status: p.status.or(before.map(|o| o.data.status)).unwrap_or(OrderStatus::Pending),
                ordered_at: p.ordered_at.or(before.map(|o| o.data.ordered_at)).unwrap_or(at),
                currency,
                lines,
                total_minor: total,
            };
            if let Err(found) = data.check() {
                // A field already reported (e.g. every line failed) is not reported twice.
                for issue in found {
                    if !issues.iter().any(|i| i.field.starts_with(&issue.field)) {
                        issues.push(issue);
                    }
                }
            }
            let empty = Map::new();
            let current = before.map_or(&empty, |o| &o.custom);
            let (custom, found) = custom_field::apply_all(&definitions, current, p.custom.as_ref().unwrap_or(&empty));
            issues.extend(found);
            if issues.is_empty() {
                drafts.push(Ok((before, data, custom)));
            } else {
                drafts.push(Err(StoreError::Invalid(issues)));
            }
        }

        let mut wanted_numbers = HashSet::new();
        let mut wanted_external = HashSet::new();
        for (_, data, _) in drafts.iter().flatten() {
            wanted_numbers.extend(data.number.clone());
            wanted_external.extend(data.external_id.clone());
        }
        let mut number_holders: HashMap<String, Uuid> = HashMap::new();
        if !wanted_numbers.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new("select number, id from orders where org_id = ");
            qb.push_bind(ctx.org_id).push(" and deleted_at is null and number in ");
            sql::push_list(&mut qb, wanted_numbers.iter().cloned());
            let found: Vec<(String, Uuid)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            number_holders.extend(found);
        }
        let mut external_holders: HashMap<String, Uuid> = HashMap::new();
        if !wanted_external.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new("select external_id, id from orders where org_id = ");
            qb.push_bind(ctx.org_id).push(" and external_id in ");
            sql::push_list(&mut qb, wanted_external.iter().cloned());
            let found: Vec<(String, Uuid)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            external_holders.extend(found);
        }

        let mut claimed: HashMap<(&'static str, String), usize> = HashMap::new();
        let mut decisions = Vec::with_capacity(rows.len());
        for (index, draft) in drafts.into_iter().enumerate() {
            let (before, data, custom) = match draft {
                Ok(draft) => draft,
                Err(error) => {
                    decisions.push(Decision::Failed(error));
                    continue;
                }
            };
            let id = before.map_or_else(Uuid::now_v7, |o| o.id);
            let mut conflict = None;
            for (field, value, holders) in [("number", &data.number, &number_holders), ("external_id", &data.external_id, &external_holders)] {
                let Some(value) = value else { continue };
                if holders.get(value).is_some_and(|h| *h != id) {
                    conflict = Some(StoreError::Conflict { field: Some(field.into()) });
                    break;
                }
                if let Some(first) = claimed.insert((field, value.clone()), index) {
                    conflict = Some(in_batch(field, first));
                    break;
                }
            }
            if let Some(error) = conflict {
                decisions.push(Decision::Failed(error));
                continue;
            }
            let revive = before.is_some_and(|o| o.deleted_at.is_some());
            let changes = match before {
                Some(before) => {
                    let after = Order { data: data.clone(), custom: custom.clone(), ..before.clone() };
                    let mut changes = record::diff(&before.fields(), &after.fields());
                    if revive {
                        changes.extend(crate::records::deleted_changes(before.deleted_at, None));
                    }
                    changes
                }
                None => {
                    let fields = Order { id, org_id: ctx.org_id, data: data.clone(), custom: custom.clone(), version: 1, created_at: at, updated_at: at, created_by: Some(ctx.user_id), deleted_at: None }.fields();
                    record::diff(&Map::new(), &fields)
                }
            };
            if before.is_some() && changes.is_empty() {
                decisions.push(Decision::Unchanged(id));
                continue;
            }
            decisions.push(Decision::Write(Box::new(Planned { id, insert: before.is_none(), revive, before: before.cloned(), data, custom, changes })));
        }
        Ok(decisions)
    }

    pub(crate) async fn write_orders(
        conn: &mut Conn,
        ctx: &AuthContext,
        rows: &[WriteRow<OrderPatch>],
        all_or_none: bool,
        at: DateTime<Utc>,
    ) -> Result<Written, crate::error::DbError> {
        let decisions = plan_orders(conn, ctx, rows, at).await?;
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
                    .push_bind(d.number.clone())
                    .push_bind(d.external_id.clone())
                    .push_bind(d.contact_id)
                    .push_bind(d.company_id)
                    .push_bind(d.status.as_str())
                    .push_bind(d.ordered_at)
                    .push_bind(d.currency.clone())
                    .push_bind(d.total_minor)
                    .push_bind(Json(d.lines.clone()))
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
                .bind(&d.number)
                .bind(&d.external_id)
                .bind(d.contact_id)
                .bind(d.company_id)
                .bind(d.status.as_str())
                .bind(d.ordered_at)
                .bind(&d.currency)
                .bind(d.total_minor)
                .bind(Json(&d.lines))
                .bind(Json(&p.custom))
                .bind(d.search_text())
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        let ids: Vec<Uuid> = planned.iter().map(|p| p.id).collect();
        sql::index_search_many(conn, &ORDERS, &ids).await?;
        // The purchases of every contact and company an order left or joined.
        let mut contacts = HashSet::new();
        let mut companies = HashSet::new();
        for p in &planned {
            contacts.extend(p.data.contact_id);
            companies.extend(p.data.company_id);
            if let Some(before) = &p.before {
                contacts.extend(before.data.contact_id);
                companies.extend(before.data.company_id);
            }
        }
        refresh_purchases(conn, ctx.org_id, ObjectType::Contact, &contacts.into_iter().collect::<Vec<_>>()).await?;
        refresh_purchases(conn, ctx.org_id, ObjectType::Company, &companies.into_iter().collect::<Vec<_>>()).await?;
        let events: Vec<NewEvent<'_>> = planned.iter().map(|p| NewEvent {
            object: ObjectType::Order,
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
impl OrderStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, rows = rows.len()))]
    async fn write(
        &self,
        ctx: &AuthContext,
        rows: Vec<WriteRow<OrderPatch>>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        write_retrying!(self, ctx, |tx, sql, at| sql::write_orders(
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
                sql::delete_records(&mut tx, ctx, &ORDERS, &targets, all_or_none, at).await?;
            if written.commit {
                let deleted: Vec<Uuid> = written
                    .outcomes
                    .iter()
                    .filter_map(|o| o.result.as_ref().ok().map(|(_, id)| *id))
                    .collect();
                let gone = sql::load_orders(&mut *tx, ctx, &deleted, false).await?;
                let contacts: Vec<Uuid> = gone.iter().filter_map(|o| o.data.contact_id).collect();
                let companies: Vec<Uuid> = gone.iter().filter_map(|o| o.data.company_id).collect();
                sql::refresh_purchases(&mut tx, ctx.org_id, ObjectType::Contact, &contacts).await?;
                sql::refresh_purchases(&mut tx, ctx.org_id, ObjectType::Company, &companies)
                    .await?;
                tx.commit().await?;
            }
            Ok(written.outcomes)
        })
    }

    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Order, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            match sql::load_orders(pool, ctx, &[id], true)
                .await?
                .into_iter()
                .next()
            {
                Some(order) => Ok(order),
                None => Err(StoreError::NotFound.into()),
            }
        })
    }

    async fn get_many(&self, ctx: &AuthContext, ids: &[Uuid]) -> Result<Vec<Order>, StoreError> {
        on_db!(&self.db, read, |pool, sql| sql::load_orders(
            pool, ctx, ids, false
        )
        .await)
    }

    async fn restore(&self, ctx: &AuthContext, id: Uuid) -> Result<Order, StoreError> {
        let at = crate::rows::now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            // Restores of one record at once: one restores it, the others find it live.
            sql::lock_row(&mut tx, &ORDERS, ctx.org_id, id).await?;
            let Some(current) = sql::load_orders(&mut *tx, ctx, &[id], false)
                .await?
                .into_iter()
                .next()
            else {
                return Err(StoreError::NotFound.into());
            };
            if current.deleted_at.is_none() {
                return Ok(current);
            }
            if let Some(number) = &current.data.number {
                let taken: Option<Uuid> = sqlx::query_scalar("select id from orders where org_id = $1 and number = $2 and deleted_at is null")
                    .bind(ctx.org_id)
                    .bind(number)
                    .fetch_optional(&mut *tx)
                    .await?;
                if taken.is_some() {
                    return Err(StoreError::Conflict {
                        field: Some("number".into()),
                    }
                    .into());
                }
            }
            sqlx::query(RESTORE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            sql::refresh_purchases(
                &mut tx,
                ctx.org_id,
                ObjectType::Contact,
                &current.data.contact_id.into_iter().collect::<Vec<_>>(),
            )
            .await?;
            sql::refresh_purchases(
                &mut tx,
                ctx.org_id,
                ObjectType::Company,
                &current.data.company_id.into_iter().collect::<Vec<_>>(),
            )
            .await?;
            let changes = crate::records::deleted_changes(current.deleted_at, None);
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Order,
                    id,
                    action: EventAction::Restored,
                    changes: &changes,
                    merged_ids: &[],
                }],
                at,
            )
            .await?;
            let restored = sql::load_orders(&mut *tx, ctx, &[id], false)
                .await?
                .into_iter()
                .next()
                .ok_or(StoreError::NotFound)?;
            tx.commit().await?;
            Ok(restored)
        })
    }

    async fn list(
        &self,
        ctx: &AuthContext,
        request: &ListRequest,
    ) -> Result<Page<Order>, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            let definitions = sql::custom_fields(pool, ctx.org_id, ObjectType::Order).await?;
            let plan = crate::records::plan(&ORDERS, request, &definitions)?;
            let base = |qb: &mut sql::Builder| {
                qb.push_bind(ctx.org_id).push(if request.deleted {
                    " and t.deleted_at is not null"
                } else {
                    " and t.deleted_at is null"
                });
                if let Some(filter) = &plan.filter {
                    qb.push(" and ");
                    sql::push_filter(qb, ctx, filter, &ORDERS, "t", false);
                }
                if let Some(q) = &request.q {
                    sql::push_search(qb, &ORDERS, q);
                }
            };
            let mut qb = sql::Builder::new(SELECT_BY_IDS);
            base(&mut qb);
            if let Some((values, after_id)) = &plan.after {
                sql::push_after(&mut qb, &ORDERS, &plan.sort, values, *after_id)?;
            }
            sql::push_order(&mut qb, &ORDERS, &plan.sort);
            qb.push(" limit ")
                .push_bind(i64::from(request.page.limit) + 1);
            let rows: Vec<OrderRow> = qb.build_query_as().fetch_all(pool).await?;
            let total = if request.page.with_total {
                let mut count =
                    sql::Builder::new("select count(*) from orders t where t.org_id = ");
                base(&mut count);
                Some(count.build_query_scalar::<i64>().fetch_one(pool).await?)
            } else {
                None
            };
            Ok(Page::from_rows(
                orders(rows)?,
                request.page.limit,
                |o| row_cursor(&plan, o),
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
            if !sql::is_visible(pool, ctx, &ORDERS, id).await? {
                return Err(StoreError::NotFound.into());
            }
            sql::history(pool, ctx.org_id, ObjectType::Order, id, page).await
        })
    }
}
