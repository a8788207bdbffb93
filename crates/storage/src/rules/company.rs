//! Companies' rules that need the database: the hierarchy stays acyclic and at most
//! [`MAX_DEPTH`] deep; a lifecycle stage change is timed and recorded; and a company's
//! contacts search its name (a contact's search text ends with its company's name).

use rapport_domain::{AuthContext, FieldIssue, ObjectType};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::engine::write::Drafting;

/// A hierarchy deeper than this is refused (and stops the cycle check).
const MAX_DEPTH: usize = 50;

const PARENT_OF: &str =
    "select parent_company_id from companies where org_id = $1 and id = $2 and deleted_at is null";

fn parent(values: &Map<String, Value>) -> Option<Uuid> {
    values
        .get("parent_company_id")
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok())
}

per_backend! {
    pub(crate) async fn company_prepare(
        conn: &mut Conn,
        ctx: &AuthContext,
        drafts: &mut [Drafting<'_>],
    ) -> Result<(), crate::error::DbError> {
        crate::rules::time_stage_changes(drafts);
        for draft in drafts.iter_mut() {
            let before = draft.before.map(|b| &b.values);
            let Some(new_parent) = parent(&draft.values).filter(|p| before.and_then(parent) != Some(*p)) else {
                continue;
            };
            let Some(id) = draft.before.map(|b| b.id) else { continue };
            if let Some(issue) = check_parent(conn, ctx.org_id, id, new_parent).await? {
                draft.issues.push(issue);
            }
        }
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
            current = next.flatten();
        }
        Ok(None)
    }

    pub(crate) async fn company_after(
        conn: &mut Conn,
        ctx: &AuthContext,
        touched: &[crate::rules::Touched<'_>],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), crate::error::DbError> {
        for (id, before, after) in touched {
            let Some(after) = after else { continue };
            let name = |values: Option<&Map<String, Value>>| values.and_then(|v| v.get("name")).and_then(Value::as_str).map(str::to_owned);
            if before.is_some() && name(*before) != name(Some(after))
                && let Some(name) = name(Some(after))
            {
                sql::contacts_follow_company(conn, ctx.org_id, *id, &name).await?;
            }
        }
        let stages = crate::rules::stage_changes(touched);
        sql::record_lifecycles(conn, ctx, ObjectType::Company, &stages, at).await
    }

    /// The contacts and orders moved over from the duplicates: the contacts search the
    /// primary's name, and its purchase figures count the orders.
    pub(crate) async fn company_merged(
        conn: &mut Conn,
        ctx: &AuthContext,
        primary: Uuid,
        values: &Map<String, Value>,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), crate::error::DbError> {
        if let Some(name) = values.get("name").and_then(Value::as_str) {
            sql::contacts_follow_company(conn, ctx.org_id, primary, name).await?;
        }
        sql::refresh_company_purchases(conn, ctx, &[primary], at).await
    }
}
