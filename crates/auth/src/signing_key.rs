//! The HS256 key that signs access tokens.

use std::fmt;

/// An HMAC key of at least 32 bytes. The bytes of `RAPPORT_JWT_SECRET` as given are the key
/// (no base64 or hex decoding); a generated key is 64 hex characters and is used the same way.
/// `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("must be at least {min} bytes (it is {actual})", min = SigningKey::MIN_LEN)]
pub struct KeyTooShort {
    pub actual: usize,
}

impl SigningKey {
    pub const MIN_LEN: usize = 32;

    pub fn new(secret: &str) -> Result<Self, KeyTooShort> {
        if secret.len() < Self::MIN_LEN {
            return Err(KeyTooShort {
                actual: secret.len(),
            });
        }
        Ok(SigningKey(secret.as_bytes().to_vec()))
    }

    /// A fresh random secret (256 bits, hex encoded) to store when none is configured.
    pub fn generate_secret() -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({} bytes, redacted)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(SigningKey::new("too short"), Err(KeyTooShort { actual: 9 }));
        assert!(SigningKey::new(&"x".repeat(32)).is_ok());
    }

    #[test]
    fn generated_secrets_are_long_enough_and_differ() {
        let a = SigningKey::generate_secret().unwrap();
        let b = SigningKey::generate_secret().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(SigningKey::new(&a).is_ok());
    }

    #[test]
    fn debug_hides_the_key() {
        let key = SigningKey::new("a-very-secret-key-of-at-least-32-bytes").unwrap();
        assert!(!format!("{key:?}").contains("secret"));
    }
}
