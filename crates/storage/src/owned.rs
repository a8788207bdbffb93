//! The objects that have an owner, and where: what an ownership transfer reassigns. Every
//! owned object added later joins this list (and `OWNED_OBJECTS` in the domain).

use rapport_domain::ObjectType;

pub(crate) struct OwnedTable {
    pub object: ObjectType,
    /// Table and column names are constants of this list, never input.
    pub reassign: &'static str,
    /// For objects in the event log: the ids a transfer moves, so that each gets its event.
    pub owned_ids: Option<&'static str>,
}

macro_rules! reassign {
    ($table:literal, $column:literal) => {
        concat!(
            "update ",
            $table,
            " set ",
            $column,
            " = $1, version = version + 1, updated_at = $4 ",
            "where org_id = $2 and ",
            $column,
            " = $3"
        )
    };
}

macro_rules! owned_ids {
    ($table:literal) => {
        concat!(
            "select id from ",
            $table,
            " where org_id = $1 and owner_id = $2 and deleted_at is null"
        )
    };
}

pub(crate) const OWNED: &[OwnedTable] = &[
    OwnedTable {
        object: ObjectType::Team,
        reassign: reassign!("teams", "manager_id"),
        owned_ids: None,
    },
    OwnedTable {
        object: ObjectType::Company,
        reassign: reassign!("companies", "owner_id"),
        owned_ids: Some(owned_ids!("companies")),
    },
    OwnedTable {
        object: ObjectType::Contact,
        reassign: reassign!("contacts", "owner_id"),
        owned_ids: Some(owned_ids!("contacts")),
    },
];

#[cfg(test)]
mod tests {
    use rapport_domain::identity::OWNED_OBJECTS;

    use super::*;

    #[test]
    fn every_owned_object_of_the_domain_has_a_table() {
        for object in OWNED_OBJECTS {
            assert!(
                OWNED.iter().any(|owned| owned.object == *object),
                "{object} has no entry in OWNED"
            );
        }
        assert_eq!(OWNED.len(), OWNED_OBJECTS.len());
    }
}
