//! References: a write names another record by id or by one of the reference's other names
//! (`contact_email`, `company_external_id`, a line's `sku`). A batch's references are found
//! with one lookup per object and column, then each row's are settled: an id it gives must
//! name a live record the caller may see (a record it already names stays, seen or not), an
//! other name becomes the id it finds, and two names of one reference must agree. Records the
//! caller may not see are named exactly like ones that do not exist.

use std::collections::{BTreeSet, HashMap, HashSet};

use rapport_domain::kit::{FieldKind, FieldSpec};
use rapport_domain::{FieldIssue, ObjectType};
use serde_json::{Map, Value};
use uuid::Uuid;

/// What a batch names: ids per object, and texts per object and column.
#[derive(Default)]
pub(crate) struct Wanted {
    ids: HashMap<ObjectType, BTreeSet<Uuid>>,
    texts: HashMap<(ObjectType, String), BTreeSet<String>>,
}

/// What was found: the live records the caller may see, by id and by text.
#[derive(Default)]
pub(crate) struct Found {
    ids: HashSet<(ObjectType, Uuid)>,
    texts: HashMap<(ObjectType, String, String), Uuid>,
}

/// The references to objects with records (an owner, a user, is checked as an owner).
fn references(fields: &[FieldSpec]) -> impl Iterator<Item = (&FieldSpec, ObjectType)> {
    fields.iter().filter_map(|field| match field.kind {
        FieldKind::Reference(target)
            if !field.read_only && super::storage_spec(target).is_some() =>
        {
            Some((field, target))
        }
        _ => None,
    })
}

fn id_of(value: Option<&Value>) -> Option<Uuid> {
    value
        .and_then(Value::as_str)
        .and_then(|text| Uuid::parse_str(text).ok())
}

/// Whether a column of `target` is compared without case (an email).
fn folded(target: ObjectType, column: &str) -> bool {
    super::storage_spec(target).is_some_and(|spec| {
        spec.keys
            .iter()
            .any(|(_, key_column, fold)| *key_column == column && *fold)
    })
}

fn text_key(target: ObjectType, column: &str, value: &str) -> String {
    if folded(target, column) {
        value.to_lowercase()
    } else {
        value.to_owned()
    }
}

impl Wanted {
    /// The references `given` (what a write gives in a scope: a body or a line) names.
    pub(crate) fn add(&mut self, fields: &[FieldSpec], given: &Map<String, Value>) {
        for (field, target) in references(fields) {
            if let Some(id) = id_of(given.get(field.name.as_ref())) {
                self.ids.entry(target).or_default().insert(id);
            }
            for name in field.also_by.iter() {
                if let Some(text) = given.get(name.as_ref()).and_then(Value::as_str) {
                    let column = field.also_by_column(name);
                    self.texts
                        .entry((target, column.to_owned()))
                        .or_default()
                        .insert(text_key(target, column, text));
                }
            }
        }
    }

    /// The references of a write: its body's, and its lines' when it gives lines.
    pub(crate) fn add_write(&mut self, fields: &[FieldSpec], given: &Map<String, Value>) {
        self.add(fields, given);
        for field in fields {
            if let (FieldKind::Lines(line_fields), Some(Value::Array(lines))) =
                (field.kind, given.get(field.name.as_ref()))
            {
                for line in lines.iter().filter_map(Value::as_object) {
                    self.add(line_fields, line);
                }
            }
        }
    }
}

impl Found {
    fn id(&self, target: ObjectType, id: Uuid) -> bool {
        self.ids.contains(&(target, id))
    }

    fn text(&self, target: ObjectType, column: &str, value: &str) -> Option<Uuid> {
        self.texts
            .get(&(target, column.to_owned(), text_key(target, column, value)))
            .copied()
    }

    /// Settles the references of one scope (`prefix` names it in problems: `lines[2].`):
    /// `given` is what the write gives there, `kept` the scope's references before it.
    pub(crate) fn settle(
        &self,
        fields: &[FieldSpec],
        scope: &mut Map<String, Value>,
        given: &Map<String, Value>,
        kept: Option<&Map<String, Value>>,
        prefix: &str,
        issues: &mut Vec<FieldIssue>,
    ) {
        for (field, target) in references(fields) {
            let not_found = |name: &str| {
                FieldIssue::new(
                    format!("{prefix}{name}"),
                    "not_found",
                    format!("names no live {target} of your organization"),
                )
            };
            let mut named: Option<(&str, Uuid)> = None;
            if let Some(id) = id_of(given.get(field.name.as_ref())) {
                let kept = kept.is_some_and(|k| id_of(k.get(field.name.as_ref())) == Some(id));
                if kept || self.id(target, id) {
                    named = Some((field.name.as_ref(), id));
                } else {
                    issues.push(not_found(&field.name));
                }
            }
            for name in field.also_by.iter() {
                let Some(value) = scope.remove(name.as_ref()) else {
                    continue;
                };
                let Some(text) = value.as_str() else {
                    continue;
                };
                match (self.text(target, field.also_by_column(name), text), named) {
                    (None, _) => issues.push(not_found(name)),
                    (Some(id), Some((first, other))) if other != id => {
                        issues.push(FieldIssue::new(
                            format!("{prefix}{name}"),
                            "invalid_value",
                            format!("names another {target} than {first}"),
                        ));
                    }
                    (Some(id), _) => named = Some((name.as_ref(), id)),
                }
            }
            if let Some((_, id)) = named {
                scope.insert(field.name.to_string(), Value::from(id.to_string()));
            }
        }
    }

    /// Settles a write's references: its body's, then each line's when it gives lines.
    pub(crate) fn settle_write(
        &self,
        fields: &[FieldSpec],
        values: &mut Map<String, Value>,
        given: &Map<String, Value>,
        kept: Option<&Map<String, Value>>,
        issues: &mut Vec<FieldIssue>,
    ) {
        self.settle(fields, values, given, kept, "", issues);
        for field in fields {
            let FieldKind::Lines(line_fields) = field.kind else {
                continue;
            };
            if !given.contains_key(field.name.as_ref()) {
                continue;
            }
            if let Some(Value::Array(lines)) = values.get_mut(field.name.as_ref()) {
                for (i, line) in lines.iter_mut().enumerate() {
                    if let Some(line) = line.as_object_mut() {
                        let given = line.clone();
                        let prefix = format!("{}[{i}].", field.name);
                        self.settle(line_fields, line, &given, None, &prefix, issues);
                    }
                }
            }
        }
    }
}

per_backend! {
    /// Finds what a batch names among the live records the caller may see.
    pub(crate) async fn find_references(
        conn: &mut Conn,
        ctx: &rapport_domain::AuthContext,
        wanted: Wanted,
    ) -> Result<Found, crate::error::DbError> {
        let mut found = Found::default();
        let mut seen: HashMap<ObjectType, Vec<Uuid>> = HashMap::new();
        for (target, ids) in wanted.ids {
            let Some(spec) = crate::engine::storage_spec(target) else { continue };
            let mut qb = sql::Builder::new("select t.id from ");
            qb.push(spec.table).push(" t where t.org_id = ").push_bind(ctx.org_id);
            qb.push(" and t.deleted_at is null and t.id in ");
            sql::push_list(&mut qb, ids);
            let rows: Vec<Uuid> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
            seen.entry(target).or_default().extend(rows);
        }
        let mut by_text: Vec<(ObjectType, String, String, Uuid)> = Vec::new();
        for ((target, column), texts) in wanted.texts {
            let Some(spec) = crate::engine::storage_spec(target) else { continue };
            let Some(stored) = spec.column(&column).or_else(|| {
                spec.keys.iter().find(|(_, key, _)| *key == column).map(|(_, key, _)| *key)
            }) else {
                continue;
            };
            let compared = if folded(target, &column) { format!("lower(t.{stored})") } else { format!("t.{stored}") };
            let mut qb = sql::Builder::new("select ");
            qb.push(compared.as_str()).push(", t.id from ").push(spec.table);
            qb.push(" t where t.org_id = ").push_bind(ctx.org_id);
            qb.push(" and t.deleted_at is null and ").push(compared.as_str()).push(" in ");
            sql::push_list(&mut qb, texts);
            let rows: Vec<(String, Uuid)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            for (text, id) in rows {
                seen.entry(target).or_default().push(id);
                by_text.push((target, column.clone(), text, id));
            }
        }
        let mut visible = HashMap::new();
        for (target, ids) in &seen {
            let Some(spec) = crate::engine::storage_spec(*target) else { continue };
            visible.insert(*target, sql::visible_among(conn, ctx, spec, ids).await?);
        }
        let shown = |target: &ObjectType, id: &Uuid| visible.get(target).is_some_and(|v: &crate::records::Visible| v.contains(id));
        for (target, ids) in seen {
            found.ids.extend(ids.into_iter().filter(|id| shown(&target, id)).map(|id| (target, id)));
        }
        for (target, column, text, id) in by_text {
            if shown(&target, &id) {
                found.texts.insert((target, column, text), id);
            }
        }
        Ok(found)
    }
}
