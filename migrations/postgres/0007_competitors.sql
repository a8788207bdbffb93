-- Competitors: the first object served by the engine from its declaration alone
-- (crates/domain/src/objects/competitor.rs). The engine's table layout: one column per
-- declared field, named as the field; a lower-case `<field>_sort` beside each sortable text
-- field; tags as a JSON array (their keys in record_keys for filters); and the columns every
-- record has.

create table competitors (
    id          uuid primary key,
    org_id      uuid not null references organizations (id),
    external_id text,
    name        text not null,
    name_sort   text not null,
    website     text,
    strengths   text,
    weaknesses  text,
    notes       text,
    tags        jsonb not null,
    custom      jsonb not null,
    search_text text not null,
    version     bigint not null,
    created_at  timestamptz not null,
    updated_at  timestamptz not null,
    created_by  uuid,
    deleted_at  timestamptz,
    merged_into uuid
);
create unique index competitors_external_id on competitors (org_id, external_id) where external_id is not null;
create index competitors_created on competitors (org_id, created_at, id);
create index competitors_updated on competitors (org_id, updated_at, id);
create index competitors_name on competitors (org_id, name_sort, id);
create index competitors_search on competitors using gin (search_text gin_trgm_ops);
