//! Soft deletes of records named by id or an id property, and repointing references after a
//! merge, for every record table.

use chrono::{DateTime, Utc};
use rapport_domain::record::{Change, Changes, EventAction};
use rapport_domain::write::{IdProperty, RowOutcome, RowStatus, RowTarget};
use rapport_domain::{AuthContext, FieldIssue, StoreError};
use serde_json::Value;
use uuid::Uuid;

use super::Spec;
use crate::error::DbError;

per_backend! {
    /// Soft-deletes the records the targets name (by id or an id property); one outcome per
    /// target, in order, and a `deleted` event for each deleted record.
    pub(crate) async fn delete_records(
        conn: &mut Conn,
        ctx: &AuthContext,
        spec: &Spec,
        targets: &[RowTarget],
        all_or_none: bool,
        at: DateTime<Utc>,
    ) -> Result<crate::records::Written, DbError> {
        use std::collections::HashMap;
        // Find every target's record among the live, visible ones.
        let mut found: Vec<Result<(Uuid, Option<i64>), StoreError>> = Vec::with_capacity(targets.len());
        let mut seen: HashMap<Uuid, usize> = HashMap::new();
        for (index, target) in targets.iter().enumerate() {
            let lookup: Result<Option<(Uuid, i64)>, StoreError> = match target {
                RowTarget::Update { id, .. } => find_live(conn, ctx, spec, "id", false, &id.to_string(), Some(*id)).await?,
                RowTarget::Upsert { property, value } => match spec.key_column(*property) {
                    Some((column, fold)) => {
                        let id = if *property == IdProperty::Id { Uuid::parse_str(value).ok() } else { None };
                        if *property == IdProperty::Id && id.is_none() {
                            Err(StoreError::NotFound)
                        } else {
                            find_live(conn, ctx, spec, column, fold, value, id).await?
                        }
                    }
                    None => Err(StoreError::Invalid(vec![FieldIssue::new(
                        "id_property",
                        "invalid_value",
                        format!("{} records are not found by {}", spec.object, property.as_str()),
                    )])),
                },
                RowTarget::Create => Err(StoreError::NotFound),
            };
            let expected = match target {
                RowTarget::Update { expected_version, .. } => *expected_version,
                _ => None,
            };
            found.push(match lookup {
                Ok(Some((id, version))) => match expected {
                    Some(v) if v != version => Err(StoreError::VersionMismatch { current: version }),
                    _ => match seen.get(&id) {
                        Some(first) => Err(StoreError::Invalid(vec![FieldIssue::new(
                            "id",
                            "duplicate_in_batch",
                            format!("row {first} of this batch already deletes this record"),
                        )])),
                        None => {
                            seen.insert(id, index);
                            Ok((id, expected))
                        }
                    },
                },
                Ok(None) => Err(StoreError::NotFound),
                Err(error) => Err(error),
            });
        }
        recheck_locked(conn, ctx, spec, &mut found).await?;
        let failed = found.iter().any(Result::is_err);
        if all_or_none && failed {
            let outcomes = found
                .into_iter()
                .map(|f| RowOutcome::error(f.err().unwrap_or(StoreError::NotApplied)))
                .collect();
            return Ok(crate::records::Written { outcomes, commit: false });
        }
        let ids: Vec<Uuid> = found.iter().filter_map(|f| f.as_ref().ok().map(|(id, _)| *id)).collect();
        for chunk in ids.chunks(500) {
            let mut qb = sql::Builder::new("update ");
            qb.push(spec.table)
                .push(" set deleted_at = ")
                .push_bind(at)
                .push(", version = version + 1, updated_at = ")
                .push_bind(at)
                .push(" where org_id = ")
                .push_bind(ctx.org_id)
                .push(" and id in ");
            sql::push_list(&mut qb, chunk.iter().copied());
            qb.build().execute(&mut *conn).await?;
        }
        let time = Value::from(at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
        let changes = Changes::from([("deleted_at".to_owned(), Change { old: Value::Null, new: time })]);
        let events: Vec<crate::events::NewEvent<'_>> = ids
            .iter()
            .map(|id| crate::events::NewEvent { object: spec.object, id: *id, action: EventAction::Deleted, changes: &changes, merged_ids: &[] })
            .collect();
        sql::append_events(conn, ctx, &events, at).await?;
        let outcomes = found
            .into_iter()
            .map(|f| match f {
                Ok((id, _)) => RowOutcome::ok(RowStatus::Deleted, id),
                Err(error) => RowOutcome::error(error),
            })
            .collect();
        Ok(crate::records::Written { outcomes, commit: true })
    }

    /// Locks the records a batch delete found (in id order, see [`push_lock_rows`]) and
    /// checks each again as it is now: a concurrent write may have deleted or merged it, or
    /// changed its version, since it was looked up. What no longer holds becomes that row's
    /// error, so a record is deleted once and an `If-Match` holds against the committed
    /// version.
    async fn recheck_locked(
        conn: &mut Conn,
        ctx: &AuthContext,
        spec: &Spec,
        found: &mut [Result<(Uuid, Option<i64>), StoreError>],
    ) -> Result<(), DbError> {
        let ids: Vec<Uuid> = found.iter().filter_map(|f| f.as_ref().ok().map(|(id, _)| *id)).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let mut live = std::collections::HashMap::new();
        for chunk in ids.chunks(500) {
            let mut qb = sql::Builder::new("select t.id, t.version from ");
            qb.push(spec.table).push(" t where t.org_id = ").push_bind(ctx.org_id).push(" and t.deleted_at is null and t.id in ");
            sql::push_list(&mut qb, chunk.iter().copied());
            sql::push_lock_rows(&mut qb);
            let rows: Vec<(Uuid, i64)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            live.extend(rows);
        }
        let gone: Vec<Uuid> = ids.iter().copied().filter(|id| !live.contains_key(id)).collect();
        let merged = sql::missing_many(conn, ctx, spec, &gone).await?;
        for row in found.iter_mut() {
            let Ok((id, expected)) = row else { continue };
            match (live.get(id), *expected) {
                (None, _) => {
                    *row = Err(match merged.get(id).copied().flatten() {
                        Some(into) => StoreError::Merged { into },
                        None => StoreError::NotFound,
                    });
                }
                (Some(&current), Some(expected)) if current != expected => {
                    *row = Err(StoreError::VersionMismatch { current });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The live, visible record whose `column` is `value`, with its version.
    async fn find_live(
        conn: &mut Conn,
        ctx: &AuthContext,
        spec: &Spec,
        column: &'static str,
        fold: bool,
        value: &str,
        id: Option<Uuid>,
    ) -> Result<Result<Option<(Uuid, i64)>, StoreError>, DbError> {
        let mut qb = sql::Builder::new("select t.id, t.version from ");
        qb.push(spec.table).push(" t where t.org_id = ").push_bind(ctx.org_id).push(" and t.deleted_at is null and ");
        match id {
            Some(id) => {
                qb.push("t.id = ").push_bind(id);
            }
            None if fold => {
                // `is not null` lets SQLite use a partial unique index on the folded column.
                qb.push("t.").push(column).push(" is not null and lower(t.").push(column).push(") = ").push_bind(value.to_lowercase());
            }
            None => {
                qb.push("t.").push(column).push(" = ").push_bind(value.to_owned());
            }
        }
        sql::push_visibility(&mut qb, ctx, spec.object);
        qb.push(" limit 1");
        let row: Option<(Uuid, i64)> = qb.build_query_as().fetch_optional(&mut *conn).await?;
        if row.is_some() {
            return Ok(Ok(row));
        }
        // A merged record says where it went (when the caller may see it).
        if let Some(id) = id
            && let StoreError::Merged { into } = sql::missing(&mut *conn, ctx, spec, id).await?
        {
            return Ok(Err(StoreError::Merged { into }));
        }
        Ok(Ok(None))
    }
}
