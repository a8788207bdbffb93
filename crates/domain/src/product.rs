//! Products: what a company sells; order lines refer to them.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::FieldIssue;
use crate::query::{FieldInfo, FieldKind, RelationInfo};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductData {
    /// Unique among the organization's live products.
    pub sku: String,
    pub name: String,
    pub description: Option<String>,
    pub category: Option<String>,
    pub unit_price_minor: Option<i64>,
    pub currency: Option<String>,
    pub warranty_months: Option<i64>,
    pub active: bool,
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: Uuid,
    pub org_id: Uuid,
    pub data: ProductData,
    pub custom: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductPatch {
    pub sku: Option<String>,
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub category: Option<Option<String>>,
    pub unit_price_minor: Option<Option<i64>>,
    pub currency: Option<Option<String>>,
    pub warranty_months: Option<Option<i64>>,
    pub active: Option<bool>,
    pub external_id: Option<Option<String>>,
    pub custom: Option<Map<String, Value>>,
}

fn pick<T: Clone>(patch: &Option<T>, current: &T) -> T {
    patch.clone().unwrap_or_else(|| current.clone())
}

impl ProductData {
    /// A new product is active unless it says otherwise.
    pub fn new_default() -> ProductData {
        ProductData {
            active: true,
            ..ProductData::default()
        }
    }

    pub fn apply(&self, patch: &ProductPatch) -> ProductData {
        ProductData {
            sku: pick(&patch.sku, &self.sku),
            name: pick(&patch.name, &self.name),
            description: pick(&patch.description, &self.description),
            category: pick(&patch.category, &self.category),
            unit_price_minor: pick(&patch.unit_price_minor, &self.unit_price_minor),
            currency: pick(&patch.currency, &self.currency),
            warranty_months: pick(&patch.warranty_months, &self.warranty_months),
            active: pick(&patch.active, &self.active),
            external_id: pick(&patch.external_id, &self.external_id),
        }
    }

    pub fn check(&self) -> Result<(), Vec<FieldIssue>> {
        let mut issues = Vec::new();
        if self.sku.is_empty() {
            issues.push(FieldIssue::new("sku", "required", "a product needs a sku"));
        }
        if self.name.is_empty() {
            issues.push(FieldIssue::new(
                "name",
                "required",
                "a product needs a name",
            ));
        }
        if self.unit_price_minor.is_some() && self.currency.is_none() {
            issues.push(FieldIssue::new(
                "currency",
                "required",
                "is required with unit_price_minor",
            ));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    pub fn search_text(&self) -> String {
        let mut parts = vec![self.sku.clone(), self.name.clone()];
        parts.extend(self.category.iter().cloned());
        parts.join(" ").to_lowercase()
    }

    pub fn sort_name(&self) -> String {
        self.name.to_lowercase()
    }
}

impl Product {
    pub fn fields(&self) -> Map<String, Value> {
        let d = &self.data;
        let mut map = Map::new();
        for (key, value) in [
            ("sku", json!(d.sku)),
            ("name", json!(d.name)),
            ("description", json!(d.description)),
            ("category", json!(d.category)),
            ("unit_price_minor", json!(d.unit_price_minor)),
            ("currency", json!(d.currency)),
            ("warranty_months", json!(d.warranty_months)),
            ("active", json!(d.active)),
            ("external_id", json!(d.external_id)),
        ] {
            map.insert(key.to_owned(), value);
        }
        for (key, value) in &self.custom {
            map.insert(format!("custom.{key}"), value.clone());
        }
        map
    }
}

pub const FIELDS: &[FieldInfo] = &[
    FieldInfo {
        name: "id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "sku",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "name",
        kind: FieldKind::Text,
        sortable: true,
    },
    FieldInfo {
        name: "category",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "unit_price_minor",
        kind: FieldKind::Integer,
        sortable: false,
    },
    FieldInfo {
        name: "currency",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "warranty_months",
        kind: FieldKind::Integer,
        sortable: false,
    },
    FieldInfo {
        name: "active",
        kind: FieldKind::Boolean,
        sortable: false,
    },
    FieldInfo {
        name: "external_id",
        kind: FieldKind::Text,
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
        name: "created_by",
        kind: FieldKind::Uuid,
        sortable: false,
    },
];

pub const RELATIONS: &[RelationInfo] = &[];
