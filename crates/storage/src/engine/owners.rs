//! Owners of the records of owned objects (`capabilities.owned`).

use rapport_domain::AuthContext;
use rapport_domain::FieldIssue;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::write::Drafting;

per_backend! {
    /// An owned object's owners: a new record belongs to the caller unless it names an owner;
    /// an owner a write gives must be an active user of the organization, and one the caller
    /// may give (a sales user keeps records within what they see).
    pub(crate) async fn settle_owners(
        conn: &mut Conn,
        ctx: &AuthContext,
        object: rapport_domain::ObjectType,
        drafting: &mut [Drafting<'_>],
    ) -> Result<(), crate::error::DbError> {
        let owner_of = |values: &Map<String, Value>| {
            values.get("owner_id").and_then(Value::as_str).and_then(|id| Uuid::parse_str(id).ok())
        };
        let mut owners = std::collections::HashSet::new();
        for d in drafting.iter_mut() {
            if d.before.is_none() && !d.given.contains_key("owner_id") {
                d.values.insert("owner_id".into(), Value::from(ctx.user_id.to_string()));
            }
            let owner = owner_of(&d.values);
            if let Some(owner) = owner.filter(|o| d.before.and_then(|b| owner_of(&b.values)) != Some(*o)) {
                owners.insert(owner);
            }
        }
        let mut active = std::collections::HashSet::new();
        if !owners.is_empty() {
            let mut qb = sql::Builder::new("select id from users where org_id = ");
            qb.push_bind(ctx.org_id).push(" and active and id in ");
            sql::push_list(&mut qb, owners.iter().copied());
            active.extend(qb.build_query_scalar::<Uuid>().fetch_all(&mut *conn).await?);
        }
        let permitted = sql::permitted_owners(conn, ctx, object, &owners).await?;
        for d in drafting.iter_mut() {
            let before = d.before.map(|b| owner_of(&b.values));
            let owner = owner_of(&d.values);
            if owner.is_some_and(|o| before != Some(Some(o)) && !active.contains(&o)) {
                d.issues.push(FieldIssue::new("owner_id", "not_found", "names no active user of your organization"));
            }
            d.owner_refused = crate::records::owner_refused(permitted.as_ref(), before, owner);
        }
        Ok(())
    }

}
