//! Contacts: the people a company deals with.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::FieldIssue;
use crate::query::{FieldInfo, FieldKind, RelationInfo};
use crate::values::{
    Address, AddressPatch, Channel, ChannelConsent, Consent, ConsentStatus, LifecycleStage, Phone,
};

pub const MAX_EMAILS: usize = 20;
pub const MAX_PHONES: usize = 20;

/// What clients write about a contact (everything but `custom` and the system fields).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactData {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The primary email; unique among the organization's live contacts.
    pub email: Option<String>,
    /// Additional emails.
    pub emails: Vec<String>,
    pub phones: Vec<Phone>,
    pub title: Option<String>,
    pub company_id: Option<Uuid>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub lead_source: Option<String>,
    pub owner_id: Option<Uuid>,
    pub language: Option<String>,
    pub timezone: Option<String>,
    pub address: Address,
    pub consent: Consent,
    pub external_id: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: Uuid,
    pub org_id: Uuid,
    pub data: ContactData,
    pub custom: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub lifecycle_stage_changed_at: Option<DateTime<Utc>>,
    /// Orders paid or fulfilled, kept current by Rapport.
    pub purchases: crate::record::Purchases,
}

/// A consent change: the new status, and when it changed (default: now).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentChange {
    pub status: ConsentStatus,
    pub changed_at: Option<DateTime<Utc>>,
}

/// Applies consent changes: a channel whose status changes gets the given time or `now`.
pub fn apply_consent(
    current: &Consent,
    changes: &BTreeMap<Channel, ConsentChange>,
    now: DateTime<Utc>,
) -> Consent {
    let mut consent = current.clone();
    for (channel, change) in changes {
        let before = current.get(*channel);
        let changed_at = match change.changed_at {
            Some(at) => Some(at),
            None if before.status != change.status => Some(now),
            None => before.changed_at,
        };
        if change.status == ConsentStatus::Unknown
            && change.changed_at.is_none()
            && before.status == ConsentStatus::Unknown
        {
            continue;
        }
        consent.0.insert(
            *channel,
            ChannelConsent {
                status: change.status,
                changed_at,
            },
        );
    }
    consent
}

/// A JSON merge patch of a contact, parsed: `None` leaves a field, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactPatch {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub emails: Option<Vec<String>>,
    pub phones: Option<Vec<Phone>>,
    pub title: Option<Option<String>>,
    pub company_id: Option<Option<Uuid>>,
    /// The company by its external id (instead of `company_id`), so a sync needs no lookup.
    pub company_external_id: Option<String>,
    pub lifecycle_stage: Option<Option<LifecycleStage>>,
    pub lead_source: Option<Option<String>>,
    pub owner_id: Option<Option<Uuid>>,
    pub language: Option<Option<String>>,
    pub timezone: Option<Option<String>>,
    pub address: Option<Option<AddressPatch>>,
    pub consent: Option<BTreeMap<Channel, ConsentChange>>,
    pub external_id: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    /// Merged into the current custom values; a key set to null is removed.
    pub custom: Option<Map<String, Value>>,
}

fn pick<T: Clone>(patch: &Option<T>, current: &T) -> T {
    patch.clone().unwrap_or_else(|| current.clone())
}

impl ContactPatch {
    /// A patch that makes a contact's data `data` and its custom values `custom` (merges).
    pub fn replacing(data: &ContactData, custom: Map<String, Value>) -> ContactPatch {
        let address = |value: &Option<String>| Some(value.clone());
        ContactPatch {
            first_name: Some(data.first_name.clone()),
            last_name: Some(data.last_name.clone()),
            email: Some(data.email.clone()),
            emails: Some(data.emails.clone()),
            phones: Some(data.phones.clone()),
            title: Some(data.title.clone()),
            company_id: Some(data.company_id),
            company_external_id: None,
            lifecycle_stage: Some(data.lifecycle_stage),
            lead_source: Some(data.lead_source.clone()),
            owner_id: Some(data.owner_id),
            language: Some(data.language.clone()),
            timezone: Some(data.timezone.clone()),
            address: Some(Some(AddressPatch {
                street: address(&data.address.street),
                city: address(&data.address.city),
                region: address(&data.address.region),
                postal_code: address(&data.address.postal_code),
                country: address(&data.address.country),
            })),
            consent: Some(
                data.consent
                    .0
                    .iter()
                    .map(|(channel, c)| {
                        (
                            *channel,
                            ConsentChange {
                                status: c.status,
                                changed_at: c.changed_at,
                            },
                        )
                    })
                    .collect(),
            ),
            external_id: Some(data.external_id.clone()),
            tags: Some(data.tags.clone()),
            custom: Some(custom),
        }
    }
}

impl ContactData {
    /// The data with the patch applied (custom values are the store's business).
    pub fn apply(&self, patch: &ContactPatch, now: DateTime<Utc>) -> ContactData {
        ContactData {
            first_name: pick(&patch.first_name, &self.first_name),
            last_name: pick(&patch.last_name, &self.last_name),
            email: pick(&patch.email, &self.email),
            emails: pick(&patch.emails, &self.emails),
            phones: pick(&patch.phones, &self.phones),
            title: pick(&patch.title, &self.title),
            company_id: pick(&patch.company_id, &self.company_id),
            lifecycle_stage: pick(&patch.lifecycle_stage, &self.lifecycle_stage),
            lead_source: pick(&patch.lead_source, &self.lead_source),
            owner_id: pick(&patch.owner_id, &self.owner_id),
            language: pick(&patch.language, &self.language),
            timezone: pick(&patch.timezone, &self.timezone),
            address: match &patch.address {
                None => self.address.clone(),
                Some(None) => Address::default(),
                Some(Some(change)) => change.apply(&self.address),
            },
            consent: match &patch.consent {
                None => self.consent.clone(),
                Some(changes) => apply_consent(&self.consent, changes, now),
            },
            external_id: pick(&patch.external_id, &self.external_id),
            tags: pick(&patch.tags, &self.tags),
        }
    }

    /// Rules across fields: a name or an email; additional emails distinct from each other
    /// and from the primary one.
    pub fn check(&self) -> Result<(), Vec<FieldIssue>> {
        let mut issues = Vec::new();
        if self.first_name.is_none() && self.last_name.is_none() && self.email.is_none() {
            issues.push(FieldIssue::new(
                "first_name",
                "required",
                "a contact needs a first_name, a last_name or an email",
            ));
        }
        if self.emails.len() > MAX_EMAILS {
            issues.push(FieldIssue::new(
                "emails",
                "too_many",
                format!("at most {MAX_EMAILS} additional emails"),
            ));
        } else {
            let mut seen: HashSet<String> = self.email.iter().map(|e| e.to_lowercase()).collect();
            for (i, email) in self.emails.iter().enumerate() {
                if !seen.insert(email.to_lowercase()) {
                    issues.push(FieldIssue::new(
                        format!("emails[{i}]"),
                        "duplicate",
                        "is listed twice (or is the primary email)",
                    ));
                }
            }
        }
        if self.phones.len() > MAX_PHONES {
            issues.push(FieldIssue::new(
                "phones",
                "too_many",
                format!("at most {MAX_PHONES} phones"),
            ));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    /// How the contact is called: "First Last", or family name first without a space when
    /// both names are Chinese, Japanese or Korean; else the email.
    pub fn display_name(&self) -> Option<String> {
        match (&self.first_name, &self.last_name) {
            (Some(first), Some(last)) if is_cjk(first) && is_cjk(last) => {
                Some(format!("{last}{first}"))
            }
            (Some(first), Some(last)) => Some(format!("{first} {last}")),
            (Some(name), None) | (None, Some(name)) => Some(name.clone()),
            (None, None) => self.email.clone(),
        }
    }

    /// What `q` searches, lower case: names in both orders, emails, phones as written and as
    /// digits.
    pub fn search_text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(name) = self.display_name() {
            parts.push(name);
        }
        if let (Some(first), Some(last)) = (&self.first_name, &self.last_name) {
            parts.push(format!("{first} {last}"));
            parts.push(format!("{last}{first}"));
            parts.push(format!("{last} {first}"));
        }
        parts.extend(self.email.iter().cloned());
        parts.extend(self.emails.iter().cloned());
        for phone in &self.phones {
            parts.push(phone.number.clone());
            parts.push(phone.number.chars().filter(char::is_ascii_digit).collect());
            parts.extend(phone.e164.iter().cloned());
        }
        parts.join(" ").to_lowercase()
    }

    /// The sort key of `sort=name`.
    pub fn sort_name(&self) -> String {
        self.display_name().unwrap_or_default().to_lowercase()
    }
}

fn is_cjk(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
    })
}

impl Contact {
    /// The client-visible fields, flat (`address.city`, `consent.email`, `custom.region`), for
    /// diffs in the event log.
    pub fn fields(&self) -> Map<String, Value> {
        let d = &self.data;
        let mut map = Map::new();
        let mut put = |key: &str, value: Value| {
            map.insert(key.to_owned(), value);
        };
        put("first_name", json!(d.first_name));
        put("last_name", json!(d.last_name));
        put("email", json!(d.email));
        put("emails", json!(d.emails));
        put("phones", json!(d.phones));
        put("title", json!(d.title));
        put("company_id", json!(d.company_id));
        put("lifecycle_stage", json!(d.lifecycle_stage));
        put("lead_source", json!(d.lead_source));
        put("owner_id", json!(d.owner_id));
        put("language", json!(d.language));
        put("timezone", json!(d.timezone));
        put("address.street", json!(d.address.street));
        put("address.city", json!(d.address.city));
        put("address.region", json!(d.address.region));
        put("address.postal_code", json!(d.address.postal_code));
        put("address.country", json!(d.address.country));
        for channel in Channel::ALL {
            let consent = d.consent.get(*channel);
            put(&format!("consent.{channel}"), json!(consent.status));
        }
        put("external_id", json!(d.external_id));
        put("tags", json!(d.tags));
        for (key, value) in &self.custom {
            put(&format!("custom.{key}"), value.clone());
        }
        map
    }
}

const LIFECYCLE: &[&str] = &[
    "subscriber",
    "lead",
    "opportunity",
    "customer",
    "loyal",
    "churned",
    "other",
];
const CONSENT: &[&str] = &["opted_in", "opted_out", "unknown"];

/// What filters and sorts may use on contacts.
pub const FIELDS: &[FieldInfo] = &[
    FieldInfo {
        name: "id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "name",
        kind: FieldKind::Text,
        sortable: true,
    },
    FieldInfo {
        name: "first_name",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "last_name",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "email",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "title",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "company_id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "lifecycle_stage",
        kind: FieldKind::Enum(LIFECYCLE),
        sortable: false,
    },
    FieldInfo {
        name: "lead_source",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "owner_id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "language",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "timezone",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "address.city",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "address.region",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "address.postal_code",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "address.country",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "consent.email",
        kind: FieldKind::Enum(CONSENT),
        sortable: false,
    },
    FieldInfo {
        name: "consent.sms",
        kind: FieldKind::Enum(CONSENT),
        sortable: false,
    },
    FieldInfo {
        name: "consent.phone",
        kind: FieldKind::Enum(CONSENT),
        sortable: false,
    },
    FieldInfo {
        name: "external_id",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "tags",
        kind: FieldKind::Tags,
        sortable: false,
    },
    FieldInfo {
        name: "created_at",
        kind: FieldKind::Timestamp,
        sortable: true,
    },
    FieldInfo {
        name: "updated_at",
        kind: FieldKind::Timestamp,
        sortable: true,
    },
    FieldInfo {
        name: "last_activity_at",
        kind: FieldKind::Timestamp,
        sortable: true,
    },
    FieldInfo {
        name: "created_by",
        kind: FieldKind::Uuid,
        sortable: false,
    },
];

/// Filters across relations: `company.industry`, `company.tier`, ….
pub const RELATIONS: &[RelationInfo] = &[RelationInfo {
    name: "company",
    fields: crate::company::FIELDS,
}];

/// The data and custom values of `primary` after merging `duplicates` into it: the primary's
/// values win where present; empty ones are filled from the duplicates in order; emails,
/// phones and tags unite; custom values unite (the primary's win per key); per channel the
/// most recently changed consent holds.
pub fn merge(primary: &Contact, duplicates: &[Contact]) -> (ContactData, Map<String, Value>) {
    let mut data = primary.data.clone();
    fn fill<T: Clone>(target: &mut Option<T>, source: &Option<T>) {
        if target.is_none() {
            target.clone_from(source);
        }
    }
    for dup in duplicates {
        let d = &dup.data;
        fill(&mut data.first_name, &d.first_name);
        fill(&mut data.last_name, &d.last_name);
        fill(&mut data.title, &d.title);
        fill(&mut data.company_id, &d.company_id);
        fill(&mut data.lifecycle_stage, &d.lifecycle_stage);
        fill(&mut data.lead_source, &d.lead_source);
        fill(&mut data.owner_id, &d.owner_id);
        fill(&mut data.language, &d.language);
        fill(&mut data.timezone, &d.timezone);
        fill(&mut data.external_id, &d.external_id);
        if data.address.is_empty() {
            data.address = d.address.clone();
        }
        let mut known: Vec<String> = data
            .email
            .iter()
            .chain(&data.emails)
            .map(|e| e.to_lowercase())
            .collect();
        for email in d.email.iter().chain(&d.emails) {
            if data.email.is_none() {
                data.email = Some(email.clone());
                known.push(email.to_lowercase());
            } else if !known.contains(&email.to_lowercase()) && data.emails.len() < MAX_EMAILS {
                data.emails.push(email.clone());
                known.push(email.to_lowercase());
            }
        }
        for phone in &d.phones {
            let same = |p: &Phone| match (&p.e164, &phone.e164) {
                (Some(a), Some(b)) => a == b,
                _ => p.number == phone.number,
            };
            if !data.phones.iter().any(same) && data.phones.len() < MAX_PHONES {
                data.phones.push(phone.clone());
            }
        }
        for tag in &d.tags {
            if !data.tags.contains(tag) && data.tags.len() < crate::values::MAX_TAGS {
                data.tags.push(tag.clone());
            }
        }
        for channel in Channel::ALL {
            let mine = data.consent.get(*channel);
            let theirs = d.consent.get(*channel);
            let newer = theirs.status != ConsentStatus::Unknown
                && (mine.status == ConsentStatus::Unknown || theirs.changed_at > mine.changed_at);
            if newer {
                data.consent.0.insert(*channel, theirs);
            }
        }
    }
    let mut custom = primary.custom.clone();
    for dup in duplicates {
        for (key, value) in &dup.custom {
            custom.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    (data, custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::PhoneKind;

    #[test]
    fn a_contact_needs_a_name_or_an_email() {
        assert!(ContactData::default().check().is_err());
        let data = ContactData {
            email: Some("a@b.example".into()),
            ..Default::default()
        };
        assert!(data.check().is_ok());
    }

    #[test]
    fn chinese_names_read_family_name_first_and_search_both_ways() {
        let data = ContactData {
            first_name: Some("安".into()),
            last_name: Some("王".into()),
            phones: vec![Phone::new("+86 138 0013 8000", PhoneKind::Mobile, None).unwrap()],
            ..Default::default()
        };
        assert_eq!(data.display_name().as_deref(), Some("王安"));
        let text = data.search_text();
        assert!(text.contains("王安") && text.contains("安 王"));
        assert!(text.contains("8613800138000") && text.contains("0013"));
        let western = ContactData {
            first_name: Some("Ann".into()),
            last_name: Some("Lee".into()),
            ..Default::default()
        };
        assert_eq!(western.display_name().as_deref(), Some("Ann Lee"));
        assert_eq!(western.sort_name(), "ann lee");
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let now = Utc::now();
        let data = ContactData {
            first_name: Some("Ann".into()),
            title: Some("CEO".into()),
            address: Address {
                city: Some("Shanghai".into()),
                country: Some("CN".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let patch = ContactPatch {
            title: Some(None),
            address: Some(Some(AddressPatch {
                city: Some(Some("Hangzhou".into())),
                ..Default::default()
            })),
            consent: Some(BTreeMap::from([(
                Channel::Email,
                ConsentChange {
                    status: ConsentStatus::OptedIn,
                    changed_at: None,
                },
            )])),
            ..Default::default()
        };
        let after = data.apply(&patch, now);
        assert_eq!(after.first_name.as_deref(), Some("Ann"));
        assert_eq!(after.title, None);
        assert_eq!(after.address.city.as_deref(), Some("Hangzhou"));
        assert_eq!(after.address.country.as_deref(), Some("CN"));
        assert_eq!(
            after.consent.get(Channel::Email),
            ChannelConsent {
                status: ConsentStatus::OptedIn,
                changed_at: Some(now)
            }
        );
        // The same status again keeps its time.
        let later = after.apply(&patch, now + chrono::Duration::hours(1));
        assert_eq!(later.consent.get(Channel::Email).changed_at, Some(now));
    }

    #[test]
    fn additional_emails_are_distinct() {
        let data = ContactData {
            email: Some("a@x.example".into()),
            emails: vec!["A@x.example".into()],
            ..Default::default()
        };
        let issues = data.check().unwrap_err();
        assert_eq!(issues[0].field, "emails[0]");
    }
}
