//! Competitors: the other vendors a deal is fought against, with what the sales team knows
//! of them. The first object that is only a declaration: the engine serves it whole.

use std::borrow::Cow;

use crate::ObjectType;
use crate::kit::{Capabilities, FieldKind::*, FieldSpec, ObjectSpec};
use crate::write::IdProperty;

pub static SPEC: ObjectSpec = ObjectSpec {
    object: ObjectType::Competitor,
    plural: Cow::Borrowed("competitors"),
    table: Cow::Borrowed("competitors"),
    fields: Cow::Borrowed(&[
        FieldSpec::read_only("id", Id),
        FieldSpec::new("external_id", Text { max_chars: 255 }),
        FieldSpec::new("name", Text { max_chars: 200 })
            .required()
            .sortable()
            .searchable(),
        FieldSpec::new("website", Url).searchable(),
        FieldSpec::new("strengths", Text { max_chars: 5000 }),
        FieldSpec::new("weaknesses", Text { max_chars: 5000 }),
        FieldSpec::new("notes", Text { max_chars: 5000 }),
        FieldSpec::new("tags", Tags),
        FieldSpec::read_only("version", Version),
        FieldSpec::read_only("created_at", Timestamp).sortable(),
        FieldSpec::read_only("updated_at", Timestamp).sortable(),
    ]),
    natural_keys: Cow::Borrowed(&[IdProperty::Id, IdProperty::ExternalId]),
    capabilities: Capabilities {
        custom_fields: true,
        events: true,
        ..Capabilities::NONE
    },
    about: Cow::Borrowed("Another vendor deals are fought against, and what is known of it."),
    engine: true,
};
