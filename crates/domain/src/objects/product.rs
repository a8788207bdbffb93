//! Products: the catalog order lines refer to (by id or sku). Served by the engine from this
//! declaration alone: orders keep the sku, name and price their lines had when written.

use std::borrow::Cow;

use crate::ObjectType;
use crate::kit::{Capabilities, FieldKind::*, FieldSpec, Literal, ObjectSpec};
use crate::write::IdProperty;

pub static SPEC: ObjectSpec = ObjectSpec {
    object: ObjectType::Product,
    plural: Cow::Borrowed("products"),
    table: Cow::Borrowed("products"),
    fields: Cow::Borrowed(&[
        FieldSpec::read_only("id", Id),
        FieldSpec::new("external_id", Text { max_chars: 255 }),
        FieldSpec::new("sku", Text { max_chars: 100 })
            .required()
            .unique()
            .searchable(),
        FieldSpec::new("name", Text { max_chars: 200 })
            .required()
            .sortable()
            .searchable(),
        FieldSpec::new("description", Text { max_chars: 5000 }),
        FieldSpec::new("category", Text { max_chars: 200 })
            .searchable()
            .filterable(),
        FieldSpec::new("unit_price_minor", Money)
            .requires("currency")
            .about("The list price; order lines default to it."),
        FieldSpec::new("currency", Currency),
        FieldSpec::new(
            "warranty_months",
            Integer {
                min: 0,
                max: i64::MAX,
            },
        ),
        FieldSpec::new("active", Boolean)
            .filterable()
            .default_to(Literal::Boolean(true)),
        FieldSpec::read_only("version", Version),
        FieldSpec::read_only("created_at", Timestamp).sortable(),
        FieldSpec::read_only("updated_at", Timestamp).sortable(),
    ]),
    natural_keys: Cow::Borrowed(&[IdProperty::Id, IdProperty::ExternalId, IdProperty::Sku]),
    capabilities: Capabilities {
        custom_fields: true,
        events: true,
        import: true,
        export: true,
        ..Capabilities::NONE
    },
    about: Cow::Borrowed("Something the organization sells; order lines refer to it."),
    engine: true,
};
