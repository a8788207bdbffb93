//! One input type serves a record's create and its merge patch; their schemas differ in what
//! must be there. The derived schema `<Object>Input` is the create's (and the upsert's, which
//! may create): it gains the fields a create needs. `<Object>Patch`, for `PATCH`, is the
//! derived one as it was: every field optional, `null` clears.

use utoipa::openapi::path::PathItem;
use utoipa::openapi::schema::{
    AllOfBuilder, AnyOfBuilder, Object, ObjectBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Content, Ref, RefOr};

/// Per input schema: the fields a create needs, and groups of which it needs one. Each of
/// these fields is also never null, in a patch too: they cannot be cleared.
const CREATE_RULES: &[(&str, &[&str], &[&str])] = &[("WebhookInput", &["url", "events"], &[])];

/// `type: [string, null]` → `string`, `oneOf: [X, null]` → `X`; text must not be blank.
fn non_null(schema: &mut RefOr<Schema>) {
    match schema {
        RefOr::T(Schema::Object(object)) => {
            if let SchemaType::Array(types) = &object.schema_type {
                let types: Vec<Type> = types
                    .iter()
                    .filter(|t| **t != Type::Null)
                    .cloned()
                    .collect();
                object.schema_type = match types.as_slice() {
                    [one] => SchemaType::Type(one.clone()),
                    _ => SchemaType::Array(types),
                };
            }
            if object.schema_type == SchemaType::Type(Type::String) {
                object.min_length.get_or_insert(1);
                object.pattern.get_or_insert_with(|| r"\S".to_owned());
            }
        }
        RefOr::T(Schema::OneOf(one_of)) => {
            let items: Vec<RefOr<Schema>> = one_of
                .items
                .iter()
                .filter(|item| !matches!(item, RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Null)))
                .cloned()
                .collect();
            if let [only] = items.as_slice() {
                *schema = only.clone();
            }
        }
        _ => {}
    }
}

fn property_non_null(object: &mut Object, field: &str) {
    if let Some(property) = object.properties.get_mut(field) {
        non_null(property);
    }
}

/// Applies the rules, adds the `…Patch` schemas and points every `PATCH` body at them.
pub fn apply(document: &mut utoipa::openapi::OpenApi) {
    let Some(components) = document.components.as_mut() else {
        return;
    };
    let mut patched = Vec::new();
    for (name, required, one_of) in CREATE_RULES {
        let Some(RefOr::T(Schema::Object(mut object))) = components.schemas.get(*name).cloned()
        else {
            continue;
        };
        for field in required.iter() {
            property_non_null(&mut object, field);
        }
        let patch_name = format!("{}Patch", name.trim_end_matches("Input"));
        components
            .schemas
            .insert(patch_name.clone(), RefOr::T(Schema::Object(object.clone())));
        object.required = required.iter().map(|f| (*f).to_owned()).collect();
        let create = if one_of.is_empty() {
            Schema::Object(object)
        } else {
            let mut any = AnyOfBuilder::new();
            for field in one_of.iter() {
                let mut property = object.properties.get(*field).cloned().unwrap_or_default();
                non_null(&mut property);
                any = any.item(
                    ObjectBuilder::new()
                        .required(*field)
                        .property(*field, property),
                );
            }
            let description = object.description.clone();
            let names = one_of.join(", ");
            AllOfBuilder::new()
                .description(description.map(|d| format!("{d} A create needs one of {names}.")))
                .item(object)
                .item(any)
                .into()
        };
        components
            .schemas
            .insert((*name).to_owned(), RefOr::T(create));
        patched.push((
            format!("#/components/schemas/{name}"),
            format!("#/components/schemas/{patch_name}"),
        ));
    }
    for item in document.paths.paths.values_mut() {
        retarget_patch_body(item, &patched);
    }
}

fn retarget_patch_body(item: &mut PathItem, patched: &[(String, String)]) {
    let Some(RefOr::T(body)) = item.patch.as_mut().and_then(|op| op.request_body.as_mut()) else {
        return;
    };
    for content in body.content.values_mut() {
        if let RefOr::T(content) = content {
            retarget(content, patched);
        }
    }
}

fn retarget(content: &mut Content, patched: &[(String, String)]) {
    if let Some(RefOr::Ref(reference)) = &content.schema
        && let Some((_, patch)) = patched
            .iter()
            .find(|(from, _)| *from == reference.ref_location)
    {
        content.schema = Some(RefOr::Ref(Ref::new(patch.clone())));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(crate::openapi::document()).expect("the document is JSON")
    }

    #[test]
    fn a_create_needs_what_a_patch_may_leave_out() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        assert_eq!(
            schemas["CompanyInput"]["required"],
            serde_json::json!(["name"])
        );
        assert!(schemas["CompanyPatch"]["required"].is_null());
        // The name can be left out of a patch, never cleared.
        assert_eq!(
            schemas["CompanyPatch"]["properties"]["name"]["type"],
            "string"
        );
        assert_eq!(
            schemas["WebhookInput"]["required"],
            serde_json::json!(["url", "events"])
        );
    }

    #[test]
    fn patch_bodies_name_the_patch_schema_and_creates_the_input() {
        let doc = document();
        let body = |path: &str, method: &str| {
            doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
                ["$ref"]
                .clone()
        };
        assert_eq!(
            body("/v1/companies/{id}", "patch"),
            "#/components/schemas/CompanyPatch"
        );
        assert_eq!(
            body("/v1/companies", "post"),
            "#/components/schemas/CompanyInput"
        );
        // An engine object's upsert merges into the record it finds, like a patch.
        assert_eq!(
            body("/v1/orders/external/{external_id}", "put"),
            "#/components/schemas/OrderPatch"
        );
    }
}
