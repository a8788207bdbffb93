-- Customer data: companies and contacts, custom field definitions, the event log (history,
-- change feed, webhooks), lifecycle stage changes, and the keys (tags, emails, phones,
-- domains) that filters and duplicate detection look up.

-- The event log. Sequence numbers are gapless per organization and taken at the end of each
-- writing transaction from event_sequences, so they are in commit order.
create table event_sequences (
    org_id   blob primary key references organizations (id),
    last_seq integer not null
);
insert into event_sequences (org_id, last_seq) select id, 0 from organizations;

create table events (
    org_id      blob not null references organizations (id),
    seq         integer not null,
    object_type text not null,
    object_id   blob not null,
    action      text not null,             -- created | updated | deleted | restored | merged
    changes     text not null,             -- JSON: {"field": {"old": …, "new": …}}
    merged_ids  text,                      -- JSON array, for merged
    actor_id    blob,
    api_key_id  blob,
    occurred_at text not null,
    primary key (org_id, seq)
);
create index events_object on events (org_id, object_type, object_id, seq);

create table custom_fields (
    id         blob primary key,
    org_id     blob not null references organizations (id),
    object     text not null,              -- contact | company | …
    key        text not null,
    label      text not null,
    field_type text not null,
    options    text not null,              -- JSON array
    required   integer not null,
    is_unique  integer not null,
    version    integer not null,
    created_at text not null,
    updated_at text not null
);
create unique index custom_fields_key on custom_fields (org_id, object, key);

-- rid is SQLite's rowid made explicit so that it survives VACUUM: the search index points at it.
create table companies (
    rid                        integer primary key,
    id                         blob not null unique,
    org_id                     blob not null references organizations (id),
    name                       text not null,
    sort_name                  text not null,   -- lower(name)
    domain                     text,
    industry                   text,
    employee_count             integer,
    annual_revenue_minor       integer,
    currency                   text,
    phone                      text,
    phone_e164                 text,
    website                    text,
    address_street             text,
    address_city               text,
    address_region             text,
    address_postal_code        text,
    address_country            text,
    parent_company_id          blob references companies (id),
    tier                       text,
    lifecycle_stage            text,
    lifecycle_stage_changed_at text,
    owner_id                   blob references users (id),
    source                     text,
    external_id                text,
    tags                       text not null,   -- JSON array
    custom                     text not null,   -- JSON object
    search_text                text not null,   -- lower case: name, domain, phone
    version                    integer not null,
    created_at                 text not null,
    updated_at                 text not null,
    created_by                 blob,
    deleted_at                 text,
    merged_into                blob,
    last_activity_at           text
);
create unique index companies_external_id on companies (org_id, external_id) where external_id is not null;
create index companies_created on companies (org_id, created_at, id);
create index companies_updated on companies (org_id, updated_at, id);
create index companies_name on companies (org_id, sort_name, id);
create index companies_activity on companies (org_id, last_activity_at, id);
create index companies_owner on companies (org_id, owner_id);
create index companies_parent on companies (org_id, parent_company_id);
create virtual table company_search using fts5 (text, tokenize = 'trigram');

create table contacts (
    rid                        integer primary key,
    id                         blob not null unique,
    org_id                     blob not null references organizations (id),
    first_name                 text,
    last_name                  text,
    sort_name                  text not null,   -- lower-case display name
    email                      text,
    emails                     text not null,   -- JSON array of additional emails
    phones                     text not null,   -- JSON array of {number, kind, e164}
    title                      text,
    company_id                 blob references companies (id),
    lifecycle_stage            text,
    lifecycle_stage_changed_at text,
    lead_source                text,
    owner_id                   blob references users (id),
    language                   text,
    timezone                   text,
    address_street             text,
    address_city               text,
    address_region             text,
    address_postal_code        text,
    address_country            text,
    consent_email              text not null,
    consent_email_at           text,
    consent_sms                text not null,
    consent_sms_at             text,
    consent_phone              text not null,
    consent_phone_at           text,
    external_id                text,
    tags                       text not null,   -- JSON array
    custom                     text not null,   -- JSON object
    search_own                 text not null,   -- lower case: names, emails, phones
    search_text                text not null,   -- search_own and the company's name
    version                    integer not null,
    created_at                 text not null,
    updated_at                 text not null,
    created_by                 blob,
    deleted_at                 text,
    merged_into                blob,
    last_activity_at           text
);
-- A primary email belongs to one live contact of an organization.
create unique index contacts_email on contacts (org_id, lower(email)) where deleted_at is null and email is not null;
create unique index contacts_external_id on contacts (org_id, external_id) where external_id is not null;
create index contacts_created on contacts (org_id, created_at, id);
create index contacts_updated on contacts (org_id, updated_at, id);
create index contacts_name on contacts (org_id, sort_name, id);
create index contacts_activity on contacts (org_id, last_activity_at, id);
create index contacts_company on contacts (org_id, company_id);
create index contacts_owner on contacts (org_id, owner_id);
create virtual table contact_search using fts5 (text, tokenize = 'trigram');

-- Keys looked up across records: tag, email (lower case), phone (E.164), domain.
create table record_keys (
    org_id      blob not null references organizations (id),
    object_type text not null,
    object_id   blob not null,
    kind        text not null,
    value       text not null
);
create index record_keys_lookup on record_keys (org_id, object_type, kind, value);
create index record_keys_object on record_keys (object_id);

-- Every lifecycle stage change with its time, for lifecycle analytics.
create table lifecycle_changes (
    org_id      blob not null references organizations (id),
    object_type text not null,
    object_id   blob not null,
    from_stage  text,
    to_stage    text,
    changed_at  text not null,
    actor_id    blob
);
create index lifecycle_changes_org on lifecycle_changes (org_id, object_type, changed_at);
create index lifecycle_changes_object on lifecycle_changes (object_id, changed_at);
