//! The engine's batch write: plan every row against the records it finds with a constant
//! number of lookups, then write the chunk — multi-row inserts, one constant update per changed
//! row, the tag keys, the search index and the events — and answer from what was planned.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rapport_domain::custom_field::{self, CustomFieldDef};
use rapport_domain::kit::record::{self, Record, RecordPatch};
use rapport_domain::kit::{FieldKind, FieldSpec};
use rapport_domain::record::{Changes, EventAction};
use rapport_domain::write::{IdProperty, RowOutcome, RowStatus, RowTarget, WriteRow};
use rapport_domain::{AuthContext, FieldIssue, StoreError};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::Layout;
use super::chunk::{Keys, Row};
use super::find::{Existing, find, key_value};
use crate::events::NewEvent;
use crate::records::{Written, deleted_changes};

/// What a row will write.
struct Planned {
    id: Uuid,
    insert: bool,
    revive: bool,
    values: Map<String, Value>,
    custom: Map<String, Value>,
    changes: Changes,
    /// The values before the write (for the object's storage rules).
    before: Option<Map<String, Value>>,
}

impl Planned {
    fn row(&self) -> Row<'_> {
        Row {
            id: self.id,
            values: &self.values,
            custom: &self.custom,
        }
    }
}

enum Decision {
    Write(Box<Planned>),
    Unchanged(Uuid),
    Failed(StoreError),
}

/// A row's record before (if any), its values and custom values after, or why it fails.
type Draft<'a> = Result<(Option<&'a Record>, Map<String, Value>, Map<String, Value>), StoreError>;

fn in_batch(field: &str, first: usize) -> StoreError {
    StoreError::Invalid(vec![FieldIssue::new(
        field,
        "duplicate_in_batch",
        format!("row {first} of this batch already has this {field}"),
    )])
}

/// The key a row's target names, to refuse two rows of one batch writing one record.
fn target_key(target: &RowTarget) -> Option<String> {
    match target {
        RowTarget::Create => None,
        RowTarget::Update { id, .. } => Some(format!("id:{id}")),
        RowTarget::Upsert { property, value } => Some(format!("{}:{value}", property.as_str())),
    }
}

/// Whether a field's values are kept as keys other records are matched on: tags, and the
/// emails and phones of a field that finds duplicates.
fn keyed(field: &FieldSpec) -> bool {
    field.kind == FieldKind::Tags || (field.matching && keyed_kind(field.kind))
}

/// The kinds whose values are matched through keys: emails and phones.
pub(crate) fn keyed_kind(kind: FieldKind) -> bool {
    matches!(
        kind,
        FieldKind::Email | FieldKind::Emails | FieldKind::Phones
    )
}

/// A record's keys: `tag`s, `email`s (lower case) and `phone`s (E.164).
pub(crate) fn keys_of(
    layout: &Layout,
    values: Option<&Map<String, Value>>,
) -> Vec<(&'static str, String)> {
    let mut keys = Vec::new();
    let Some(values) = values else { return keys };
    for (field, _) in layout.fields.iter().filter(|(field, _)| keyed(field)) {
        let value = values.get(field.name.as_ref());
        let items: Vec<&Value> = match value {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(other) => vec![other],
            None => Vec::new(),
        };
        for item in items {
            let key = match field.kind {
                FieldKind::Tags => item.as_str().map(|t| ("tag", t.to_owned())),
                FieldKind::Phones => item
                    .get("e164")
                    .and_then(Value::as_str)
                    .map(|e| ("phone", e.to_owned())),
                _ => item.as_str().map(|e| ("email", e.to_lowercase())),
            };
            keys.extend(key);
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

/// A row being drafted: what it gives, the record it found, its values so far and the
/// problems found so far. The storage half of an object's rules works on these (see
/// `crate::rules`).
pub(crate) struct Drafting<'a> {
    pub given: &'a Map<String, Value>,
    pub before: Option<&'a Record>,
    pub values: Map<String, Value>,
    pub issues: Vec<FieldIssue>,
    /// The write gives the record an owner the caller may not give it.
    pub owner_refused: bool,
    /// The time of the write.
    pub at: DateTime<Utc>,
}

/// A row's values after its patch (with the natural key it is found by, and defaults), and
/// the problems that shows.
fn start<'a>(
    layout: &Layout,
    row: &'a WriteRow<RecordPatch>,
    before: Option<&'a Record>,
    at: &DateTime<Utc>,
    phone_region: Option<&str>,
) -> Drafting<'a> {
    let empty = Map::new();
    let mut values = row.patch.apply(before.map_or(&empty, |r| &r.values));
    let mut issues = Vec::new();
    // A row found by a natural key has that key's value (and may not give another).
    if let RowTarget::Upsert { property, value } = &row.target
        && *property != IdProperty::Id
    {
        let name = property.as_str();
        let value = key_value(layout, *property, value);
        match row.patch.values.get(name) {
            Some(Value::String(given)) if *given != value => issues.push(FieldIssue::new(
                name,
                "invalid_value",
                format!("differs from the {name} the row is found by"),
            )),
            _ if values.get(name).is_some_and(|v| !v.is_null()) => {}
            _ => {
                values.insert(name.into(), Value::from(value));
            }
        }
    }
    record::fill_defaults(layout.spec, &mut values, at);
    // A phone's E.164 form, where the object keeps one (`phone_e164`).
    for field in layout
        .spec
        .fields
        .iter()
        .filter(|f| f.kind == FieldKind::Phone)
    {
        let e164_name = format!("{}_e164", field.name);
        if layout.spec.field(&e164_name).is_none() {
            continue;
        }
        let e164 = values
            .get(field.name.as_ref())
            .and_then(Value::as_str)
            .and_then(|number| {
                rapport_domain::values::Phone::new(
                    number,
                    rapport_domain::values::PhoneKind::Other,
                    phone_region,
                )
                .ok()
            })
            .and_then(|phone| phone.e164);
        match e164 {
            Some(e164) => values.insert(e164_name, Value::from(e164)),
            None => values.remove(&e164_name),
        };
    }
    // Each phone of a list gets its E.164 form.
    for field in layout
        .spec
        .fields
        .iter()
        .filter(|f| f.kind == FieldKind::Phones)
    {
        if let Some(Value::Array(phones)) = values.get_mut(field.name.as_ref()) {
            for phone in phones.iter_mut().filter_map(Value::as_object_mut) {
                let number = phone
                    .get("number")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let kind = phone
                    .get("kind")
                    .and_then(Value::as_str)
                    .and_then(|k| k.parse().ok())
                    .unwrap_or(rapport_domain::values::PhoneKind::Other);
                let e164 = rapport_domain::values::Phone::new(number, kind, phone_region)
                    .ok()
                    .and_then(|p| p.e164);
                phone.insert("e164".into(), e164.map_or(Value::Null, Value::from));
            }
        }
    }
    Drafting {
        given: &row.patch.values,
        before,
        values,
        issues,
        owner_refused: false,
        at: *at,
    }
}

/// Problems in field order, a list's items in their order (`lines[2]` before `lines[10]`).
fn issue_order(issue: &FieldIssue) -> (String, usize, String) {
    match issue.field.split_once('[') {
        Some((head, rest)) => {
            let (index, tail) = rest.split_once(']').unwrap_or((rest, ""));
            (
                head.to_owned(),
                index.parse().unwrap_or(usize::MAX),
                tail.to_owned(),
            )
        }
        None => (issue.field.clone(), 0, String::new()),
    }
}

/// A drafted row's values and custom values once its object's rules derived what they
/// compute, or its problems.
fn finish(
    layout: &Layout,
    definitions: &[CustomFieldDef],
    row: &WriteRow<RecordPatch>,
    mut drafting: Drafting<'_>,
) -> (Result<Map<String, Value>, StoreError>, Map<String, Value>) {
    let spec = layout.spec;
    let issues = &mut drafting.issues;
    rapport_domain::objects::rules(spec.object).derive(
        drafting.given,
        &mut drafting.values,
        drafting.before,
        issues,
    );
    for issue in record::missing_required(spec, &drafting.values) {
        if !issues.iter().any(|i| i.field.starts_with(&issue.field)) {
            issues.push(issue);
        }
    }
    let in_lines = record::missing_in_lines(spec, &drafting.values, issues);
    issues.extend(in_lines);
    let empty = Map::new();
    let current = drafting.before.map_or(&empty, |r| &r.custom);
    let (custom, found) = custom_field::apply_all(
        definitions,
        current,
        row.patch.custom.as_ref().unwrap_or(&empty),
    );
    issues.extend(found);
    let result = if issues.is_empty() && drafting.owner_refused {
        // Before any conflict: a write the caller may not make tells nothing of other records.
        Err(StoreError::OwnerNotPermitted)
    } else if issues.is_empty() {
        Ok(drafting.values)
    } else {
        issues.sort_by_key(issue_order);
        Err(StoreError::Invalid(drafting.issues))
    };
    (result, custom)
}

per_backend! {
    async fn plan_records(
        conn: &mut Conn,
        ctx: &AuthContext,
        layout: &Layout,
        rows: &[WriteRow<RecordPatch>],
        at: DateTime<Utc>,
    ) -> Result<Vec<Decision>, crate::error::DbError> {
        let spec = layout.spec;
        let definitions = if spec.capabilities.custom_fields {
            sql::custom_fields(&mut *conn, ctx.org_id, spec.object).await?
        } else {
            Vec::new()
        };
        let mut ids = Vec::new();
        let mut external_ids = Vec::new();
        let mut keyed: Vec<(IdProperty, &'static str, Vec<String>)> =
            layout.keys.iter().map(|(key, column, _)| (*key, *column, Vec::new())).collect();
        for row in rows {
            match &row.target {
                RowTarget::Update { id, .. } => ids.push(*id),
                RowTarget::Upsert { property: IdProperty::Id, value } => ids.extend(Uuid::parse_str(value).ok()),
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => external_ids.push(value.clone()),
                RowTarget::Upsert { property, value } => {
                    if let Some((_, _, values)) = keyed.iter_mut().find(|(key, _, _)| key == property) {
                        values.push(key_value(layout, *property, value));
                    }
                }
                RowTarget::Create => {}
            }
        }
        // One probe of its index per key (see `chunk`); a natural key finds live records only
        // (all of them, where it is not unique).
        let mut found = sql::find_keyed(&mut *conn, ctx.org_id, layout, "id", false, Keys::ids(ids), true).await?;
        found.extend(sql::find_keyed(&mut *conn, ctx.org_id, layout, "external_id", false, Keys::texts(external_ids), true).await?);
        for (key, column, values) in keyed {
            let unique = layout.keys.iter().any(|(k, _, unique)| *k == key && *unique);
            let records = if unique {
                sql::find_keyed(&mut *conn, ctx.org_id, layout, column, true, Keys::texts(values), true).await?
            } else {
                sql::find_all_keyed(&mut *conn, ctx.org_id, layout, column, Keys::texts(values)).await?
            };
            found.extend(records);
        }
        found.sort_by_key(|r| r.id);
        found.dedup_by_key(|r| r.id);
        let existing_ids: Vec<Uuid> = found.iter().map(|r| r.id).collect();
        let visible = sql::visible_among(conn, ctx, &layout.storage, &existing_ids).await?;
        let mut by_key: HashMap<(IdProperty, String), Vec<&Record>> = HashMap::new();
        for r in found.iter().filter(|r| r.deleted_at.is_none()) {
            for (key, column, _) in &layout.keys {
                if let Some(value) = r.value(key.as_str()).as_str() {
                    by_key.entry((*key, layout.key_text(column, value))).or_default().push(r);
                }
            }
        }
        let existing = Existing {
            by_id: found.iter().map(|r| (r.id, r)).collect(),
            by_external: found
                .iter()
                .filter_map(|r| r.value("external_id").as_str().map(|e| (e, r)))
                .collect(),
            by_key,
            visible,
        };
        let region = ctx.settings.default_phone_region.as_deref();

        let mut targets_seen: HashMap<String, usize> = HashMap::new();
        let mut started: Vec<Result<Drafting<'_>, StoreError>> = Vec::with_capacity(rows.len());
        let mut wanted = crate::engine::resolve::Wanted::default();
        for (index, row) in rows.iter().enumerate() {
            if let Some(key) = target_key(&row.target) {
                if let Some(first) = targets_seen.get(&key) {
                    started.push(Err(in_batch("id", *first)));
                    continue;
                }
                targets_seen.insert(key, index);
            }
            let found = find(layout, &row.target, &existing);
            started.push(found.map(|before| {
                wanted.add_write(&spec.fields, &row.patch.values);
                start(layout, row, before, &at, region)
            }));
        }
        // The records the rows name, found once for the batch; then the object's storage rules.
        let found = sql::find_references(&mut *conn, ctx, wanted).await?;
        for drafting in started.iter_mut().flatten() {
            let kept = drafting.before.map(|r| &r.values);
            found.settle_write(&spec.fields, &mut drafting.values, drafting.given, kept, &mut drafting.issues);
        }
        let mut drafting: Vec<Drafting<'_>> = Vec::new();
        let mut failed: Vec<Option<StoreError>> = Vec::with_capacity(rows.len());
        for start in started {
            match start {
                Ok(d) => {
                    drafting.push(d);
                    failed.push(None);
                }
                Err(error) => failed.push(Some(error)),
            }
        }
        if spec.capabilities.owned {
            sql::settle_owners(&mut *conn, ctx, spec.object, &mut drafting).await?;
        }
        sql::prepare(&mut *conn, ctx, spec.object, &mut drafting).await?;
        let mut drafting = drafting.into_iter();
        // A row refused for its values is still checked for taken unique custom values, so
        // that every problem is named at once.
        let mut refused_custom: Vec<Option<(Uuid, Map<String, Value>)>> = Vec::with_capacity(rows.len());
        let drafts: Vec<Draft<'_>> = rows
            .iter()
            .zip(failed)
            .map(|(row, failed)| match failed {
                Some(error) => {
                    refused_custom.push(None);
                    Err(error)
                }
                None => {
                    let d = drafting.next().expect("one drafting per row that found its record");
                    let before = d.before;
                    let (result, custom) = finish(layout, &definitions, row, d);
                    match result {
                        Ok(values) => {
                            refused_custom.push(None);
                            Ok((before, values, custom))
                        }
                        Err(error) => {
                            refused_custom.push(Some((before.map_or(Uuid::nil(), |r| r.id), custom)));
                            Err(error)
                        }
                    }
                }
            })
            .collect();

        let mut wanted_external: Vec<String> = Vec::new();
        let mut wanted_unique: Vec<Vec<String>> = vec![Vec::new(); layout.unique.len()];
        let mut wanted_custom: HashMap<String, Vec<Value>> = HashMap::new();
        for (_, custom) in refused_custom.iter().flatten() {
            for def in definitions.iter().filter(|d| d.unique) {
                if let Some(value) = custom.get(&def.key) {
                    wanted_custom.entry(def.key.clone()).or_default().push(value.clone());
                }
            }
        }
        for (_, values, custom) in drafts.iter().flatten() {
            wanted_external.extend(values.get("external_id").and_then(Value::as_str).map(str::to_owned));
            for ((name, column), wanted) in layout.unique.iter().zip(&mut wanted_unique) {
                wanted.extend(values.get(*name).and_then(Value::as_str).map(|v| layout.key_text(column, v)));
            }
            for def in definitions.iter().filter(|d| d.unique) {
                if let Some(value) = custom.get(&def.key) {
                    wanted_custom.entry(def.key.clone()).or_default().push(value.clone());
                }
            }
        }
        let external_holders: HashMap<String, Uuid> =
            sql::key_holders(&mut *conn, ctx.org_id, layout, "external_id", false, wanted_external).await?.into_iter().collect();
        // Who holds each unique value among the live records.
        let mut unique_holders: HashMap<(&str, String), Uuid> = HashMap::new();
        for ((name, column), wanted) in layout.unique.iter().zip(wanted_unique) {
            let found = sql::key_holders(&mut *conn, ctx.org_id, layout, column, true, wanted).await?;
            unique_holders.extend(found.into_iter().map(|(value, id)| ((*name, value), id)));
        }
        let custom_holders = sql::unique_holders(conn, &layout.storage, ctx.org_id, &definitions, &wanted_custom).await?;
        let holder_ids: Vec<Uuid> = unique_holders.values().copied().collect();
        let seen_holders = sql::visible_among(conn, ctx, &layout.storage, &holder_ids).await?;

        let mut claimed: HashMap<(String, String), usize> = HashMap::new();
        let mut decisions = Vec::with_capacity(rows.len());
        for (index, draft) in drafts.into_iter().enumerate() {
            let (before, values, custom) = match (draft, &refused_custom[index]) {
                (Ok(draft), _) => draft,
                (Err(StoreError::Invalid(mut issues)), Some((id, custom))) => {
                    issues.extend(crate::records::unique_custom_issues(&definitions, custom, *id, &custom_holders, &mut claimed, index, |key| {
                        crate::records::custom_taken(key, None)
                    }));
                    issues.sort_by_key(issue_order);
                    decisions.push(Decision::Failed(StoreError::Invalid(issues)));
                    continue;
                }
                (Err(error), _) => {
                    decisions.push(Decision::Failed(error));
                    continue;
                }
            };
            let id = before.map_or_else(Uuid::now_v7, |r| r.id);
            let issues = crate::records::unique_custom_issues(&definitions, &custom, id, &custom_holders, &mut claimed, index, |key| {
                crate::records::custom_taken(key, None)
            });
            if !issues.is_empty() {
                decisions.push(Decision::Failed(StoreError::Invalid(issues)));
                continue;
            }
            let taken = layout.unique.iter().find_map(|(name, column)| {
                let value = layout.key_text(column, values.get(*name).and_then(Value::as_str)?);
                if let Some(holder) = unique_holders.get(&(*name, value.clone())).filter(|h| **h != id) {
                    // An email names the contact that has it, where the caller may see it.
                    return Some(if layout.folds(column) {
                        StoreError::DuplicateEmail { existing_id: seen_holders.named(*holder) }
                    } else {
                        StoreError::Conflict { field: Some((*name).into()) }
                    });
                }
                claimed.insert(((*name).into(), value), index).map(|first| in_batch(name, first))
            });
            if let Some(error) = taken {
                decisions.push(Decision::Failed(error));
                continue;
            }
            if let Some(external_id) = values.get("external_id").and_then(Value::as_str) {
                if external_holders.get(external_id).is_some_and(|h| *h != id) {
                    decisions.push(Decision::Failed(StoreError::Conflict { field: Some("external_id".into()) }));
                    continue;
                }
                if let Some(first) = claimed.insert(("external_id".into(), external_id.to_owned()), index) {
                    decisions.push(Decision::Failed(in_batch("external_id", first)));
                    continue;
                }
            }
            let revive = before.is_some_and(|r| r.deleted_at.is_some());
            let after = Record {
                object: spec.object,
                id,
                values: values.clone(),
                custom: custom.clone(),
                version: before.map_or(1, |r| r.version + 1),
                created_at: before.map_or(at, |r| r.created_at),
                updated_at: at,
                created_by: before.map_or(Some(ctx.user_id), |r| r.created_by),
                deleted_at: None,
                merged_into: None,
            };
            let mut changes = record::diff_fields(spec, before, &after);
            if let Some(before) = before.filter(|_| revive) {
                changes.extend(deleted_changes(before.deleted_at, None));
            }
            if before.is_some() && changes.is_empty() {
                decisions.push(Decision::Unchanged(id));
                continue;
            }
            decisions.push(Decision::Write(Box::new(Planned { id, insert: before.is_none(), revive, values, custom, changes, before: before.map(|r| r.values.clone()) })));
        }
        Ok(decisions)
    }

    /// Writes a batch; `merged_ids` names the records a merge folds into the one row (its
    /// event is then `merged`, also when the primary's values do not change).
    pub(crate) async fn write_records(
        conn: &mut Conn,
        ctx: &AuthContext,
        layout: &Layout,
        rows: &[WriteRow<RecordPatch>],
        all_or_none: bool,
        at: DateTime<Utc>,
        merged_ids: &[Uuid],
    ) -> Result<Written, crate::error::DbError> {
        let decisions = plan_records(conn, ctx, layout, rows, at).await?;
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
        let inserts: Vec<Row<'_>> = planned.iter().filter(|p| p.insert).map(|p| p.row()).collect();
        let updates: Vec<Row<'_>> = planned.iter().filter(|p| !p.insert).map(|p| p.row()).collect();
        if !inserts.is_empty() {
            sql::insert_rows(conn, ctx, layout, &inserts, at).await?;
        }
        if !updates.is_empty() {
            sql::update_rows(conn, ctx, layout, &updates, at).await?;
        }
        // The keys a write added or removed (tags, emails, phones) change; the others stay.
        if layout.fields.iter().any(|(field, _)| keyed(field)) {
            let mut removed = Vec::new();
            let mut added = Vec::new();
            for p in &planned {
                let old = keys_of(layout, p.before.as_ref());
                let new = keys_of(layout, Some(&p.values));
                removed.extend(old.iter().filter(|k| !new.contains(k)).map(|(kind, v)| (p.id, *kind, v.clone())));
                added.extend(new.iter().filter(|k| !old.contains(k)).map(|(kind, v)| (p.id, *kind, v.clone())));
            }
            sql::change_keys(conn, ctx.org_id, layout.spec.object, &removed, &added).await?;
        }
        // Only records whose searched text changed are indexed again (SQLite's FTS table;
        // PostgreSQL searches the column itself, so nothing is compared there).
        if BACKEND == rapport_domain::Backend::Sqlite {
            let spec = layout.spec;
            let ids: Vec<Uuid> = planned
                .iter()
                .filter(|p| {
                    p.insert || p.revive
                        || p.before.as_ref().map(|b| record::search_text(spec, b)) != Some(record::search_text(spec, &p.values))
                })
                .map(|p| p.id)
                .collect();
            sql::index_search_many(conn, &layout.storage, &ids).await?;
        }
        let no_changes = Changes::new();
        let mut events: Vec<NewEvent<'_>> = planned.iter().map(|p| NewEvent {
            object: layout.spec.object,
            id: p.id,
            action: if !merged_ids.is_empty() { EventAction::Merged } else if p.insert { EventAction::Created } else if p.revive { EventAction::Restored } else { EventAction::Updated },
            changes: &p.changes,
            merged_ids,
        }).collect();
        if !merged_ids.is_empty() {
            events.extend(decisions.iter().filter_map(|d| match d {
                Decision::Unchanged(id) => Some(NewEvent { object: layout.spec.object, id: *id, action: EventAction::Merged, changes: &no_changes, merged_ids }),
                _ => None,
            }));
        }
        sql::append_events(conn, ctx, &events, at).await?;
        let touched: Vec<crate::rules::Touched<'_>> = planned.iter().map(|p| (p.id, p.before.as_ref(), Some(&p.values))).collect();
        sql::after(conn, ctx, layout.spec.object, &touched, at).await?;
        let outcomes = decisions.into_iter().map(|d| match d {
            Decision::Write(p) => RowOutcome::ok(if p.insert { RowStatus::Created } else { RowStatus::Updated }, p.id),
            Decision::Unchanged(id) => RowOutcome::ok(RowStatus::Unchanged, id),
            Decision::Failed(error) => RowOutcome::error(error),
        }).collect();
        Ok(Written { outcomes, commit: true })
    }
}
