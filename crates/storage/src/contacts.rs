//! Contacts: the per-object part (columns, keys, search text, merge) over the shared record
//! machinery.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rapport_domain::contact::{self, Contact, ContactData, ContactPatch};
use rapport_domain::custom_field;
use rapport_domain::page::{Page, PageRequest};
use rapport_domain::query::{SortKey, Target};
use rapport_domain::record::{
    self, Duplicate, DuplicateReason, EventAction, MAX_MERGE_DUPLICATES, MergeOutcome, RecordEvent,
};
use rapport_domain::store::{ContactStore, ListRequest};
use rapport_domain::values::{
    Address, Channel, ChannelConsent, Consent, ConsentStatus, LifecycleStage, Phone,
};
use rapport_domain::{AuthContext, FieldIssue, ObjectType, StoreError};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use crate::SqlStore;
use crate::events::NewEvent;
use crate::records::{Plan, RelationSpec, Spec, cursor};
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
    column,
    relations: &[RelationSpec {
        name: "company",
        spec: &crate::companies::COMPANIES,
        foreign_key: "company_id",
    }],
    catalog_fields: contact::FIELDS,
    catalog_relations: contact::RELATIONS,
};

macro_rules! contact_columns {
    () => {
        "id, org_id, first_name, last_name, email, emails, phones, title, company_id, \
         lifecycle_stage, lifecycle_stage_changed_at, lead_source, owner_id, language, timezone, \
         address_street, address_city, address_region, address_postal_code, address_country, \
         consent_email, consent_email_at, consent_sms, consent_sms_at, consent_phone, consent_phone_at, \
         external_id, tags, custom, version, created_at, updated_at, created_by, deleted_at, \
         last_activity_at"
    };
}

const SELECT: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts where org_id = $1 and id = $2"
);
const SELECT_BY_IDS: &str = concat!(
    "select ",
    contact_columns!(),
    " from contacts t where t.org_id = "
);

// The data columns, in the order both statements bind them ($3 to $32).
const INSERT: &str = "insert into contacts (org_id, id, first_name, last_name, sort_name, email, \
     emails, phones, title, company_id, lifecycle_stage, lifecycle_stage_changed_at, lead_source, \
     owner_id, language, timezone, address_street, address_city, address_region, \
     address_postal_code, address_country, consent_email, consent_email_at, consent_sms, \
     consent_sms_at, consent_phone, consent_phone_at, external_id, tags, custom, search_own, \
     search_text, version, created_at, updated_at, created_by) values ($1, $2, $3, $4, $5, $6, $7, \
     $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, \
     $27, $28, $29, $30, $31, $32, 1, $33, $33, $34)";
const UPDATE: &str = "update contacts set first_name = $3, last_name = $4, sort_name = $5, \
     email = $6, emails = $7, phones = $8, title = $9, company_id = $10, lifecycle_stage = $11, \
     lifecycle_stage_changed_at = $12, lead_source = $13, owner_id = $14, language = $15, \
     timezone = $16, address_street = $17, address_city = $18, address_region = $19, \
     address_postal_code = $20, address_country = $21, consent_email = $22, consent_email_at = $23, \
     consent_sms = $24, consent_sms_at = $25, consent_phone = $26, consent_phone_at = $27, \
     external_id = $28, tags = $29, custom = $30, search_own = $31, search_text = $32, \
     version = version + 1, updated_at = $33 where org_id = $1 and id = $2";
const SOFT_DELETE: &str = "update contacts set deleted_at = $3, merged_into = $4, version = version + 1, \
     updated_at = $3 where org_id = $1 and id = $2";
const RESTORE: &str = "update contacts set deleted_at = null, version = version + 1, updated_at = $3 \
     where org_id = $1 and id = $2";
const COMPANY_NAME: &str =
    "select name from companies where org_id = $1 and id = $2 and deleted_at is null";
const EMAIL_OWNER: &str = "select id from contacts where org_id = $1 and lower(email) = lower($2) \
     and deleted_at is null and id <> $3 limit 1";
const EXTERNAL_ID_OWNER: &str =
    "select id from contacts where org_id = $1 and external_id = $2 and id <> $3 limit 1";
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

fn invalid(issues: Vec<FieldIssue>) -> StoreError {
    StoreError::Invalid(issues)
}

per_backend! {
    /// The checks of a write that need the database: references, custom values, unique
    /// emails and external ids. Returns the company's name (for the search text) and the
    /// checked custom values.
    pub(crate) async fn check_write(
        conn: &mut Conn,
        ctx: &AuthContext,
        id: Uuid,
        data: &ContactData,
        before: Option<&Contact>,
        custom_patch: &Map<String, Value>,
    ) -> Result<(Option<String>, Map<String, Value>), crate::error::DbError> {
        let mut issues = Vec::new();
        let company_name: Option<String> = match data.company_id {
            Some(company) => {
                let name: Option<String> = sqlx::query_scalar(COMPANY_NAME)
                    .bind(ctx.org_id)
                    .bind(company)
                    .fetch_optional(&mut *conn)
                    .await?;
                if name.is_none() {
                    issues.push(FieldIssue::new("company_id", "not_found", "names no live company of your organization"));
                }
                name
            }
            None => None,
        };
        if let Some(owner) = data.owner_id
            && before.and_then(|b| b.data.owner_id) != Some(owner)
            && !sql::is_active_user(conn, ctx.org_id, owner).await?
        {
            issues.push(FieldIssue::new("owner_id", "not_found", "names no active user of your organization"));
        }
        let definitions = sql::custom_fields(&mut *conn, ctx.org_id, ObjectType::Contact).await?;
        let empty = Map::new();
        let current = before.map_or(&empty, |b| &b.custom);
        let (custom, found) = custom_field::apply_all(&definitions, current, custom_patch);
        issues.extend(found);
        issues.extend(sql::check_unique_custom(conn, &CONTACTS, ctx.org_id, id, &definitions, &custom).await?);
        if let Some(external_id) = &data.external_id
            && before.and_then(|b| b.data.external_id.as_ref()) != Some(external_id)
        {
            let taken: Option<Uuid> = sqlx::query_scalar(EXTERNAL_ID_OWNER)
                .bind(ctx.org_id)
                .bind(external_id)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            if taken.is_some() && issues.is_empty() {
                return Err(StoreError::Conflict { field: Some("external_id".into()) }.into());
            }
        }
        if !issues.is_empty() {
            return Err(invalid(issues).into());
        }
        if let Some(email) = &data.email {
            let taken: Option<Uuid> = sqlx::query_scalar(EMAIL_OWNER)
                .bind(ctx.org_id)
                .bind(email)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(existing_id) = taken {
                return Err(StoreError::DuplicateEmail { existing_id }.into());
            }
        }
        Ok((company_name, custom))
    }

    /// Writes a contact's row (insert or update), keys and search index.
    pub(crate) async fn write_row(
        conn: &mut Conn,
        ctx: &AuthContext,
        id: Uuid,
        columns: &Columns<'_>,
        insert: bool,
        at: DateTime<Utc>,
    ) -> Result<(), crate::error::DbError> {
        if insert {
            bind_columns!(sqlx::query(INSERT).bind(ctx.org_id).bind(id), columns)
                .bind(at)
                .bind(ctx.user_id)
                .execute(&mut *conn)
                .await?;
        } else {
            bind_columns!(sqlx::query(UPDATE).bind(ctx.org_id).bind(id), columns)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        sql::replace_keys(conn, ctx.org_id, ObjectType::Contact, id, &columns.keys()).await?;
        sql::index_search(conn, &CONTACTS, id).await?;
        Ok(())
    }

    pub(crate) async fn load(conn: &mut Conn, org_id: Uuid, id: Uuid) -> Result<Contact, crate::error::DbError> {
        let row: ContactRow = sqlx::query_as(SELECT).bind(org_id).bind(id).fetch_one(&mut *conn).await?;
        Ok(Contact::try_from(row)?)
    }

    /// The live contacts among `ids` that the caller sees.
    pub(crate) async fn load_visible<'e>(
        executor: impl sqlx::Executor<'e, Database = Db>,
        ctx: &AuthContext,
        ids: &[Uuid],
    ) -> Result<Vec<Contact>, crate::error::DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut qb = sqlx::QueryBuilder::<Db>::new(SELECT_BY_IDS);
        qb.push_bind(ctx.org_id).push(" and t.deleted_at is null and t.id in (");
        let mut ids_list = qb.separated(", ");
        for id in ids {
            ids_list.push_bind(*id);
        }
        qb.push(")");
        sql::push_visibility(&mut qb, ctx, ObjectType::Contact);
        qb.push(" order by t.id");
        let rows: Vec<ContactRow> = qb.build_query_as().fetch_all(executor).await?;
        Ok(contacts(rows)?)
    }
}

#[async_trait]
impl ContactStore for SqlStore {
    #[tracing::instrument(skip_all, fields(org = %ctx.org_id))]
    async fn create(
        &self,
        ctx: &AuthContext,
        data: ContactData,
        custom: Map<String, Value>,
    ) -> Result<Contact, StoreError> {
        data.check().map_err(invalid)?;
        let id = Uuid::now_v7();
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let (company_name, custom) =
                sql::check_write(&mut tx, ctx, id, &data, None, &custom).await?;
            let stage_at = data.lifecycle_stage.map(|_| at);
            let columns = Columns::new(&data, &custom, company_name.as_deref(), stage_at);
            sql::write_row(&mut tx, ctx, id, &columns, true, at).await?;
            if data.lifecycle_stage.is_some() {
                sql::record_lifecycle(
                    &mut tx,
                    ctx,
                    ObjectType::Contact,
                    id,
                    None,
                    data.lifecycle_stage,
                    at,
                )
                .await?;
            }
            let contact = sql::load(&mut tx, ctx.org_id, id).await?;
            let changes = record::diff(&Map::new(), &contact.fields());
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Contact,
                    id,
                    action: EventAction::Created,
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

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, contact = %id))]
    async fn get(&self, ctx: &AuthContext, id: Uuid) -> Result<Contact, StoreError> {
        on_db!(&self.db, read, |pool, sql| {
            let found = sql::load_visible(pool, ctx, &[id]).await?;
            match found.into_iter().next() {
                Some(contact) => Ok(contact),
                None => Err(sql::missing(pool, &CONTACTS, ctx.org_id, id).await?.into()),
            }
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, contact = %id))]
    async fn update(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        patch: ContactPatch,
        expected_version: Option<i64>,
    ) -> Result<Contact, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            if !sql::lock_live(&mut tx, ctx, &CONTACTS, id).await? {
                return Err(sql::missing(&mut *tx, &CONTACTS, ctx.org_id, id)
                    .await?
                    .into());
            }
            let before = sql::load(&mut tx, ctx.org_id, id).await?;
            if let Some(expected) = expected_version
                && expected != before.version
            {
                return Err(StoreError::VersionMismatch {
                    current: before.version,
                }
                .into());
            }
            let data = before.data.apply(&patch, at);
            data.check().map_err(invalid)?;
            let custom_patch = patch.custom.clone().unwrap_or_default();
            let (company_name, custom) =
                sql::check_write(&mut tx, ctx, id, &data, Some(&before), &custom_patch).await?;
            let stage_changed = data.lifecycle_stage != before.data.lifecycle_stage;
            let stage_at = if stage_changed {
                data.lifecycle_stage.map(|_| at)
            } else {
                before.lifecycle_stage_changed_at
            };
            let after = Contact {
                data: data.clone(),
                custom: custom.clone(),
                ..before.clone()
            };
            let changes = record::diff(&before.fields(), &after.fields());
            if changes.is_empty() {
                // Nothing to write: no new version, no event.
                return Ok(before);
            }
            let columns = Columns::new(&data, &custom, company_name.as_deref(), stage_at);
            sql::write_row(&mut tx, ctx, id, &columns, false, at).await?;
            if stage_changed {
                sql::record_lifecycle(
                    &mut tx,
                    ctx,
                    ObjectType::Contact,
                    id,
                    before.data.lifecycle_stage,
                    data.lifecycle_stage,
                    at,
                )
                .await?;
            }
            let contact = sql::load(&mut tx, ctx.org_id, id).await?;
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Contact,
                    id,
                    action: EventAction::Updated,
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

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, contact = %id))]
    async fn delete(
        &self,
        ctx: &AuthContext,
        id: Uuid,
        expected_version: Option<i64>,
    ) -> Result<(), StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            if !sql::lock_live(&mut tx, ctx, &CONTACTS, id).await? {
                return Err(sql::missing(&mut *tx, &CONTACTS, ctx.org_id, id)
                    .await?
                    .into());
            }
            let before = sql::load(&mut tx, ctx.org_id, id).await?;
            if let Some(expected) = expected_version
                && expected != before.version
            {
                return Err(StoreError::VersionMismatch {
                    current: before.version,
                }
                .into());
            }
            sqlx::query(SOFT_DELETE)
                .bind(ctx.org_id)
                .bind(id)
                .bind(at)
                .bind(None::<Uuid>)
                .execute(&mut *tx)
                .await?;
            let changes = deleted_changes(None, Some(at));
            sql::append_events(
                &mut tx,
                ctx,
                &[NewEvent {
                    object: ObjectType::Contact,
                    id,
                    action: EventAction::Deleted,
                    changes: &changes,
                    merged_ids: &[],
                }],
                at,
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    #[tracing::instrument(skip_all, fields(org = %ctx.org_id, contact = %id))]
    async fn restore(&self, ctx: &AuthContext, id: Uuid) -> Result<Contact, StoreError> {
        let at = now();
        on_db!(&self.db, write, |pool, sql| {
            let mut tx = pool.begin().await?;
            let current: Option<ContactRow> = sqlx::query_as(SELECT)
                .bind(ctx.org_id)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(current) = current else {
                return Err(StoreError::NotFound.into());
            };
            let merged_into: Option<Option<Uuid>> =
                sqlx::query_scalar("select merged_into from contacts where id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(into) = merged_into.flatten() {
                return Err(StoreError::Merged { into }.into());
            }
            let current = Contact::try_from(current)?;
            if !sql::is_visible(&mut *tx, ctx, &CONTACTS, id).await? {
                return Err(StoreError::NotFound.into());
            }
            if current.deleted_at.is_none() {
                // Restoring a live contact changes nothing.
                return Ok(current);
            }
            if let Some(email) = &current.data.email {
                let taken: Option<Uuid> = sqlx::query_scalar(EMAIL_OWNER)
                    .bind(ctx.org_id)
                    .bind(email)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(existing_id) = taken {
                    return Err(StoreError::DuplicateEmail { existing_id }.into());
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
                    sql::push_filter(qb, filter, &CONTACTS, "t", false);
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
                return Err(sql::missing(pool, &CONTACTS, ctx.org_id, id).await?.into());
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
                    return Err(sql::missing(&mut *tx, &CONTACTS, ctx.org_id, *id)
                        .await?
                        .into());
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
            let (company_name, custom) = sql::check_write(
                &mut tx,
                ctx,
                primary,
                &data,
                Some(&target),
                &custom_patch_of(&target.custom, &custom),
            )
            .await?;
            let stage_changed = data.lifecycle_stage != target.data.lifecycle_stage;
            let stage_at = if stage_changed {
                Some(at)
            } else {
                target.lifecycle_stage_changed_at
            };
            let columns = Columns::new(&data, &custom, company_name.as_deref(), stage_at);
            sql::write_row(&mut tx, ctx, primary, &columns, false, at).await?;
            if stage_changed {
                sql::record_lifecycle(
                    &mut tx,
                    ctx,
                    ObjectType::Contact,
                    primary,
                    target.data.lifecycle_stage,
                    data.lifecycle_stage,
                    at,
                )
                .await?;
            }
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
const CONTACT_REFERENCES: &[(&str, &str)] = &[];

/// The custom patch that turns `current` into `wanted`.
pub(crate) fn custom_patch_of(
    current: &Map<String, Value>,
    wanted: &Map<String, Value>,
) -> Map<String, Value> {
    let mut patch = Map::new();
    for (key, value) in wanted {
        if current.get(key) != Some(value) {
            patch.insert(key.clone(), value.clone());
        }
    }
    for key in current.keys() {
        if !wanted.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    patch
}

pub(crate) fn check_merge_ids(primary: Uuid, duplicates: &[Uuid]) -> Result<(), StoreError> {
    let mut issues = Vec::new();
    if duplicates.is_empty() || duplicates.len() > MAX_MERGE_DUPLICATES {
        issues.push(FieldIssue::new(
            "duplicate_ids",
            "invalid_value",
            format!("must name 1 to {MAX_MERGE_DUPLICATES} records"),
        ));
    }
    if duplicates.contains(&primary) {
        issues.push(FieldIssue::new(
            "duplicate_ids",
            "invalid_value",
            "must not include primary_id",
        ));
    }
    let mut sorted = duplicates.to_vec();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != duplicates.len() {
        issues.push(FieldIssue::new(
            "duplicate_ids",
            "invalid_value",
            "lists a record twice",
        ));
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(issues))
    }
}

pub(crate) fn deleted_changes(
    old: Option<DateTime<Utc>>,
    new: Option<DateTime<Utc>>,
) -> record::Changes {
    let time = |t: Option<DateTime<Utc>>| {
        t.map_or(Value::Null, |t| {
            Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        })
    };
    record::Changes::from([(
        "deleted_at".to_owned(),
        record::Change {
            old: time(old),
            new: time(new),
        },
    )])
}
