-- Integration: products and orders (purchase history) with purchase aggregates on contacts
-- and companies; the change feed's time index; idempotency keys; webhooks with their deliveries and
-- attempts; import jobs.

create table products (
    rid              integer primary key,
    id               blob not null unique,
    org_id           blob not null references organizations (id),
    sku              text not null,
    name             text not null,
    sort_name        text not null,
    description      text,
    category         text,
    unit_price_minor integer,
    currency         text,
    warranty_months  integer,
    active           integer not null,
    external_id      text,
    custom           text not null,
    search_text      text not null,          -- lower case: sku, name, category
    version          integer not null,
    created_at       text not null,
    updated_at       text not null,
    created_by       blob,
    deleted_at       text,
    merged_into      blob
);
create unique index products_sku on products (org_id, sku) where deleted_at is null;
create unique index products_external_id on products (org_id, external_id) where external_id is not null;
create index products_created on products (org_id, created_at, id);
create index products_updated on products (org_id, updated_at, id);
create index products_name on products (org_id, sort_name, id);
create virtual table product_search using fts5 (text, tokenize = 'trigram');

create table orders (
    rid          integer primary key,
    id           blob not null unique,
    org_id       blob not null references organizations (id),
    number       text,
    external_id  text,
    contact_id   blob references contacts (id),
    company_id   blob references companies (id),
    status       text not null,              -- pending | paid | fulfilled | cancelled | refunded
    ordered_at   text not null,
    currency     text not null,
    total_minor  integer not null,
    lines        text not null,              -- JSON: [{product_id, sku, name, quantity, unit_price_minor, discount_minor, total_minor}]
    custom       text not null,
    search_text  text not null,              -- lower case: number, external id
    version      integer not null,
    created_at   text not null,
    updated_at   text not null,
    created_by   blob,
    deleted_at   text,
    merged_into  blob
);
create unique index orders_number on orders (org_id, number) where number is not null and deleted_at is null;
create unique index orders_external_id on orders (org_id, external_id) where external_id is not null;
create index orders_created on orders (org_id, created_at, id);
create index orders_updated on orders (org_id, updated_at, id);
create index orders_ordered on orders (org_id, ordered_at, id);
create index orders_contact on orders (org_id, contact_id, ordered_at);
create index orders_company on orders (org_id, company_id, ordered_at);
create virtual table order_search using fts5 (text, tokenize = 'trigram');

-- Purchases (orders paid or fulfilled), kept current as orders change.
alter table contacts add column first_order_at text;
alter table contacts add column last_order_at text;
alter table contacts add column order_count integer not null default 0;
alter table contacts add column revenue_minor integer not null default 0;
alter table companies add column first_order_at text;
alter table companies add column last_order_at text;
alter table companies add column order_count integer not null default 0;
alter table companies add column revenue_minor integer not null default 0;

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
    org_id           blob not null references organizations (id),
    request_hash     text not null,
    locked_at        text not null,
    committed_at     text,
    committed_events text,                   -- JSON: [{object, id, action}] of a committed attempt
    response_status  integer,
    response_headers text,                   -- JSON object
    response_body    blob,
    created_at       text not null,
    expires_at       text not null,
    primary key (credential, key)
);
create index idempotency_keys_expiry on idempotency_keys (expires_at);

create table webhooks (
    id              blob primary key,
    org_id          blob not null references organizations (id),
    url             text not null,
    events          text not null,          -- JSON array: "contact.created", "contact.*", "*"
    description     text,
    active          integer not null,
    secret          text not null,          -- the HMAC key; Rapport must know it to sign
    disabled_reason text,
    last_seq        integer not null,       -- the event log position dispatched so far
    version         integer not null,
    created_at      text not null,
    updated_at      text not null,
    created_by      blob
);
create index webhooks_org on webhooks (org_id, id);

create table webhook_deliveries (
    id              blob primary key,
    org_id          blob not null references organizations (id),
    webhook_id      blob not null references webhooks (id),
    event_seq       integer not null,
    event_type      text not null,          -- contact.created
    object_type     text not null,
    object_id       blob not null,
    status          text not null,          -- pending | sending | succeeded | failed
    attempts        integer not null,
    next_attempt_at text not null,
    lease_until     text,
    last_status     integer,
    last_error      text,
    created_at      text not null,
    updated_at      text not null
);
create index webhook_deliveries_due on webhook_deliveries (status, next_attempt_at);
create index webhook_deliveries_webhook on webhook_deliveries (webhook_id, id);
-- One delivery per event and webhook, whichever process dispatches.
create unique index webhook_deliveries_event on webhook_deliveries (webhook_id, event_seq);
create index webhook_deliveries_record on webhook_deliveries (webhook_id, object_id, event_seq);

create table webhook_attempts (
    id              blob primary key,
    org_id          blob not null references organizations (id),
    delivery_id     blob not null references webhook_deliveries (id),
    attempted_at    text not null,
    response_status integer,
    latency_ms      integer not null,
    error           text
);
create index webhook_attempts_delivery on webhook_attempts (delivery_id, attempted_at);

create table imports (
    id           blob primary key,
    org_id       blob not null references organizations (id),
    object       text not null,
    id_property  text,                      -- null: every row creates a record
    mapping      text not null,             -- JSON: {"CSV header": "field"}
    file_name    text,
    status       text not null,             -- queued | running | completed | failed
    total        integer not null,
    processed    integer not null,
    created      integer not null,
    updated      integer not null,
    unchanged    integer not null,
    failed       integer not null,
    content      blob not null,             -- the CSV, kept until the job ends
    user_id      blob not null references users (id),
    api_key_id   blob,
    error        text,
    lease_until  text,
    created_at   text not null,
    updated_at   text not null,
    finished_at  text
);
create index imports_org on imports (org_id, id);
create index imports_due on imports (status, lease_until);

create table import_errors (
    import_id blob not null references imports (id),
    org_id    blob not null references organizations (id),
    row       integer not null,               -- the record's number in the file, from 1
    line      integer not null,               -- the line it starts on (the header is line 1)
    field     text,
    code      text not null,
    message   text not null
);
create index import_errors_import on import_errors (import_id, row);
