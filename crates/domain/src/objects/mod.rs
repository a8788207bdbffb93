//! The registry: every object Rapport serves through the object kit, declared once, side by
//! side. Generic code asks the registry — which objects carry custom fields, which are in the
//! feed, which import and export, by what a write finds a record, which columns an export
//! writes — and keeps no list of objects of its own. An object the registry lacks has none
//! of these (and no `_ =>` arm gives it another object's behaviour).

use crate::ObjectType;
use crate::kit::{NoRules, ObjectSpec, Rules};

pub mod company;
pub mod competitor;
pub mod contact;
pub mod order;
pub mod product;

/// Every declared object, in the order documents list them.
pub static REGISTRY: &[&ObjectSpec] = &[
    &company::SPEC,
    &contact::SPEC,
    &product::SPEC,
    &order::SPEC,
    &competitor::SPEC,
];

/// The business rules of `object` (see [`Rules`]): the objects that have any, by name.
pub fn rules(object: ObjectType) -> &'static dyn Rules {
    match object {
        ObjectType::Order => &order::RULES,
        ObjectType::Contact => &contact::RULES,
        _ => &NoRules,
    }
}

/// The declaration of `object`; None for what is not a declared object (users, webhooks…).
pub fn spec(object: ObjectType) -> Option<&'static ObjectSpec> {
    REGISTRY.iter().copied().find(|spec| spec.object == object)
}

/// The declared objects that have a capability, in registry order.
pub fn with(capability: impl Fn(&ObjectSpec) -> bool) -> Vec<ObjectType> {
    REGISTRY
        .iter()
        .filter(|spec| capability(spec))
        .map(|spec| spec.object)
        .collect()
}

/// The objects whose records carry `custom` values.
pub fn custom_field_objects() -> Vec<ObjectType> {
    with(|spec| spec.capabilities.custom_fields)
}

/// The objects whose changes the feed carries and webhooks deliver.
pub fn event_objects() -> Vec<ObjectType> {
    with(|spec| spec.capabilities.events)
}

/// The objects the generic engine serves from their declaration alone.
pub fn engine_objects() -> impl Iterator<Item = &'static ObjectSpec> {
    REGISTRY.iter().copied().filter(|spec| spec.engine)
}

/// The objects a CSV can hold.
pub fn import_objects() -> Vec<ObjectType> {
    with(|spec| spec.capabilities.import)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::IdProperty;

    #[test]
    fn each_object_is_declared_once_with_unique_paths_and_tables() {
        let mut seen = std::collections::HashSet::new();
        for spec in REGISTRY {
            assert!(seen.insert(spec.object), "{} twice", spec.object);
            assert_eq!(spec.natural_keys.first(), Some(&IdProperty::Id));
            assert!(spec.natural_keys.contains(&IdProperty::ExternalId));
            assert_eq!(
                REGISTRY.iter().filter(|s| s.plural == spec.plural).count(),
                1
            );
            assert_eq!(REGISTRY.iter().filter(|s| s.table == spec.table).count(), 1);
            assert_eq!(spec.export_columns()[..2], ["id", "external_id"]);
            for field in spec.fields.iter() {
                assert_eq!(
                    spec.fields.iter().filter(|f| f.name == field.name).count(),
                    1,
                    "{}.{} twice",
                    spec.object,
                    field.name
                );
            }
        }
    }

    #[test]
    fn engine_objects_declare_only_what_the_engine_serves() {
        for spec in engine_objects() {
            assert!(
                !spec.capabilities.owned || spec.field("owner_id").is_some(),
                "{}: an owned object has an owner_id",
                spec.object
            );
            assert!(
                !spec.capabilities.merge || spec.fields.iter().any(|f| f.matching),
                "{}: an object that merges says what makes duplicates",
                spec.object
            );
            for field in spec.fields.iter() {
                // A reference names a declared object, found by its other names' columns.
                if let crate::kit::FieldKind::Reference(target) = field.kind {
                    assert!(
                        target == ObjectType::User || super::spec(target).is_some(),
                        "{}.{}: names no declared object",
                        spec.object,
                        field.name
                    );
                }
                assert!(
                    !field.listed_under
                        || matches!(field.kind, crate::kit::FieldKind::Reference(_)),
                    "{}.{}: only a reference lists records under another",
                    spec.object,
                    field.name
                );
                if let Some(other) = field.requires {
                    assert!(
                        spec.field(other).is_some(),
                        "{}.{} requires {other}",
                        spec.object,
                        field.name
                    );
                }
            }
            // Every natural key but id and external id names a writable field of its name.
            for key in spec.natural_keys.iter().skip(2) {
                assert!(
                    spec.field(key.as_str()).is_some_and(|f| !f.read_only),
                    "{}: {} is no field",
                    spec.object,
                    key.as_str()
                );
            }
        }
        assert!(engine_objects().any(|spec| spec.object == ObjectType::Competitor));
        assert!(engine_objects().any(|spec| spec.object == ObjectType::Order));
    }

    #[test]
    fn objects_outside_the_kit_have_no_declaration() {
        assert!(spec(ObjectType::User).is_none());
        assert!(spec(ObjectType::Webhook).is_none());
        assert_eq!(spec(ObjectType::Product).unwrap().plural, "products");
    }
}
