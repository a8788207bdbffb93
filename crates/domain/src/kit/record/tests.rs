use super::*;
use crate::objects::competitor::SPEC;
use serde_json::json;

fn body(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

#[test]
fn a_body_is_checked_field_by_field_and_every_problem_is_named() {
    let issues = check_input(
        &SPEC,
        &body(json!({
            "name": 7, "website": "not a url", "version": 3, "colour": "red",
            "tags": ["a", 1], "custom": []
        })),
    )
    .unwrap_err();
    let mut named: Vec<(&str, &str)> = issues
        .iter()
        .map(|i| (i.field.as_str(), i.code.as_str()))
        .collect();
    named.sort_unstable();
    assert_eq!(
        named,
        [
            ("colour", "unknown_field"),
            ("custom", "invalid_type"),
            ("name", "invalid_type"),
            ("tags", "invalid_type"),
            ("version", "read_only"),
            ("website", "invalid_value"),
        ]
    );
}

#[test]
fn values_come_back_in_their_stored_form_and_empty_text_clears() {
    let patch = check_input(
        &SPEC,
        &body(json!({"name": "  Acme  ", "notes": "   ", "tags": ["b", "a", "b"]})),
    )
    .unwrap();
    assert_eq!(patch.values["name"], json!("Acme"));
    assert_eq!(patch.values["notes"], Value::Null);
    assert_eq!(patch.values["tags"], json!(["b", "a"]));
    let cleared = check_input(&SPEC, &body(json!({"name": ""}))).unwrap_err();
    assert_eq!(cleared[0].code, "required");
}

#[test]
fn a_patch_lays_its_values_over_the_record_and_null_clears() {
    let current = body(json!({"name": "Acme", "notes": "old"}));
    let patch = RecordPatch {
        values: body(json!({"notes": null, "website": "https://acme.example"})),
        custom: None,
    };
    assert_eq!(
        Value::Object(patch.apply(&current)),
        json!({"name": "Acme", "website": "https://acme.example"})
    );
    assert!(missing_required(&SPEC, &body(json!({"notes": "x"})))[0].field == "name");
}

#[test]
fn lines_are_checked_item_by_item_and_problems_are_named_by_path() {
    let order = &crate::objects::order::SPEC;
    let issues = check_input(
        order,
        &body(json!({"lines": [
            {"sku": "TEA-001", "quantity": 0},
            "not a line",
            {"product_id": "nope", "colour": "red", "discount_minor": -1}
        ], "contact_email": 7})),
    )
    .unwrap_err();
    let named: Vec<(&str, &str)> = issues
        .iter()
        .map(|i| (i.field.as_str(), i.code.as_str()))
        .collect();
    assert_eq!(
        named,
        [
            ("contact_email", "invalid_type"),
            ("lines[0].quantity", "invalid_value"),
            ("lines[1]", "invalid_type"),
            ("lines[2].colour", "unknown_field"),
            ("lines[2].discount_minor", "invalid_value"),
            ("lines[2].product_id", "invalid_value"),
        ]
    );
    let patch = check_input(
        order,
        &body(
            json!({"lines": [{"sku": " TEA-001 ", "quantity": 2}], "contact_email": "a@b.example"}),
        ),
    )
    .unwrap();
    // A line's defaults are set; another name of a reference is kept for the store.
    assert_eq!(
        patch.values["lines"],
        json!([{"sku": "TEA-001", "quantity": 2, "discount_minor": 0}])
    );
    assert_eq!(patch.values["contact_email"], json!("a@b.example"));
    let too_many = vec![json!({"sku": "A", "quantity": 1}); crate::kit::MAX_LINES + 1];
    let refused = check_input(order, &body(json!({ "lines": too_many }))).unwrap_err();
    assert_eq!(refused[0].code, "too_many");
}

#[test]
fn lines_lacking_what_they_need_are_named_once() {
    let order = &crate::objects::order::SPEC;
    let values = body(json!({"lines": [{"quantity": 1}, {"product_id": "p", "quantity": 1}]}));
    let missing = missing_in_lines(order, &values, &[]);
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].field, "lines[0].product_id");
    let already = [FieldIssue::new("lines[0].sku", "not_found", "no such sku")];
    assert!(missing_in_lines(order, &values, &already).is_empty());
    assert_eq!(
        search_text(
            order,
            &body(json!({"number": "SO-1", "lines": [{"sku": "TEA-1"}, {"sku": "CUP"}]}))
        ),
        "so-1 tea-1 cup"
    );
}

fn company_with(id: u128, values: Value) -> Record {
    Record {
        object: ObjectType::Company,
        id: Uuid::from_u128(id),
        values: body(values),
        custom: Map::new(),
        version: 1,
        created_at: DateTime::<Utc>::MIN_UTC,
        updated_at: DateTime::<Utc>::MIN_UTC,
        created_by: None,
        deleted_at: None,
        merged_into: None,
    }
}

#[test]
fn an_address_is_checked_line_by_line_and_a_patch_merges_its_lines() {
    let company = &crate::objects::company::SPEC;
    let issues = check_input(
        company,
        &body(json!({"address": {"city": "杭州", "country": "XX", "floor": "3"}})),
    )
    .unwrap_err();
    assert_eq!(issues[0].field, "address.country");
    let patch = check_input(
        company,
        &body(json!({"address": {"city": null, "street": " 1 West Lake Rd "}, "phone": " +86 571 8888 6666 "})),
    )
    .unwrap();
    let current = body(json!({"address": {"city": "Hangzhou", "country": "CN"}}));
    let after = patch.apply(&current);
    assert_eq!(
        after["address"],
        json!({"country": "CN", "street": "1 West Lake Rd"})
    );
    assert_eq!(after["phone"], json!("+86 571 8888 6666"));
    // An address whose every line is cleared is no address; its changes are per line.
    let cleared = RecordPatch {
        values: body(json!({"address": {"country": null, "street": null}})),
        custom: None,
    }
    .apply(&after);
    assert!(!cleared.contains_key("address"));
    let changes = diff_fields(
        company,
        Some(&company_record(&after)),
        &company_record(&cleared),
    );
    assert!(changes.contains_key("address.country") && changes.contains_key("address.street"));
    assert!(!changes.contains_key("address"));
}

fn company_record(values: &Map<String, Value>) -> Record {
    company_with(1, Value::Object(values.clone()))
}

#[test]
fn a_merge_fills_what_the_primary_lacks_and_unites_tags() {
    let company = &crate::objects::company::SPEC;
    let primary = company_with(
        1,
        json!({"name": "Acme", "tags": ["a"], "parent_company_id": Uuid::from_u128(2).to_string()}),
    );
    let first = company_with(
        2,
        json!({"name": "ACME Ltd", "industry": "tea", "tags": ["b", "a"],
        "annual_revenue_minor": 500, "currency": "CNY"}),
    );
    let second = company_with(
        3,
        json!({"industry": "cups", "domain": "acme.example", "tags": ["c"],
        "annual_revenue_minor": 900, "currency": "USD"}),
    );
    let (values, _) = merge_values(company, &primary, &[first, second]);
    assert_eq!(values["name"], json!("Acme"), "the primary's values win");
    assert_eq!(
        values["industry"],
        json!("tea"),
        "the first duplicate's fill in"
    );
    assert_eq!(values["domain"], json!("acme.example"));
    assert_eq!(values["tags"], json!(["a", "b", "c"]));
    assert_eq!(
        (
            values["annual_revenue_minor"].clone(),
            values["currency"].clone()
        ),
        (json!(500), json!("CNY")),
        "an amount comes with its currency"
    );
    assert!(
        !values.contains_key("parent_company_id"),
        "a merged record is no parent"
    );
}

#[test]
fn the_catalog_offers_the_declared_fields_with_their_sortability() {
    let catalog = catalog(&SPEC);
    let name = catalog.iter().find(|f| f.name == "name").unwrap();
    assert!(name.sortable);
    assert_eq!(name.kind, query::FieldKind::Text);
    assert!(catalog.iter().any(|f| f.name == "tags"));
    assert!(catalog.iter().any(|f| f.name == "created_by"));
    let companies = super::catalog(&crate::objects::company::SPEC);
    assert!(companies.iter().any(|f| f.name == "address.city"));
    assert!(!companies.iter().any(|f| f.name == "address"));
}
