-- Customer data: companies and contacts, custom field definitions, the event log (history,
-- change feed, webhooks), lifecycle stage changes, and the keys (tags, emails, phones,
-- domains) that filters and duplicate detection look up.

-- Trigram indexes make substring search (q) fast.
create extension if not exists pg_trgm;

-- The event log. Sequence numbers are gapless per organization and taken at the end of each
-- writing transaction from event_sequences (whose row lock orders the organization's writers),
-- so they are in commit order even when transactions commit out of order.
create table event_sequences (
    org_id   uuid primary key references organizations (id),
    last_seq bigint not null
);
insert into event_sequences (org_id, last_seq) select id, 0 from organizations;

create table events (
    org_id      uuid not null references organizations (id),
    seq         bigint not null,
    object_type text not null,
    object_id   uuid not null,
    action      text not null,             -- created | updated | deleted | restored | merged
    changes     jsonb not null,            -- {"field": {"old": …, "new": …}}
    merged_ids  jsonb,                     -- for merged
    actor_id    uuid,
    api_key_id  uuid,
    occurred_at timestamptz not null,
    primary key (org_id, seq)
);
create index events_object on events (org_id, object_type, object_id, seq);

create table custom_fields (
    id         uuid primary key,
    org_id     uuid not null references organizations (id),
    object     text not null,              -- contact | company | …
    key        text not null,
    label      text not null,
    field_type text not null,
    options    jsonb not null,
    required   boolean not null,
    is_unique  boolean not null,
    version    bigint not null,
    created_at timestamptz not null,
    updated_at timestamptz not null
);
create unique index custom_fields_key on custom_fields (org_id, object, key);

create table companies (
    id                         uuid primary key,
    org_id                     uuid not null references organizations (id),
    name                       text not null,
    sort_name                  text not null,   -- lower(name)
    domain                     text,
    industry                   text,
    employee_count             bigint,
    annual_revenue_minor       bigint,
    currency                   text,
    phone                      text,
    phone_e164                 text,
    website                    text,
    address_street             text,
    address_city               text,
    address_region             text,
    address_postal_code        text,
    address_country            text,
    parent_company_id          uuid references companies (id),
    tier                       text,
    lifecycle_stage            text,
    lifecycle_stage_changed_at timestamptz,
    owner_id                   uuid references users (id),
    source                     text,
    external_id                text,
    tags                       jsonb not null,
    custom                     jsonb not null,
    search_text                text not null,   -- lower case: name, domain, phone
    version                    bigint not null,
    created_at                 timestamptz not null,
    updated_at                 timestamptz not null,
    created_by                 uuid,
    deleted_at                 timestamptz,
    merged_into                uuid,
    last_activity_at           timestamptz
);
create unique index companies_external_id on companies (org_id, external_id) where external_id is not null;
create index companies_created on companies (org_id, created_at, id);
create index companies_updated on companies (org_id, updated_at, id);
create index companies_name on companies (org_id, sort_name, id);
create index companies_activity on companies (org_id, last_activity_at, id);
create index companies_owner on companies (org_id, owner_id);
create index companies_parent on companies (org_id, parent_company_id);
create index companies_search on companies using gin (search_text gin_trgm_ops);
create index companies_custom on companies using gin (custom jsonb_path_ops);

create table contacts (
    id                         uuid primary key,
    org_id                     uuid not null references organizations (id),
    first_name                 text,
    last_name                  text,
    sort_name                  text not null,   -- lower-case display name
    email                      text,
    emails                     jsonb not null,  -- additional emails
    phones                     jsonb not null,  -- [{number, kind, e164}]
    title                      text,
    company_id                 uuid references companies (id),
    lifecycle_stage            text,
    lifecycle_stage_changed_at timestamptz,
    lead_source                text,
    owner_id                   uuid references users (id),
    language                   text,
    timezone                   text,
    address_street             text,
    address_city               text,
    address_region             text,
    address_postal_code        text,
    address_country            text,
    consent_email              text not null,
    consent_email_at           timestamptz,
    consent_sms                text not null,
    consent_sms_at             timestamptz,
    consent_phone              text not null,
    consent_phone_at           timestamptz,
    external_id                text,
    tags                       jsonb not null,
    custom                     jsonb not null,
    search_own                 text not null,   -- lower case: names, emails, phones
    search_text                text not null,   -- search_own and the company's name
    version                    bigint not null,
    created_at                 timestamptz not null,
    updated_at                 timestamptz not null,
    created_by                 uuid,
    deleted_at                 timestamptz,
    merged_into                uuid,
    last_activity_at           timestamptz
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
create index contacts_search on contacts using gin (search_text gin_trgm_ops);
create index contacts_custom on contacts using gin (custom jsonb_path_ops);

-- Keys looked up across records: tag, email (lower case), phone (E.164), domain.
create table record_keys (
    org_id      uuid not null references organizations (id),
    object_type text not null,
    object_id   uuid not null,
    kind        text not null,
    value       text not null
);
create index record_keys_lookup on record_keys (org_id, object_type, kind, value);
create index record_keys_object on record_keys (object_id);

-- Every lifecycle stage change with its time, for lifecycle analytics.
create table lifecycle_changes (
    org_id      uuid not null references organizations (id),
    object_type text not null,
    object_id   uuid not null,
    from_stage  text,
    to_stage    text,
    changed_at  timestamptz not null,
    actor_id    uuid
);
create index lifecycle_changes_org on lifecycle_changes (org_id, object_type, changed_at);
create index lifecycle_changes_object on lifecycle_changes (object_id, changed_at);
