-- Competitors: the first object served by the engine from its declaration alone
-- (crates/domain/src/objects/competitor.rs). The engine's table layout: one column per
-- declared field, named as the field; a lower-case `<field>_sort` beside each sortable text
-- field; tags as a JSON array (their keys in record_keys for filters); the columns every
-- record has; and the FTS5 table `<table>_search` for `q`.

create table competitors (
    rid         integer primary key,
    id          blob not null unique,
    org_id      blob not null references organizations (id),
    external_id text,
    name        text not null,
    name_sort   text not null,
    website     text,
    strengths   text,
    weaknesses  text,
    notes       text,
    tags        text not null,
    custom      text not null,
    search_text text not null,
    version     integer not null,
    created_at  text not null,
    updated_at  text not null,
    created_by  blob,
    deleted_at  text,
    merged_into blob
);
create unique index competitors_external_id on competitors (org_id, external_id) where external_id is not null;
create index competitors_created on competitors (org_id, created_at, id);
create index competitors_updated on competitors (org_id, updated_at, id);
create index competitors_name on competitors (org_id, name_sort, id);
create virtual table competitors_search using fts5 (text, tokenize = 'trigram');
