use serde_json::json;

use super::*;

const FIELDS: &[FieldInfo] = &[
    FieldInfo {
        name: "name",
        kind: FieldKind::Text,
        sortable: true,
    },
    FieldInfo {
        name: "owner_id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "created_at",
        kind: FieldKind::Timestamp,
        sortable: true,
    },
    FieldInfo {
        name: "tier",
        kind: FieldKind::Enum(&["a", "b", "c"]),
        sortable: false,
    },
];
const RELATIONS: &[RelationInfo] = &[RelationInfo {
    name: "company",
    fields: FIELDS,
}];

fn catalog() -> Catalog<'static> {
    Catalog {
        fields: FIELDS,
        relations: RELATIONS,
        custom: &[],
    }
}

fn issues(filter: Value) -> Vec<(String, String)> {
    let issues = match parse_filter(&filter, "filter") {
        Err(issues) => issues,
        Ok(raw) => resolve(&raw, &catalog()).err().unwrap_or_default(),
    };
    issues.into_iter().map(|i| (i.field, i.code)).collect()
}

#[test]
fn a_valid_tree_resolves() {
    let raw = parse_filter(
        &json!({"and": [{"field": "name", "op": "contains", "value": "王"},
                        {"not": {"field": "company.tier", "op": "in", "value": ["a", "b"]}}]}),
        "filter",
    )
    .unwrap();
    let filter = resolve(&raw, &catalog()).unwrap();
    let Node::And(items) = filter else { panic!() };
    assert_eq!(items.len(), 2);
}

#[test]
fn mistakes_are_named_by_path() {
    assert_eq!(
        issues(json!({"field": "nmae", "op": "eq", "value": "x"})),
        [("filter.field".into(), "unknown_field".into())]
    );
    assert_eq!(
        issues(json!({"field": "name", "op": "like", "value": "x"})),
        [("filter.op".into(), "invalid_value".into())]
    );
    assert_eq!(
        issues(json!({"field": "owner_id", "op": "contains", "value": "x"})),
        [("filter.op".into(), "invalid_value".into())]
    );
    assert_eq!(
        issues(json!({"and": [{"field": "created_at", "op": "gt", "value": 5}]})),
        [("filter.and[0].value".into(), "invalid_value".into())]
    );
    assert_eq!(
        issues(json!({"field": "tier", "op": "eq", "value": "z"})),
        [("filter.value".into(), "invalid_value".into())]
    );
    assert_eq!(
        issues(json!({"or": []})),
        [("filter.or".into(), "invalid_value".into())]
    );
    assert_eq!(
        issues(json!({"and": [], "or": []})),
        [("filter".into(), "invalid_value".into())]
    );
    assert_eq!(
        issues(json!([1])),
        [("filter".into(), "invalid_type".into())]
    );
    assert_eq!(
        issues(json!({"field": "custom.nope", "op": "eq", "value": 1})),
        [("filter.field".into(), "unknown_field".into())]
    );
    assert_eq!(
        issues(json!({"field": "deal.name", "op": "eq", "value": 1})),
        [("filter.field".into(), "unknown_field".into())]
    );
}

#[test]
fn dotted_fields_of_the_object_itself_are_not_relations() {
    const DOTTED: &[FieldInfo] = &[FieldInfo {
        name: "consent.email",
        kind: FieldKind::Enum(&["opted_in", "opted_out", "unknown"]),
        sortable: false,
    }];
    let catalog = Catalog {
        fields: DOTTED,
        relations: RELATIONS,
        custom: &[],
    };
    let raw = parse_filter(
        &json!({"field": "consent.email", "op": "eq", "value": "opted_out"}),
        "filter",
    )
    .unwrap();
    let Node::Condition(condition) = resolve(&raw, &catalog).unwrap() else {
        panic!()
    };
    assert_eq!(condition.target, Target::Standard(DOTTED[0]));
}

#[test]
fn depth_and_size_are_limited() {
    let mut deep = json!({"field": "name", "op": "eq", "value": "x"});
    for _ in 0..8 {
        deep = json!({"not": deep});
    }
    assert!(issues(deep).iter().any(|(_, code)| code == "too_deep"));
    let many: Vec<Value> = (0..51)
        .map(|_| json!({"field": "name", "op": "eq", "value": "x"}))
        .collect();
    assert!(
        issues(json!({"or": many}))
            .iter()
            .any(|(_, code)| code == "too_many_conditions")
    );
}

#[test]
fn an_oversized_filter_is_refused_once_without_reading_the_rest() {
    // 10,000 conditions in one group: one issue about the group, none about its items.
    let bad = json!({"field": "name", "op": "like", "value": "x"});
    let found = issues(json!({"and": vec![bad.clone(); 10_000]}));
    assert_eq!(
        found,
        [("filter".to_owned(), "too_many_conditions".to_owned())]
    );
    // 60 groups of one bad condition each: the count stops the walk after the limit.
    let groups: Vec<Value> = (0..30)
        .map(|_| json!({"or": [bad.clone(), bad.clone()]}))
        .collect();
    let found = issues(json!({"and": [{"and": groups}]}));
    assert!(found.len() <= MAX_CONDITIONS + 2, "{} issues", found.len());
    assert!(found.iter().any(|(_, code)| code == "too_many_conditions"));
}

#[test]
fn sorts_parse_and_sign() {
    let keys = parse_sort(&split_sort_param("-created_at,name"), &catalog(), "sort").unwrap();
    assert_eq!(sort_signature(&keys), "-created_at,name");
    assert!(parse_sort(&split_sort_param("owner_id"), &catalog(), "sort").is_err());
    assert!(parse_sort(&split_sort_param("a,b,c,d"), &catalog(), "sort").is_err());
}
