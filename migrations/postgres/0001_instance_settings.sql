-- Installation-wide settings that belong to no organization: the generated JWT signing key.
-- The only table without org_id, because it is not tenant data.
create table instance_settings (
    name       text primary key,
    value      text not null,
    created_at timestamptz not null
);
