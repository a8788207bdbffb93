//! Rapport's credentials: password hashing, JWTs, API keys, roles and the permission policy.
//! No actix: the HTTP layer asks, this crate answers.

pub mod signing_key;

pub use signing_key::SigningKey;
