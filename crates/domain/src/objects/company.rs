//! Companies (accounts) and their hierarchy.

use std::borrow::Cow;

use crate::ObjectType;
use crate::kit::{Capabilities, FieldKind::*, FieldSpec, ObjectSpec};
use crate::values::{LifecycleStage, Tier};
use crate::write::IdProperty;

pub static SPEC: ObjectSpec = ObjectSpec {
    object: ObjectType::Company,
    plural: Cow::Borrowed("companies"),
    table: Cow::Borrowed("companies"),
    fields: Cow::Borrowed(&[
        FieldSpec::read_only("id", Id),
        FieldSpec::new("external_id", Text { max_chars: 255 }),
        FieldSpec::new("name", Text { max_chars: 200 }),
        FieldSpec::new("domain", Domain),
        FieldSpec::new("industry", Text { max_chars: 200 }),
        FieldSpec::new(
            "employee_count",
            Integer {
                min: 0,
                max: i64::MAX,
            },
        ),
        FieldSpec::new("annual_revenue_minor", Money),
        FieldSpec::new("currency", Currency),
        FieldSpec::new("phone", Phone),
        FieldSpec::new("website", Url),
        FieldSpec::new("address", Address),
        FieldSpec::reference(
            "parent_company_id",
            ObjectType::Company,
            &[Cow::Borrowed("parent_external_id")],
        ),
        FieldSpec::new("tier", Enum(Tier::NAMES)),
        FieldSpec::new("lifecycle_stage", Enum(LifecycleStage::NAMES)),
        FieldSpec::new("owner_id", Reference(ObjectType::User)),
        FieldSpec::new("source", Text { max_chars: 200 }),
        FieldSpec::new("tags", Tags),
        FieldSpec::read_only("first_order_at", Timestamp),
        FieldSpec::read_only("last_order_at", Timestamp),
        FieldSpec::read_only(
            "order_count",
            Integer {
                min: 0,
                max: i64::MAX,
            },
        ),
        FieldSpec::read_only("revenue_minor", Money),
        FieldSpec::read_only("version", Version),
        FieldSpec::read_only("created_at", Timestamp),
        FieldSpec::read_only("updated_at", Timestamp),
    ]),
    natural_keys: Cow::Borrowed(&[IdProperty::Id, IdProperty::ExternalId, IdProperty::Domain]),
    capabilities: Capabilities {
        owned: true,
        custom_fields: true,
        events: true,
        import: true,
        export: true,
        merge: true,
    },
    about: Cow::Borrowed("A company: a customer, prospect or partner organisation."),
    engine: false,
};
