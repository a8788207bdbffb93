use serde_json::json;

use super::batch::{row_failure, take_key};
use super::*;
use crate::error::ErrorCode;

#[test]
fn a_row_key_must_be_a_non_empty_string() {
    let mut row = json!({"external_id": " "})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let error = take_key(&mut row, IdProperty::ExternalId).unwrap_err();
    assert_eq!(error.errors()[0].code, "required");
    let mut row = json!({"id": "not-a-uuid"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        take_key(&mut row, IdProperty::Id).unwrap_err().errors()[0].code,
        "invalid_value"
    );
    let mut row = json!({"sku": 7}).as_object().cloned().unwrap_or_default();
    assert_eq!(
        take_key(&mut row, IdProperty::Sku).unwrap_err().errors()[0].code,
        "invalid_type"
    );
}

#[test]
fn an_id_key_leaves_the_row_and_other_keys_stay() {
    let id = Uuid::now_v7().to_string();
    let mut row = json!({"id": id, "name": "x"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert_eq!(take_key(&mut row, IdProperty::Id).unwrap(), id);
    assert!(!row.contains_key("id"));
    let mut row = json!({"email": "a@b.example"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    take_key(&mut row, IdProperty::Email).unwrap();
    assert!(row.contains_key("email"));
}

#[test]
fn row_errors_name_the_row_in_their_fields() {
    let result = row_failure(
        3,
        ApiError::invalid("email", "invalid_value", "is not an email"),
    );
    let problem = result.error.unwrap();
    assert_eq!(problem.errors[0].field, "records[3].email");
    assert_eq!(problem.code, ErrorCode::ValidationFailed.as_str());
}
