//! Orders: purchase history, with lines and totals Rapport computes.

use std::borrow::Cow;

use crate::ObjectType;
use crate::kit::{Capabilities, FieldKind::*, FieldSpec, ObjectSpec};
use crate::order::OrderStatus;
use crate::write::IdProperty;

const LINE_FIELDS: &[FieldSpec] = &[
    FieldSpec::reference("product_id", ObjectType::Product, &[Cow::Borrowed("sku")]),
    FieldSpec::new(
        "quantity",
        Integer {
            min: 1,
            max: i64::MAX,
        },
    ),
    FieldSpec::new("unit_price_minor", Money),
    FieldSpec::new("discount_minor", Money),
];

pub static SPEC: ObjectSpec = ObjectSpec {
    object: ObjectType::Order,
    plural: Cow::Borrowed("orders"),
    table: Cow::Borrowed("orders"),
    fields: Cow::Borrowed(&[
        FieldSpec::read_only("id", Id),
        FieldSpec::new("external_id", Text { max_chars: 255 }),
        FieldSpec::new("number", Text { max_chars: 100 }),
        FieldSpec::reference(
            "contact_id",
            ObjectType::Contact,
            &[
                Cow::Borrowed("contact_external_id"),
                Cow::Borrowed("contact_email"),
            ],
        ),
        FieldSpec::reference(
            "company_id",
            ObjectType::Company,
            &[Cow::Borrowed("company_external_id")],
        ),
        FieldSpec::new("status", Enum(OrderStatus::NAMES)),
        FieldSpec::new("ordered_at", Timestamp),
        FieldSpec::new("currency", Currency),
        // Computed from the lines; a value given is checked against them.
        FieldSpec::new("total_minor", Money),
        FieldSpec::new("lines", Lines(LINE_FIELDS)),
        FieldSpec::read_only("version", Version),
        FieldSpec::read_only("created_at", Timestamp),
        FieldSpec::read_only("updated_at", Timestamp),
    ]),
    natural_keys: Cow::Borrowed(&[IdProperty::Id, IdProperty::ExternalId, IdProperty::Number]),
    capabilities: Capabilities {
        owned: false,
        custom_fields: true,
        events: true,
        import: true,
        export: true,
        merge: false,
    },
    about: Cow::Borrowed(
        "A purchase: its lines, totals and status, from an ERP, a shop or by hand.",
    ),
    engine: false,
};
