-- identities (postgres): a person's login is global, their membership of an organization is
-- a user. Until now a user row was both, so an email could be in one organization only:
-- another organization's address answered 409 (enumeration), and anyone could take a victim's
-- address in their own organization first. Every existing user becomes an identity with the
-- user's own id, email and password hash, so every sign-in keeps working; new members join by
-- invitation.

create table identities (
    id            uuid primary key,
    email         text not null,
    password_hash text not null,         -- argon2id PHC string
    created_at    timestamptz not null,
    updated_at    timestamptz not null
);
-- One login per address across the installation, compared case-insensitively.
create unique index identities_email on identities (lower(email));

insert into identities (id, email, password_hash, created_at, updated_at)
    select id, email, password_hash, created_at, updated_at from users;

alter table users add column identity_id uuid references identities (id);
update users set identity_id = id;
alter table users alter column identity_id set not null;
-- users.email stays as the identity's address (which never changes), for lists and filters.
drop index users_email;
create unique index users_org_email on users (org_id, lower(email));
create unique index users_identity on users (identity_id, org_id);
alter table users drop column password_hash;

-- An invitation to join an organization: the token is shown once to whoever invited and
-- kept only as its hash; accepting it makes the membership (and the identity, for an address
-- nobody has yet), with the invitee's own password.
create table invitations (
    id          uuid primary key,
    org_id      uuid not null references organizations (id),
    email       text not null,
    name        text,
    role        text not null,
    team_id     uuid references teams (id) on delete set null,
    token_hash  text not null unique,    -- SHA-256 of the token
    invited_by  uuid not null references users (id),
    expires_at  timestamptz not null,
    accepted_at timestamptz,
    user_id     uuid references users (id),   -- the membership it became
    revoked_at  timestamptz,
    created_at  timestamptz not null
);
create index invitations_org on invitations (org_id, id);
-- At most one open invitation per address and organization: inviting again replaces it.
create index invitations_email on invitations (org_id, lower(email));
