//! Companies (accounts): the organizations a company sells to, their hierarchy, owners and
//! purchase figures. Served by the engine from this declaration; the rules that need the
//! database (the hierarchy stays acyclic, lifecycle changes are recorded, contacts search
//! their company's name) are `storage::rules::company`.

use std::borrow::Cow;

use crate::ObjectType;
use crate::kit::{Capabilities, FieldKind::*, FieldSpec, Literal, ObjectSpec};
use crate::values::{LifecycleStage, Tier};
use crate::write::IdProperty;

const COUNT: crate::kit::FieldKind = Integer {
    min: 0,
    max: i64::MAX,
};

pub static SPEC: ObjectSpec = ObjectSpec {
    object: ObjectType::Company,
    plural: Cow::Borrowed("companies"),
    table: Cow::Borrowed("companies"),
    fields: Cow::Borrowed(&[
        FieldSpec::read_only("id", Id),
        FieldSpec::new("external_id", Text { max_chars: 255 }),
        FieldSpec::new("name", Text { max_chars: 200 })
            .required()
            .sortable()
            .searchable()
            .matching(),
        FieldSpec::new("domain", Domain)
            .searchable()
            .matching()
            .about("Lower case, without scheme or `www.`; companies are also found by it."),
        FieldSpec::new("industry", Text { max_chars: 200 }),
        FieldSpec::new("employee_count", COUNT),
        FieldSpec::new("annual_revenue_minor", Money).requires("currency"),
        FieldSpec::new("currency", Currency),
        FieldSpec::new("phone", Phone)
            .searchable()
            .matching()
            .about("As written."),
        FieldSpec::read_only("phone_e164", Text { max_chars: 20 })
            .about("The phone in E.164, null when it cannot be read."),
        FieldSpec::new("website", Url),
        FieldSpec::new("address", Address),
        FieldSpec::reference(
            "parent_company_id",
            ObjectType::Company,
            &[Cow::Borrowed("parent_external_id")],
        )
        .filterable()
        .about("The parent company (by `parent_company_id` or `parent_external_id`)."),
        FieldSpec::new("tier", Enum(Tier::NAMES)).filterable(),
        FieldSpec::new("lifecycle_stage", Enum(LifecycleStage::NAMES)).filterable(),
        FieldSpec::read_only("lifecycle_stage_changed_at", Timestamp),
        FieldSpec::new("owner_id", Reference(ObjectType::User))
            .filterable()
            .about("Default on creation: the caller."),
        FieldSpec::new("source", Text { max_chars: 200 }),
        FieldSpec::new("tags", Tags),
        FieldSpec::read_only("last_activity_at", Timestamp).sortable(),
        FieldSpec::read_only("first_order_at", Timestamp)
            .about("When the first paid or fulfilled order was placed."),
        FieldSpec::read_only("last_order_at", Timestamp),
        FieldSpec::read_only("order_count", COUNT)
            .default_to(Literal::Integer(0))
            .about("Paid and fulfilled orders."),
        FieldSpec::read_only("revenue_minor", Money)
            .default_to(Literal::Integer(0))
            .about("The sum of those orders' totals, in minor units."),
        FieldSpec::read_only("version", Version),
        FieldSpec::read_only("created_at", Timestamp).sortable(),
        FieldSpec::read_only("updated_at", Timestamp).sortable(),
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
    engine: true,
};
