//! Black-box API tests: each starts the whole app in-process on a fresh database and talks
//! HTTP to it, once on SQLite and once on PostgreSQL (see `helpers::both_backends!`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod helpers;

mod access;
mod batch;
mod changes;
mod cli;
mod companies;
mod competitors;
mod conformance;
mod contacts;
mod crash;
mod custom_fields;
mod docs;
mod errors;
mod exports;
mod hardening_access;
mod hardening_input;
mod hardening_visibility;
mod hardening_webhooks;
mod http;
mod idempotency;
mod identity;
mod imports;
mod invitations;
mod keysets;
mod merge;
mod ops;
mod orders;
mod products;
mod races;
mod receiver;
mod search;
mod webhooks;
