//! The object kit's vocabulary: what an object declaration says about an object and its
//! fields. A declaration is data — an [`ObjectSpec`] value — and every generic part of
//! Rapport (routes, feed, webhooks, custom fields, import, export) reads it through the
//! registry in [`crate::objects`] instead of keeping a list of objects of its own.
//!
//! Text is `Cow<'static, str>` and lists `Cow<'static, [T]>`: the built-in objects are
//! `static` declarations borrowing their text, and objects an organization defines at run
//! time can own theirs, with no second kind of spec.

use std::borrow::Cow;

use crate::ObjectType;
use crate::write::IdProperty;

pub mod check;
pub mod record;

/// One object: its names, its fields, how its records are found, and what it can do.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectSpec {
    pub object: ObjectType,
    /// The plural of its paths (`/v1/products`).
    pub plural: Cow<'static, str>,
    /// Its table (and the prefix of its indexes).
    pub table: Cow<'static, str>,
    /// Its standard fields, in the order exports write them.
    pub fields: Cow<'static, [FieldSpec]>,
    /// What a write may find an existing record by (`id_property` of upserts and imports),
    /// `id` first.
    pub natural_keys: Cow<'static, [IdProperty]>,
    pub capabilities: Capabilities,
    /// One sentence on what its records are, for the API document.
    pub about: Cow<'static, str>,
    /// Served by the generic engine (`storage::engine`, `http::objects`) from this
    /// declaration alone. Transitional: the first four objects still have hand-written stores
    /// and routes until they move onto the engine.
    pub engine: bool,
}

/// What an object does beyond create, read, update and delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Records have an owner, and record visibility applies.
    pub owned: bool,
    /// Records carry `custom` values defined per organization.
    pub custom_fields: bool,
    /// Its changes are in the change feed and webhooks may subscribe to them.
    pub events: bool,
    /// Records can be written from a CSV (`POST /v1/imports`).
    pub import: bool,
    /// Records can be exported (`GET /v1/{plural}/export`).
    pub export: bool,
    /// Duplicates can be found and merged.
    pub merge: bool,
}

impl Capabilities {
    /// Nothing beyond create, read, update and delete; declarations add what they have
    /// (`Capabilities { events: true, ..Capabilities::NONE }`).
    pub const NONE: Capabilities = Capabilities {
        owned: false,
        custom_fields: false,
        events: false,
        import: false,
        export: false,
        merge: false,
    };
}

/// An object's business rules beyond its declaration, which hold whatever the storage: every
/// method has a no-op default, and an object without rules uses none of them. (Rules that need
/// the database — other records, figures of related records — are the storage's half, beside
/// the engine.)
pub trait Rules: Sync {
    /// Derives the values Rapport computes and checks rules across fields, once a write's
    /// values are complete (the record's values with `given`, the write's own values, laid
    /// over them; defaults set, references found). `before` is the record before the write.
    fn derive(
        &self,
        given: &serde_json::Map<String, serde_json::Value>,
        values: &mut serde_json::Map<String, serde_json::Value>,
        before: Option<&record::Record>,
        issues: &mut Vec<crate::error::FieldIssue>,
    ) {
        let _ = (given, values, before, issues);
    }

    /// More words `q` finds a record by, beside its searchable fields (a name in both orders).
    fn search_terms(&self, values: &serde_json::Map<String, serde_json::Value>) -> Vec<String> {
        let _ = values;
        Vec::new()
    }

    /// What a merge does beyond filling the primary's empty fields from the duplicates, in
    /// order (lists of emails united, the newest consent per channel).
    fn merge(
        &self,
        values: &mut serde_json::Map<String, serde_json::Value>,
        duplicates: &[&serde_json::Map<String, serde_json::Value>],
    ) {
        let _ = (values, duplicates);
    }
}

/// The rules of an object that has none beyond its declaration.
pub struct NoRules;

impl Rules for NoRules {}

/// A standard field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: Cow<'static, str>,
    pub kind: FieldKind,
    /// Set by Rapport, never by a client (ids, versions, times, computed figures).
    pub read_only: bool,
    /// Written by exports (its columns, see [`FieldSpec::columns`]).
    pub export: bool,
    /// Other names a write may set it by — a body property or CSV column that finds the
    /// referenced record another way (`company_external_id` for `company_id`).
    pub also_by: Cow<'static, [Cow<'static, str>]>,
    /// A record must have a value (a create without one is refused).
    pub required: bool,
    /// Lists may sort by it.
    pub sortable: bool,
    /// `q` searches it.
    pub searchable: bool,
    /// No two live records share a value (a write that would is a 409 naming the field). A
    /// natural key other than `id` and `external_id` names a unique field of the same name.
    pub unique: bool,
    /// Lists take it as a query parameter (`?category=tea`), an equality filter.
    pub filterable: bool,
    /// The value a record has when none is given (or null is written).
    pub default: Option<Literal>,
    /// Another field that must have a value whenever this one has (`currency` for an amount).
    pub requires: Option<&'static str>,
    /// What it holds, for the API document, when its name and kind do not say it all.
    pub about: Option<&'static str>,
    /// Rapport computes it (an order's total); a value a write gives must agree with it, or
    /// the write is refused (422 `mismatch`).
    pub computed: bool,
    /// Records sharing a value of it are likely duplicates (`GET /v1/{plural}/{id}/duplicates`
    /// names them with the reason `same_<field>`).
    pub matching: bool,
    /// For a reference: its records are also listed under the record it names
    /// (`GET /v1/contacts/{id}/orders` for an order's `contact_id`).
    pub listed_under: bool,
}

/// A value of a declaration (a field's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literal {
    Boolean(bool),
    Integer(i64),
    Text(&'static str),
    /// The time of the write.
    Now,
}

impl Literal {
    /// The value, for a write at `at`.
    pub fn value(self, at: &chrono::DateTime<chrono::Utc>) -> serde_json::Value {
        match self {
            Literal::Now => crate::values::timestamp(at).into(),
            constant => constant.constant().unwrap_or_default(),
        }
    }

    /// The value when it is a constant (what the API document shows).
    pub fn constant(self) -> Option<serde_json::Value> {
        match self {
            Literal::Boolean(value) => Some(value.into()),
            Literal::Integer(value) => Some(value.into()),
            Literal::Text(value) => Some(value.into()),
            Literal::Now => None,
        }
    }
}

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    Id,
    Text {
        max_chars: usize,
    },
    Email,
    /// A list of email addresses.
    Emails,
    Phone,
    /// A list of phones with their kinds.
    Phones,
    Url,
    /// An internet domain name, lower case (`acme.example`).
    Domain,
    /// A BCP 47 language tag (`zh-CN`).
    Locale,
    /// An IANA time zone (`Asia/Shanghai`).
    TimeZone,
    /// One of a closed set of values.
    Enum(&'static [&'static str]),
    Integer {
        min: i64,
        max: i64,
    },
    /// An amount in minor units (its currency is another field).
    Money,
    /// An ISO 4217 code.
    Currency,
    /// An ISO 3166-1 alpha-2 code.
    Country,
    Boolean,
    Date,
    Timestamp,
    /// Another record, by id.
    Reference(ObjectType),
    Tags,
    /// A postal address: `street`, `city`, `region`, `postal_code` and `country` lines.
    Address,
    /// Marketing consent per channel.
    Consent,
    /// A list of lines, each with these fields (an order's lines).
    Lines(&'static [FieldSpec]),
    /// The record's version, for If-Match.
    Version,
}

/// The lines of an address, as its columns name them.
pub const ADDRESS_LINES: &[&str] = &["street", "city", "region", "postal_code", "country"];
/// Most lines of a `Lines` field (an order's lines).
pub const MAX_LINES: usize = 500;
/// The channels consent is kept for.
pub const CONSENT_CHANNELS: &[&str] = &["email", "sms", "phone"];

impl FieldSpec {
    /// A field clients write.
    pub const fn new(name: &'static str, kind: FieldKind) -> FieldSpec {
        FieldSpec::named(name, kind, &[])
    }

    /// A field with every flag off, found by `also_by` too.
    const fn named(
        name: &'static str,
        kind: FieldKind,
        also_by: &'static [Cow<'static, str>],
    ) -> FieldSpec {
        FieldSpec {
            name: Cow::Borrowed(name),
            kind,
            read_only: false,
            export: true,
            also_by: Cow::Borrowed(also_by),
            required: false,
            sortable: false,
            searchable: false,
            unique: false,
            filterable: false,
            default: None,
            requires: None,
            about: None,
            computed: false,
            matching: false,
            listed_under: false,
        }
    }

    /// The same field, which every record must have.
    pub const fn required(mut self) -> FieldSpec {
        self.required = true;
        self
    }

    /// The same field, which lists may sort by.
    pub const fn sortable(mut self) -> FieldSpec {
        self.sortable = true;
        self
    }

    /// The same field, which `q` searches.
    pub const fn searchable(mut self) -> FieldSpec {
        self.searchable = true;
        self
    }

    /// The same field, unique among live records.
    pub const fn unique(mut self) -> FieldSpec {
        self.unique = true;
        self
    }

    /// The same field, which lists filter by as a query parameter.
    pub const fn filterable(mut self) -> FieldSpec {
        self.filterable = true;
        self
    }

    /// The same field, with this value unless one is given.
    pub const fn default_to(mut self, value: Literal) -> FieldSpec {
        self.default = Some(value);
        self
    }

    /// The same field, described for the API document.
    pub const fn about(mut self, text: &'static str) -> FieldSpec {
        self.about = Some(text);
        self
    }

    /// The same field, whose shared values make records likely duplicates.
    pub const fn matching(mut self) -> FieldSpec {
        self.matching = true;
        self
    }

    /// The same field, which Rapport computes (a value given must agree).
    pub const fn computed(mut self) -> FieldSpec {
        self.computed = true;
        self
    }

    /// The same reference, whose records are also listed under the record it names.
    pub const fn listed_under(mut self) -> FieldSpec {
        self.listed_under = true;
        self
    }

    /// The same field, which needs `other` to have a value whenever it has one.
    pub const fn requires(mut self, other: &'static str) -> FieldSpec {
        self.requires = Some(other);
        self
    }

    /// A reference to another record, which a write may also give by these other names
    /// (see [`FieldSpec::also_by`]).
    pub const fn reference(
        name: &'static str,
        object: ObjectType,
        also_by: &'static [Cow<'static, str>],
    ) -> FieldSpec {
        FieldSpec::named(name, FieldKind::Reference(object), also_by)
    }

    /// A field only Rapport sets.
    pub const fn read_only(name: &'static str, kind: FieldKind) -> FieldSpec {
        let mut field = FieldSpec::new(name, kind);
        field.read_only = true;
        field
    }

    /// The column of the referenced object another name of this reference finds a record by:
    /// the name without the words it shares with the reference's name (`contact_email` of
    /// `contact_id` → `email`, `parent_external_id` of `parent_company_id` → `external_id`,
    /// `sku` of `product_id` → `sku`).
    pub fn also_by_column<'n>(&self, name: &'n str) -> &'n str {
        let base = self.name.strip_suffix("_id").unwrap_or(&self.name);
        name.rmatch_indices('_')
            .map(|(at, _)| at)
            .find(|at| {
                let prefix = &name[..*at];
                base == prefix || base.starts_with(&format!("{prefix}_"))
            })
            .map_or(name, |at| &name[at + 1..])
    }

    /// Its columns in a CSV: one, or one per line of an address or channel of consent
    /// (`address.city`, `consent.email`).
    pub fn columns(&self) -> Vec<String> {
        let nested = |parts: &[&str]| {
            parts
                .iter()
                .map(|part| format!("{}.{part}", self.name))
                .collect()
        };
        match self.kind {
            FieldKind::Address => nested(ADDRESS_LINES),
            FieldKind::Consent => nested(CONSENT_CHANNELS),
            _ => vec![self.name.to_string()],
        }
    }
}

impl ObjectSpec {
    /// The columns an export writes, before the organization's custom fields.
    pub fn export_columns(&self) -> Vec<String> {
        self.fields
            .iter()
            .filter(|field| field.export)
            .flat_map(FieldSpec::columns)
            .collect()
    }

    pub fn field(&self, name: &str) -> Option<&FieldSpec> {
        self.fields.iter().find(|field| field.name == name)
    }

    /// Whether a write may find this object's records by `key`.
    pub fn found_by(&self, key: IdProperty) -> bool {
        self.natural_keys.contains(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_and_consent_export_one_column_per_line_and_channel() {
        let address = FieldSpec::new("address", FieldKind::Address);
        assert_eq!(
            address.columns(),
            [
                "address.street",
                "address.city",
                "address.region",
                "address.postal_code",
                "address.country"
            ]
        );
        let consent = FieldSpec::new("consent", FieldKind::Consent);
        assert_eq!(
            consent.columns(),
            ["consent.email", "consent.sms", "consent.phone"]
        );
        assert_eq!(
            FieldSpec::read_only("version", FieldKind::Version).columns(),
            ["version"]
        );
    }

    #[test]
    fn another_name_of_a_reference_finds_by_the_column_it_names() {
        let contact = FieldSpec::reference("contact_id", ObjectType::Contact, &[]);
        assert_eq!(contact.also_by_column("contact_email"), "email");
        assert_eq!(contact.also_by_column("contact_external_id"), "external_id");
        let product = FieldSpec::reference("product_id", ObjectType::Product, &[]);
        assert_eq!(product.also_by_column("sku"), "sku");
        let parent = FieldSpec::reference("parent_company_id", ObjectType::Company, &[]);
        assert_eq!(parent.also_by_column("parent_external_id"), "external_id");
    }
}
