//! Records whose shown values follow other records: a contact's purchase figures follow its
//! orders, a contact's `company_id` follows a company merge. Such a change is a change of the
//! record like any other — a new version, `updated_at`, and an `updated` event with the
//! changed fields — so that the change feed and webhooks carry it and a mirror built from
//! them equals what GET shows (DESIGN §3: "a derived figure that changes is an event of the
//! record that shows it").

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rapport_domain::AuthContext;
use rapport_domain::kit::ObjectSpec;
use rapport_domain::kit::record::{self, Record};
use rapport_domain::record::{Changes, EventAction};
use uuid::Uuid;

use crate::error::DbError;
use crate::events::NewEvent;

/// The live records among `after` whose shown values differ from `before`, with the changes.
fn changed(spec: &ObjectSpec, before: &[Record], after: &[Record]) -> Vec<(Uuid, Changes)> {
    let before: HashMap<Uuid, &Record> = before.iter().map(|r| (r.id, r)).collect();
    after
        .iter()
        .filter(|r| r.deleted_at.is_none())
        .filter_map(|r| {
            let old = before.get(&r.id)?;
            let changes = record::diff_fields(spec, Some(old), r);
            (!changes.is_empty()).then_some((r.id, changes))
        })
        .collect()
}

/// How the records that follow another change.
pub(crate) enum Following<'a> {
    /// An update statement of the records' table that ends in `where org_id = ` (the
    /// organization and the chunk's ids are added), e.g. one that recomputes figures.
    Statement(&'static str),
    /// `field` names `to` where it named `from` (after a merge).
    Repoint {
        field: &'a str,
        from: Uuid,
        to: Uuid,
    },
}

per_backend! {
    /// Makes the change to the records `ids` of `spec`, and each live one whose shown values
    /// changed a new version with an `updated` event of the changes; a record that did not
    /// change stays as it was. In chunks of 500 records.
    pub(crate) async fn follow(
        conn: &mut Conn,
        ctx: &AuthContext,
        spec: &ObjectSpec,
        ids: &[Uuid],
        at: DateTime<Utc>,
        change: Following<'_>,
    ) -> Result<(), DbError> {
        if ids.is_empty() {
            return Ok(());
        }
        let layout = crate::engine::layout(spec)?;
        let table = layout.storage.table;
        let mut changed_all: Vec<(Uuid, Changes)> = Vec::new();
        for chunk in ids.chunks(500) {
            let before = sql::load_records(&mut *conn, ctx, layout, chunk, false).await?;
            let mut qb = match &change {
                Following::Statement(statement) => sql::Builder::new(*statement),
                Following::Repoint { field, from, to } => {
                    let mut qb = sql::Builder::new("update ");
                    qb.push(table).push(" set ").push(*field).push(" = ").push_bind(*to);
                    qb.push(" where ").push(*field).push(" = ").push_bind(*from).push(" and org_id = ");
                    qb
                }
            };
            qb.push_bind(ctx.org_id).push(" and id in ");
            sql::push_list(&mut qb, chunk.iter().copied());
            qb.build().execute(&mut *conn).await?;
            let after = sql::load_records(&mut *conn, ctx, layout, chunk, false).await?;
            changed_all.extend(changed(spec, &before, &after));
        }
        if changed_all.is_empty() {
            return Ok(());
        }
        for chunk in changed_all.chunks(500) {
            let mut qb = sql::Builder::new("update ");
            qb.push(table).push(" set version = version + 1, updated_at = ").push_bind(at);
            qb.push(" where org_id = ").push_bind(ctx.org_id).push(" and id in ");
            sql::push_list(&mut qb, chunk.iter().map(|(id, _)| *id));
            qb.build().execute(&mut *conn).await?;
        }
        let events: Vec<NewEvent<'_>> = changed_all
            .iter()
            .map(|(id, changes)| NewEvent { object: spec.object, id: *id, action: EventAction::Updated, changes, merged_ids: &[] })
            .collect();
        sql::insert_events(conn, ctx, &events, at).await
    }

    /// Points every record of `spec` whose `field` names `from` at `to` (after a merge); each
    /// live one becomes a new version with its event.
    pub(crate) async fn repoint_followed(
        conn: &mut Conn,
        ctx: &AuthContext,
        spec: &ObjectSpec,
        field: &str,
        from: Uuid,
        to: Uuid,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let layout = crate::engine::layout(spec)?;
        let mut qb = sql::Builder::new("select id from ");
        qb.push(layout.storage.table).push(" where org_id = ").push_bind(ctx.org_id);
        qb.push(" and ").push(field).push(" = ").push_bind(from);
        let ids: Vec<Uuid> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        follow(conn, ctx, spec, &ids, at, Following::Repoint { field, from, to }).await
    }
}
