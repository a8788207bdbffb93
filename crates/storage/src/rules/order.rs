//! Orders' rules that need the database: each line written takes its product's sku and name
//! (and its price, when the product has one in the order's currency); a new order of a
//! contact at a company is the company's too; and the purchase figures of every contact and
//! company an order joins or leaves follow it in the same transaction, as events of those
//! records.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rapport_domain::AuthContext;
use rapport_domain::kit::ObjectSpec;
use rapport_domain::objects::{company, contact};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::write::Drafting;

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

const REFRESH_CONTACTS: &str = refresh_sql!("contacts", "contact_id");
const REFRESH_COMPANIES: &str = refresh_sql!("companies", "company_id");

fn id_of(values: &Map<String, Value>, field: &str) -> Option<Uuid> {
    values
        .get(field)
        .and_then(Value::as_str)
        .and_then(|text| Uuid::parse_str(text).ok())
}

fn lines_mut(values: &mut Map<String, Value>) -> impl Iterator<Item = &mut Map<String, Value>> {
    values
        .get_mut("lines")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

per_backend! {
    pub(crate) async fn order_prepare(
        conn: &mut Conn,
        ctx: &AuthContext,
        drafts: &mut [Drafting<'_>],
    ) -> Result<(), crate::error::DbError> {
        // The products of the lines written (found live by the engine).
        let mut product_ids = BTreeSet::new();
        for draft in drafts.iter_mut().filter(|d| d.given.contains_key("lines")) {
            product_ids.extend(lines_mut(&mut draft.values).filter_map(|line| id_of(line, "product_id")));
        }
        let layout = crate::engine::layout(&rapport_domain::objects::product::SPEC)?;
        let ids: Vec<Uuid> = product_ids.into_iter().collect();
        let products = sql::load_records(&mut *conn, ctx, layout, &ids, true).await?;
        let products: HashMap<Uuid, _> = products.iter().map(|p| (p.id, p)).collect();
        for draft in drafts.iter_mut().filter(|d| d.given.contains_key("lines")) {
            let currency = draft.values.get("currency").cloned().unwrap_or(Value::Null);
            for line in lines_mut(&mut draft.values) {
                let Some(product) = id_of(line, "product_id").and_then(|id| products.get(&id)) else {
                    continue;
                };
                line.insert("sku".into(), product.value("sku").clone());
                line.insert("name".into(), product.value("name").clone());
                if !line.contains_key("unit_price_minor")
                    && !currency.is_null()
                    && *product.value("currency") == currency
                    && !product.value("unit_price_minor").is_null()
                {
                    line.insert("unit_price_minor".into(), product.value("unit_price_minor").clone());
                }
            }
        }
        // A new order of a contact at a company is the company's too.
        let joins = |d: &Drafting<'_>| {
            d.before.is_none()
                && !d.given.contains_key("company_id")
                && !d.given.contains_key("company_external_id")
                && d.values.get("company_id").is_none_or(Value::is_null)
        };
        let contacts: BTreeSet<Uuid> = drafts.iter().filter(|d| joins(d)).filter_map(|d| id_of(&d.values, "contact_id")).collect();
        if !contacts.is_empty() {
            let mut qb = sql::Builder::new("select id, company_id from contacts where org_id = ");
            qb.push_bind(ctx.org_id).push(" and company_id is not null and id in ");
            sql::push_list(&mut qb, contacts);
            let rows: Vec<(Uuid, Uuid)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            let companies: HashMap<Uuid, Uuid> = rows.into_iter().collect();
            for draft in drafts.iter_mut() {
                if !joins(draft) {
                    continue;
                }
                if let Some(company) = id_of(&draft.values, "contact_id").and_then(|c| companies.get(&c)) {
                    draft.values.insert("company_id".into(), Value::from(company.to_string()));
                }
            }
        }
        Ok(())
    }

    /// The purchase figures of every contact and company the touched orders name; each
    /// record whose figures changed is a new version with its event.
    pub(crate) async fn order_after(
        conn: &mut Conn,
        ctx: &AuthContext,
        touched: &[crate::rules::Touched<'_>],
        at: DateTime<Utc>,
    ) -> Result<(), crate::error::DbError> {
        let versions = || touched.iter().flat_map(|(_, before, after)| before.iter().chain(after.iter()));
        let contacts: Vec<Uuid> = versions().filter_map(|v| id_of(v, "contact_id")).collect::<BTreeSet<_>>().into_iter().collect();
        let companies: Vec<Uuid> = versions().filter_map(|v| id_of(v, "company_id")).collect::<BTreeSet<_>>().into_iter().collect();
        refresh_contact_purchases(conn, ctx, &contacts, at).await?;
        refresh_company_purchases(conn, ctx, &companies, at).await
    }

    async fn refresh_purchases(
        conn: &mut Conn,
        ctx: &AuthContext,
        spec: &ObjectSpec,
        statement: &'static str,
        ids: &[Uuid],
        at: DateTime<Utc>,
    ) -> Result<(), crate::error::DbError> {
        sql::follow(conn, ctx, spec, ids, at, crate::engine::follow::Following::Statement(statement)).await
    }

    /// Recomputes the purchase figures of these contacts (after their orders changed or a
    /// merge moved orders).
    pub(crate) async fn refresh_contact_purchases(conn: &mut Conn, ctx: &AuthContext, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), crate::error::DbError> {
        refresh_purchases(conn, ctx, &contact::SPEC, REFRESH_CONTACTS, ids, at).await
    }

    /// Recomputes the purchase figures of these companies (after their orders changed or a
    /// merge moved orders).
    pub(crate) async fn refresh_company_purchases(conn: &mut Conn, ctx: &AuthContext, ids: &[Uuid], at: DateTime<Utc>) -> Result<(), crate::error::DbError> {
        refresh_purchases(conn, ctx, &company::SPEC, REFRESH_COMPANIES, ids, at).await
    }
}
