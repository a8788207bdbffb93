//! The kinds of object Rapport keeps. Their singular snake_case names are part of the
//! contract: bodies, query values, events, scopes and the CLI all use them
//! (`contact`, `deal:write`, `contact.created`); plurals are refused, never aliased.

use std::fmt;
use std::str::FromStr;

macro_rules! object_types {
    ($($variant:ident => $name:literal,)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(rename_all = "snake_case"))]
        pub enum ObjectType { $($variant,)* }

        impl ObjectType {
            pub const ALL: &'static [ObjectType] = &[$(ObjectType::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(ObjectType::$variant => $name,)* }
            }
        }

        impl FromStr for ObjectType {
            type Err = UnknownObject;
            fn from_str(s: &str) -> Result<Self, UnknownObject> {
                match s {
                    $($name => Ok(ObjectType::$variant),)*
                    _ => Err(UnknownObject(s.to_owned())),
                }
            }
        }
    };
}

object_types! {
    Organization => "organization",
    User => "user",
    Team => "team",
    ApiKey => "api_key",
    AuditLog => "audit_log",
    CustomField => "custom_field",
    Company => "company",
    Contact => "contact",
    Lead => "lead",
    Deal => "deal",
    Competitor => "competitor",
    Pipeline => "pipeline",
    Activity => "activity",
    Task => "task",
    Ticket => "ticket",
    Product => "product",
    Order => "order",
    Segment => "segment",
    Campaign => "campaign",
    Webhook => "webhook",
    Import => "import",
    Export => "export",
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ObjectType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ObjectType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A name that is not an object type; the message suggests the singular of a plural.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct UnknownObject(pub String);

impl fmt::Display for UnknownObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let singular = self
            .0
            .strip_suffix("ies")
            .map(|stem| format!("{stem}y"))
            .or_else(|| self.0.strip_suffix('s').map(str::to_owned))
            .filter(|s| s.parse::<ObjectType>().is_ok());
        match singular {
            Some(singular) => write!(
                f,
                "unknown object type `{}`: object types are singular, use `{singular}`",
                self.0
            ),
            None => write!(f, "unknown object type `{}`", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for object in ObjectType::ALL {
            assert_eq!(object.as_str().parse::<ObjectType>(), Ok(*object));
        }
    }

    #[test]
    fn plurals_are_refused_with_a_hint() {
        let error = "contacts".parse::<ObjectType>().unwrap_err();
        assert!(error.to_string().contains("use `contact`"), "{error}");
        let error = "companies".parse::<ObjectType>().unwrap_err();
        assert!(error.to_string().contains("use `company`"), "{error}");
        assert!("Contact".parse::<ObjectType>().is_err());
    }
}
