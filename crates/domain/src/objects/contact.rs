//! Contacts: the people a company deals with. Served by the engine from this declaration; its
//! rules here (a name or an email, the display name, names searched in both orders, what a
//! merge unites) and in `storage::rules::contact` (consent times, lifecycle changes, the
//! company's name in search).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::ObjectType;
use crate::error::FieldIssue;
use crate::kit::record::Record;
use crate::kit::{Capabilities, FieldKind::*, FieldSpec, Literal, ObjectSpec, Rules};
use crate::values::LifecycleStage;
use crate::write::IdProperty;

const COUNT: crate::kit::FieldKind = Integer {
    min: 0,
    max: i64::MAX,
};

pub static SPEC: ObjectSpec = ObjectSpec {
    object: ObjectType::Contact,
    plural: Cow::Borrowed("contacts"),
    table: Cow::Borrowed("contacts"),
    fields: Cow::Borrowed(&[
        FieldSpec::read_only("id", Id),
        FieldSpec::new("external_id", Text { max_chars: 255 }),
        FieldSpec::read_only("name", Text { max_chars: 401 })
            .sortable()
            .searchable()
            .about(
                "How the contact is called: \"First Last\" (family name first for Chinese, \
                 Japanese and Korean names), else the email.",
            ),
        FieldSpec::new("first_name", Text { max_chars: 200 }).searchable(),
        FieldSpec::new("last_name", Text { max_chars: 200 }).searchable(),
        FieldSpec::new("email", Email)
            .unique()
            .searchable()
            .matching()
            .about("The primary email: unique among the live contacts, ignoring case."),
        FieldSpec::new("emails", Emails)
            .searchable()
            .matching()
            .about("Additional emails (at most 20)."),
        FieldSpec::new("phones", Phones)
            .searchable()
            .matching()
            .about("At most 20; each gets its E.164 form (`e164`)."),
        FieldSpec::new("title", Text { max_chars: 200 }),
        FieldSpec::reference(
            "company_id",
            ObjectType::Company,
            &[Cow::Borrowed("company_external_id")],
        )
        .filterable()
        .listed_under()
        .about("The company (by `company_id` or `company_external_id`)."),
        FieldSpec::new("lifecycle_stage", Enum(LifecycleStage::NAMES)).filterable(),
        FieldSpec::read_only("lifecycle_stage_changed_at", Timestamp),
        FieldSpec::new("lead_source", Text { max_chars: 200 }),
        FieldSpec::new("owner_id", Reference(ObjectType::User))
            .filterable()
            .about("Default on creation: the caller."),
        FieldSpec::new("language", Locale),
        FieldSpec::new("timezone", TimeZone),
        FieldSpec::new("address", Address),
        FieldSpec::new("consent", Consent),
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
    engine: true,
};

/// The rules of contacts.
pub struct ContactRules;

pub static RULES: ContactRules = ContactRules;

fn text<'v>(values: &'v Map<String, Value>, name: &str) -> Option<&'v str> {
    values.get(name).and_then(Value::as_str)
}

fn is_cjk(text: &str) -> bool {
    text.chars().all(|c| {
        matches!(c as u32, 0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF)
    })
}

/// How a contact is called: "First Last", or family name first without a space when both
/// names are Chinese, Japanese or Korean; else the email.
pub fn display_name(values: &Map<String, Value>) -> Option<String> {
    match (text(values, "first_name"), text(values, "last_name")) {
        (Some(first), Some(last)) if is_cjk(first) && is_cjk(last) => {
            Some(format!("{last}{first}"))
        }
        (Some(first), Some(last)) => Some(format!("{first} {last}")),
        (Some(name), None) | (None, Some(name)) => Some(name.to_owned()),
        (None, None) => text(values, "email").map(str::to_owned),
    }
}

/// The key an email or phone is compared by.
fn email_key(value: &Value) -> Option<String> {
    value.as_str().map(str::to_lowercase)
}

fn phone_key(phone: &Value) -> Option<String> {
    phone
        .get("e164")
        .and_then(Value::as_str)
        .or_else(|| phone.get("number").and_then(Value::as_str))
        .map(str::to_owned)
}

impl Rules for ContactRules {
    fn derive(
        &self,
        _given: &Map<String, Value>,
        values: &mut Map<String, Value>,
        _before: Option<&Record>,
        issues: &mut Vec<FieldIssue>,
    ) {
        if ["first_name", "last_name", "email"]
            .iter()
            .all(|f| text(values, f).is_none())
        {
            issues.push(FieldIssue::new(
                "first_name",
                "required",
                "a contact needs a first_name, a last_name or an email",
            ));
        }
        let primary = values.get("email").and_then(email_key);
        if let (Some(primary), Some(Value::Array(emails))) = (primary, values.get("emails")) {
            for (i, email) in emails.iter().enumerate() {
                if email_key(email).as_ref() == Some(&primary) {
                    issues.push(FieldIssue::new(
                        format!("emails[{i}]"),
                        "duplicate",
                        "is listed twice (or is the primary email)",
                    ));
                }
            }
        }
        match display_name(values) {
            Some(name) => values.insert("name".into(), Value::from(name)),
            None => values.remove("name"),
        };
    }

    fn search_terms(&self, values: &Map<String, Value>) -> Vec<String> {
        let mut terms = Vec::new();
        if let (Some(first), Some(last)) = (text(values, "first_name"), text(values, "last_name")) {
            terms.push(format!("{first} {last}"));
            terms.push(format!("{last}{first}"));
            terms.push(format!("{last} {first}"));
        }
        // The company's name, which the storage puts beside the values of a write.
        terms.extend(text(values, COMPANY_NAME).map(str::to_owned));
        terms
    }

    fn merge(&self, values: &mut Map<String, Value>, duplicates: &[&Map<String, Value>]) {
        for dup in duplicates {
            // Every email of a duplicate the primary lacks: the primary email first.
            let mut known: Vec<String> = values
                .get("email")
                .and_then(email_key)
                .into_iter()
                .collect();
            known.extend(
                values
                    .get("emails")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(email_key),
            );
            let theirs = dup.get("email").into_iter().chain(
                dup.get("emails")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten(),
            );
            for email in theirs {
                let Some(key) = email_key(email) else {
                    continue;
                };
                if known.contains(&key) {
                    continue;
                }
                known.push(key);
                if values.get("email").is_none() {
                    values.insert("email".into(), email.clone());
                } else {
                    let list = values
                        .entry("emails")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Some(list) = list
                        .as_array_mut()
                        .filter(|l| l.len() < crate::kit::check::MAX_LIST)
                    {
                        list.push(email.clone());
                    }
                }
            }
            let mine: Vec<String> = values
                .get("phones")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(phone_key)
                .collect();
            for phone in dup
                .get("phones")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if phone_key(phone).is_some_and(|k| !mine.contains(&k)) {
                    let list = values
                        .entry("phones")
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Some(list) = list
                        .as_array_mut()
                        .filter(|l| l.len() < crate::kit::check::MAX_LIST)
                    {
                        list.push(phone.clone());
                    }
                }
            }
            // Per channel the most recently changed known consent holds.
            for channel in crate::kit::CONSENT_CHANNELS {
                let status = |v: Option<&Value>| {
                    v.and_then(|c| c.get("status"))
                        .and_then(Value::as_str)
                        .unwrap_or("unknown")
                        .to_owned()
                };
                let at = |v: Option<&Value>| {
                    v.and_then(|c| c.get("changed_at"))
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                };
                let mine = values.get("consent").and_then(|c| c.get(*channel)).cloned();
                let theirs = dup.get("consent").and_then(|c| c.get(*channel)).cloned();
                let newer = status(theirs.as_ref()) != "unknown"
                    && (status(mine.as_ref()) == "unknown"
                        || at(theirs.as_ref()) > at(mine.as_ref()));
                if let (true, Some(theirs)) = (newer, theirs) {
                    let consent = values
                        .entry("consent")
                        .or_insert_with(|| Value::Object(Map::new()));
                    if let Some(consent) = consent.as_object_mut() {
                        consent.insert((*channel).to_owned(), theirs);
                    }
                }
            }
        }
    }
}

/// Where the storage puts a contact's company's name for search while it writes it.
pub const COMPANY_NAME: &str = "company_name";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn chinese_names_read_family_name_first_and_search_both_ways() {
        let mut values = map(json!({"first_name": "安", "last_name": "王"}));
        let mut issues = Vec::new();
        RULES.derive(&Map::new(), &mut values, None, &mut issues);
        assert!(issues.is_empty());
        assert_eq!(values["name"], json!("王安"));
        assert!(RULES.search_terms(&values).contains(&"王 安".to_owned()));
        let mut western = map(json!({"first_name": "Ann", "last_name": "Lee"}));
        RULES.derive(&Map::new(), &mut western, None, &mut issues);
        assert_eq!(western["name"], json!("Ann Lee"));
        let mut nameless = map(json!({"title": "CEO"}));
        RULES.derive(&Map::new(), &mut nameless, None, &mut issues);
        assert_eq!(issues[0].field, "first_name");
    }

    #[test]
    fn a_merge_unites_emails_and_phones_and_keeps_the_newest_consent() {
        let mut values = map(
            json!({"email": "a@x.example", "phones": [{"number": "1", "e164": "+1"}],
            "consent": {"email": {"status": "opted_in", "changed_at": "2026-01-01T00:00:00Z"}}}),
        );
        let dup = map(json!({"email": "A@x.example", "emails": ["b@x.example"],
            "phones": [{"number": "1", "e164": "+1"}, {"number": "2", "e164": "+2"}],
            "consent": {"email": {"status": "opted_out", "changed_at": "2026-02-01T00:00:00Z"}}}));
        RULES.merge(&mut values, &[&dup]);
        assert_eq!(values["emails"], json!(["b@x.example"]));
        assert_eq!(values["phones"].as_array().unwrap().len(), 2);
        assert_eq!(values["consent"]["email"]["status"], json!("opted_out"));
    }
}
