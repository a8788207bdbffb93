//! What every customer-data table shares, written once: record visibility and locks, list
//! plans and cursors, unique custom values; the keys table, custom field definitions, the
//! SQLite search index and lifecycle notes are [`keys`], deletes and repointing [`deletes`],
//! the filter-tree compiler, keyset sorting and search [`filter`]. Each object describes its
//! table with a [`Spec`].
use chrono::{DateTime, Utc};
use rapport_domain::custom_field::CustomFieldDef;
use rapport_domain::page::Cursor;
use rapport_domain::query::{
    Catalog, Condition, FieldKind, Filter, Node, Op, Operand, Scalar, SortKey, Target, parse_sort,
    resolve, sort_signature,
};
use rapport_domain::store::ListRequest;
use rapport_domain::write::IdProperty;
use rapport_domain::{AuthContext, Backend, FieldIssue, ObjectType, RecordFilter, StoreError};
use serde_json::Value;
use uuid::Uuid;

use crate::error::DbError;

pub(crate) mod deletes;
pub(crate) mod filter;
pub(crate) mod keys;
#[cfg(test)]
mod properties;
mod written;

pub(crate) use written::{Written, check_merge_ids, deleted_changes};

/// How one object is stored.
pub(crate) struct Spec {
    pub object: ObjectType,
    pub table: &'static str,
    /// The SQLite FTS5 table mirroring `search_text` (by rowid = `rid`).
    pub search_table: &'static str,
    /// Field name → column (see `engine::layout`).
    pub columns: Vec<(&'static str, &'static str)>,
    pub relations: &'static [RelationSpec],
    /// What filters may name, for `resolve`.
    pub catalog_fields: &'static [rapport_domain::query::FieldInfo],
    pub catalog_relations: &'static [rapport_domain::query::RelationInfo],
    /// The columns its natural keys find records by (compared case-insensitively when the
    /// third part is true); an object is not found by the others.
    pub keys: &'static [(IdProperty, &'static str, bool)],
}

/// A relation filters may cross: `company.industry` on contacts.
pub(crate) struct RelationSpec {
    pub name: &'static str,
    /// The related object, whose storage view is found when a filter follows the relation
    /// (so that specs may name each other).
    pub object: ObjectType,
    /// The column of this object that points at the related record.
    pub foreign_key: &'static str,
}

impl Spec {
    /// The column a standard field is stored in.
    pub(crate) fn column(&self, field: &str) -> Option<&'static str> {
        self.columns
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, c)| *c)
    }

    /// The column `property` finds records by, and whether it ignores case.
    pub(crate) fn key_column(&self, property: IdProperty) -> Option<(&'static str, bool)> {
        self.keys
            .iter()
            .find(|(key, _, _)| *key == property)
            .map(|(_, column, fold)| (*column, *fold))
    }

    fn relation(&self, name: &str) -> Option<&RelationSpec> {
        self.relations.iter().find(|r| r.name == name)
    }
}

/// Which of some records of one object the caller may see (see [`sqlite::visible_among`]).
pub(crate) struct Visible(Option<std::collections::HashSet<Uuid>>);

impl Visible {
    pub(crate) fn contains(&self, id: &Uuid) -> bool {
        self.0.as_ref().is_none_or(|seen| seen.contains(id))
    }

    /// `id` when the caller may see that record, for answers that name a record (a conflict's
    /// holder): a hidden record's id is never told.
    pub(crate) fn named(&self, id: Uuid) -> Option<Uuid> {
        self.contains(&id).then_some(id)
    }
}

/// Whether a write must be refused because it would give its record an owner outside what
/// the caller sees. `permitted` is [`sqlite::permitted_owners`]' answer; `before` the
/// record's owner before the write (None for a new record). An owner the write leaves as it
/// was is the caller's to keep (they found the record through their visibility); clearing
/// the owner makes the record visible only to those who see everything.
pub(crate) fn owner_refused(
    permitted: Option<&std::collections::HashSet<Uuid>>,
    before: Option<Option<Uuid>>,
    owner: Option<Uuid>,
) -> bool {
    let Some(permitted) = permitted else {
        return false;
    };
    if before == Some(owner) {
        return false;
    }
    owner.is_none_or(|owner| !permitted.contains(&owner))
}

/// A unique custom value another record holds: the holder is named when the caller may see it.
pub(crate) fn custom_taken(key: &str, holder: Option<Uuid>) -> FieldIssue {
    let message = match holder {
        Some(holder) => format!("must be unique; record {holder} already has this value"),
        None => "must be unique; another record already has this value".to_owned(),
    };
    FieldIssue::new(format!("custom.{key}"), "taken", message)
}

/// A batch row's unique custom values that another record holds (`taken` says so) or an
/// earlier row of the batch claimed; the row's values are claimed for the rows after it.
pub(crate) fn unique_custom_issues(
    definitions: &[CustomFieldDef],
    custom: &serde_json::Map<String, Value>,
    id: Uuid,
    holders: &std::collections::HashMap<(String, String), Uuid>,
    claimed: &mut std::collections::HashMap<(String, String), usize>,
    index: usize,
    taken: impl Fn(&str) -> FieldIssue,
) -> Vec<FieldIssue> {
    let mut issues = Vec::new();
    for def in definitions.iter().filter(|d| d.unique) {
        let Some(value) = custom.get(&def.key) else {
            continue;
        };
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        if holders
            .get(&(def.key.clone(), text.clone()))
            .is_some_and(|holder| *holder != id)
        {
            issues.push(taken(&def.key));
        } else if let Some(first) = claimed.insert((format!("custom.{}", def.key), text), index) {
            issues.push(FieldIssue::new(
                format!("custom.{}", def.key),
                "duplicate_in_batch",
                format!("row {first} of this batch already has this value"),
            ));
        }
    }
    issues
}

/// Standard sort: newest first.
pub(crate) const DEFAULT_SORT: &[(&str, bool)] = &[("created_at", true)];

/// A checked list request: filter and sort resolved against the object's fields.
pub(crate) struct Plan {
    pub filter: Option<Filter>,
    pub sort: Vec<SortKey>,
    pub signature: String,
    pub after: Option<(Vec<Value>, Uuid)>,
}

/// Resolves a list request against the catalog and the organization's custom fields.
pub(crate) fn plan(
    spec: &Spec,
    request: &ListRequest,
    custom: &[CustomFieldDef],
) -> Result<Plan, StoreError> {
    let catalog = Catalog {
        fields: spec.catalog_fields,
        relations: spec.catalog_relations,
        custom,
    };
    let mut issues = Vec::new();
    let filter = match &request.filter {
        Some(raw) => match resolve(raw, &catalog) {
            Ok(filter) => Some(filter),
            Err(found) => {
                issues.extend(found);
                None
            }
        },
        None => None,
    };
    let requested: Vec<(String, bool)> = if request.sort.is_empty() {
        DEFAULT_SORT
            .iter()
            .map(|(f, d)| ((*f).to_owned(), *d))
            .collect()
    } else {
        request.sort.clone()
    };
    let sort = match parse_sort(&requested, &catalog, "sort") {
        Ok(sort) => sort,
        Err(found) => {
            issues.extend(found);
            Vec::new()
        }
    };
    if let Some(q) = &request.q
        && (q.trim().is_empty() || q.chars().count() > 200)
    {
        issues.push(FieldIssue::new(
            "q",
            "invalid_value",
            "must be 1 to 200 characters",
        ));
    }
    if !issues.is_empty() {
        return Err(StoreError::Invalid(issues));
    }
    let signature = sort_signature(&sort);
    let after = match &request.page.after {
        None => None,
        Some(cursor) if cursor.sort == signature && cursor.values.len() == sort.len() => {
            Some((cursor.values.clone(), cursor.id))
        }
        Some(_) => {
            return Err(StoreError::Invalid(vec![FieldIssue::new(
                "cursor",
                "invalid_value",
                "belongs to another sort order; start again without a cursor",
            )]));
        }
    };
    Ok(Plan {
        filter,
        sort,
        signature,
        after,
    })
}

/// The cursor after a row whose sort key values are `values`.
pub(crate) fn cursor(plan: &Plan, values: Vec<Value>, id: Uuid) -> Cursor {
    Cursor::new(plan.signature.clone(), values, id)
}

/// `%`, `_` and `\` taken literally in a LIKE pattern (with `escape '\'`).
pub(crate) fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The text `q` looks for, lower case, and its digits when it looks like a phone number.
pub(crate) fn search_terms(q: &str) -> (String, Option<String>) {
    let text = q.trim().to_lowercase();
    let phone_like = text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' ' | '(' | ')' | '.'));
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    let digits = (phone_like && digits.len() >= 3 && digits != text).then_some(digits);
    (text, digits)
}

/// A phrase for FTS5 MATCH: the whole text as one quoted string.
pub(crate) fn fts_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Standard text fields compare case-insensitively: the value is lowered, and the column too
/// unless it is stored lower case already (`name` is `sort_name`).
fn case_folding(target: &Target) -> (bool, bool) {
    match target {
        Target::Standard(info) | Target::Related { field: info, .. }
            if info.kind == FieldKind::Text =>
        {
            (info.name != "name", true)
        }
        _ => (false, false),
    }
}

/// The issue of a cursor value that does not fit its sort key.
fn bad_cursor() -> StoreError {
    StoreError::Invalid(vec![FieldIssue::new(
        "cursor",
        "invalid_value",
        "is not a cursor this API issued",
    )])
}

per_backend! {
    pub(crate) type Builder = sqlx::QueryBuilder<Db>;

    /// `and <visibility of object for ctx>` on the record alias `t`.
    pub(crate) fn push_visibility(qb: &mut Builder, ctx: &AuthContext, object: ObjectType) {
        push_visibility_on(qb, ctx, object, "t");
    }

    /// `and <visibility of object for ctx>` on the record alias `alias` (a constant of the
    /// caller, never input). Visibility depends on the record's `owner_id` alone: a record
    /// without an owner is seen only by those who see everything.
    pub(crate) fn push_visibility_on(qb: &mut Builder, ctx: &AuthContext, object: ObjectType, alias: &str) {
        match ctx.record_filter(object) {
            RecordFilter::All => {}
            RecordFilter::OwnedBy(user) => {
                qb.push(" and ").push(alias).push(".owner_id = ").push_bind(user);
            }
            RecordFilter::Team { user_id, team_id: None } => {
                qb.push(" and ").push(alias).push(".owner_id = ").push_bind(user_id);
            }
            RecordFilter::Team { user_id, team_id: Some(team) } => {
                qb.push(" and (").push(alias).push(".owner_id = ")
                    .push_bind(user_id)
                    .push(" or ").push(alias).push(".owner_id in (select vu.id from users vu where vu.org_id = ")
                    .push_bind(ctx.org_id)
                    .push(" and vu.team_id = ")
                    .push_bind(team)
                    .push("))");
            }
            RecordFilter::ManagedBy(manager) => {
                qb.push(" and (").push(alias).push(".owner_id = ")
                    .push_bind(manager)
                    .push(" or ").push(alias).push(".owner_id in (select vu.id from users vu join teams vt on vt.id = vu.team_id where vt.org_id = ")
                    .push_bind(ctx.org_id)
                    .push(" and vt.manager_id = ")
                    .push_bind(manager)
                    .push("))");
            }
        }
    }

    /// The owners among `owners` to whom the caller may give a record of `object`: those
    /// whose records the caller sees, decided by the very predicate reads use
    /// ([`push_visibility`]) applied to each candidate as a record's owner. None: any owner
    /// (the caller sees every record of the object). A write that would make its record
    /// invisible to its writer is refused instead of stored ([`StoreError::OwnerNotPermitted`]);
    /// it runs inside the write's transaction, so a team change that commits first counts.
    pub(crate) async fn permitted_owners(
        conn: &mut Conn,
        ctx: &AuthContext,
        object: ObjectType,
        owners: &std::collections::HashSet<Uuid>,
    ) -> Result<Option<std::collections::HashSet<Uuid>>, DbError> {
        if ctx.record_filter(object) == RecordFilter::All {
            return Ok(None);
        }
        if owners.is_empty() {
            return Ok(Some(Default::default()));
        }
        let mut qb = Builder::new("select t.owner_id from (select id as owner_id from users where org_id = ");
        qb.push_bind(ctx.org_id).push(" and id in ");
        push_list(&mut qb, owners.iter().copied());
        qb.push(") t where t.owner_id is not null");
        push_visibility(&mut qb, ctx, object);
        let found: Vec<Uuid> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        Ok(Some(found.into_iter().collect()))
    }

    /// ` order by t.id for update of t` on PostgreSQL, after the query by which a write finds
    /// the records it changes: a concurrent write of the same record then waits for this one
    /// and plans against what it committed, so an `If-Match` version is checked against the
    /// record as it is and no change is lost. In id order, so that two batches never deadlock.
    /// SQLite's single writer runs one write at a time already.
    pub(crate) fn push_lock_rows(qb: &mut Builder) {
        if BACKEND == Backend::Postgres {
            qb.push(" order by t.id for update of t");
        }
    }

    /// `(a, b, …)` of bound values, for `in` lists.
    pub(crate) fn push_list<T>(qb: &mut Builder, values: impl IntoIterator<Item = T>)
    where
        T: for<'q> sqlx::Encode<'q, Db> + sqlx::Type<Db> + Send + 'static,
    {
        qb.push("(");
        let mut list = qb.separated(", ");
        for value in values {
            list.push_bind(value);
        }
        qb.push(")");
    }

    /// The ids among `ids` that exist in `spec`'s table (live or not) and that the caller may
    /// see.
    pub(crate) async fn visible_ids(
        conn: &mut Conn,
        ctx: &AuthContext,
        spec: &Spec,
        ids: &[Uuid],
    ) -> Result<std::collections::HashSet<Uuid>, DbError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let mut qb = Builder::new("select t.id from ");
        qb.push(spec.table).push(" t where t.org_id = ").push_bind(ctx.org_id).push(" and t.id in ");
        push_list(&mut qb, ids.iter().copied());
        push_visibility(&mut qb, ctx, spec.object);
        let found: Vec<Uuid> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
        Ok(found.into_iter().collect())
    }

    /// Which of `ids` (records of `spec`, live or not) the caller may see; no query when it
    /// sees every record of the object.
    pub(crate) async fn visible_among(
        conn: &mut Conn,
        ctx: &AuthContext,
        spec: &Spec,
        ids: &[Uuid],
    ) -> Result<crate::records::Visible, DbError> {
        if ctx.record_filter(spec.object) == RecordFilter::All {
            return Ok(crate::records::Visible(None));
        }
        Ok(crate::records::Visible(Some(visible_ids(conn, ctx, spec, ids).await?)))
    }

    /// For ids that are not live: merged (into) or missing. Merged records the caller may
    /// not see are left out (not found, like [`missing`]).
    pub(crate) async fn missing_many(
        conn: &mut Conn,
        ctx: &AuthContext,
        spec: &Spec,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, Option<Uuid>>, DbError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let mut qb = Builder::new("select t.id, t.merged_into from ");
        qb.push(spec.table).push(" t where t.org_id = ").push_bind(ctx.org_id).push(" and t.id in ");
        push_list(&mut qb, ids.iter().copied());
        push_visibility(&mut qb, ctx, spec.object);
        let rows: Vec<(Uuid, Option<Uuid>)> = qb.build_query_as().fetch_all(&mut *conn).await?;
        Ok(rows.into_iter().collect())
    }

    /// Takes the write lock of a live, visible record (a no-op update); false when there is
    /// none for the caller. The conditions are on the updated row itself: when it waited for
    /// another transaction (a merge that took the record first), PostgreSQL checks them again
    /// on the row as that one committed it, so a record merged meanwhile is not live.
    pub(crate) async fn lock_live(conn: &mut Conn, ctx: &AuthContext, spec: &Spec, id: Uuid) -> Result<bool, DbError> {
        let mut qb = Builder::new("update ");
        qb.push(spec.table)
            .push(" as t set version = t.version where t.org_id = ")
            .push_bind(ctx.org_id)
            .push(" and t.id = ")
            .push_bind(id)
            .push(" and t.deleted_at is null");
        push_visibility(&mut qb, ctx, spec.object);
        Ok(qb.build().execute(&mut *conn).await?.rows_affected() == 1)
    }

    /// Takes a record's write lock (a no-op update) before a read-modify-write of it, so that
    /// the read sees what a concurrent writer committed rather than what it is replacing.
    pub(crate) async fn lock_row(conn: &mut Conn, spec: &Spec, org_id: Uuid, id: Uuid) -> Result<(), DbError> {
        let mut qb = Builder::new("update ");
        qb.push(spec.table)
            .push(" set version = version where org_id = ")
            .push_bind(org_id)
            .push(" and id = ")
            .push_bind(id);
        qb.build().execute(&mut *conn).await?;
        Ok(())
    }

    /// Whether the record exists (live or deleted) and the caller may see it.
    pub(crate) async fn is_visible<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        spec: &Spec,
        id: Uuid,
    ) -> Result<bool, DbError> {
        visible_where(executor, ctx, spec, id, "").await
    }

    /// Whether the record is live and the caller may see it.
    pub(crate) async fn is_live_visible<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        spec: &Spec,
        id: Uuid,
    ) -> Result<bool, DbError> {
        visible_where(executor, ctx, spec, id, " and t.deleted_at is null").await
    }

    async fn visible_where<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        spec: &Spec,
        id: Uuid,
        condition: &'static str,
    ) -> Result<bool, DbError> {
        let mut qb = Builder::new("select count(*) from ");
        qb.push(spec.table).push(" t where t.org_id = ").push_bind(ctx.org_id).push(" and t.id = ").push_bind(id);
        qb.push(condition);
        push_visibility(&mut qb, ctx, spec.object);
        let found: i64 = qb.build_query_scalar().fetch_one(executor).await?;
        Ok(found > 0)
    }

    /// Why a record the caller asked for is not there: merged into another, or not found. A
    /// merged record the caller may not see is not found: where it went is not told.
    pub(crate) async fn missing<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        spec: &Spec,
        id: Uuid,
    ) -> Result<StoreError, DbError> {
        let mut qb = Builder::new("select t.merged_into from ");
        qb.push(spec.table).push(" t where t.org_id = ").push_bind(ctx.org_id).push(" and t.id = ").push_bind(id);
        push_visibility(&mut qb, ctx, spec.object);
        let merged: Option<Option<Uuid>> = qb.build_query_scalar().fetch_optional(executor).await?;
        Ok(match merged.flatten() {
            Some(into) => StoreError::Merged { into },
            None => StoreError::NotFound,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn an_owner_outside_what_the_writer_sees_is_refused_and_an_unchanged_one_kept() {
        let (me, teammate, outsider) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let permitted: HashSet<Uuid> = [me, teammate].into();
        let refused = |before, owner| owner_refused(Some(&permitted), before, owner);
        assert!(!refused(None, Some(me)), "a new record of my own");
        assert!(!refused(None, Some(teammate)));
        assert!(refused(None, Some(outsider)), "a new record given away");
        assert!(refused(None, None), "a new record without an owner");
        assert!(
            refused(Some(Some(me)), Some(outsider)),
            "a record given away"
        );
        assert!(refused(Some(Some(me)), None), "an owner cleared");
        assert!(
            !refused(Some(Some(outsider)), Some(outsider)),
            "an owner left as it was"
        );
        assert!(
            !owner_refused(None, Some(Some(me)), Some(outsider)),
            "who sees all gives to anyone"
        );
    }

    #[test]
    fn a_hidden_record_is_never_named() {
        let (seen, hidden) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let visible = Visible(Some([seen].into()));
        assert_eq!(visible.named(seen), Some(seen));
        assert_eq!(visible.named(hidden), None);
        assert_eq!(Visible(None).named(hidden), Some(hidden));
        let issue = custom_taken("member_no", visible.named(hidden));
        assert_eq!(issue.field, "custom.member_no");
        assert!(!issue.message.contains(&hidden.to_string()));
    }
}
