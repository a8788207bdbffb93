use serde_json::json;

use super::*;

#[test]
fn quoted_fields_may_hold_newlines_and_commas() {
    let content = "first_name,title\n\"王\",\"Line one\nline two, still\"\nLi,CTO\n";
    let (headers, total) = inspect(content.as_bytes()).unwrap();
    assert_eq!(headers, ["first_name", "title"]);
    assert_eq!(total, 2);
}

#[test]
fn cells_become_typed_values_at_their_paths() {
    let mut row = Map::new();
    set_path(
        &mut row,
        "address.city",
        cell_value(Kind::Text, "上海").unwrap(),
    );
    set_path(
        &mut row,
        "tags",
        cell_value(Kind::List, "vip; east ;").unwrap(),
    );
    set_path(
        &mut row,
        "custom.size",
        cell_value(Kind::Integer, "42").unwrap(),
    );
    set_path(&mut row, "line.sku", cell_value(Kind::Text, "TEA").unwrap());
    set_path(
        &mut row,
        "line.quantity",
        cell_value(Kind::Integer, "3").unwrap(),
    );
    set_path(
        &mut row,
        "consent.email",
        cell_value(Kind::Consent, "opted_in").unwrap(),
    );
    assert_eq!(
        Value::Object(row),
        json!({"address": {"city": "上海"}, "tags": ["vip", "east"], "custom": {"size": 42},
               "lines": [{"sku": "TEA", "quantity": 3}], "consent": {"email": {"status": "opted_in"}}})
    );
    assert!(cell_value(Kind::Integer, "4.5").is_err());
    assert_eq!(cell_value(Kind::Boolean, "Yes").unwrap(), json!(true));
    assert_eq!(
        cell_value(Kind::Money, "12900 CNY").unwrap(),
        json!({"amount_minor": 12900, "currency": "CNY"})
    );
}

#[test]
fn files_with_too_many_columns_or_a_nul_in_a_name_are_refused() {
    let wide = (0..=MAX_COLUMNS)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let error = inspect(format!("{wide}\n").as_bytes()).unwrap_err();
    assert_eq!(
        (
            error.errors()[0].field.as_str(),
            error.errors()[0].code.as_ref()
        ),
        ("file", "too_many")
    );
    let error = inspect(b"email,no\0te\nx@y.example,1\n").unwrap_err();
    assert_eq!(error.errors()[0].code, "invalid_character");
    assert!(error.errors()[0].message.contains("column 2"));
}

#[test]
fn an_oversized_mapping_is_refused_before_any_entry_is_read() {
    let mapping: BTreeMap<String, String> = (0..=MAX_COLUMNS)
        .map(|i| (format!("c{i}"), "email".to_owned()))
        .collect();
    let error = check_mapping(ObjectType::Contact, &[], Some(&mapping), &[], None).unwrap_err();
    assert_eq!(error.errors().len(), 1);
    assert_eq!(error.errors()[0].field, "mapping");
}

#[test]
fn neutralised_cells_read_as_what_was_exported() {
    assert_eq!(
        cell_value(Kind::List, formula::restore("'@vip; east")).unwrap(),
        json!(["@vip", "east"])
    );
    assert_eq!(
        cell_value(Kind::Text, formula::restore("'=HYPERLINK(\"x\")")).unwrap(),
        json!("=HYPERLINK(\"x\")")
    );
    assert_eq!(
        cell_value(Kind::Integer, formula::restore("-5")).unwrap(),
        json!(-5)
    );
}

#[test]
fn columns_map_to_known_fields_only() {
    let headers = vec!["E-mail".to_owned(), "Name".to_owned()];
    let mapping = BTreeMap::from([
        ("E-mail".to_owned(), "email".to_owned()),
        ("Name".to_owned(), "first_name".to_owned()),
    ]);
    let pairs = check_mapping(
        ObjectType::Contact,
        &headers,
        Some(&mapping),
        &[],
        Some(IdProperty::Email),
    )
    .unwrap();
    assert_eq!(
        pairs,
        [
            ("E-mail".to_owned(), "email".to_owned()),
            ("Name".to_owned(), "first_name".to_owned())
        ]
    );
    let unmapped = check_mapping(ObjectType::Contact, &headers, None, &[], None).unwrap_err();
    assert_eq!(unmapped.errors().len(), 2);
    let no_key = check_mapping(
        ObjectType::Contact,
        &headers,
        Some(&mapping),
        &[],
        Some(IdProperty::ExternalId),
    )
    .unwrap_err();
    assert_eq!(no_key.errors()[0].field, "id_property");
}

#[test]
fn phones_read_back_with_the_kind_an_export_writes_beside_them() {
    let cell = cell_value(
        Kind::Phones,
        "+86 138 0013 8000 (mobile); 0571 8888 6666 (work); +1 555 0100 (ext 12); 010 1234",
    )
    .unwrap();
    assert_eq!(
        cell,
        json!([
            {"number": "+86 138 0013 8000", "kind": "mobile"},
            {"number": "0571 8888 6666", "kind": "work"},
            {"number": "+1 555 0100 (ext 12)"},
            {"number": "010 1234"}
        ])
    );
}
