//! Rapport's credentials: password hashing, JWTs, API keys and refresh tokens, roles and the
//! permission policy. No actix: the HTTP layer asks, this crate answers.

pub mod password;
pub mod policy;
pub mod secret;
pub mod signing_key;
pub mod token;

pub use signing_key::SigningKey;
pub use token::{AccessClaims, TokenError, Tokens};
