//! Contacts: the people a company deals with.

use std::borrow::Cow;

use crate::ObjectType;
use crate::kit::{Capabilities, FieldKind::*, FieldSpec, ObjectSpec};
use crate::values::LifecycleStage;
use crate::write::IdProperty;

pub static SPEC: ObjectSpec = ObjectSpec {
    object: ObjectType::Contact,
    plural: Cow::Borrowed("contacts"),
    table: Cow::Borrowed("contacts"),
    fields: Cow::Borrowed(&[
        FieldSpec::read_only("id", Id),
        FieldSpec::new("external_id", Text { max_chars: 255 }),
        FieldSpec::new("first_name", Text { max_chars: 200 }),
        FieldSpec::new("last_name", Text { max_chars: 200 }),
        FieldSpec::new("email", Email),
        FieldSpec::new("emails", Emails),
        FieldSpec::new("phones", Phones),
        FieldSpec::new("title", Text { max_chars: 200 }),
        FieldSpec::reference(
            "company_id",
            ObjectType::Company,
            &[Cow::Borrowed("company_external_id")],
        ),
        FieldSpec::new("lifecycle_stage", Enum(LifecycleStage::NAMES)),
        FieldSpec::new("lead_source", Text { max_chars: 200 }),
        FieldSpec::new("owner_id", Reference(ObjectType::User)),
        FieldSpec::new("language", Locale),
        FieldSpec::new("timezone", TimeZone),
        FieldSpec::new("address", Address),
        FieldSpec::new("consent", Consent),
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
    natural_keys: Cow::Borrowed(&[IdProperty::Id, IdProperty::ExternalId, IdProperty::Email]),
    capabilities: Capabilities {
        owned: true,
        custom_fields: true,
        events: true,
        import: true,
        export: true,
        merge: true,
    },
    about: Cow::Borrowed("A person at a customer, prospect or partner."),
    engine: false,
};
