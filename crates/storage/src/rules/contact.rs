//! Contacts' rules that need the database: a consent whose status changes is timed, a
//! lifecycle stage change is timed and recorded, a contact searches its company's name (also
//! when the company is renamed), and a namesake at the same company is a likely duplicate.

use std::collections::{BTreeSet, HashMap};

use rapport_domain::kit::record::Record;
use rapport_domain::objects::contact::COMPANY_NAME;
use rapport_domain::{AuthContext, ObjectType};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::write::Drafting;

const SAME_NAME_AT_COMPANY: &str = "select id from contacts where org_id = $1 and company_id = $2 \
     and lower(coalesce(first_name, '')) = lower($3) and lower(coalesce(last_name, '')) = lower($4) \
     and id <> $5 and deleted_at is null limit 50";

fn company_of(values: &Map<String, Value>) -> Option<Uuid> {
    values
        .get("company_id")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// Each channel a write sets to another status gets the write's time, unless it gives one.
fn time_consent(draft: &mut Drafting<'_>) {
    let Some(given) = draft.given.get("consent").and_then(Value::as_object) else {
        return;
    };
    let before = draft.before.and_then(|b| b.values.get("consent")).cloned();
    let at = rapport_domain::values::timestamp(&draft.at);
    let Some(Value::Object(consent)) = draft.values.get_mut("consent") else {
        return;
    };
    for (channel, change) in given {
        if change.get("changed_at").is_some_and(|t| !t.is_null()) {
            continue;
        }
        let was = before
            .as_ref()
            .and_then(|b| b.get(channel))
            .and_then(|c| c.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let Some(Value::Object(line)) = consent.get_mut(channel) else {
            continue;
        };
        let now = line
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        if now != was {
            line.insert("changed_at".into(), Value::from(at.clone()));
        }
    }
}

per_backend! {
    pub(crate) async fn contact_prepare(
        conn: &mut Conn,
        ctx: &AuthContext,
        drafts: &mut [Drafting<'_>],
    ) -> Result<(), crate::error::DbError> {
        crate::rules::time_stage_changes(drafts);
        for draft in drafts.iter_mut() {
            time_consent(draft);
        }
        // The companies' names, which their contacts are searched by.
        let companies: BTreeSet<Uuid> = drafts.iter().filter_map(|d| company_of(&d.values)).collect();
        if companies.is_empty() {
            return Ok(());
        }
        let mut qb = sql::Builder::new("select id, name from companies where org_id = ");
        qb.push_bind(ctx.org_id).push(" and id in ");
        sql::push_list(&mut qb, companies);
        let names: HashMap<Uuid, String> = qb.build_query_as::<(Uuid, String)>().fetch_all(&mut *conn).await?.into_iter().collect();
        for draft in drafts.iter_mut() {
            if let Some(name) = company_of(&draft.values).and_then(|c| names.get(&c)) {
                draft.values.insert(COMPANY_NAME.into(), Value::from(name.clone()));
            }
        }
        Ok(())
    }

    pub(crate) async fn contact_after(
        conn: &mut Conn,
        ctx: &AuthContext,
        touched: &[crate::rules::Touched<'_>],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), crate::error::DbError> {
        let stages = crate::rules::stage_changes(touched);
        sql::record_lifecycles(conn, ctx, ObjectType::Contact, &stages, at).await
    }

    /// Contacts with the same first and last name (ignoring case) at the same company.
    pub(crate) async fn contact_duplicates(
        conn: &mut Conn,
        ctx: &AuthContext,
        record: &Record,
    ) -> Result<Vec<(Uuid, String)>, crate::error::DbError> {
        let name = |field: &str| record.value(field).as_str().unwrap_or_default().to_owned();
        let Some(company) = company_of(&record.values) else { return Ok(Vec::new()) };
        if name("first_name").is_empty() && name("last_name").is_empty() {
            return Ok(Vec::new());
        }
        let found: Vec<Uuid> = sqlx::query_scalar(SAME_NAME_AT_COMPANY)
            .bind(ctx.org_id)
            .bind(company)
            .bind(name("first_name"))
            .bind(name("last_name"))
            .bind(record.id)
            .fetch_all(&mut *conn)
            .await?;
        Ok(found.into_iter().map(|id| (id, "same_name_and_company".to_owned())).collect())
    }

    /// The contacts of a renamed company search its new name.
    pub(crate) async fn contacts_follow_company(
        conn: &mut Conn,
        org_id: Uuid,
        company: Uuid,
        name: &str,
    ) -> Result<(), crate::error::DbError> {
        let spec = &rapport_domain::objects::contact::SPEC;
        let layout = crate::engine::layout(spec)?;
        let mut qb = sql::Builder::new(layout.select);
        qb.push_bind(org_id).push(" and t.company_id = ").push_bind(company);
        let contacts = sql::fetch_records(&mut *conn, layout, &mut qb).await?;
        let mut ids = Vec::with_capacity(contacts.len());
        for contact in contacts {
            let mut values = contact.values.clone();
            values.insert(COMPANY_NAME.into(), Value::from(name));
            let text = rapport_domain::kit::record::search_text(spec, &values);
            sqlx::query("update contacts set search_text = $3 where org_id = $1 and id = $2")
                .bind(org_id)
                .bind(contact.id)
                .bind(text)
                .execute(&mut *conn)
                .await?;
            ids.push(contact.id);
        }
        sql::index_search_many(conn, &layout.storage, &ids).await
    }
}
