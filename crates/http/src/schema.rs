//! Schemas written by hand, for request parts that serde reads as plain JSON and the domain
//! parses itself: the filter tree of searches.

use std::borrow::Cow;

use rapport_domain::query::{MAX_CONDITIONS, Op};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

/// A node of a search's filter tree: a group (`and`, `or`, `not`) or a condition.
pub struct FilterNode;

fn closed_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
}

impl utoipa::PartialSchema for FilterNode {
    fn schema() -> RefOr<Schema> {
        let node = || Ref::from_schema_name("FilterNode");
        let group = |key: &str| {
            closed_object().required(key).property(
                key,
                ArrayBuilder::new()
                    .items(node())
                    .min_items(Some(1))
                    .max_items(Some(MAX_CONDITIONS)),
            )
        };
        let condition = closed_object()
            .required("field")
            .required("op")
            .property(
                "field",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .examples(["custom.region"]),
            )
            .property(
                "op",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(Op::NAMES.split(", "))),
            )
            .property(
                "value",
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .description(Some("The operand; see above.")),
            );
        OneOfBuilder::new()
            .description(Some(
                "A group `{\"and\": [...]}`, `{\"or\": [...]}`, `{\"not\": node}` or a condition \
                 `{\"field\", \"op\", \"value\"}`. `field` is a standard field, `custom.<key>` or \
                 `<relation>.<field>` (`company.industry`); `value` is what the operator takes: a \
                 scalar, an array for `in` and `nin`, `[low, high]` for `between`, a boolean for \
                 `is_null`. At most 8 levels and 50 conditions.",
            ))
            .item(group("and"))
            .item(group("or"))
            .item(closed_object().required("not").property("not", node()))
            .item(condition)
            .into()
    }
}

impl utoipa::ToSchema for FilterNode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("FilterNode")
    }
}

/// Declares a string schema, built with these `ObjectBuilder` calls, from the values the code
/// checks against (so that the document and the check cannot drift apart).
macro_rules! string_schema {
    ($(#[doc = $doc:literal])* $name:ident { $($method:ident($value:expr)),* }) => {
        $(#[doc = $doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(concat!($($doc),*).trim()))
                    $(.$method(Some($value)))*
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

string_schema!(
    /// An object whose records carry custom fields.
    CustomFieldObject {
        enum_values(rapport_domain::objects::custom_field_objects().iter().map(|o| o.as_str()))
    }
);
string_schema!(
    /// An object whose records CSV imports write.
    ImportObject {
        enum_values(rapport_domain::objects::import_objects().iter().map(|o| o.as_str()))
    }
);
string_schema!(
    /// An ISO 3166-1 alpha-2 country code, e.g. `CN`.
    Country {
        enum_values(rapport_domain::iso::COUNTRIES)
    }
);
string_schema!(
    /// An ISO 4217 currency code, e.g. `CNY`.
    Currency {
        enum_values(rapport_domain::iso::CURRENCIES)
    }
);
string_schema!(
    /// An email address, compared case-insensitively.
    EmailAddress {
        format(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Email)),
        max_length(rapport_domain::Email::MAX_LEN)
    }
);
string_schema!(
    /// A tag: up to 64 characters (blank tags are dropped, repeats kept once).
    Tag {
        max_length(rapport_domain::values::MAX_TAG_LEN)
    }
);
