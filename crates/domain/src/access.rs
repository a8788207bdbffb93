//! Who is asking: roles, API-key scopes, record visibility and the authenticated context every
//! store method takes first.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::object::ObjectType;

/// The roles of DESIGN.md §4, most powerful first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Role {
    Owner,
    Admin,
    Manager,
    Sales,
    Support,
    Marketing,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Sales,
        Role::Support,
        Role::Marketing,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Sales => "sales",
            Role::Support => "support",
            Role::Marketing => "marketing",
            Role::Viewer => "viewer",
        }
    }

    /// Owners and admins manage users, keys, fields, pipelines and webhooks.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`"))
    }
}

/// What a request wants to do to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn is_write(self) -> bool {
        !matches!(self, Action::Read)
    }
}

/// What an API key may touch: `*`, `read`, `<object>:read` or `<object>:write`
/// (`write` includes `read`). Managing API keys is the one thing `*` does not include: a key
/// creates or revokes keys only with an explicit `api_key:write`, so that a leaked key cannot
/// mint itself successors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    All,
    ReadAll,
    Read(ObjectType),
    Write(ObjectType),
}

impl Scope {
    pub fn allows(self, action: Action, object: ObjectType) -> bool {
        match self {
            Scope::All => !(object == ObjectType::ApiKey && action.is_write()),
            Scope::ReadAll => !action.is_write(),
            Scope::Read(o) => o == object && !action.is_write(),
            Scope::Write(o) => o == object,
        }
    }
}

impl Scope {
    /// Whether everything `other` allows, `self` allows too (a key may only mint keys its own
    /// scopes cover).
    pub fn covers(self, other: Scope) -> bool {
        match (self, other) {
            (Scope::All, Scope::Write(ObjectType::ApiKey)) => false,
            (Scope::All, _) => true,
            (Scope::ReadAll, Scope::ReadAll | Scope::Read(_)) => true,
            (Scope::Read(a), Scope::Read(b)) => a == b,
            (Scope::Write(a), Scope::Read(b) | Scope::Write(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("*"),
            Scope::ReadAll => f.write_str("read"),
            Scope::Read(o) => write!(f, "{o}:read"),
            Scope::Write(o) => write!(f, "{o}:write"),
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "*" => return Ok(Scope::All),
            "read" => return Ok(Scope::ReadAll),
            _ => {}
        }
        let Some((object, access)) = s.split_once(':') else {
            return Err(format!(
                "`{s}` is not a scope: use *, read, <object>:read or <object>:write"
            ));
        };
        let object: ObjectType = object.parse().map_err(|e| format!("{e}"))?;
        match access {
            "read" => Ok(Scope::Read(object)),
            "write" => Ok(Scope::Write(object)),
            _ => Err(format!("`{s}`: the access must be read or write")),
        }
    }
}

/// Which records of an object a sales or support user sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Visibility {
    /// Only records they own.
    Own,
    /// Records owned by anyone in their team.
    Team,
    /// Every record of the organization.
    #[default]
    All,
}

/// The owned objects whose visibility an organization configures.
pub const VISIBILITY_OBJECTS: [ObjectType; 7] = [
    ObjectType::Company,
    ObjectType::Contact,
    ObjectType::Lead,
    ObjectType::Deal,
    ObjectType::Activity,
    ObjectType::Task,
    ObjectType::Ticket,
];

/// An organization's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct OrganizationSettings {
    /// Per object: what sales and support users see. Missing objects mean `all`.
    #[serde(default)]
    pub record_visibility: BTreeMap<ObjectType, Visibility>,
    /// ISO 3166-1 alpha-2 region used to read phone numbers written without a country code.
    #[serde(default)]
    pub default_phone_region: Option<String>,
}

impl OrganizationSettings {
    pub fn visibility(&self, object: ObjectType) -> Visibility {
        self.record_visibility
            .get(&object)
            .copied()
            .unwrap_or_default()
    }

    /// Every configurable object with its effective visibility, for responses.
    pub fn with_defaults(&self) -> OrganizationSettings {
        let mut settings = self.clone();
        for object in VISIBILITY_OBJECTS {
            settings.record_visibility.entry(object).or_default();
        }
        settings
    }
}

/// The credential a request came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token of this session (refresh-token family).
    Session { session_id: Uuid },
    /// An API key with its scopes and when it stops working.
    ApiKey {
        key_id: Uuid,
        scopes: Vec<Scope>,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// The operator's command line (`rapport admin …`).
    System,
}

/// Whose request this is. Every store method takes it first and filters by `org_id`.
#[derive(Debug, Clone)]
pub struct AuthContext {
    pub org_id: Uuid,
    pub user_id: Uuid,
    pub role: Role,
    pub team_id: Option<Uuid>,
    pub credential: Credential,
    pub settings: OrganizationSettings,
    /// The client's address, for the audit log.
    pub ip: Option<String>,
    /// The request's `Idempotency-Key`, when it has one.
    pub idempotency: Option<crate::idempotency::IdempotencyRef>,
    /// The import chunk a write belongs to: its progress is recorded in the write's
    /// transaction.
    pub import: Option<crate::import::ImportChunk>,
}

/// The records of one object a context may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFilter {
    All,
    /// Owned by this user.
    OwnedBy(Uuid),
    /// Owned by members of this team (or by the user, who may have no team).
    Team {
        user_id: Uuid,
        team_id: Option<Uuid>,
    },
    /// Owned by the manager or by members of the teams they manage.
    ManagedBy(Uuid),
}

impl AuthContext {
    /// Record visibility (DESIGN.md §4): sales and support see what the organization
    /// configures per object; managers see their teams when it is not `all`; everyone else
    /// sees all.
    pub fn record_filter(&self, object: ObjectType) -> RecordFilter {
        // Objects without an owner (products, orders) are the whole organization's.
        if !VISIBILITY_OBJECTS.contains(&object) {
            return RecordFilter::All;
        }
        let configured = self.settings.visibility(object);
        match (self.role, configured) {
            (_, Visibility::All) => RecordFilter::All,
            (Role::Sales | Role::Support, Visibility::Own) => RecordFilter::OwnedBy(self.user_id),
            (Role::Sales | Role::Support, Visibility::Team) => RecordFilter::Team {
                user_id: self.user_id,
                team_id: self.team_id,
            },
            (Role::Manager, _) => RecordFilter::ManagedBy(self.user_id),
            _ => RecordFilter::All,
        }
    }

    pub fn api_key_id(&self) -> Option<Uuid> {
        match &self.credential {
            Credential::ApiKey { key_id, .. } => Some(*key_id),
            _ => None,
        }
    }

    pub fn session_id(&self) -> Option<Uuid> {
        match &self.credential {
            Credential::Session { session_id } => Some(*session_id),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        for text in ["*", "read", "contact:read", "deal:write"] {
            assert_eq!(text.parse::<Scope>().unwrap().to_string(), text);
        }
        assert!("contacts:read".parse::<Scope>().is_err());
        assert!("contact:admin".parse::<Scope>().is_err());
        assert!("write".parse::<Scope>().is_err());
    }

    #[test]
    fn wider_scopes_cover_narrower_ones() {
        let contact_write = Scope::Write(ObjectType::Contact);
        assert!(Scope::All.covers(contact_write));
        assert!(contact_write.covers(Scope::Read(ObjectType::Contact)));
        assert!(!contact_write.covers(Scope::Write(ObjectType::Deal)));
        assert!(!contact_write.covers(Scope::All));
        assert!(Scope::ReadAll.covers(Scope::Read(ObjectType::Deal)));
        assert!(!Scope::ReadAll.covers(contact_write));
    }

    #[test]
    fn write_scopes_include_read_of_the_same_object_only() {
        let scope = Scope::Write(ObjectType::Deal);
        assert!(scope.allows(Action::Read, ObjectType::Deal));
        assert!(scope.allows(Action::Delete, ObjectType::Deal));
        assert!(!scope.allows(Action::Read, ObjectType::Contact));
        assert!(!Scope::ReadAll.allows(Action::Create, ObjectType::Contact));
        assert!(Scope::ReadAll.allows(Action::Read, ObjectType::Contact));
    }

    #[test]
    fn only_an_explicit_api_key_scope_manages_keys() {
        for action in [Action::Create, Action::Update, Action::Delete] {
            assert!(!Scope::All.allows(action, ObjectType::ApiKey));
            assert!(Scope::Write(ObjectType::ApiKey).allows(action, ObjectType::ApiKey));
        }
        assert!(Scope::All.allows(Action::Read, ObjectType::ApiKey));
        assert!(Scope::All.allows(Action::Delete, ObjectType::Contact));
        assert!(!Scope::All.covers(Scope::Write(ObjectType::ApiKey)));
        assert!(Scope::Write(ObjectType::ApiKey).covers(Scope::Write(ObjectType::ApiKey)));
    }

    fn context(role: Role, visibility: Visibility) -> AuthContext {
        let mut settings = OrganizationSettings::default();
        settings
            .record_visibility
            .insert(ObjectType::Contact, visibility);
        AuthContext {
            org_id: Uuid::nil(),
            user_id: Uuid::from_u128(1),
            role,
            team_id: Some(Uuid::from_u128(2)),
            credential: Credential::System,
            settings,
            ip: None,
            idempotency: None,
            import: None,
        }
    }

    #[test]
    fn visibility_applies_to_sales_support_and_managers_only() {
        let me = Uuid::from_u128(1);
        assert_eq!(
            context(Role::Sales, Visibility::Own).record_filter(ObjectType::Contact),
            RecordFilter::OwnedBy(me)
        );
        assert_eq!(
            context(Role::Support, Visibility::Team).record_filter(ObjectType::Contact),
            RecordFilter::Team {
                user_id: me,
                team_id: Some(Uuid::from_u128(2))
            }
        );
        assert_eq!(
            context(Role::Manager, Visibility::Own).record_filter(ObjectType::Contact),
            RecordFilter::ManagedBy(me)
        );
        assert_eq!(
            context(Role::Admin, Visibility::Own).record_filter(ObjectType::Contact),
            RecordFilter::All
        );
        assert_eq!(
            context(Role::Sales, Visibility::All).record_filter(ObjectType::Contact),
            RecordFilter::All
        );
        assert_eq!(
            context(Role::Sales, Visibility::Own).record_filter(ObjectType::Deal),
            RecordFilter::All
        );
    }
}
