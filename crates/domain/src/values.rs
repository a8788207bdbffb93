//! Value types of customer data that parse and validate: lifecycle stages, tiers, addresses,
//! phones, consent, tags, domains, URLs, money.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::iso;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum $name { $($variant,)* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// The names of the values, as bodies and queries write them.
            pub const NAMES: &'static [&'static str] = &[$($text,)*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(format!(
                        "`{s}` is not one of {}",
                        [$($text),*].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// Where a customer is in their relationship with the company.
    LifecycleStage {
        Subscriber => "subscriber",
        Lead => "lead",
        Opportunity => "opportunity",
        Customer => "customer",
        Loyal => "loyal",
        Churned => "churned",
        Other => "other",
    }
}

string_enum! {
    /// A company's value tier.
    Tier { A => "a", B => "b", C => "c" }
}

string_enum! {
    PhoneKind { Mobile => "mobile", Work => "work", Home => "home", Other => "other" }
}

string_enum! {
    ConsentStatus { OptedIn => "opted_in", OptedOut => "opted_out", Unknown => "unknown" }
}

string_enum! {
    /// The channels a contact consents to be reached on.
    Channel { Email => "email", Sms => "sms", Phone => "phone" }
}

/// A postal address; the country is ISO 3166-1 alpha-2.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub street: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

impl Address {
    pub fn is_empty(&self) -> bool {
        self.street.is_none()
            && self.city.is_none()
            && self.region.is_none()
            && self.postal_code.is_none()
            && self.country.is_none()
    }
}

/// A change of one address line: `None` leaves it, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AddressPatch {
    pub street: Option<Option<String>>,
    pub city: Option<Option<String>>,
    pub region: Option<Option<String>>,
    pub postal_code: Option<Option<String>>,
    pub country: Option<Option<String>>,
}

impl AddressPatch {
    pub fn apply(&self, address: &Address) -> Address {
        let pick = |patch: &Option<Option<String>>, current: &Option<String>| match patch {
            Some(value) => value.clone(),
            None => current.clone(),
        };
        Address {
            street: pick(&self.street, &address.street),
            city: pick(&self.city, &address.city),
            region: pick(&self.region, &address.region),
            postal_code: pick(&self.postal_code, &address.postal_code),
            country: pick(&self.country, &address.country),
        }
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case.
pub fn country(text: &str) -> Result<String, String> {
    let code = text.trim().to_ascii_uppercase();
    if iso::is_country(&code) {
        Ok(code)
    } else {
        Err(format!(
            "`{text}` is not an ISO 3166-1 alpha-2 country code such as CN or US"
        ))
    }
}

/// An ISO 4217 currency code, upper case.
pub fn currency(text: &str) -> Result<String, String> {
    let code = text.trim().to_ascii_uppercase();
    if iso::is_currency(&code) {
        Ok(code)
    } else {
        Err(format!(
            "`{text}` is not an ISO 4217 currency code such as CNY or USD"
        ))
    }
}

/// A phone number as written, its kind, and its E.164 form when it can be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phone {
    pub number: String,
    pub kind: PhoneKind,
    pub e164: Option<String>,
}

impl Phone {
    pub const MAX_LEN: usize = 64;

    /// Keeps the number as written and adds its E.164 form when it is a valid number (with a
    /// country code, or in `default_region`). An unreadable number is kept, never refused.
    pub fn new(
        number: &str,
        kind: PhoneKind,
        default_region: Option<&str>,
    ) -> Result<Phone, String> {
        let number = number.trim();
        if number.is_empty() {
            return Err("must not be empty".into());
        }
        if number.chars().count() > Self::MAX_LEN {
            return Err(format!("must be at most {} characters", Self::MAX_LEN));
        }
        Ok(Phone {
            number: number.to_owned(),
            kind,
            e164: e164(number, default_region),
        })
    }
}

/// The E.164 form of a valid phone number, or None.
pub fn e164(number: &str, default_region: Option<&str>) -> Option<String> {
    let region = default_region.and_then(|r| r.parse::<phonenumber::country::Id>().ok());
    let parsed = phonenumber::parse(region, number).ok()?;
    phonenumber::is_valid(&parsed)
        .then(|| parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// A channel's consent and when it last changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelConsent {
    pub status: ConsentStatus,
    pub changed_at: Option<DateTime<Utc>>,
}

impl Default for ChannelConsent {
    fn default() -> Self {
        ChannelConsent {
            status: ConsentStatus::Unknown,
            changed_at: None,
        }
    }
}

/// Consent per channel; channels never set are `unknown`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent(pub BTreeMap<Channel, ChannelConsent>);

impl Consent {
    pub fn get(&self, channel: Channel) -> ChannelConsent {
        self.0.get(&channel).copied().unwrap_or_default()
    }

    /// Every channel, the unknown ones included.
    pub fn complete(&self) -> BTreeMap<Channel, ChannelConsent> {
        Channel::ALL.iter().map(|c| (*c, self.get(*c))).collect()
    }
}

pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_LEN: usize = 64;

/// Trims tags, drops empty ones and repeats (the first spelling stays), and checks limits.
///
/// The limit applies to the list as sent, before any tag is looked at: a list of more than
/// [`MAX_TAGS`] entries is refused even if repeats or blanks would have shrunk it, so that a
/// megabyte of tags costs one comparison. Repeats are found with a hash set (linear).
pub fn tags(input: &[String]) -> Result<Vec<String>, String> {
    if input.len() > MAX_TAGS {
        return Err(too_many_tags());
    }
    let mut kept: Vec<&str> = Vec::with_capacity(input.len());
    for tag in input {
        let tag = tag.trim();
        if tag.is_empty() {
            continue;
        }
        if tag.chars().count() > MAX_TAG_LEN {
            return Err(format!("a tag must be at most {MAX_TAG_LEN} characters"));
        }
        if tag.chars().any(char::is_control) {
            return Err("a tag must not contain control characters".into());
        }
        kept.push(tag);
    }
    Ok(without_repeats(kept)
        .into_iter()
        .map(str::to_owned)
        .collect())
}

/// The items without repeats, the first of each kept, in order. Linear: each item is looked
/// up in a hash set of those kept, never compared with every earlier one.
pub fn without_repeats<T: Hash + Eq + Clone>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let items = items.into_iter();
    let mut seen: HashSet<T> = HashSet::with_capacity(items.size_hint().0);
    let mut out = Vec::with_capacity(items.size_hint().0);
    for item in items {
        if seen.insert(item.clone()) {
            out.push(item);
        }
    }
    out
}

/// The message of a tag list over [`MAX_TAGS`].
pub fn too_many_tags() -> String {
    format!("at most {MAX_TAGS} tags")
}

/// A company's web domain, lower case, without scheme, `www.` or path: `acme.example`.
pub fn domain(text: &str) -> Result<String, String> {
    let mut host = text.trim().to_lowercase();
    for prefix in ["https://", "http://"] {
        if let Some(rest) = host.strip_prefix(prefix) {
            host = rest.to_owned();
        }
    }
    if let Some(end) = host.find(['/', '?', '#']) {
        host.truncate(end);
    }
    if let Some(rest) = host.strip_prefix("www.") {
        host = rest.to_owned();
    }
    let valid = host.len() <= 253
        && host.contains('.')
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if valid {
        Ok(host)
    } else {
        Err(format!("`{text}` is not a domain such as acme.example"))
    }
}

/// An absolute http(s) URL of at most 2,048 characters.
pub fn url(text: &str) -> Result<String, String> {
    let text = text.trim();
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"));
    let host_ok = rest.is_some_and(|rest| {
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !host.chars().any(char::is_whitespace)
    });
    if text.len() <= 2048 && host_ok && !text.chars().any(char::is_whitespace) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{}` is not an http(s) URL",
            text.chars().take(100).collect::<String>()
        ))
    }
}

/// Trimmed text of at most `max` characters without control characters (but newlines and
/// tabs), or None when empty.
pub fn text(text: &str, max: usize) -> Result<Option<String>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err("must not contain control characters".into());
    }
    Ok(Some(trimmed.to_owned()))
}

/// A time as the API writes it (as chrono's serde does: RFC 3339, UTC as `Z`).
pub fn timestamp(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A BCP 47 language tag such as `en`, `zh-CN` or `zh-Hans-CN`.
pub fn locale(text: &str) -> Result<String, String> {
    let mut parts = text.split('-');
    let language = parts.next().unwrap_or("");
    let language_ok =
        (2..=3).contains(&language.len()) && language.chars().all(|c| c.is_ascii_alphabetic());
    let rest_ok =
        parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if language_ok && rest_ok && text.len() <= 35 {
        Ok(text.to_owned())
    } else {
        Err("is not a language tag such as en, zh-CN or pt-BR".into())
    }
}

/// An IANA time zone name such as `Asia/Shanghai` or `UTC` (its form is checked, not its
/// presence in the time zone database).
pub fn timezone(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && text.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
        })
        && text.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if ok {
        Ok(text.to_owned())
    } else {
        Err("is not a time zone name such as Asia/Shanghai or UTC".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_are_kept_and_normalised_where_possible() {
        let phone = Phone::new("+86 138 0013 8000", PhoneKind::Mobile, None).unwrap();
        assert_eq!(phone.e164.as_deref(), Some("+8613800138000"));
        assert_eq!(phone.number, "+86 138 0013 8000");
        let local = Phone::new("138 0013 8000", PhoneKind::Mobile, Some("CN")).unwrap();
        assert_eq!(local.e164.as_deref(), Some("+8613800138000"));
        let no_region = Phone::new("138 0013 8000", PhoneKind::Mobile, None).unwrap();
        assert_eq!(no_region.e164, None);
        let garbage = Phone::new("call the front desk", PhoneKind::Work, Some("US")).unwrap();
        assert_eq!(garbage.e164, None);
        assert!(Phone::new("  ", PhoneKind::Work, None).is_err());
    }

    #[test]
    fn tags_are_trimmed_and_deduplicated() {
        let input = vec![
            " vip ".to_owned(),
            "vip".to_owned(),
            "".to_owned(),
            "华东".to_owned(),
        ];
        assert_eq!(tags(&input).unwrap(), ["vip", "华东"]);
        assert!(tags(&["x".repeat(65)]).is_err());
        assert!(tags(&(0..51).map(|i| i.to_string()).collect::<Vec<_>>()).is_err());
    }

    #[test]
    fn the_tag_limit_is_checked_on_the_list_as_sent() {
        // 51 entries are refused before any of them is read, even if repeats would shrink
        // them to one: the limit costs nothing, whatever the list holds.
        let repeats = vec!["vip".to_owned(); MAX_TAGS + 1];
        assert_eq!(tags(&repeats).unwrap_err(), too_many_tags());
        let exactly = vec!["vip".to_owned(); MAX_TAGS];
        assert_eq!(tags(&exactly).unwrap(), ["vip"]);
    }

    /// Counts equality checks, to show how `without_repeats` finds repeats.
    #[derive(Debug, Clone)]
    struct Counted(u32);

    impl Hash for Counted {
        fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
            self.0.hash(state);
        }
    }

    thread_local! {
        static COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }

    impl PartialEq for Counted {
        fn eq(&self, other: &Self) -> bool {
            COMPARISONS.with(|c| c.set(c.get() + 1));
            self.0 == other.0
        }
    }
    impl Eq for Counted {}

    #[test]
    fn repeats_are_found_with_a_hash_set_not_by_comparing_every_pair() {
        // 20,000 distinct items and a repeat of each. Comparing each with every earlier one
        // (what tags did) takes about 600 million comparisons; a hash set about one per repeat.
        let n = 20_000;
        let items = (0..n).chain(0..n).map(Counted);
        COMPARISONS.with(|c| c.set(0));
        let kept = without_repeats(items);
        let comparisons = COMPARISONS.with(std::cell::Cell::get);
        assert_eq!(kept.len(), n as usize);
        assert!(kept.iter().enumerate().all(|(i, c)| c.0 == i as u32));
        assert!(
            comparisons < 4 * u64::from(n),
            "{comparisons} comparisons for {} items",
            2 * n
        );
    }

    #[test]
    fn domains_lose_scheme_www_and_path() {
        assert_eq!(
            domain("https://www.Acme.example/about").unwrap(),
            "acme.example"
        );
        assert_eq!(domain("阿里巴巴.中国").unwrap(), "阿里巴巴.中国");
        assert!(domain("localhost").is_err());
        assert!(domain("a b.com").is_err());
    }

    #[test]
    fn codes_and_urls() {
        assert_eq!(country("cn").unwrap(), "CN");
        assert!(country("China").is_err());
        assert_eq!(currency("cny").unwrap(), "CNY");
        assert!(currency("RMB").is_err());
        assert!(url("https://acme.example/x?y=1").is_ok());
        assert!(url("javascript:alert(1)").is_err());
        assert!(url("https://").is_err());
    }

    #[test]
    fn consent_lists_every_channel() {
        let consent = Consent::default();
        let complete = consent.complete();
        assert_eq!(complete.len(), 3);
        assert_eq!(complete[&Channel::Sms].status, ConsentStatus::Unknown);
    }
}
