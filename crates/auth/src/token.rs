//! Access tokens: HS256 JWTs with sub, org, role, sid, iat, exp, iss, aud and jti. Verification
//! pins the algorithm and checks exp, iss and aud.

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::SigningKey;

pub const ISSUER: &str = "rapport";
pub const AUDIENCE: &str = "rapport-api";

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The user's organization.
    pub org: Uuid,
    /// The user's role when the token was issued (the current role is read per request).
    pub role: String,
    /// The session (refresh-token family) the token belongs to.
    pub sid: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub jti: Uuid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid: {0}")]
    Invalid(&'static str),
    #[error("cannot sign the token: {0}")]
    Signing(String),
}

/// Issues and verifies access tokens with one key.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: i64,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    pub fn new(key: &SigningKey, ttl_seconds: i64) -> Tokens {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 30;
        Tokens {
            encoding: EncodingKey::from_secret(key.as_bytes()),
            decoding: DecodingKey::from_secret(key.as_bytes()),
            validation,
            ttl_seconds,
        }
    }

    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    pub fn issue(
        &self,
        user_id: Uuid,
        org_id: Uuid,
        role: &str,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, TokenError> {
        let iat = now.timestamp();
        let claims = AccessClaims {
            sub: user_id,
            org: org_id,
            role: role.to_owned(),
            sid: session_id,
            iat,
            exp: iat + self.ttl_seconds,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            jti: Uuid::now_v7(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                ErrorKind::InvalidSignature => TokenError::Invalid("bad signature"),
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    TokenError::Invalid("algorithm not accepted")
                }
                ErrorKind::InvalidAudience => TokenError::Invalid("wrong audience"),
                ErrorKind::InvalidIssuer => TokenError::Invalid("wrong issuer"),
                ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) => {
                    TokenError::Invalid("missing or malformed claims")
                }
                _ => TokenError::Invalid("malformed token"),
            })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn tokens() -> Tokens {
        Tokens::new(&SigningKey::new(&"k".repeat(32)).unwrap(), 900)
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let (user, org, session) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let token = tokens()
            .issue(user, org, "sales", session, Utc::now())
            .unwrap();
        let claims = tokens().verify(&token).unwrap();
        assert_eq!((claims.sub, claims.org, claims.sid), (user, org, session));
        assert_eq!(claims.exp - claims.iat, 900);
        assert_eq!(
            (claims.iss.as_str(), claims.aud.as_str()),
            (ISSUER, AUDIENCE)
        );
    }

    #[test]
    fn expired_tokens_and_other_keys_are_refused() {
        let long_ago = Utc::now() - chrono::Duration::hours(2);
        let token = tokens()
            .issue(
                Uuid::now_v7(),
                Uuid::now_v7(),
                "sales",
                Uuid::now_v7(),
                long_ago,
            )
            .unwrap();
        assert_eq!(tokens().verify(&token), Err(TokenError::Expired));

        let other = Tokens::new(&SigningKey::new(&"o".repeat(32)).unwrap(), 900);
        let token = other
            .issue(
                Uuid::now_v7(),
                Uuid::now_v7(),
                "sales",
                Uuid::now_v7(),
                Utc::now(),
            )
            .unwrap();
        assert!(matches!(
            tokens().verify(&token),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn alg_none_is_refused() {
        let token = tokens()
            .issue(
                Uuid::now_v7(),
                Uuid::now_v7(),
                "owner",
                Uuid::now_v7(),
                Utc::now(),
            )
            .unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let forged = format!("{header}.{payload}.");
        assert!(matches!(
            tokens().verify(&forged),
            Err(TokenError::Invalid(_))
        ));
    }
}
