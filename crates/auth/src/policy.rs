//! The one permission policy: may this role do this action on this object? The HTTP layer
//! asks through its `Require<…>` extractor; nothing else decides.

use rapport_domain::{Action, ObjectType, Role};

/// Whether `role` may perform `action` on objects of type `object` at all. Which records it
/// then sees is record visibility (`AuthContext::record_filter`), and an API key further limits
/// a role by its scopes.
pub fn permits(role: Role, action: Action, object: ObjectType) -> bool {
    use Action::*;
    use ObjectType::*;
    use Role::*;

    if role == Owner {
        return true;
    }
    match object {
        // Administration: owners and admins.
        User | AuditLog | Webhook => role == Admin,
        Organization | Team | CustomField | Pipeline => action == Read || role == Admin,
        // Everyone manages their own keys (the store shows others' only to admins).
        ApiKey => true,
        Export => matches!(role, Admin | Manager),
        Import => matches!(role, Admin | Manager | Sales | Marketing),
        // Customer data: everyone reads; who writes depends on the job.
        _ if action == Read => true,
        _ => match role {
            Owner | Admin | Manager => true,
            Viewer => false,
            Sales => {
                matches!(
                    object,
                    Company | Contact | Lead | Deal | Competitor | Activity | Task | Order
                ) && (action != Delete || object != Order)
            }
            Support => match action {
                Delete => matches!(object, Ticket | Activity | Task),
                _ => matches!(object, Company | Contact | Ticket | Activity | Task),
            },
            Marketing => match action {
                Delete => matches!(object, Segment | Campaign),
                _ => matches!(
                    object,
                    Company | Contact | Lead | Segment | Campaign | Activity
                ),
            },
        },
    }
}

/// Whether `actor` may give a user whose role is `current` the role `new` (or deactivate such
/// a user, with `new == current`). Only owners make or unmake owners.
pub fn may_assign_role(actor: Role, current: Role, new: Role) -> bool {
    match actor {
        Role::Owner => true,
        Role::Admin => current != Role::Owner && new != Role::Owner,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_may_do_everything() {
        for object in ObjectType::ALL {
            for action in [Action::Read, Action::Create, Action::Update, Action::Delete] {
                assert!(permits(Role::Owner, action, *object));
            }
        }
    }

    #[test]
    fn viewers_read_customer_data_and_write_nothing_but_their_keys() {
        assert!(permits(Role::Viewer, Action::Read, ObjectType::Contact));
        assert!(!permits(Role::Viewer, Action::Create, ObjectType::Contact));
        assert!(!permits(Role::Viewer, Action::Read, ObjectType::User));
        assert!(!permits(
            Role::Viewer,
            Action::Update,
            ObjectType::Organization
        ));
        assert!(permits(Role::Viewer, Action::Create, ObjectType::ApiKey));
    }

    #[test]
    fn administration_is_for_admins() {
        for role in [
            Role::Manager,
            Role::Sales,
            Role::Support,
            Role::Marketing,
            Role::Viewer,
        ] {
            assert!(!permits(role, Action::Read, ObjectType::User), "{role}");
            assert!(!permits(role, Action::Read, ObjectType::AuditLog), "{role}");
            assert!(!permits(role, Action::Create, ObjectType::Team), "{role}");
            assert!(permits(role, Action::Read, ObjectType::Team), "{role}");
        }
        assert!(permits(Role::Admin, Action::Update, ObjectType::User));
        assert!(permits(Role::Admin, Action::Read, ObjectType::AuditLog));
    }

    #[test]
    fn jobs_decide_who_writes_what() {
        assert!(permits(Role::Sales, Action::Create, ObjectType::Deal));
        assert!(!permits(Role::Sales, Action::Create, ObjectType::Ticket));
        assert!(permits(Role::Support, Action::Create, ObjectType::Ticket));
        assert!(!permits(Role::Support, Action::Create, ObjectType::Deal));
        assert!(permits(
            Role::Marketing,
            Action::Create,
            ObjectType::Campaign
        ));
        assert!(!permits(
            Role::Marketing,
            Action::Delete,
            ObjectType::Contact
        ));
    }

    #[test]
    fn only_owners_make_or_unmake_owners() {
        assert!(may_assign_role(Role::Owner, Role::Sales, Role::Owner));
        assert!(!may_assign_role(Role::Admin, Role::Sales, Role::Owner));
        assert!(!may_assign_role(Role::Admin, Role::Owner, Role::Admin));
        assert!(may_assign_role(Role::Admin, Role::Sales, Role::Manager));
        assert!(!may_assign_role(Role::Manager, Role::Sales, Role::Viewer));
    }
}
