//! Access tokens (JWT, HS256) and opaque tokens (refresh and personal access tokens).
//!
//! The three kinds cannot stand in for one another: opaque tokens carry a kind prefix and are
//! looked up by hash in their own table; a JWT is only ever verified as an access token.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{Config, MAX_LEEWAY, MIN_SECRET_LEN};
use crate::store::TokenHash;

/// Prefix of every refresh token.
pub const REFRESH_PREFIX: &str = "authrt_";
/// Prefix of every personal access token, recognisable by secret scanners.
pub const PERSONAL_PREFIX: &str = "authpat_";

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// User id.
    pub sub: String,
    /// Session id.
    pub sid: String,
    /// Token id; the session accepts only its current one.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expiry (Unix seconds).
    pub exp: i64,
    /// Not before (Unix seconds), checked when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// The user's email.
    pub email: String,
    /// The user's role names.
    pub roles: Vec<String>,
    /// The user's organization.
    pub org_id: Option<Uuid>,
}

/// Claims after verification, with ids parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    /// User id.
    pub user_id: Uuid,
    /// Session id.
    pub session_id: Uuid,
    /// Token id.
    pub jti: String,
}

/// Why a signing configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The HS256 secret is shorter than [`MIN_SECRET_LEN`].
    #[error("the JWT secret must be at least {MIN_SECRET_LEN} bytes")]
    SecretTooShort,
}

/// Keys and the pinned validation, built once at start-up.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    header: Header,
    validation: Validation,
    issuer: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Builds the signer from the configuration: HS256, pinned; `iss` required and checked;
    /// `exp`, `sub` required; `nbf` checked; leeway clamped to 30 s.
    pub fn new(config: &Config) -> Result<Self, KeyError> {
        if config.jwt_secret.len() < MIN_SECRET_LEN {
            return Err(KeyError::SecretTooShort);
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = config.leeway.min(MAX_LEEWAY).as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Ok(Self {
            encoding: EncodingKey::from_secret(&config.jwt_secret),
            decoding: DecodingKey::from_secret(&config.jwt_secret),
            header: Header::new(Algorithm::HS256),
            validation,
            issuer: config.issuer.clone(),
        })
    }

    /// The issuer written into tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs the claims.
    pub fn sign(&self, claims: &Claims) -> Result<String, crate::Error> {
        jsonwebtoken::encode(&self.header, claims, &self.encoding).map_err(|err| {
            tracing::error!(error = %err, "signing an access token failed");
            crate::Error::Internal
        })
    }

    /// Verifies signature, algorithm, issuer, expiry and not-before; `None` for any failure.
    pub fn verify(&self, token: &str) -> Option<VerifiedClaims> {
        // A JWT has exactly three segments; refuse anything else before parsing.
        if token.split('.').count() != 3 {
            return None;
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let claims = data.claims;
        Some(VerifiedClaims {
            user_id: Uuid::parse_str(&claims.sub).ok()?,
            session_id: Uuid::parse_str(&claims.sid).ok()?,
            jti: claims.jti,
        })
    }
}

/// A freshly generated opaque token: the secret to hand out once and the hash to store.
#[derive(Clone)]
pub struct OpaqueToken {
    /// The full token, prefix included. Shown to the client once, never stored.
    pub secret: String,
    /// What the store keeps.
    pub hash: TokenHash,
}

impl OpaqueToken {
    /// 256 random bits behind `prefix`.
    pub fn generate(prefix: &str) -> Self {
        let bytes: [u8; 32] = rand::random();
        let secret = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
        let hash = hash_token(&secret);
        Self { secret, hash }
    }
}

/// SHA-256 of a presented token. High-entropy tokens need no salt or slow hash.
pub fn hash_token(token: &str) -> TokenHash {
    TokenHash(Sha256::digest(token.as_bytes()).into())
}

/// A new random token id (`jti`).
pub fn new_jti() -> String {
    let bytes: [u8; 16] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        let config = Config {
            jwt_secret: vec![7; 32],
            ..Config::default()
        };
        TokenSigner::new(&config).unwrap()
    }

    fn claims(exp_offset: i64) -> Claims {
        let now = chrono::Utc::now().timestamp();
        Claims {
            iss: "auth-server".into(),
            sub: Uuid::new_v4().to_string(),
            sid: Uuid::new_v4().to_string(),
            jti: new_jti(),
            iat: now,
            exp: now + exp_offset,
            nbf: None,
            email: "a@example.com".into(),
            roles: vec![],
            org_id: None,
        }
    }

    #[test]
    fn round_trip() {
        let s = signer();
        let c = claims(60);
        let token = s.sign(&c).unwrap();
        let verified = s.verify(&token).unwrap();
        assert_eq!(verified.jti, c.jti);
    }

    #[test]
    fn refuses_expired_beyond_leeway_and_wrong_issuer() {
        let s = signer();
        assert!(s.verify(&s.sign(&claims(-60)).unwrap()).is_none());
        let mut c = claims(60);
        c.iss = "someone-else".into();
        assert!(s.verify(&s.sign(&c).unwrap()).is_none());
        let mut c = claims(60);
        c.nbf = Some(c.iat + 3600);
        assert!(s.verify(&s.sign(&c).unwrap()).is_none());
    }

    #[test]
    fn refuses_other_secret_and_tampering() {
        let s = signer();
        let other = TokenSigner::new(&Config {
            jwt_secret: vec![8; 32],
            ..Config::default()
        })
        .unwrap();
        let token = other.sign(&claims(60)).unwrap();
        assert!(s.verify(&token).is_none());
        assert!(s.verify("a.b").is_none());
        assert!(s.verify("a.b.c.d").is_none());
    }

    #[test]
    fn short_secret_is_refused() {
        let config = Config {
            jwt_secret: vec![1; 31],
            ..Config::default()
        };
        assert!(TokenSigner::new(&config).is_err());
    }

    #[test]
    fn opaque_tokens_have_prefix_and_hash() {
        let t = OpaqueToken::generate(PERSONAL_PREFIX);
        assert!(t.secret.starts_with(PERSONAL_PREFIX));
        assert_eq!(hash_token(&t.secret), t.hash);
        assert!(secrets_equal(&t.secret, &t.secret.clone()));
        assert!(!secrets_equal(&t.secret, "x"));
    }
}
