//! Duplicates and merge, for every object whose declaration opts in (`capabilities.merge`):
//! likely duplicates share a value of a `matching` field (a name ignoring case, a domain, a
//! phone in E.164); a merge fills the primary's empty fields from the duplicates
//! (`record::merge_values`), deletes the duplicates with `merged_into`, points every record
//! that referred to a duplicate at the primary (read from the registry's references), writes
//! the primary through the engine's write (so its rules hold) with one `merged` event, and
//! lets the object's storage rules follow (`rules::merged`).

use chrono::{DateTime, Utc};
use rapport_domain::kit::FieldKind;
use rapport_domain::kit::record::{self, Record, RecordPatch};
use rapport_domain::record::MergeOutcome;
use rapport_domain::write::{RowTarget, WriteRow};
use rapport_domain::{AuthContext, StoreError};
use serde_json::Value;
use uuid::Uuid;

use super::Layout;
use crate::records::check_merge_ids;

/// At most this many duplicates are named per matching field.
const PER_FIELD: i64 = 50;

/// The column and value a matching field compares: a sorted text's lower-case column, a
/// phone's E.164 form, or the field's own.
fn matched(layout: &Layout, record: &Record, field: &str) -> Option<(&'static str, Value)> {
    let spec = layout.spec.field(field)?;
    if spec.kind == FieldKind::Phone {
        let e164 = format!("{field}_e164");
        let value = record.value(&e164).clone();
        let column = layout.storage.column(&e164)?;
        return (!value.is_null()).then_some((column, value));
    }
    let value = record.value(field);
    let column = layout.storage.column(field)?;
    match value {
        Value::Null => None,
        Value::String(text) if layout.sorted.iter().any(|(name, _)| *name == field) => {
            Some((column, Value::from(text.to_lowercase())))
        }
        other => Some((column, other.clone())),
    }
}

per_backend! {
    /// The live records the caller may see that share a matching value with `id`, with the
    /// reasons (`same_<field>`), in id order.
    pub(crate) async fn duplicate_records(
        pool: &sqlx::Pool<Db>,
        ctx: &AuthContext,
        layout: &Layout,
        id: Uuid,
    ) -> Result<Vec<(Record, Vec<String>)>, crate::error::DbError> {
        let everyone = ctx.record_filter(layout.spec.object) == rapport_domain::RecordFilter::All;
        let found = sql::load_records(pool, ctx, layout, &[id], true).await?.pop();
        let record = match found {
            Some(record) if everyone || sql::is_visible(pool, ctx, &layout.storage, id).await? => record,
            _ => return Err(sql::missing(pool, ctx, &layout.storage, id).await?.into()),
        };
        let mut reasons: std::collections::BTreeMap<Uuid, Vec<String>> = Default::default();
        // Emails and phones are matched through their keys (any of a contact's emails).
        let kinds: Vec<&'static str> = crate::engine::write::keys_of(layout, Some(&record.values))
            .into_iter()
            .map(|(kind, _)| kind)
            .filter(|kind| *kind != "tag")
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if !kinds.is_empty() {
            let mut qb = sql::Builder::new("select distinct k2.object_id, k2.kind from record_keys k1 \
                join record_keys k2 on k2.org_id = k1.org_id and k2.object_type = k1.object_type \
                and k2.kind = k1.kind and k2.value = k1.value where k1.org_id = ");
            qb.push_bind(ctx.org_id).push(" and k1.object_type = ").push_bind(layout.spec.object.as_str());
            qb.push(" and k1.object_id = ").push_bind(id).push(" and k2.object_id <> ").push_bind(id);
            qb.push(" and k1.kind in ");
            sql::push_list(&mut qb, kinds.iter().map(|k| (*k).to_owned()));
            qb.push(" limit 200");
            let same: Vec<(Uuid, String)> = qb.build_query_as().fetch_all(pool).await?;
            for (other, kind) in same {
                reasons.entry(other).or_default().push(format!("same_{kind}"));
            }
        }
        let mut conn = pool.acquire().await?;
        for (other, reason) in sql::more_duplicates(&mut conn, ctx, layout.spec.object, &record).await? {
            reasons.entry(other).or_default().push(reason);
        }
        drop(conn);
        for field in layout.spec.fields.iter().filter(|f| f.matching && !crate::engine::write::keyed_kind(f.kind)) {
            let Some((column, value)) = matched(layout, &record, &field.name) else { continue };
            let mut qb = sql::Builder::new("select t.id from ");
            qb.push(layout.storage.table).push(" t where t.org_id = ").push_bind(ctx.org_id);
            qb.push(" and t.deleted_at is null and t.id <> ").push_bind(id);
            qb.push(" and t.").push(column).push(" = ");
            match value {
                Value::String(text) => qb.push_bind(text),
                other => qb.push_bind(other.as_i64()),
            };
            sql::push_visibility(&mut qb, ctx, layout.spec.object);
            qb.push(" order by t.id limit ").push_bind(PER_FIELD);
            let others: Vec<Uuid> = qb.build_query_scalar().fetch_all(pool).await?;
            for other in others {
                reasons.entry(other).or_default().push(format!("same_{}", field.name));
            }
        }
        let ids: Vec<Uuid> = reasons.keys().copied().collect();
        let everyone_seen = sql::load_records(pool, ctx, layout, &ids, true).await?;
        let mut conn = pool.acquire().await?;
        let seen = sql::visible_among(&mut conn, ctx, &layout.storage, &ids).await?;
        let records: Vec<Record> = everyone_seen.into_iter().filter(|r| seen.contains(&r.id)).collect();
        Ok(records
            .into_iter()
            .map(|record| {
                let mut why = reasons.remove(&record.id).unwrap_or_default();
                why.sort();
                why.dedup();
                (record, why)
            })
            .collect())
    }

    /// Merges `duplicates` into `primary` (or, with `dry_run`, answers what that would do).
    pub(crate) async fn merge_records(
        conn: &mut Conn,
        ctx: &AuthContext,
        layout: &Layout,
        primary: Uuid,
        duplicates: &[Uuid],
        dry_run: bool,
        at: DateTime<Utc>,
    ) -> Result<(MergeOutcome<Record>, bool), crate::error::DbError> {
        check_merge_ids(primary, duplicates)?;
        let spec = layout.spec;
        let mut all: Vec<Uuid> = duplicates.to_vec();
        all.push(primary);
        all.sort();
        for id in &all {
            if !sql::lock_live(&mut *conn, ctx, &layout.storage, *id).await? {
                return Err(sql::missing(&mut *conn, ctx, &layout.storage, *id).await?.into());
            }
        }
        let loaded = sql::load_records(&mut *conn, ctx, layout, &all, true).await?;
        let take = |id: Uuid| loaded.iter().find(|r| r.id == id).cloned().ok_or(StoreError::NotFound);
        let target = take(primary)?;
        let dups: Vec<Record> = duplicates.iter().map(|id| take(*id)).collect::<Result<_, _>>()?;
        let (values, custom) = record::merge_values(spec, &target, &dups);
        let after = Record { values: values.clone(), custom: custom.clone(), version: target.version + 1, updated_at: at, ..target.clone() };
        let changes = record::diff_fields(spec, Some(&target), &after);
        if dry_run {
            let merged = Record { version: target.version, updated_at: target.updated_at, ..after };
            return Ok((MergeOutcome { merged, merged_ids: duplicates.to_vec(), changes, dry_run: true }, false));
        }
        let table = layout.storage.table;
        for dup in &dups {
            let mut qb = sql::Builder::new("update ");
            qb.push(table).push(" set deleted_at = ").push_bind(at).push(", merged_into = ").push_bind(primary);
            qb.push(", version = version + 1, updated_at = ").push_bind(at);
            // A unique value the primary takes over leaves the duplicate.
            for (name, column) in std::iter::once(("external_id", "external_id")).chain(layout.unique.iter().copied()) {
                if dup.values.get(name).is_some_and(|v| values.get(name) == Some(v)) {
                    qb.push(", ").push(column).push(" = null");
                }
            }
            qb.push(" where org_id = ").push_bind(ctx.org_id).push(" and id = ").push_bind(dup.id);
            qb.build().execute(&mut *conn).await?;
            // Every record that named the duplicate names the primary.
            for other in rapport_domain::objects::REGISTRY.iter().copied() {
                let fields: &'static [rapport_domain::kit::FieldSpec] = &other.fields;
                for field in fields.iter().filter(|f| f.kind == FieldKind::Reference(spec.object) && !f.read_only) {
                    sql::repoint_followed(&mut *conn, ctx, other, field.name.as_ref(), dup.id, primary, at).await?;
                }
            }
        }
        let mut patch = RecordPatch { values: serde_json::Map::new(), custom: Some(custom) };
        for field in record::writable(spec) {
            let value = values.get(field.name.as_ref()).cloned().unwrap_or(Value::Null);
            patch.values.insert(field.name.to_string(), value);
        }
        let row = WriteRow { target: RowTarget::Update { id: primary, expected_version: None }, patch };
        let written = sql::write_records(&mut *conn, ctx, layout, std::slice::from_ref(&row), true, at, duplicates).await?;
        if let Some(Err(error)) = written.outcomes.into_iter().next().map(|o| o.result) {
            return Err(error.into());
        }
        sql::merged(&mut *conn, ctx, spec.object, primary, &values, at).await?;
        let merged = sql::load_records(&mut *conn, ctx, layout, &[primary], false).await?.pop().ok_or(StoreError::NotFound)?;
        Ok((MergeOutcome { merged, merged_ids: duplicates.to_vec(), changes, dry_run: false }, true))
    }
}
