//! Sort keys (`-updated_at,name`) and the list or search request they belong to.

use super::{Catalog, FieldKind, FieldPath, Filter, MAX_SORT_KEYS, Target};
use crate::error::FieldIssue;
use crate::page::PageRequest;

/// One key of a sort.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub target: Target,
    pub descending: bool,
}

/// Parses `-updated_at,name` (or the `sort` array of a search) against the catalog; only
/// sortable fields and custom fields of scalar types are accepted.
pub fn parse_sort(
    keys: &[(String, bool)],
    catalog: &Catalog<'_>,
    at: &str,
) -> Result<Vec<SortKey>, Vec<FieldIssue>> {
    let mut issues = Vec::new();
    if keys.len() > MAX_SORT_KEYS {
        issues.push(FieldIssue::new(
            at,
            "invalid_value",
            format!("at most {MAX_SORT_KEYS} sort keys"),
        ));
        return Err(issues);
    }
    let mut out = Vec::new();
    for (field, descending) in keys {
        let path = FieldPath::parse(field);
        let sortable = match catalog.target(&path) {
            Ok(Target::Standard(info)) if info.sortable => Some(Target::Standard(info)),
            Ok(Target::Custom { key, kind }) if !matches!(kind, FieldKind::Tags) => {
                Some(Target::Custom { key, kind })
            }
            _ => None,
        };
        match sortable {
            Some(target) => out.push(SortKey {
                target,
                descending: *descending,
            }),
            None => {
                let known: Vec<&str> = catalog
                    .fields
                    .iter()
                    .filter(|f| f.sortable)
                    .map(|f| f.name)
                    .collect();
                issues.push(FieldIssue::new(
                    at,
                    "invalid_value",
                    format!(
                        "cannot sort by `{field}`; sort by {} or custom.<key>",
                        known.join(", ")
                    ),
                ));
            }
        }
    }
    if issues.is_empty() {
        Ok(out)
    } else {
        Err(issues)
    }
}

/// `-updated_at,name` → [("updated_at", true), ("name", false)].
pub fn split_sort_param(text: &str) -> Vec<(String, bool)> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.strip_prefix('-') {
            Some(field) => (field.to_owned(), true),
            None => (s.strip_prefix('+').unwrap_or(s).to_owned(), false),
        })
        .collect()
}

/// The canonical text of a sort, which a cursor remembers.
pub fn sort_signature(keys: &[SortKey]) -> String {
    keys.iter()
        .map(|k| {
            let name = match &k.target {
                Target::Standard(info) => info.name.to_owned(),
                Target::Custom { key, .. } => format!("custom.{key}"),
                Target::Related { relation, field } => format!("{relation}.{}", field.name),
            };
            if k.descending {
                format!("-{name}")
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A list or search request for one object.
#[derive(Debug, Clone)]
pub struct RecordQuery {
    pub filter: Option<Filter>,
    /// Substring search over names, emails, phones and related names.
    pub q: Option<String>,
    pub sort: Vec<SortKey>,
    pub page: PageRequest,
    /// List the deleted records (the trash) instead of the live ones.
    pub deleted: bool,
}
