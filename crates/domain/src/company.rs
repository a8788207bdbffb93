//! The filterable fields of companies as contacts see them through `company.<field>`, until
//! contacts move onto the engine too (companies are served from `objects::company`).

use crate::query::{FieldInfo, FieldKind};

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
