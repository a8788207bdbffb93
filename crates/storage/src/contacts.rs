//! Contacts: the per-object part (columns, keys, search text, merge) over the shared record
//! machinery.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::contact::{self, Contact, ContactData, ContactPatch};
use rapport_domain::custom_field;
use rapport_domain::page::{Page, PageRequest};
use rapport_domain::query::{SortKey, Target};
use rapport_domain::record::{
    self, Duplicate, DuplicateReason, EventAction, MergeOutcome, RecordEvent,
};
use rapport_domain::store::{ContactStore, ListRequest};
use rapport_domain::values::{
    Address, Channel, ChannelConsent, Consent, ConsentStatus, LifecycleStage, Phone,
};
use rapport_domain::write::{IdProperty, RowOutcome, RowStatus, RowTarget, WriteRow};
use rapport_domain::{AuthContext, FieldIssue, ObjectType, StoreError};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::events::NewEvent;
use crate::records::{Plan, RelationSpec, Spec, Written, check_merge_ids, cursor, deleted_changes};
use crate::rows::now;

fn column(field: &str) -> Option<&'static str> {
    Some(match field {
        "id" => "id",
        "name" => "sort_name",
        "first_name" => "first_name",
        "last_name" => "last_name",
        "email" => "email",
        "title" => "title",
        "company_id" => "company_id",
        "lifecycle_stage" => "lifecycle_stage",
        "lead_source" => "lead_source",
        "owner_id" => "owner_id",
        "language" => "language",
        "timezone" => "timezone",
        "address.city" => "address_city",
        "address.region" => "address_region",
        "address.postal_code" => "address_postal_code",
        "address.country" => "address_country",
        "consent.email" => "consent_email",
        "consent.sms" => "consent_sms",
        "consent.phone" => "consent_phone",
        "external_id" => "external_id",
        "created_at" => "created_at",
        "updated_at" => "updated_at",
        "last_activity_at" => "last_activity_at",
        "created_by" => "created_by",
        _ => return None,
    })
}

pub(crate) static CONTACTS: Spec = Spec {
    object: ObjectType::Contact,
    table: "contacts",
    search_table: "contact_search",
    columns: crate::records::Columns::Fn(column),
    relations: &[RelationSpec {
        name: "company",
        object: ObjectType::Company,
        foreign_key: "company_id",
    }],
    catalog_fields: contact::FIELDS,
    catalog_relations: contact::RELATIONS,
    keys: &[
        (IdProperty::Id, "id", false),
        (IdProperty::ExternalId, "external_id", false),
        (IdProperty::Email, "email", true),
    ],
};

macro_rules! contact_columns {
    () => {
        "id, org_id, first_name, last_name, email, emails, phones, title, company_id, \
         lifecycle_stage, lifecycle_stage_changed_at, lead_source, owner_id, language, timezone, \
         address_street, address_city, address_region, address_postal_code, address_country, \
         consent_email, consent_email_at, consent_sms, consent_sms_at, consent_phone, consent_phone_at, \
         external_id, tags, custom, version, created_at, updated_at, created_by, deleted_at, \
         last_activity_at, merged_into, first_order_at, last_order_at, order_count, revenue_minor"
    };
}

const SELECT: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where org_id = $1 and id = $2"
);
/// The columns, for a `where` built by the caller.
const SELECT_WHERE: &str = concat!("select ", contact_columns!(), " from contacts t where ");
const SELECT_BY_IDS: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts t where t.org_id = "
);

// The data columns, in the order UPDATE binds them ($3 to $32).
const UPDATE: &str = "update contacts set first_name = $3, last_name = $4, sort_name = $5, \
     email = $6, emails = $7, phones = $8, title = $9, company_id = $10, lifecycle_stage = $11, \
     lifecycle_stage_changed_at = $12, lead_source = $13, owner_id = $14, language = $15, \
     timezone = $16, address_street = $17, address_city = $18, address_region = $19, \
     address_postal_code = $20, address_country = $21, consent_email = $22, consent_email_at = $23, \
     consent_sms = $24, consent_sms_at = $25, consent_phone = $26, consent_phone_at = $27, \
     external_id = $28, tags = $29, custom = $30, search_own = $31, search_text = $32, \
     version = version + 1, updated_at = $33, deleted_at = null where org_id = $1 and id = $2";
const INSERT_PREFIX: &str = "insert into contacts (org_id, id, first_name, last_name, sort_name, \
     email, emails, phones, title, company_id, lifecycle_stage, lifecycle_stage_changed_at, \
     lead_source, owner_id, language, timezone, address_street, address_city, address_region, \
     address_postal_code, address_country, consent_email, consent_email_at, consent_sms, \
     consent_sms_at, consent_phone, consent_phone_at, external_id, tags, custom, search_own, \
     search_text, version, created_at, updated_at, created_by) ";
const SOFT_DELETE: &str = "update contacts set deleted_at = $3, merged_into = $4, version = version + 1, \
     updated_at = $3 where org_id = $1 and id = $2";
const RESTORE: &str = "update contacts set deleted_at = null, version = version + 1, updated_at = $3 \
     where org_id = $1 and id = $2";
const EMAIL_OWNER: &str = "select id from contacts where org_id = $1 and lower(email) = lower($2) \
     and deleted_at is null and email is not null and id <> $3 limit 1";
const CLEAR_EXTERNAL_ID: &str =
    "update contacts set external_id = null where org_id = $1 and id = $2";
const SAME_KEYS: &str = "select distinct k2.object_id, k2.kind from record_keys k1 \
     join record_keys k2 on k2.org_id = k1.org_id and k2.object_type = k1.object_type \
     and k2.kind = k1.kind and k2.value = k1.value \
     where k1.org_id = $1 and k1.object_type = 'contact' and k1.object_id = $2 \
     and k1.kind in ('email', 'phone') and k2.object_id <> $2 limit 200";
const SAME_NAME_AT_COMPANY: &str = "select id from contacts where org_id = $1 and company_id = $2 \
     and lower(coalesce(first_name, '')) = lower($3) and lower(coalesce(last_name, '')) = lower($4) \
     and id <> $5 and deleted_at is null limit 50";

#[derive(sqlx::FromRow)]
pub(crate) struct ContactRow {
    id: Uuid,
    org_id: Uuid,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    emails: Json<Vec<String>>,
    phones: Json<Vec<Phone>>,
    title: Option<String>,
    company_id: Option<Uuid>,
    lifecycle_stage: Option<String>,
    lifecycle_stage_changed_at: Option<DateTime<Utc>>,
    lead_source: Option<String>,
    owner_id: Option<Uuid>,
    language: Option<String>,
    timezone: Option<String>,
    address_street: Option<String>,
    address_city: Option<String>,
    address_region: Option<String>,
    address_postal_code: Option<String>,
    address_country: Option<String>,
    consent_email: String,
    consent_email_at: Option<DateTime<Utc>>,
    consent_sms: String,
    consent_sms_at: Option<DateTime<Utc>>,
    consent_phone: String,
    consent_phone_at: Option<DateTime<Utc>>,
    external_id: Option<String>,
    tags: Json<Vec<String>>,
    custom: Json<Map<String, Value>>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    created_by: Option<Uuid>,
    deleted_at: Option<DateTime<Utc>>,
    last_activity_at: Option<DateTime<Utc>>,
    merged_into: Option<Uuid>,
    first_order_at: Option<DateTime<Utc>>,
    last_order_at: Option<DateTime<Utc>>,
    order_count: i64,
    revenue_minor: i64,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::internal(format!("unreadable contact {what}: {e}"))
}

fn consent_status(text: &str) -> Result<ConsentStatus, StoreError> {
    text.parse().map_err(|e| corrupt("consent", e))
}

impl TryFrom<ContactRow> for Contact {
    type Error = StoreError;
    fn try_from(row: ContactRow) -> Result<Self, StoreError> {
        let mut consent = Consent::default();
        for (channel, status, at) in [
            (Channel::Email, &row.consent_email, row.consent_email_at),
            (Channel::Sms, &row.consent_sms, row.consent_sms_at),
            (Channel::Phone, &row.consent_phone, row.consent_phone_at),
        ] {
            let status = consent_status(status)?;
            if status != ConsentStatus::Unknown || at.is_some() {
                consent.0.insert(
                    channel,
                    ChannelConsent {
                        status,
                        changed_at: at,
                    },
                );
            }
        }
        Ok(Contact {
            id: row.id,
            org_id: row.org_id,
            data: ContactData {
                first_name: row.first_name,
                last_name: row.last_name,
                email: row.email,
                emails: row.emails.0,
                phones: row.phones.0,
                title: row.title,
                company_id: row.company_id,
                lifecycle_stage: row
                    .lifecycle_stage
                    .map(|s| {
                        s.parse::<LifecycleStage>()
                            .map_err(|e| corrupt("lifecycle stage", e))
                    })
                    .transpose()?,
                lead_source: row.lead_source,
                owner_id: row.owner_id,
                language: row.language,
                timezone: row.timezone,
                address: Address {
                    street: row.address_street,
                    city: row.address_city,
                    region: row.address_region,
                    postal_code: row.address_postal_code,
                    country: row.address_country,
                },
                consent,
                external_id: row.external_id,
                tags: row.tags.0,
            },
            custom: row.custom.0,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
            created_by: row.created_by,
            deleted_at: row.deleted_at,
            last_activity_at: row.last_activity_at,
            lifecycle_stage_changed_at: row.lifecycle_stage_changed_at,
            purchases: record::Purchases {
                first_order_at: row.first_order_at,
                last_order_at: row.last_order_at,
                order_count: row.order_count,
                revenue_minor: row.revenue_minor,
            },
        })
    }
}

fn contacts(rows: Vec<ContactRow>) -> Result<Vec<Contact>, StoreError> {
    rows.into_iter().map(Contact::try_from).collect()
}

/// The column values a write stores, computed from the data.
pub(crate) struct Columns<'a> {
    data: &'a ContactData,
    custom: &'a Map<String, Value>,
    sort_name: String,
    search_own: String,
    search_text: String,
    stage_changed_at: Option<DateTime<Utc>>,
}

impl<'a> Columns<'a> {
    fn new(
        data: &'a ContactData,
        custom: &'a Map<String, Value>,
        company_name: Option<&str>,
        stage_changed_at: Option<DateTime<Utc>>,
    ) -> Self {
        let search_own = data.search_text();
        let search_text = match company_name {
            Some(name) => format!("{search_own} {}", name.to_lowercase()),
            None => search_own.clone(),
        };
        Columns {
            data,
            custom,
            sort_name: data.sort_name(),
            search_own,
            search_text,
            stage_changed_at,
        }
    }

    /// The keys other records are matched on: tags, emails (lower case), phones (E.164).
    fn keys(&self) -> Vec<(&'static str, String)> {
        let mut keys: Vec<(&'static str, String)> = Vec::new();
        for tag in &self.data.tags {
            keys.push(("tag", tag.clone()));
        }
        for email in self.data.email.iter().chain(&self.data.emails) {
            keys.push(("email", email.to_lowercase()));
        }
        for phone in &self.data.phones {
            if let Some(e164) = &phone.e164 {
                keys.push(("phone", e164.clone()));
            }
        }
        keys.sort();
        keys.dedup();
        keys
    }
}

/// Binds the data columns ($3 to $32) of INSERT and UPDATE.
macro_rules! bind_columns {
    ($query:expr, $c:expr) => {{
        let c = $c;
        let d = c.data;
        let consent = |channel| d.consent.get(channel);
        $query
            .bind(&d.first_name)
            .bind(&d.last_name)
            .bind(&c.sort_name)
            .bind(&d.email)
            .bind(Json(&d.emails))
            .bind(Json(&d.phones))
            .bind(&d.title)
            .bind(d.company_id)
            .bind(d.lifecycle_stage.map(LifecycleStage::as_str))
            .bind(c.stage_changed_at)
            .bind(&d.lead_source)
            .bind(d.owner_id)
            .bind(&d.language)
            .bind(&d.timezone)
            .bind(&d.address.street)
            .bind(&d.address.city)
            .bind(&d.address.region)
            .bind(&d.address.postal_code)
            .bind(&d.address.country)
            .bind(consent(Channel::Email).status.as_str())
            .bind(consent(Channel::Email).changed_at)
            .bind(consent(Channel::Sms).status.as_str())
            .bind(consent(Channel::Sms).changed_at)
            .bind(consent(Channel::Phone).status.as_str())
            .bind(consent(Channel::Phone).changed_at)
            .bind(&d.external_id)
            .bind(Json(&d.tags))
            .bind(Json(c.custom))
            .bind(&c.search_own)
            .bind(&c.search_text)
    }};
}

/// The value of a sort key in a contact, as a cursor keeps it.
fn sort_value(contact: &Contact, key: &SortKey) -> Value {
    let time =
        |t: &DateTime<Utc>| Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true));
    match &key.target {
        Target::Standard(info) => match info.name {
            "name" => Value::from(contact.data.sort_name()),
            "created_at" => time(&contact.created_at),
            "updated_at" => time(&contact.updated_at),
            "last_activity_at" => contact.last_activity_at.as_ref().map_or(Value::Null, time),
            _ => Value::Null,
        },
        Target::Custom { key, kind } => match (contact.custom.get(key), kind) {
            (Some(value), rapport_domain::query::FieldKind::Money) => {
                value.get("amount_minor").cloned().unwrap_or(Value::Null)
            }
            (Some(value), _) => value.clone(),
            (None, _) => Value::Null,
        },
        Target::Related { .. } => Value::Null,
    }
}

fn row_cursor(plan: &Plan, contact: &Contact) -> rapport_domain::Cursor {
    let values = plan.sort.iter().map(|k| sort_value(contact, k)).collect();
    cursor(plan, values, contact.id)
}

/// One row of a write, decided: what it becomes and what changes.
pub(crate) struct Planned {
    pub id: Uuid,
    pub insert: bool,
    /// An upsert found the record deleted (not merged): the write revives it.
    pub revive: bool,
    pub before: Option<Contact>,
    pub data: ContactData,
    pub custom: Map<String, Value>,
    pub company_name: Option<String>,
    pub stage_at: Option<DateTime<Utc>>,
    pub stage_changed: bool,
    pub changes: record::Changes,
}

pub(crate) enum Decision {
    Write(Box<Planned>),
    Unchanged(Uuid),
    Failed(StoreError),
}

fn in_batch(field: &str, first: usize) -> StoreError {
    StoreError::Invalid(vec![FieldIssue::new(
        field,
        "duplicate_in_batch",
        format!("row {first} of this batch already has this {field}"),
    )])
}

per_backend! {
    pub(crate) async fn load(conn: &mut Conn, org_id: Uuid, id: Uuid) -> Result<Contact, crate::error::DbError> {
        let row: ContactRow = sqlx::query_as(SELECT).bind(org_id).bind(id).fetch_one(&mut *conn).await?;
        Ok(Contact::try_from(row)?)
    }

    /// Contacts among `ids` that the caller sees; with `live_only`, not deleted ones.
    pub(crate) async fn load_visible<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        ids: &[Uuid],
    ) -> Result<Vec<Contact>, crate::error::DbError> {
        load_contacts(executor, ctx, ids, true).await
    }

    pub(crate) async fn load_contacts<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        ids: &[Uuid],
        live_only: bool,
    ) -> Result<Vec<Contact>, crate::error::DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_BY_IDS);
        qb.push_bind(ctx.org_id);
        if live_only {
            qb.push(" and t.deleted_at is null");
        }
        qb.push(" and t.id in ");
        sql::push_list(&mut qb, ids.iter().copied());
        sql::push_visibility(&mut qb, ctx, ObjectType::Contact);
        qb.push(" order by t.id");
        let rows: Vec<ContactRow> = qb.build_query_as().fetch_all(executor).await?;
        Ok(contacts(rows)?)
    }

    /// Decides every row without writing: finds the records the rows target, checks
    /// references, custom values and unique keys (against the database and the other rows),
    /// and computes what changes. A handful of queries serve the whole batch.
    pub(crate) async fn plan_contacts(
        conn: &mut Conn,
        ctx: &AuthContext,
        rows: &[WriteRow<ContactPatch>],
        at: DateTime<Utc>,
    ) -> Result<Vec<Decision>, crate::error::DbError> {
        use std::collections::{HashMap, HashSet};
        let definitions = sql::custom_fields(&mut *conn, ctx.org_id, ObjectType::Contact).await?;

        // The records the rows target.
        let mut ids = Vec::new();
        let mut external_ids = Vec::new();
        let mut emails = Vec::new();
        for row in rows {
            match &row.target {
                RowTarget::Update { id, .. } => ids.push(*id),
                RowTarget::Upsert { property: IdProperty::Id, value } => ids.extend(Uuid::parse_str(value).ok()),
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => external_ids.push(value.clone()),
                RowTarget::Upsert { property: IdProperty::Email, value } => emails.push(value.to_lowercase()),
                _ => {}
            }
        }
        let mut existing: Vec<Contact> = Vec::new();
        let mut merged: HashMap<Uuid, Uuid> = HashMap::new();
        if !ids.is_empty() || !external_ids.is_empty() || !emails.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_WHERE);
            sql::push_keyed_lookup(&mut qb, ctx.org_id, &ids, &external_ids, "t.deleted_at is null and t.email is not null and lower(t.email)", &emails);
            sql::push_lock_rows(&mut qb);
            let found: Vec<ContactRow> = qb.build_query_as().fetch_all(&mut *conn).await?;
            for row in found {
                if let Some(into) = row.merged_into {
                    merged.insert(row.id, into);
                }
                existing.push(Contact::try_from(row)?);
            }
        }
        let existing_ids: Vec<Uuid> = existing.iter().map(|c| c.id).collect();
        // A record the caller may not see is answered as one that does not exist (or, for a
        // key that must stay unique, as a conflict that names nothing).
        let visible = sql::visible_among(conn, ctx, &CONTACTS, &existing_ids).await?;
        let merged_visible = |id: &Uuid| merged.get(id).filter(|_| visible.contains(id)).map_or(StoreError::NotFound, |into| StoreError::Merged { into: *into });
        let by_id: HashMap<Uuid, &Contact> = existing.iter().map(|c| (c.id, c)).collect();
        let by_external: HashMap<&str, &Contact> = existing
            .iter()
            .filter_map(|c| c.data.external_id.as_deref().map(|e| (e, c)))
            .collect();
        let by_email: HashMap<String, &Contact> = existing
            .iter()
            .filter(|c| c.deleted_at.is_none())
            .filter_map(|c| c.data.email.as_ref().map(|e| (e.to_lowercase(), c)))
            .collect();

        // Each row's record (if any) and data.
        struct Draft<'a> {
            before: Option<&'a Contact>,
            data: ContactData,
            revive: bool,
        }
        let mut drafts: Vec<Result<Draft<'_>, StoreError>> = Vec::with_capacity(rows.len());
        let mut targets_seen: HashMap<String, usize> = HashMap::new();
        for (index, row) in rows.iter().enumerate() {
            let patch = &row.patch;
            let target_key = match &row.target {
                RowTarget::Create => None,
                RowTarget::Update { id, .. } => Some(format!("id:{id}")),
                RowTarget::Upsert { property, value } => Some(format!("{}:{}", property.as_str(), value.to_lowercase())),
            };
            if let Some(key) = target_key {
                if let Some(first) = targets_seen.get(&key) {
                    let field = match &row.target {
                        RowTarget::Upsert { property, .. } => property.as_str(),
                        _ => "id",
                    };
                    drafts.push(Err(in_batch(field, *first)));
                    continue;
                }
                targets_seen.insert(key, index);
            }
            let found: Result<Option<&Contact>, StoreError> = match &row.target {
                RowTarget::Create => Ok(None),
                RowTarget::Update { id, expected_version } => match by_id.get(id) {
                    Some(c) if c.deleted_at.is_none() && visible.contains(id) => match expected_version {
                        Some(v) if *v != c.version => Err(StoreError::VersionMismatch { current: c.version }),
                        _ => Ok(Some(*c)),
                    },
                    _ => Err(merged_visible(id)),
                },
                RowTarget::Upsert { property: IdProperty::Id, value } => match Uuid::parse_str(value).ok().and_then(|id| by_id.get(&id)) {
                    Some(c) if c.deleted_at.is_none() && visible.contains(&c.id) => Ok(Some(*c)),
                    Some(c) => Err(merged_visible(&c.id)),
                    None => Err(StoreError::NotFound),
                },
                // A hidden record holds this external id: the key is taken, by whom is not told.
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => match by_external.get(value.as_str()) {
                    Some(c) if !visible.contains(&c.id) => Err(StoreError::Conflict { field: Some("external_id".into()) }),
                    Some(c) if merged.contains_key(&c.id) => Err(StoreError::Merged { into: merged[&c.id] }),
                    Some(c) => Ok(Some(*c)),
                    None => Ok(None),
                },
                RowTarget::Upsert { property: IdProperty::Email, value } => match by_email.get(&value.to_lowercase()) {
                    Some(c) if !visible.contains(&c.id) => Err(StoreError::DuplicateEmail { existing_id: None }),
                    Some(c) => Ok(Some(*c)),
                    None => Ok(None),
                },
                RowTarget::Upsert { property, .. } => Err(StoreError::Invalid(vec![FieldIssue::new(
                    "id_property",
                    "invalid_value",
                    format!("contacts are not found by {}", property.as_str()),
                )])),
            };
            let before = match found {
                Ok(before) => before,
                Err(error) => {
                    drafts.push(Err(error));
                    continue;
                }
            };
            let mut data = match before {
                Some(c) => c.data.apply(patch, at),
                None => {
                    let mut data = ContactData::default().apply(patch, at);
                    if patch.owner_id.is_none() {
                        data.owner_id = Some(ctx.user_id);
                    }
                    data
                }
            };
            // An upsert's key is part of the record it writes.
            let mut key_issue = None;
            match &row.target {
                RowTarget::Upsert { property: IdProperty::ExternalId, value } => match &patch.external_id {
                    Some(Some(given)) if given != value => key_issue = Some("external_id"),
                    _ => data.external_id = Some(value.clone()),
                },
                RowTarget::Upsert { property: IdProperty::Email, value } => match &patch.email {
                    Some(Some(given)) if !given.eq_ignore_ascii_case(value) => key_issue = Some("email"),
                    _ if data.email.is_none() => data.email = Some(value.clone()),
                    _ => {}
                },
                _ => {}
            }
            if let Some(field) = key_issue {
                drafts.push(Err(StoreError::Invalid(vec![FieldIssue::new(field, "invalid_value", format!("differs from the {field} the row is found by"))])));
                continue;
            }
            let revive = before.is_some_and(|c| c.deleted_at.is_some());
            drafts.push(Ok(Draft { before, data, revive }));
        }

        // References: companies (by id or external id) and owners.
        let mut company_ids: HashSet<Uuid> = HashSet::new();
        let mut company_external_ids: HashSet<String> = HashSet::new();
        let mut owner_ids: HashSet<Uuid> = HashSet::new();
        for (row, draft) in rows.iter().zip(&drafts) {
            let Ok(draft) = draft else { continue };
            company_ids.extend(draft.data.company_id);
            company_external_ids.extend(row.patch.company_external_id.clone());
            if let Some(owner) = draft.data.owner_id
                && draft.before.and_then(|b| b.data.owner_id) != Some(owner)
            {
                owner_ids.insert(owner);
            }
        }
        let mut companies_by_id: HashMap<Uuid, String> = HashMap::new();
        let mut companies_by_external: HashMap<String, (Uuid, String)> = HashMap::new();
        if !company_ids.is_empty() || !company_external_ids.is_empty() {
            const SELECT: &str = "select id, external_id, name from companies where ";
            let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT);
            sql::push_key_branch(&mut qb, "", ctx.org_id, "deleted_at is null and id", company_ids.iter().copied().chain([Uuid::nil()]));
            qb.push(" union ").push(SELECT);
            sql::push_key_branch(&mut qb, "", ctx.org_id, "deleted_at is null and external_id", company_external_ids.iter().cloned().chain([String::new()]));
            let found: Vec<(Uuid, Option<String>, String)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            for (id, external_id, name) in found {
                if let Some(external_id) = external_id {
                    companies_by_external.insert(external_id, (id, name.clone()));
                }
                companies_by_id.insert(id, name);
            }
        }
        let active_owners: HashSet<Uuid> = if owner_ids.is_empty() {
            HashSet::new()
        } else {
            let mut qb = sqlx::QueryBuilder::<Db>::new("select id from users where org_id = ");
            qb.push_bind(ctx.org_id).push(" and active and id in ");
            sql::push_list(&mut qb, owner_ids.iter().copied());
            let found: Vec<Uuid> = qb.build_query_scalar().fetch_all(&mut *conn).await?;
            found.into_iter().collect()
        };
        let permitted_owners = sql::permitted_owners(conn, ctx, ObjectType::Contact, &owner_ids).await?;
        let found_companies: Vec<Uuid> = companies_by_id.keys().copied().collect();
        let companies_spec = crate::engine::storage_spec(ObjectType::Company).ok_or(StoreError::NotFound)?;
        let visible_companies = sql::visible_among(conn, ctx, companies_spec, &found_companies).await?;

        // Resolve the company references, then the custom values; then collect unique values.
        struct Shaped {
            custom: Map<String, Value>,
            issues: Vec<FieldIssue>,
            /// The row gives the contact an owner outside what the caller sees.
            owner_refused: bool,
        }
        let mut shaped: Vec<Option<Shaped>> = Vec::with_capacity(rows.len());
        for (row, draft) in rows.iter().zip(drafts.iter_mut()) {
            let Ok(draft) = draft else {
                shaped.push(None);
                continue;
            };
            let mut issues = Vec::new();
            if let Some(external_id) = &row.patch.company_external_id {
                if matches!(row.patch.company_id, Some(Some(_))) {
                    issues.push(FieldIssue::new("company_external_id", "invalid_value", "name the company by company_id or company_external_id, not both"));
                }
                match companies_by_external.get(external_id).filter(|(id, _)| visible_companies.contains(id)) {
                    Some((id, _)) => draft.data.company_id = Some(*id),
                    None => issues.push(FieldIssue::new("company_external_id", "not_found", "names no live company of your organization")),
                }
            }
            // A company the caller may not see is named exactly like one that does not
            // exist; the company a contact already has stays, seen or not.
            if let Some(company) = draft.data.company_id
                && (!companies_by_id.contains_key(&company)
                    || (draft.before.and_then(|b| b.data.company_id) != Some(company) && !visible_companies.contains(&company)))
                && !issues.iter().any(|i| i.field == "company_external_id")
            {
                issues.push(FieldIssue::new("company_id", "not_found", "names no live company of your organization"));
            }
            if let Some(owner) = draft.data.owner_id
                && draft.before.and_then(|b| b.data.owner_id) != Some(owner)
                && !active_owners.contains(&owner)
            {
                issues.push(FieldIssue::new("owner_id", "not_found", "names no active user of your organization"));
            }
            if let Err(found) = draft.data.check() {
                issues.extend(found);
            }
            let empty = Map::new();
            let current = draft.before.map_or(&empty, |b| &b.custom);
            let (custom, found) = custom_field::apply_all(&definitions, current, row.patch.custom.as_ref().unwrap_or(&empty));
            issues.extend(found);
            let owner_refused = crate::records::owner_refused(permitted_owners.as_ref(), draft.before.map(|b| b.data.owner_id), draft.data.owner_id);
            shaped.push(Some(Shaped { custom, issues, owner_refused }));
        }

        // Unique keys: emails and external ids (against the database and the batch).
        let mut wanted_emails: HashSet<String> = HashSet::new();
        let mut wanted_external: HashSet<String> = HashSet::new();
        let mut wanted_custom: HashMap<String, Vec<Value>> = HashMap::new();
        for (draft, shape) in drafts.iter().zip(&shaped) {
            let (Ok(draft), Some(shape)) = (draft, shape) else { continue };
            wanted_emails.extend(draft.data.email.as_ref().map(|e| e.to_lowercase()));
            wanted_external.extend(draft.data.external_id.clone());
            for def in definitions.iter().filter(|d| d.unique) {
                if let Some(value) = shape.custom.get(&def.key) {
                    wanted_custom.entry(def.key.clone()).or_default().push(value.clone());
                }
            }
        }
        let mut email_holders: HashMap<String, Uuid> = HashMap::new();
        if !wanted_emails.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new("select lower(email), id from contacts where org_id = ");
            // The conditions of the partial unique index, so that it serves the lookup.
            qb.push_bind(ctx.org_id).push(" and deleted_at is null and email is not null and lower(email) in ");
            sql::push_list(&mut qb, wanted_emails.iter().cloned());
            let found: Vec<(String, Uuid)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            email_holders.extend(found);
        }
        let mut external_holders: HashMap<String, Uuid> = HashMap::new();
        if !wanted_external.is_empty() {
            let mut qb = sqlx::QueryBuilder::<Db>::new("select external_id, id from contacts where org_id = ");
            qb.push_bind(ctx.org_id).push(" and external_id in ");
            sql::push_list(&mut qb, wanted_external.iter().cloned());
            let found: Vec<(String, Uuid)> = qb.build_query_as().fetch_all(&mut *conn).await?;
            external_holders.extend(found);
        }
        let custom_holders = sql::unique_holders(conn, &CONTACTS, ctx.org_id, &definitions, &wanted_custom).await?;
        let holders: Vec<Uuid> = email_holders.values().chain(custom_holders.values()).copied().collect();
        let visible_holders = sql::visible_among(conn, ctx, &CONTACTS, &holders).await?;

        // Decide each row.
        let mut claimed_emails: HashMap<String, usize> = HashMap::new();
        let mut claimed_external: HashMap<String, usize> = HashMap::new();
        let mut claimed_custom: HashMap<(String, String), usize> = HashMap::new();
        let mut decisions = Vec::with_capacity(rows.len());
        for (index, (draft, shape)) in drafts.into_iter().zip(shaped).enumerate() {
            let (draft, shape) = match (draft, shape) {
                (Ok(draft), Some(shape)) => (draft, shape),
                (Err(error), _) => {
                    decisions.push(Decision::Failed(error));
                    continue;
                }
                (Ok(_), None) => {
                    decisions.push(Decision::Failed(StoreError::internal("row without shape")));
                    continue;
                }
            };
            let id = draft.before.map_or_else(Uuid::now_v7, |b| b.id);
            let mut issues = shape.issues;
            for def in definitions.iter().filter(|d| d.unique) {
                let Some(value) = shape.custom.get(&def.key) else { continue };
                let text = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
                let key = (def.key.clone(), text);
                if let Some(holder) = custom_holders.get(&key).filter(|h| **h != id) {
                    issues.push(crate::records::custom_taken(&def.key, visible_holders.named(*holder)));
                } else if let Some(first) = claimed_custom.get(&key) {
                    issues.push(FieldIssue::new(format!("custom.{}", def.key), "duplicate_in_batch", format!("row {first} of this batch already has this value")));
                } else {
                    claimed_custom.insert(key, index);
                }
            }
            if !issues.is_empty() {
                decisions.push(Decision::Failed(StoreError::Invalid(issues)));
                continue;
            }
            // Before any conflict: a write the caller may not make tells nothing of other records.
            if shape.owner_refused {
                decisions.push(Decision::Failed(StoreError::OwnerNotPermitted));
                continue;
            }
            if let Some(email) = draft.data.email.as_ref().map(|e| e.to_lowercase()) {
                if let Some(holder) = email_holders.get(&email).filter(|h| **h != id) {
                    decisions.push(Decision::Failed(StoreError::DuplicateEmail { existing_id: visible_holders.named(*holder) }));
                    continue;
                }
                if let Some(first) = claimed_emails.get(&email) {
                    decisions.push(Decision::Failed(in_batch("email", *first)));
                    continue;
                }
                claimed_emails.insert(email, index);
            }
            if let Some(external_id) = &draft.data.external_id {
                if external_holders.get(external_id).is_some_and(|h| *h != id) {
                    decisions.push(Decision::Failed(StoreError::Conflict { field: Some("external_id".into()) }));
                    continue;
                }
                if let Some(first) = claimed_external.get(external_id) {
                    decisions.push(Decision::Failed(in_batch("external_id", *first)));
                    continue;
                }
                claimed_external.insert(external_id.clone(), index);
            }

            let company_name = draft.data.company_id.and_then(|c| companies_by_id.get(&c).cloned());
            let (changes, stage_changed, stage_at) = match draft.before {
                Some(before) => {
                    let after = Contact { data: draft.data.clone(), custom: shape.custom.clone(), ..before.clone() };
                    let mut changes = record::diff(&before.fields(), &after.fields());
                    if draft.revive {
                        changes.extend(deleted_changes(before.deleted_at, None));
                    }
                    let stage_changed = draft.data.lifecycle_stage != before.data.lifecycle_stage;
                    let stage_at = if stage_changed { draft.data.lifecycle_stage.map(|_| at) } else { before.lifecycle_stage_changed_at };
                    (changes, stage_changed, stage_at)
                }
                None => {
                    let fields = Contact {
                        id,
                        org_id: ctx.org_id,
                        data: draft.data.clone(),
                        custom: shape.custom.clone(),
                        version: 1,
                        created_at: at,
                        updated_at: at,
                        created_by: Some(ctx.user_id),
                        deleted_at: None,
                        last_activity_at: None,
                        lifecycle_stage_changed_at: None,
                        purchases: record::Purchases::default(),
                    }
                    .fields();
                    let stage_at = draft.data.lifecycle_stage.map(|_| at);
                    (record::diff(&Map::new(), &fields), draft.data.lifecycle_stage.is_some(), stage_at)
                }
            };
            if draft.before.is_some() && changes.is_empty() {
                decisions.push(Decision::Unchanged(id));
                continue;
            }
            decisions.push(Decision::Write(Box::new(Planned {
                id,
                insert: draft.before.is_none(),
                revive: draft.revive,
                before: draft.before.cloned(),
                data: draft.data,
                custom: shape.custom,
                company_name,
                stage_at,
                stage_changed,
                changes,
            })));
        }
        Ok(decisions)
    }

    /// Writes planned rows: inserts in multi-row statements, updates one by one, then keys,
    /// the search index and lifecycle changes for all of them. Events are the caller's.
    pub(crate) async fn apply_contacts(
        conn: &mut Conn,
        ctx: &AuthContext,
        planned: &[&Planned],
        at: DateTime<Utc>,
    ) -> Result<(), crate::error::DbError> {
        let columns: Vec<(&Planned, Columns<'_>)> = planned
            .iter()
            .map(|p| (*p, Columns::new(&p.data, &p.custom, p.company_name.as_deref(), p.stage_at)))
            .collect();
        let inserts: Vec<&(&Planned, Columns<'_>)> = columns.iter().filter(|(p, _)| p.insert).collect();
        for chunk in inserts.chunks(400) {
            let mut qb = sqlx::QueryBuilder::<Db>::new(INSERT_PREFIX);
            qb.push_values(chunk, |mut row, (p, c)| {
                let d = c.data;
                let consent = |channel| d.consent.get(channel);
                row.push_bind(ctx.org_id)
                    .push_bind(p.id)
                    .push_bind(d.first_name.clone())
                    .push_bind(d.last_name.clone())
                    .push_bind(c.sort_name.clone())
                    .push_bind(d.email.clone())
                    .push_bind(Json(d.emails.clone()))
                    .push_bind(Json(d.phones.clone()))
                    .push_bind(d.title.clone())
                    .push_bind(d.company_id)
                    .push_bind(d.lifecycle_stage.map(LifecycleStage::as_str))
                    .push_bind(c.stage_changed_at)
                    .push_bind(d.lead_source.clone())
                    .push_bind(d.owner_id)
                    .push_bind(d.language.clone())
                    .push_bind(d.timezone.clone())
                    .push_bind(d.address.street.clone())
                    .push_bind(d.address.city.clone())
                    .push_bind(d.address.region.clone())
                    .push_bind(d.address.postal_code.clone())
                    .push_bind(d.address.country.clone())
                    .push_bind(consent(Channel::Email).status.as_str())
                    .push_bind(consent(Channel::Email).changed_at)
                    .push_bind(consent(Channel::Sms).status.as_str())
                    .push_bind(consent(Channel::Sms).changed_at)
                    .push_bind(consent(Channel::Phone).status.as_str())
                    .push_bind(consent(Channel::Phone).changed_at)
                    .push_bind(d.external_id.clone())
                    .push_bind(Json(d.tags.clone()))
                    .push_bind(Json(c.custom.clone()))
                    .push_bind(c.search_own.clone())
                    .push_bind(c.search_text.clone())
                    .push_bind(1_i64)
                    .push_bind(at)
                    .push_bind(at)
                    .push_bind(ctx.user_id);
            });
            qb.build().execute(&mut *conn).await?;
        }
        for (p, c) in columns.iter().filter(|(p, _)| !p.insert) {
            bind_columns!(sqlx::query(UPDATE).bind(ctx.org_id).bind(p.id), c)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        let keys: Vec<(Uuid, Vec<(&'static str, String)>)> = columns.iter().map(|(p, c)| (p.id, c.keys())).collect();
        sql::replace_keys_many(conn, ctx.org_id, ObjectType::Contact, &keys).await?;
        let ids: Vec<Uuid> = planned.iter().map(|p| p.id).collect();
        sql::index_search_many(conn, &CONTACTS, &ids).await?;
        let stages: Vec<(Uuid, Option<LifecycleStage>, Option<LifecycleStage>)> = planned
            .iter()
            .filter(|p| p.stage_changed)
            .map(|p| (p.id, p.before.as_ref().and_then(|b| b.data.lifecycle_stage), p.data.lifecycle_stage))
            .collect();
        sql::record_lifecycles(conn, ctx, ObjectType::Contact, &stages, at).await?;
        Ok(())
    }

    /// Plans, writes and logs a batch in the caller's transaction; one outcome per row.
    pub(crate) async fn write_contacts(
        conn: &mut Conn,
        ctx: &AuthContext,
        rows: &[WriteRow<ContactPatch>],
        all_or_none: bool,
        at: DateTime<Utc>,
    ) -> Result<Written, crate::error::DbError> {
        let decisions = plan_contacts(conn, ctx, rows, at).await?;
        let failed = decisions.iter().any(|d| matches!(d, Decision::Failed(_)));
        if all_or_none && failed {
            let outcomes = decisions
                .into_iter()
                .map(|d| match d {
                    Decision::Failed(error) => RowOutcome::error(error),
                    _ => RowOutcome::error(rapport_domain::write::not_applied()),
                })
                .collect();
            // Nothing is written; the caller rolls back.
            return Ok(Written { outcomes, commit: false });
        }
        let planned: Vec<&Planned> = decisions
            .iter()
            .filter_map(|d| match d {
                Decision::Write(p) => Some(p.as_ref()),
                _ => None,
            })
            .collect();
        apply_contacts(conn, ctx, &planned, at).await?;
        let events: Vec<NewEvent<'_>> = planned
            .iter()
            .map(|p| NewEvent {
                object: ObjectType::Contact,
                id: p.id,
                action: if p.insert { EventAction::Created } else if p.revive { EventAction::Restored } else { EventAction::Updated },
                changes: &p.changes,
                merged_ids: &[],
            })
            .collect();
        sql::append_events(conn, ctx, &events, at).await?;
        let outcomes = decisions
            .into_iter()
            .map(|d| match d {
                Decision::Write(p) => RowOutcome::ok(if p.insert { RowStatus::Created } else { RowStatus::Updated }, p.id),
                Decision::Unchanged(id) => RowOutcome::ok(RowStatus::Unchanged, id),
                Decision::Failed(error) => RowOutcome::error(error),
            })
            .collect();
        Ok(Written { outcomes, commit: true })
    }
}

#[async_trait]
impl ContactStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, rows = rows.len()))]
    async fn write(
        &self,
        ctx: &AuthContext,
        rows: Vec<WriteRow<ContactPatch>>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        write_retrying!(self, ctx, |tx, sql, at| sql::write_contacts(
            &mut tx,
            ctx,
            &rows,
            all_or_none,
            at
        )
        .await?)
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, rows = targets.len()))]
    async fn delete_many(
        &self,
        ctx: &AuthContext,
        targets: Vec<RowTarget>,
        all_or_none: bool,
    ) -> Result<Vec<RowOutcome>, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let written =
                sql::delete_records(&mut tx, ctx, &CONTACTS, &targets, all_or_none, at).await?;
            if written.commit {
                tx.commit().await?;
            }
            Ok(written.outcomes)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, contact = %id))]
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Contact, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            let found = sql::load_visible(pool, ctx, &[id]).await?;
            match found.into_iter().next() {
                Some(contact) => Ok(contact),
                None => Err(sql::missing(pool, ctx, &CONTACTS, id).await?.into()),
            }
        })
    }

    async fn get_many(&self, ctx: &AuthContext, ids: &[Uuid]) -> Result<Vec<Contact>, StoreError> {
        on_db!(&self.db, read, |pool, sql| sql::load_contacts(
            pool, ctx, ids, false
        )
        .await)
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, contact = %id))]
    async fn delete(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let outcomes = self
            .delete_many(
                ctx,
                vec![RowTarget::Update {
                    id,
                    expected_version,
                }],
                true,
            )
            .await?;
        match outcomes.into_iter().next().map(|o| o.result) {
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => Err(error),
            None => Err(StoreError::NotFound),
        }
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, contact = %id))]
    async fn restore(&self, ctx: &AuthContext, id: Uuid) -> Result<Contact, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            // Restores of one record at once: one restores it, the others find it live.
            sql::lock_row(&mut tx, &CONTACTS, ctx.org_id, id).await?;
            let current: Option<ContactRow> = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(current) = current else {
                return Err(StoreError::NotFound.into());
            };
            if let Some(into) = current.merged_into {
                return Err(StoreError::Merged { into }.into());
            }
            let current = Contact::try_from(current)?;
            if !sql::is_visible(&mut *tx, ctx, &CONTACTS, id).await? {
                return Err(StoreError::NotFound.into());
            }
            if current.deleted_at.is_none() {
                return Ok(current);
            }
            if let Some(email) = &current.data.email {
                let taken: Option<Uuid> = sqlx::query_scalar(EMAIL_OWNER)
                    .bind(ctx.org_id)
                    .bind(email)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(holder) = taken {
                    let visible = sql::visible_among(&mut tx, ctx, &CONTACTS, &[holder]).await?;
                    return Err(StoreError::DuplicateEmail {
                        existing_id: visible.named(holder),
                    }
                    .into());
                }
            }
            sqlx::query(RESTORE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            let contact = sql::load(&mut tx, ctx.org_id, id).await?;
            let changes = deleted_changes(current.deleted_at, None);
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Contact,
                    id,
                    action: EventAction::Restored,
                    changes: &changes,
                    merged_ids: &[],
                }],
                at,
            )
            .await?;
            tx.commit().await?;
            Ok(contact)
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn list(
        &self,
        ctx: &AuthContext,
        request: &ListRequest,
    ) -> Result<Page<Contact>, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            let definitions = sql::custom_fields(pool, ctx.org_id, ObjectType::Contact).await?;
            let plan = crate::records::plan(&CONTACTS, request, &definitions)?;
            let base = |qb: &mut sql::Builder| {
                qb.push_bind(ctx.org_id).push(if request.deleted {
                    " and t.deleted_at is not null and t.merged_into is null"
                } else {
                    " and t.deleted_at is null"
                });
                sql::push_visibility(qb, ctx, ObjectType::Contact);
                if let Some(filter) = &plan.filter {
                    qb.push(" and ");
                    sql::push_filter(qb, ctx, filter, &CONTACTS, "t", false);
                }
                if let Some(q) = &request.q {
                    sql::push_search(qb, &CONTACTS, q);
                }
            };
            let mut qb = sql::Builder::new(SELECT_BY_IDS);
            base(&mut qb);
            if let Some((values, after_id)) = &plan.after {
                sql::push_after(&mut qb, &CONTACTS, &plan.sort, values, *after_id)?;
            }
            sql::push_order(&mut qb, &CONTACTS, &plan.sort);
            qb.push(" limit ")
                .push_bind(i64::from(request.page.limit) + 1);
            let rows: Vec<ContactRow> = qb.build_query_as().fetch_all(pool).await?;
            let total = if request.page.with_total {
                let mut count =
                    sql::Builder::new("select count(*) from contacts t where t.org_id = ");
                base(&mut count);
                Some(count.build_query_scalar::<i64>().fetch_one(pool).await?)
            } else {
                None
            };
            Ok(Page::from_rows(
                contacts(rows)?,
                request.page.limit,
                |c| row_cursor(&plan, c),
                total,
            ))
        })
    }

    async fn history(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        page: &PageRequest,
    ) -> Result<Page<RecordEvent>, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            if !sql::is_visible(pool, ctx, &CONTACTS, id).await? {
                return Err(StoreError::NotFound.into());
            }
            sql::history(pool, ctx.org_id, ObjectType::Contact, id, page).await
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, contact = %id))]
    async fn duplicates(
        &self,
        ctx: &AuthContext,
        id: Uuid,
    ) -> Result<Vec<Duplicate<Contact>>, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            let Some(contact) = sql::load_visible(pool, ctx, &[id])
                .await?
                .into_iter()
                .next()
            else {
                return Err(sql::missing(pool, ctx, &CONTACTS, id).await?.into());
            };
            let mut reasons: std::collections::BTreeMap<Uuid, Vec<DuplicateReason>> =
                Default::default();
            let same: Vec<(Uuid, String)> = sqlx::query_as(SAME_KEYS)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_all(pool)
                .await?;
            for (other, kind) in same {
                let reason = if kind == "email" {
                    DuplicateReason::SameEmail
                } else {
                    DuplicateReason::SamePhone
                };
                reasons.entry(other).or_default().push(reason);
            }
            let has_name = contact.data.first_name.is_some() || contact.data.last_name.is_some();
            if let (Some(company), true) = (contact.data.company_id, has_name) {
                let named: Vec<Uuid> = sqlx::query_scalar(SAME_NAME_AT_COMPANY)
                    .bind(ctx.org_id)
                    .bind(company)
                    .bind(contact.data.first_name.clone().unwrap_or_default())
                    .bind(contact.data.last_name.clone().unwrap_or_default())
                    .bind(id)
                    .fetch_all(pool)
                    .await?;
                for other in named {
                    reasons
                        .entry(other)
                        .or_default()
                        .push(DuplicateReason::SameNameAndCompany);
                }
            }
            let ids: Vec<Uuid> = reasons.keys().copied().collect();
            let found = sql::load_visible(pool, ctx, &ids).await?;
            Ok(found
                .into_iter()
                .map(|record| {
                    let mut why = reasons.remove(&record.id).unwrap_or_default();
                    why.sort();
                    why.dedup();
                    Duplicate {
                        record,
                        reasons: why,
                    }
                })
                .collect())
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, primary = %primary))]
    async fn merge(
        &self,
        ctx: &AuthContext,
        primary: Uuid,
        duplicates: &[Uuid],
        dry_run: bool,
    ) -> Result<MergeOutcome<Contact>, StoreError> {
        check_merge_ids(primary, duplicates)?;
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            // Lock in id order, so that overlapping merges wait for each other instead of
            // deadlocking; a record already merged or deleted stops the merge.
            let mut all: Vec<Uuid> = duplicates.to_vec();
            all.push(primary);
            all.sort();
            for id in &all {
                if !sql::lock_live(&mut tx, ctx, &CONTACTS, *id).await? {
                    return Err(sql::missing(&mut *tx, ctx, &CONTACTS, *id).await?.into());
                }
            }
            let target = sql::load(&mut tx, ctx.org_id, primary).await?;
            let mut dups = Vec::new();
            for id in duplicates {
                dups.push(sql::load(&mut tx, ctx.org_id, *id).await?);
            }
            let (data, custom) = contact::merge(&target, &dups);
            let merged = Contact {
                data: data.clone(),
                custom: custom.clone(),
                version: target.version + 1,
                updated_at: at,
                ..target.clone()
            };
            let changes = record::diff(&target.fields(), &merged.fields());
            if dry_run {
                return Ok(MergeOutcome {
                    merged: Contact {
                        version: target.version,
                        updated_at: target.updated_at,
                        ..merged
                    },
                    merged_ids: duplicates.to_vec(),
                    changes,
                    dry_run: true,
                });
            }
            // The duplicates go first, freeing their email and external id for the primary.
            for dup in &dups {
                sqlx::query(SOFT_DELETE)
                    .bind(ctx.org_id)
                    .bind(dup.id)
                    .bind(at)
                    .bind(Some(primary))
                    .execute(&mut *tx)
                    .await?;
                if dup.data.external_id.is_some() && data.external_id == dup.data.external_id {
                    sqlx::query(CLEAR_EXTERNAL_ID)
                        .bind(ctx.org_id)
                        .bind(dup.id)
                        .execute(&mut *tx)
                        .await?;
                }
                for (table, column) in CONTACT_REFERENCES {
                    sql::repoint(&mut tx, table, column, ctx.org_id, dup.id, primary).await?;
                }
            }
            let row = WriteRow {
                target: RowTarget::Update {
                    id: primary,
                    expected_version: None,
                },
                patch: ContactPatch::replacing(&data, custom),
            };
            let decisions =
                sql::plan_contacts(&mut tx, ctx, std::slice::from_ref(&row), at).await?;
            match decisions.into_iter().next() {
                Some(Decision::Write(planned)) => {
                    sql::apply_contacts(&mut tx, ctx, &[planned.as_ref()], at).await?
                }
                Some(Decision::Failed(error)) => return Err(error.into()),
                _ => {}
            }
            sql::refresh_contact_purchases(&mut tx, ctx.org_id, &[primary]).await?;
            let result = sql::load(&mut tx, ctx.org_id, primary).await?;
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Contact,
                    id: primary,
                    action: EventAction::Merged,
                    changes: &changes,
                    merged_ids: duplicates,
                }],
                at,
            )
            .await?;
            tx.commit().await?;
            Ok(MergeOutcome {
                merged: result,
                merged_ids: duplicates.to_vec(),
                changes,
                dry_run: false,
            })
        })
    }
}

/// The tables whose rows point at a contact, repointed to the primary of a merge. Every
/// object that references contacts joins this list.
const CONTACT_REFERENCES: &[(&str, &str)] = &[("orders", "contact_id")];
