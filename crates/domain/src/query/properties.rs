//! Property tests of the filter language: whatever JSON a client sends, parsing and resolving
//! answer a filter or issues that name their place, never a panic; every well-formed filter
//! within the limits is accepted; and a sort survives the trip through its signature, which
//! is what a cursor remembers.

use chrono::DateTime;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::resolve::ops_for;
use super::*;
use crate::custom_field::{CustomFieldDef, FieldType};
use crate::object::ObjectType;

/// The codes parsing and resolving may answer.
const CODES: &[&str] = &[
    "too_deep",
    "too_many_conditions",
    "invalid_type",
    "invalid_value",
    "unknown_field",
    "required",
];

const OPS: &[&str] = &[
    "eq",
    "neq",
    "lt",
    "lte",
    "gt",
    "gte",
    "in",
    "nin",
    "contains",
    "starts_with",
    "is_null",
    "between",
];

/// Enum values and near misses.
const WORDS: &[&str] = &["lead", "customer", "a", "b", "z", "LEAD"];

/// What may stand before a sort key.
const SIGNS: &[&str] = &["", "-", "+", "--", " - "];

/// One custom field of every type.
const CUSTOM: &[(&str, FieldType)] = &[
    ("region", FieldType::Text),
    ("score", FieldType::Integer),
    ("ratio", FieldType::Number),
    ("vip", FieldType::Boolean),
    ("born", FieldType::Date),
    ("seen", FieldType::Datetime),
    ("size", FieldType::Select),
    ("labels", FieldType::MultiSelect),
    ("site", FieldType::Url),
    ("mail", FieldType::Email),
    ("fax", FieldType::Phone),
    ("budget", FieldType::Money),
];

fn definitions() -> Vec<CustomFieldDef> {
    CUSTOM
        .iter()
        .map(|(key, field_type)| CustomFieldDef {
            id: Uuid::nil(),
            org_id: Uuid::nil(),
            object: ObjectType::Contact,
            key: (*key).to_owned(),
            label: (*key).to_owned(),
            field_type: *field_type,
            options: Vec::new(),
            required: false,
            unique: false,
            version: 1,
            created_at: DateTime::UNIX_EPOCH,
            updated_at: DateTime::UNIX_EPOCH,
        })
        .collect()
}

/// The contact catalog read from the declarations: its fields, and its company's.
static CONTACT: std::sync::LazyLock<(Vec<FieldInfo>, Vec<RelationInfo>)> =
    std::sync::LazyLock::new(|| {
        let company = crate::kit::record::catalog(&crate::objects::company::SPEC);
        (
            crate::kit::record::catalog(&crate::objects::contact::SPEC),
            vec![RelationInfo {
                name: "company",
                fields: Box::leak(company.into_boxed_slice()),
            }],
        )
    });

/// The contact catalog, with a custom field of every type.
fn with_catalog<T>(f: impl FnOnce(&Catalog<'_>) -> T) -> T {
    let custom = definitions();
    f(&Catalog {
        fields: &CONTACT.0,
        relations: &CONTACT.1,
        custom: &custom,
    })
}

/// Every field path a contact filter may name, standard, custom and related.
fn field_names() -> Vec<String> {
    let mut names: Vec<String> = CONTACT.0.iter().map(|f| f.name.to_owned()).collect();
    names.extend(CUSTOM.iter().map(|(key, _)| format!("custom.{key}")));
    for relation in &CONTACT.1 {
        names.extend(
            relation
                .fields
                .iter()
                .map(|f| format!("{}.{}", relation.name, f.name)),
        );
    }
    names
}

/// Text that tries hard: any Unicode, quotes and SQL, LIKE wildcards, NUL, JSON-looking, long.
pub(crate) fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[a-z_]{1,10}(\\.[a-z_]{0,10}){0,2}",
        1 => Just(String::new()),
        1 => Just("'; drop table contacts; --".to_owned()),
        1 => Just("\" or 1=1 --".to_owned()),
        1 => Just("%_\\".to_owned()),
        1 => Just("华东 🐉 \u{200b}".to_owned()),
        1 => Just("\u{0}\r\n\t".to_owned()),
        1 => Just("{\"and\": []}".to_owned()),
        1 => Just("é".repeat(5_000)),
    ]
}

/// Any JSON value, nested a few levels.
pub(crate) fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("JSON has no NaN or infinity", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        nasty_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(nasty_string(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// A value that fits some field now and then.
fn plausible_value() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        any::<u128>().prop_map(|n| Value::from(Uuid::from_u128(n).to_string())),
        (0_i64..4_102_444_800)
            .prop_map(|s| Value::from(DateTime::from_timestamp(s, 0).unwrap().to_rfc3339())),
        Just(json!("2026-11-23")),
        Just(json!("2026-02-30")),
        select(WORDS).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        nasty_string().prop_map(Value::from),
    ];
    prop_oneof![
        4 => scalar.clone(),
        2 => prop::collection::vec(scalar, 0..5).prop_map(Value::Array),
        1 => any_json(),
    ]
}

/// A condition, sometimes missing a key or carrying an unknown one.
fn condition() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        6 => select(field_names()).prop_map(Value::from),
        1 => nasty_string().prop_map(Value::from),
        1 => any_json(),
    ];
    let op = prop_oneof![
        8 => select(OPS).prop_map(Value::from),
        1 => nasty_string().prop_map(Value::from),
        1 => any_json(),
    ];
    (field, op, plausible_value(), 0_u8..20).prop_map(|(field, op, value, shape)| {
        let mut condition = Map::new();
        if shape != 1 {
            condition.insert("field".into(), field);
        }
        if shape != 2 {
            condition.insert("op".into(), op);
        }
        if shape != 3 {
            condition.insert("value".into(), value);
        }
        if shape == 4 {
            condition.insert("colour".into(), json!("red"));
        }
        Value::Object(condition)
    })
}

/// Trees of groups around conditions, deeper than the limit at times, with malformed groups.
fn filter_tree() -> impl Strategy<Value = Value> {
    condition().prop_recursive(11, 96, 6, |inner| {
        let items = prop::collection::vec(inner.clone(), 0..6);
        prop_oneof![
            4 => items.clone().prop_map(|items| json!({"and": items})),
            4 => items.prop_map(|items| json!({"or": items})),
            4 => inner.clone().prop_map(|node| json!({"not": node})),
            1 => (inner, any_json()).prop_map(|(node, other)| json!({"not": node, "and": other})),
            1 => any_json().prop_map(|other| json!({"or": other})),
        ]
    })
}

/// A value of `kind` that `op` takes.
fn valid_operand(kind: FieldKind, op: Op) -> BoxedStrategy<Value> {
    let scalar = valid_scalar(kind);
    match op {
        Op::IsNull => any::<bool>().prop_map(Value::from).boxed(),
        Op::In | Op::Nin => prop::collection::vec(scalar, 1..=MAX_IN_VALUES)
            .prop_map(Value::Array)
            .boxed(),
        Op::Between => (scalar.clone(), scalar)
            .prop_map(|(low, high)| json!([low, high]))
            .boxed(),
        Op::Contains | Op::StartsWith => any::<String>()
            .prop_filter("contains needs text", |s| !s.is_empty())
            .prop_map(Value::from)
            .boxed(),
        _ => scalar,
    }
}

fn valid_scalar(kind: FieldKind) -> BoxedStrategy<Value> {
    match kind {
        FieldKind::Text | FieldKind::Tags => nasty_string().prop_map(Value::from).boxed(),
        FieldKind::Uuid => any::<u128>()
            .prop_map(|n| Value::from(Uuid::from_u128(n).to_string()))
            .boxed(),
        FieldKind::Integer | FieldKind::Money => any::<i64>().prop_map(Value::from).boxed(),
        FieldKind::Number => any::<f64>()
            .prop_filter_map("finite", |f| {
                serde_json::Number::from_f64(f).map(Value::Number)
            })
            .boxed(),
        FieldKind::Boolean => any::<bool>().prop_map(Value::from).boxed(),
        FieldKind::Timestamp => (-62_135_596_800_i64..253_402_300_799, 0_u32..1_000_000_000)
            .prop_map(|(s, n)| Value::from(DateTime::from_timestamp(s, n).unwrap().to_rfc3339()))
            .boxed(),
        FieldKind::Date => (1_i32..9999, 1_u32..=12, 1_u32..=28)
            .prop_map(|(y, m, d)| Value::from(format!("{y:04}-{m:02}-{d:02}")))
            .boxed(),
        FieldKind::Enum(allowed) => select(allowed).prop_map(Value::from).boxed(),
    }
}

/// A condition that is right in every respect: a known field, an operator it takes, a value
/// of its type.
fn valid_condition() -> impl Strategy<Value = Value> {
    select(field_names())
        .prop_flat_map(|field| {
            let kind = with_catalog(|c| c.target(&FieldPath::parse(&field)).unwrap().kind());
            (Just(field), select(ops_for(kind)))
        })
        .prop_flat_map(|(field, op)| {
            let kind = with_catalog(|c| c.target(&FieldPath::parse(&field)).unwrap().kind());
            valid_operand(kind, op)
                .prop_map(move |value| json!({"field": field, "op": op.as_str(), "value": value}))
        })
}

/// Trees of right conditions within the depth limit.
fn valid_tree() -> impl Strategy<Value = Value> {
    valid_condition().prop_recursive((MAX_DEPTH - 1) as u32, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|items| json!({"and": items})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|items| json!({"or": items})),
            inner.prop_map(|node| json!({"not": node})),
        ]
    })
}

fn count<C>(node: &Node<C>) -> usize {
    match node {
        Node::And(items) | Node::Or(items) => items.iter().map(count).sum(),
        Node::Not(inner) => count(inner),
        Node::Condition(_) => 1,
    }
}

fn depth<C>(node: &Node<C>) -> usize {
    match node {
        Node::And(items) | Node::Or(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Node::Not(inner) => 1 + depth(inner),
        Node::Condition(_) => 1,
    }
}

/// The same groups in the same places.
fn same_shape<A, B>(a: &Node<A>, b: &Node<B>) -> bool {
    match (a, b) {
        (Node::And(x), Node::And(y)) | (Node::Or(x), Node::Or(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_shape(a, b))
        }
        (Node::Not(x), Node::Not(y)) => same_shape(x, y),
        (Node::Condition(_), Node::Condition(_)) => true,
        _ => false,
    }
}

fn json_depth(value: &Value) -> usize {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("not") => {
            1 + json_depth(&map["not"])
        }
        Value::Object(map) => match map.get("and").or_else(|| map.get("or")) {
            Some(Value::Array(items)) if map.len() == 1 => {
                1 + items.iter().map(json_depth).max().unwrap_or(0)
            }
            _ => 1,
        },
        _ => 1,
    }
}

/// Parses and resolves `value`; checks that the answer is a filter of the same shape or a
/// list of issues, each naming a place under `filter` with a known code.
fn parse_and_resolve(value: &Value) -> Result<Option<Filter>, TestCaseError> {
    let raw = match parse_filter(value, "filter") {
        Ok(raw) => raw,
        Err(issues) => {
            prop_assert!(!issues.is_empty(), "refused without saying why");
            for issue in &issues {
                prop_assert!(issue.field.starts_with("filter"), "{issue:?}");
                prop_assert!(CODES.contains(&issue.code.as_str()), "{issue:?}");
                prop_assert!(!issue.message.is_empty());
            }
            return Ok(None);
        }
    };
    prop_assert!(count(&raw) <= MAX_CONDITIONS);
    prop_assert!(depth(&raw) <= MAX_DEPTH);
    match with_catalog(|catalog| resolve(&raw, catalog)) {
        Ok(filter) => {
            prop_assert!(same_shape(&raw, &filter));
            Ok(Some(filter))
        }
        Err(issues) => {
            prop_assert!(!issues.is_empty(), "refused without saying why");
            for issue in &issues {
                prop_assert!(issue.field.starts_with("filter"), "{issue:?}");
                prop_assert!(
                    [".field", ".op", ".value"]
                        .iter()
                        .any(|end| issue.field.ends_with(end)),
                    "{issue:?}"
                );
                prop_assert!(CODES.contains(&issue.code.as_str()), "{issue:?}");
            }
            Ok(None)
        }
    }
}

proptest! {
    #[test]
    fn any_json_is_a_filter_or_a_list_of_issues(value in any_json()) {
        parse_and_resolve(&value)?;
    }

    #[test]
    fn any_tree_of_conditions_is_a_filter_or_a_list_of_issues(value in filter_tree()) {
        parse_and_resolve(&value)?;
    }

    #[test]
    fn every_right_filter_within_the_limits_is_accepted(value in valid_tree()) {
        let raw = parse_filter(&value, "filter");
        let conditions = raw.as_ref().map(count).unwrap_or(MAX_CONDITIONS + 1);
        prop_assume!(conditions <= MAX_CONDITIONS);
        prop_assert!(json_depth(&value) <= MAX_DEPTH);
        prop_assert!(raw.is_ok(), "{:?}", raw.err());
        let accepted = parse_and_resolve(&value)?;
        prop_assert!(accepted.is_some(), "{value} was refused");
    }

    #[test]
    fn a_filter_one_level_too_deep_is_refused_as_such(condition in valid_condition()) {
        let mut deep = condition;
        for _ in 0..MAX_DEPTH {
            deep = json!({"not": deep});
        }
        let issues = parse_filter(&deep, "filter").unwrap_err();
        prop_assert!(issues.iter().any(|i| i.code == "too_deep"), "{issues:?}");
    }
}

proptest! {
    // Big inputs are slow to build: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn huge_groups_and_value_lists_are_refused_by_their_limits(
        conditions in (MAX_CONDITIONS + 1)..5_000,
        values in (MAX_IN_VALUES + 1)..20_000,
    ) {
        huge_inputs_are_refused(conditions, values)?;
    }
}

fn huge_inputs_are_refused(conditions: usize, values: usize) -> Result<(), TestCaseError> {
    let many: Vec<Value> = (0..conditions)
        .map(|i| json!({"field": "name", "op": "eq", "value": i.to_string()}))
        .collect();
    let issues = parse_filter(&json!({"or": many}), "filter").unwrap_err();
    prop_assert!(issues.iter().any(|i| i.code == "too_many_conditions"));

    let list: Vec<Value> = (0..values).map(|i| Value::from(i.to_string())).collect();
    let condition = json!({"field": "name", "op": "in", "value": list});
    let raw = parse_filter(&condition, "filter").unwrap();
    let issues = with_catalog(|c| resolve(&raw, c)).unwrap_err();
    prop_assert_eq!(&issues[0].field, "filter.value");
    Ok(())
}

/// Sort parameters: the text of `sort=`, made of field-like pieces, signs and separators.
fn sort_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => select(field_names()),
        1 => nasty_string(),
    ];
    let signed = (select(SIGNS), piece).prop_map(|(sign, field)| format!("{sign}{field}"));
    prop_oneof![
        4 => prop::collection::vec(signed, 0..6).prop_map(|keys| keys.join(",")),
        1 => nasty_string(),
    ]
}

fn sort_survives_its_signature(text: &str) -> Result<(), TestCaseError> {
    let keys = split_sort_param(text);
    for (field, _) in &keys {
        prop_assert!(!field.contains(','));
    }
    match with_catalog(|c| parse_sort(&keys, c, "sort")) {
        Ok(sort) => {
            prop_assert!(sort.len() <= MAX_SORT_KEYS);
            prop_assert_eq!(sort.len(), keys.len());
            let signature = sort_signature(&sort);
            let again = with_catalog(|c| parse_sort(&split_sort_param(&signature), c, "sort"));
            prop_assert_eq!(again, Ok(sort));
        }
        Err(issues) => {
            prop_assert!(!issues.is_empty());
            prop_assert!(
                issues
                    .iter()
                    .all(|i| i.field == "sort" && i.code == "invalid_value")
            );
        }
    }
    Ok(())
}

proptest! {
    #[test]
    fn any_sort_parameter_is_a_sort_or_an_issue_and_a_sort_survives_its_signature(
        text in sort_text(),
    ) {
        sort_survives_its_signature(&text)?;
    }
}
