-- Integration (PostgreSQL): products and orders (purchase history) with purchase aggregates on contacts
-- and companies; the change feed's time index; idempotency keys; webhooks with their deliveries and
-- attempts; import jobs.

create table products (
    id               uuid primary key,
    org_id           uuid not null references organizations (id),
    sku              text not null,
    name             text not null,
    sort_name        text not null,
    description      text,
    category         text,
    unit_price_minor bigint,
    currency         text,
    warranty_months  bigint,
    active           boolean not null,
    external_id      text,
    custom           jsonb not null,
    search_text      text not null,          -- lower case: sku, name, category
    version          bigint not null,
    created_at       timestamptz not null,
    updated_at       timestamptz not null,
    created_by       uuid,
    deleted_at       timestamptz,
    merged_into      uuid
);
create unique index products_sku on products (org_id, sku) where deleted_at is null;
create unique index products_external_id on products (org_id, external_id) where external_id is not null;
create index products_created on products (org_id, created_at, id);
create index products_updated on products (org_id, updated_at, id);
create index products_name on products (org_id, sort_name, id);
create index products_search on products using gin (search_text gin_trgm_ops);

create table orders (
    id           uuid primary key,
    org_id       uuid not null references organizations (id),
    number       text,
    external_id  text,
    contact_id   uuid references contacts (id),
    company_id   uuid references companies (id),
    status       text not null,              -- pending | paid | fulfilled | cancelled | refunded
    ordered_at   timestamptz not null,
    currency     text not null,
    total_minor  bigint not null,
    lines        jsonb not null,              -- JSON: [{product_id, sku, name, quantity, unit_price_minor, discount_minor, total_minor}]
    custom       jsonb not null,
    search_text  text not null,              -- lower case: number, external id
    version      bigint not null,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    created_by   uuid,
    deleted_at   timestamptz,
    merged_into  uuid
);
create unique index orders_number on orders (org_id, number) where number is not null and deleted_at is null;
create unique index orders_external_id on orders (org_id, external_id) where external_id is not null;
create index orders_created on orders (org_id, created_at, id);
create index orders_updated on orders (org_id, updated_at, id);
create index orders_ordered on orders (org_id, ordered_at, id);
create index orders_contact on orders (org_id, contact_id, ordered_at);
create index orders_company on orders (org_id, company_id, ordered_at);
create index orders_search on orders using gin (search_text gin_trgm_ops);

-- Purchases (orders paid or fulfilled), kept current as orders change.
alter table contacts add column first_order_at timestamptz;
alter table contacts add column last_order_at timestamptz;
alter table contacts add column order_count bigint not null default 0;
alter table contacts add column revenue_minor bigint not null default 0;
alter table companies add column first_order_at timestamptz;
alter table companies add column last_order_at timestamptz;
alter table companies add column order_count bigint not null default 0;
alter table companies add column revenue_minor bigint not null default 0;

-- Keys are replaced per record of one organization: one index serves both conditions, so
-- that the plan stays right while a bulk import outruns the table statistics.
drop index record_keys_object;
create index record_keys_object on record_keys (org_id, object_id);

-- The change feed serves the events of the last RAPPORT_CHANGE_RETENTION_DAYS days: it finds
-- where that window starts by time.
create index events_time on events (org_id, occurred_at);

-- Idempotency keys, per credential. committed_at is written inside the business transaction,
-- so a retry after a crash knows whether the first attempt's writes happened.
create table idempotency_keys (
    credential       text not null,           -- key:<api key id> or user:<user id>
    key              text not null,
    org_id           uuid not null references organizations (id),
    request_hash     text not null,
    locked_at        timestamptz not null,
    committed_at     timestamptz,
    committed_events jsonb,                   -- JSON: [{object, id, action}] of a committed attempt
    response_status  bigint,
    response_headers jsonb,                   -- JSON object
    response_body    bytea,
    created_at       timestamptz not null,
    expires_at       timestamptz not null,
    primary key (credential, key)
);
create index idempotency_keys_expiry on idempotency_keys (expires_at);

create table webhooks (
    id              uuid primary key,
    org_id          uuid not null references organizations (id),
    url             text not null,
    events          jsonb not null,          -- JSON array: "contact.created", "contact.*", "*"
    description     text,
    active          boolean not null,
    secret          text not null,          -- the HMAC key; Rapport must know it to sign
    disabled_reason text,
    last_seq        bigint not null,       -- the event log position dispatched so far
    version         bigint not null,
    created_at      timestamptz not null,
    updated_at      timestamptz not null,
    created_by      uuid
);
create index webhooks_org on webhooks (org_id, id);

create table webhook_deliveries (
    id              uuid primary key,
    org_id          uuid not null references organizations (id),
    webhook_id      uuid not null references webhooks (id),
    event_seq       bigint not null,
    event_type      text not null,          -- contact.created
    object_type     text not null,
    object_id       uuid not null,
    status          text not null,          -- pending | sending | succeeded | failed
    attempts        bigint not null,
    next_attempt_at timestamptz not null,
    lease_until     timestamptz,
    last_status     bigint,
    last_error      text,
    created_at      timestamptz not null,
    updated_at      timestamptz not null
);
create index webhook_deliveries_due on webhook_deliveries (status, next_attempt_at);
create index webhook_deliveries_webhook on webhook_deliveries (webhook_id, id);
-- One delivery per event and webhook, whichever process dispatches.
create unique index webhook_deliveries_event on webhook_deliveries (webhook_id, event_seq);
create index webhook_deliveries_record on webhook_deliveries (webhook_id, object_id, event_seq);

create table webhook_attempts (
    id              uuid primary key,
    org_id          uuid not null references organizations (id),
    delivery_id     uuid not null references webhook_deliveries (id),
    attempted_at    timestamptz not null,
    response_status bigint,
    latency_ms      bigint not null,
    error           text
);
create index webhook_attempts_delivery on webhook_attempts (delivery_id, attempted_at);

create table imports (
    id           uuid primary key,
    org_id       uuid not null references organizations (id),
    object       text not null,
    id_property  text,                      -- null: every row creates a record
    mapping      jsonb not null,             -- JSON: {"CSV header": "field"}
    file_name    text,
    status       text not null,             -- queued | running | completed | failed
    total        bigint not null,
    processed    bigint not null,
    created      bigint not null,
    updated      bigint not null,
    unchanged    bigint not null,
    failed       bigint not null,
    content      bytea not null,             -- the CSV, kept until the job ends
    user_id      uuid not null references users (id),
    api_key_id   uuid,
    error        text,
    lease_until  timestamptz,
    created_at   timestamptz not null,
    updated_at   timestamptz not null,
    finished_at  timestamptz
);
create index imports_org on imports (org_id, id);
create index imports_due on imports (status, lease_until);

create table import_errors (
    import_id uuid not null references imports (id),
    org_id    uuid not null references organizations (id),
    row       bigint not null,               -- the record's number in the file, from 1
    line      bigint not null,               -- the line it starts on (the header is line 1)
    field     text,
    code      text not null,
    message   text not null
);
create index import_errors_import on import_errors (import_id, row);
