//! Companies (accounts): the organizations a company sells to.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::FieldIssue;
use crate::query::{FieldInfo, FieldKind, RelationInfo};
use crate::values::AddressPatch;
use crate::values::{Address, LifecycleStage, Phone, Tier};

/// An amount in minor units of a currency: `{"amount_minor": 129900, "currency": "CNY"}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Money {
    pub amount_minor: i64,
    pub currency: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompanyData {
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub employee_count: Option<i64>,
    pub annual_revenue_minor: Option<i64>,
    pub currency: Option<String>,
    pub phone: Option<Phone>,
    pub website: Option<String>,
    pub address: Address,
    pub parent_company_id: Option<Uuid>,
    pub tier: Option<Tier>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub owner_id: Option<Uuid>,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Company {
    pub id: Uuid,
    pub org_id: Uuid,
    pub data: CompanyData,
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

#[derive(Debug, Clone, Default, PartialEq)]
pub struct CompanyPatch {
    pub name: Option<String>,
    /// The parent by its external id (instead of `parent_company_id`).
    pub parent_external_id: Option<String>,
    pub domain: Option<Option<String>>,
    pub industry: Option<Option<String>>,
    pub employee_count: Option<Option<i64>>,
    pub annual_revenue_minor: Option<Option<i64>>,
    pub currency: Option<Option<String>>,
    pub phone: Option<Option<Phone>>,
    pub website: Option<Option<String>>,
    pub address: Option<Option<AddressPatch>>,
    pub parent_company_id: Option<Option<Uuid>>,
    pub tier: Option<Option<Tier>>,
    pub lifecycle_stage: Option<Option<LifecycleStage>>,
    pub owner_id: Option<Option<Uuid>>,
    pub source: Option<Option<String>>,
    pub external_id: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub custom: Option<Map<String, Value>>,
}

fn pick<T: Clone>(patch: &Option<T>, current: &T) -> T {
    patch.clone().unwrap_or_else(|| current.clone())
}

impl CompanyPatch {
    /// A patch that makes a company's data `data` and its custom values `custom` (merges).
    pub fn replacing(data: &CompanyData, custom: Map<String, Value>) -> CompanyPatch {
        let line = |value: &Option<String>| Some(value.clone());
        CompanyPatch {
            name: Some(data.name.clone()),
            parent_external_id: None,
            domain: Some(data.domain.clone()),
            industry: Some(data.industry.clone()),
            employee_count: Some(data.employee_count),
            annual_revenue_minor: Some(data.annual_revenue_minor),
            currency: Some(data.currency.clone()),
            phone: Some(data.phone.clone()),
            website: Some(data.website.clone()),
            address: Some(Some(AddressPatch {
                street: line(&data.address.street),
                city: line(&data.address.city),
                region: line(&data.address.region),
                postal_code: line(&data.address.postal_code),
                country: line(&data.address.country),
            })),
            parent_company_id: Some(data.parent_company_id),
            tier: Some(data.tier),
            lifecycle_stage: Some(data.lifecycle_stage),
            owner_id: Some(data.owner_id),
            source: Some(data.source.clone()),
            external_id: Some(data.external_id.clone()),
            tags: Some(data.tags.clone()),
            custom: Some(custom),
        }
    }
}

impl CompanyData {
    pub fn apply(&self, patch: &CompanyPatch) -> CompanyData {
        CompanyData {
            name: pick(&patch.name, &self.name),
            domain: pick(&patch.domain, &self.domain),
            industry: pick(&patch.industry, &self.industry),
            employee_count: pick(&patch.employee_count, &self.employee_count),
            annual_revenue_minor: pick(&patch.annual_revenue_minor, &self.annual_revenue_minor),
            currency: pick(&patch.currency, &self.currency),
            phone: pick(&patch.phone, &self.phone),
            website: pick(&patch.website, &self.website),
            address: match &patch.address {
                None => self.address.clone(),
                Some(None) => Address::default(),
                Some(Some(change)) => change.apply(&self.address),
            },
            parent_company_id: pick(&patch.parent_company_id, &self.parent_company_id),
            tier: pick(&patch.tier, &self.tier),
            lifecycle_stage: pick(&patch.lifecycle_stage, &self.lifecycle_stage),
            owner_id: pick(&patch.owner_id, &self.owner_id),
            source: pick(&patch.source, &self.source),
            external_id: pick(&patch.external_id, &self.external_id),
            tags: pick(&patch.tags, &self.tags),
        }
    }

    /// A revenue needs its currency.
    pub fn check(&self) -> Result<(), Vec<FieldIssue>> {
        let mut issues = Vec::new();
        if self.name.trim().is_empty() {
            issues.push(FieldIssue::new(
                "name",
                "required",
                "a company needs a name",
            ));
        }
        if self.annual_revenue_minor.is_some() && self.currency.is_none() {
            issues.push(FieldIssue::new(
                "currency",
                "required",
                "is required with annual_revenue_minor (ISO 4217, e.g. CNY)",
            ));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    pub fn search_text(&self) -> String {
        let mut parts = vec![self.name.clone()];
        parts.extend(self.domain.iter().cloned());
        if let Some(phone) = &self.phone {
            parts.push(phone.number.clone());
            parts.push(phone.number.chars().filter(char::is_ascii_digit).collect());
            parts.extend(phone.e164.iter().cloned());
        }
        parts.join(" ").to_lowercase()
    }

    pub fn sort_name(&self) -> String {
        self.name.to_lowercase()
    }
}

impl Company {
    /// The client-visible fields, flat, for diffs in the event log.
    pub fn fields(&self) -> Map<String, Value> {
        let d = &self.data;
        let mut map = Map::new();
        let mut put = |key: &str, value: Value| {
            map.insert(key.to_owned(), value);
        };
        put("name", json!(d.name));
        put("domain", json!(d.domain));
        put("industry", json!(d.industry));
        put("employee_count", json!(d.employee_count));
        put("annual_revenue_minor", json!(d.annual_revenue_minor));
        put("currency", json!(d.currency));
        put("phone", json!(d.phone));
        put("website", json!(d.website));
        put("address.street", json!(d.address.street));
        put("address.city", json!(d.address.city));
        put("address.region", json!(d.address.region));
        put("address.postal_code", json!(d.address.postal_code));
        put("address.country", json!(d.address.country));
        put("parent_company_id", json!(d.parent_company_id));
        put("tier", json!(d.tier));
        put("lifecycle_stage", json!(d.lifecycle_stage));
        put("owner_id", json!(d.owner_id));
        put("source", json!(d.source));
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

/// What filters and sorts may use on companies (and contacts through `company.<field>`).
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
        name: "domain",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "industry",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "employee_count",
        kind: FieldKind::Integer,
        sortable: false,
    },
    FieldInfo {
        name: "annual_revenue_minor",
        kind: FieldKind::Integer,
        sortable: false,
    },
    FieldInfo {
        name: "currency",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "website",
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
        name: "parent_company_id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "tier",
        kind: FieldKind::Enum(&["a", "b", "c"]),
        sortable: false,
    },
    FieldInfo {
        name: "lifecycle_stage",
        kind: FieldKind::Enum(LIFECYCLE),
        sortable: false,
    },
    FieldInfo {
        name: "owner_id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "source",
        kind: FieldKind::Text,
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

/// `parent.<field>` filters on a company's parent company.
pub const RELATIONS: &[RelationInfo] = &[RelationInfo {
    name: "parent",
    fields: FIELDS,
}];

/// The data and custom values of `primary` after merging `duplicates` into it: the primary's
/// values win where present; empty ones are filled from the duplicates in order; tags and
/// custom values unite.
pub fn merge(primary: &Company, duplicates: &[Company]) -> (CompanyData, Map<String, Value>) {
    let mut data = primary.data.clone();
    fn fill<T: Clone>(target: &mut Option<T>, source: &Option<T>) {
        if target.is_none() {
            target.clone_from(source);
        }
    }
    for dup in duplicates {
        let d = &dup.data;
        fill(&mut data.domain, &d.domain);
        fill(&mut data.industry, &d.industry);
        fill(&mut data.employee_count, &d.employee_count);
        if data.annual_revenue_minor.is_none() && d.annual_revenue_minor.is_some() {
            data.annual_revenue_minor = d.annual_revenue_minor;
            data.currency.clone_from(&d.currency);
        }
        fill(&mut data.phone, &d.phone);
        fill(&mut data.website, &d.website);
        fill(&mut data.tier, &d.tier);
        fill(&mut data.lifecycle_stage, &d.lifecycle_stage);
        fill(&mut data.owner_id, &d.owner_id);
        fill(&mut data.source, &d.source);
        fill(&mut data.external_id, &d.external_id);
        if data.parent_company_id.is_none() && d.parent_company_id != Some(primary.id) {
            data.parent_company_id = d.parent_company_id;
        }
        if data.address.is_empty() {
            data.address = d.address.clone();
        }
        for tag in &d.tags {
            if !data.tags.contains(tag) && data.tags.len() < crate::values::MAX_TAGS {
                data.tags.push(tag.clone());
            }
        }
    }
    // A duplicate cannot stay the parent of what it was merged into.
    if data
        .parent_company_id
        .is_some_and(|p| duplicates.iter().any(|d| d.id == p))
    {
        data.parent_company_id = None;
    }
    let mut custom = primary.custom.clone();
    for dup in duplicates {
        for (key, value) in &dup.custom {
            custom.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    (data, custom)
}
