//! Orders: the purchase history. Rapport computes the totals: a line is
//! `quantity × unit_price_minor − discount_minor`, an order the sum of its lines.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::error::FieldIssue;
use crate::query::{FieldInfo, FieldKind, RelationInfo};

macro_rules! order_statuses {
    ($($variant:ident => $text:literal),* $(,)?) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum OrderStatus { $($variant,)* }

        impl OrderStatus {
            /// The names of the statuses, as bodies and queries write them.
            pub const NAMES: &'static [&'static str] = &[$($text,)*];
        }

        impl OrderStatus {
            pub fn as_str(self) -> &'static str {
                match self { $(OrderStatus::$variant => $text,)* }
            }
        }

        impl std::str::FromStr for OrderStatus {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok(OrderStatus::$variant),)*
                    _ => Err(format!("`{s}` is not an order status")),
                }
            }
        }
    };
}

order_statuses! {
    Pending => "pending",
    Paid => "paid",
    Fulfilled => "fulfilled",
    Cancelled => "cancelled",
    Refunded => "refunded",
}

impl OrderStatus {
    /// Paid and fulfilled orders are purchases in every aggregate; the others are not.
    pub fn is_purchase(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::Fulfilled)
    }
}

pub const PURCHASE_STATUSES: [&str; 2] = ["paid", "fulfilled"];

/// A line as stored: the product (with its sku and name at the time), and the amounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price_minor: i64,
    pub discount_minor: i64,
    pub total_minor: i64,
}

/// A line as written: the product by id or sku; the price defaults to the product's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    pub product_id: Option<Uuid>,
    pub sku: Option<String>,
    pub quantity: i64,
    pub unit_price_minor: Option<i64>,
    pub discount_minor: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderData {
    /// Your order number; unique among the organization's live orders.
    pub number: Option<String>,
    pub external_id: Option<String>,
    pub contact_id: Option<Uuid>,
    pub company_id: Option<Uuid>,
    pub status: OrderStatus,
    pub ordered_at: DateTime<Utc>,
    pub currency: String,
    pub lines: Vec<OrderLine>,
    pub total_minor: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub id: Uuid,
    pub org_id: Uuid,
    pub data: OrderData,
    pub custom: Map<String, Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: Option<Uuid>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// A merge patch of an order. Lines replace the order's lines as a whole; the contact and the
/// company may also be named by external id (or the contact by email).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderPatch {
    pub number: Option<Option<String>>,
    pub external_id: Option<Option<String>>,
    pub contact_id: Option<Option<Uuid>>,
    pub contact_external_id: Option<String>,
    pub contact_email: Option<String>,
    pub company_id: Option<Option<Uuid>>,
    pub company_external_id: Option<String>,
    pub status: Option<OrderStatus>,
    pub ordered_at: Option<DateTime<Utc>>,
    pub currency: Option<String>,
    pub lines: Option<Vec<LineInput>>,
    /// A total the client computed: it must match Rapport's.
    pub total_minor: Option<i64>,
    pub custom: Option<Map<String, Value>>,
}

pub const MAX_LINES: usize = 500;

/// `quantity × unit_price − discount`, or why not.
pub fn line_total(
    quantity: i64,
    unit_price_minor: i64,
    discount_minor: i64,
) -> Result<i64, &'static str> {
    let gross = quantity
        .checked_mul(unit_price_minor)
        .ok_or("the line's amount is too large")?;
    let total = gross
        .checked_sub(discount_minor)
        .ok_or("the line's amount is too large")?;
    if total < 0 {
        return Err("the discount is larger than the line's amount");
    }
    Ok(total)
}

/// The sum of the lines' totals.
pub fn order_total(lines: &[OrderLine]) -> Result<i64, &'static str> {
    lines
        .iter()
        .try_fold(0_i64, |sum, line| sum.checked_add(line.total_minor))
        .ok_or("the order's total is too large")
}

impl OrderData {
    pub fn check(&self) -> Result<(), Vec<FieldIssue>> {
        let mut issues = Vec::new();
        if self.contact_id.is_none() && self.company_id.is_none() {
            issues.push(FieldIssue::new(
                "contact_id",
                "required",
                "an order needs a contact_id or a company_id (or their external ids)",
            ));
        }
        if self.lines.is_empty() {
            issues.push(FieldIssue::new(
                "lines",
                "required",
                "an order needs at least one line",
            ));
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(issues)
        }
    }

    pub fn search_text(&self) -> String {
        let mut parts: Vec<String> = self.number.iter().cloned().collect();
        parts.extend(self.external_id.iter().cloned());
        parts.extend(self.lines.iter().map(|l| l.sku.clone()));
        parts.join(" ").to_lowercase()
    }
}

impl Order {
    pub fn fields(&self) -> Map<String, Value> {
        let d = &self.data;
        let mut map = Map::new();
        for (key, value) in [
            ("number", json!(d.number)),
            ("external_id", json!(d.external_id)),
            ("contact_id", json!(d.contact_id)),
            ("company_id", json!(d.company_id)),
            ("status", json!(d.status)),
            (
                "ordered_at",
                json!(
                    d.ordered_at
                        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
            ),
            ("currency", json!(d.currency)),
            ("lines", json!(d.lines)),
            ("total_minor", json!(d.total_minor)),
        ] {
            map.insert(key.to_owned(), value);
        }
        for (key, value) in &self.custom {
            map.insert(format!("custom.{key}"), value.clone());
        }
        map
    }
}

const STATUSES: &[&str] = &["pending", "paid", "fulfilled", "cancelled", "refunded"];

pub const FIELDS: &[FieldInfo] = &[
    FieldInfo {
        name: "id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "number",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "external_id",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "contact_id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "company_id",
        kind: FieldKind::Uuid,
        sortable: false,
    },
    FieldInfo {
        name: "status",
        kind: FieldKind::Enum(STATUSES),
        sortable: false,
    },
    FieldInfo {
        name: "ordered_at",
        kind: FieldKind::Timestamp,
        sortable: true,
    },
    FieldInfo {
        name: "currency",
        kind: FieldKind::Text,
        sortable: false,
    },
    FieldInfo {
        name: "total_minor",
        kind: FieldKind::Integer,
        sortable: true,
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

pub const RELATIONS: &[RelationInfo] = &[
    RelationInfo {
        name: "contact",
        fields: crate::contact::FIELDS,
    },
    RelationInfo {
        name: "company",
        fields: crate::company::FIELDS,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_quantity_times_price_less_the_discount() {
        assert_eq!(line_total(3, 1299, 100), Ok(3797));
        assert!(line_total(1, 100, 101).is_err());
        assert!(line_total(i64::MAX, 2, 0).is_err());
    }

    #[test]
    fn only_paid_and_fulfilled_orders_are_purchases() {
        assert!(OrderStatus::Paid.is_purchase() && OrderStatus::Fulfilled.is_purchase());
        assert!(
            !OrderStatus::Pending.is_purchase()
                && !OrderStatus::Refunded.is_purchase()
                && !OrderStatus::Cancelled.is_purchase()
        );
    }
}
