//! Random secrets (API keys, refresh tokens) and their storage hashes. The secrets carry 256
//! random bits, so a plain SHA-256 is a safe lookup hash: no password hash per request.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub const API_KEY_PREFIX: &str = "rpk_";
pub const REFRESH_TOKEN_PREFIX: &str = "rrt_";
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";
pub const INVITATION_TOKEN_PREFIX: &str = "rin_";
/// Characters of a key shown to identify it: `rpk_` and the first 8 random ones.
pub const DISPLAY_PREFIX_LEN: usize = API_KEY_PREFIX.len() + 8;

#[derive(Debug, thiserror::Error)]
#[error("the system random source failed: {0}")]
pub struct RandomError(String);

fn random_text() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A new API key: `rpk_` and 43 URL-safe characters.
pub fn new_api_key() -> Result<String, RandomError> {
    Ok(format!("{API_KEY_PREFIX}{}", random_text()?))
}

/// A new refresh token: `rrt_` and 43 URL-safe characters.
pub fn new_refresh_token() -> Result<String, RandomError> {
    Ok(format!("{REFRESH_TOKEN_PREFIX}{}", random_text()?))
}

/// A new webhook signing secret: `whsec_` and 43 URL-safe characters.
pub fn new_webhook_secret() -> Result<String, RandomError> {
    Ok(format!("{WEBHOOK_SECRET_PREFIX}{}", random_text()?))
}

/// A new invitation token: `rin_` and 43 URL-safe characters.
pub fn new_invitation_token() -> Result<String, RandomError> {
    Ok(format!("{INVITATION_TOKEN_PREFIX}{}", random_text()?))
}

/// The `Rapport-Signature` header of a webhook body sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn webhook_signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={digest}")
}

/// The lowercase hex SHA-256 under which a secret is stored and looked up.
pub fn storage_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The part of a key that may be shown again after creation.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(DISPLAY_PREFIX_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_signature_is_the_hmac_of_time_dot_body() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let signature = webhook_signature("Jefe", 0, b"what do ya want for nothing?");
        assert_eq!(
            signature,
            "t=0,v1=".to_owned() + &hmac_of("Jefe", b"0.what do ya want for nothing?")
        );
        assert_ne!(
            signature,
            webhook_signature("Jefe", 1, b"what do ya want for nothing?")
        );
        assert_eq!(
            hmac_of("Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn hmac_of(key: &str, data: &[u8]) -> String {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).unwrap();
        mac.update(data);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn keys_have_their_prefix_and_differ() {
        let a = new_api_key().unwrap();
        let b = new_api_key().unwrap();
        assert!(a.starts_with("rpk_"));
        assert_eq!(a.len(), 4 + 43);
        assert_ne!(a, b);
        assert_eq!(display_prefix(&a).len(), 12);
        assert!(new_refresh_token().unwrap().starts_with("rrt_"));
    }

    #[test]
    fn the_storage_hash_is_sha256_hex() {
        assert_eq!(
            storage_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
