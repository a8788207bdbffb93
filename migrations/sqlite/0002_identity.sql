-- Identity and access: organizations (tenants), users, teams, sessions with rotating refresh
-- tokens, API keys, failed sign-ins and the audit log. Ids are UUIDv7 made in Rust (stored as
-- 16-byte blobs), times RFC 3339 text made in Rust, JSON as text.

create table organizations (
    id         blob primary key,
    name       text not null,
    settings   text not null,            -- JSON: record_visibility, default_phone_region
    version    integer not null,
    created_at text not null,
    updated_at text not null
);

create table users (
    id            blob primary key,
    org_id        blob not null references organizations (id),
    email         text not null,
    name          text not null,
    role          text not null,         -- owner | admin | manager | sales | support | marketing | viewer
    team_id       blob references teams (id) on delete set null,
    active        integer not null,
    locale        text,
    timezone      text,
    password_hash text not null,         -- argon2id PHC string
    last_login_at text,
    version       integer not null,
    created_at    text not null,
    updated_at    text not null
);
-- Emails are unique across the installation, compared case-insensitively.
create unique index users_email on users (lower(email));
create index users_org on users (org_id, id);
create index users_team on users (org_id, team_id);

create table teams (
    id         blob primary key,
    org_id     blob not null references organizations (id),
    name       text not null,
    manager_id blob references users (id),
    version    integer not null,
    created_at text not null,
    updated_at text not null
);
create unique index teams_name on teams (org_id, lower(name));
create index teams_org on teams (org_id, id);
create index teams_manager on teams (org_id, manager_id);

-- A session is a family of refresh tokens: reusing a rotated token revokes the family.
create table sessions (
    id           blob primary key,
    org_id       blob not null references organizations (id),
    user_id      blob not null references users (id),
    created_at   text not null,
    refreshed_at text not null,
    revoked_at   text,
    ip           text,
    user_agent   text
);
create index sessions_user on sessions (org_id, user_id);

create table refresh_tokens (
    token_hash text primary key,         -- SHA-256 of the token; the token itself is never stored
    org_id     blob not null references organizations (id),
    session_id blob not null references sessions (id),
    issued_at  text not null,
    expires_at text not null,
    used_at    text                      -- set when rotated
);
create index refresh_tokens_session on refresh_tokens (session_id);

create table api_keys (
    id           blob primary key,
    org_id       blob not null references organizations (id),
    user_id      blob not null references users (id),
    name         text not null,
    prefix       text not null,          -- rpk_ and 8 characters, to recognise the key
    secret_hash  text not null unique,   -- SHA-256 of the key
    scopes       text not null,          -- JSON array: "*", "read", "contact:read", …
    expires_at   text,
    last_used_at text,
    revoked_at   text,
    created_at   text not null
);
create index api_keys_org on api_keys (org_id, id);
create index api_keys_user on api_keys (org_id, user_id);

-- Failed sign-ins per email (lowercased), whatever the organization or whether the email is
-- known: the throttle counts them. No org_id: an unknown email belongs to no organization.
create table login_failures (
    email     text not null,
    failed_at text not null
);
create index login_failures_email on login_failures (email, failed_at);

create table audit_log (
    id          blob primary key,
    org_id      blob not null references organizations (id),
    occurred_at text not null,
    action      text not null,
    actor_id    blob,
    api_key_id  blob,
    target_type text,
    target_id   blob,
    ip          text,
    details     text not null            -- JSON
);
create index audit_log_org on audit_log (org_id, occurred_at, id);
create index audit_log_actor on audit_log (org_id, actor_id, occurred_at);
