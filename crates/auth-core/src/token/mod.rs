//! Access tokens (JWT, HS256 or EdDSA) and opaque tokens (refresh and personal access tokens).
//!
//! The three kinds cannot stand in for one another: opaque tokens carry a kind prefix and are
//! looked up by hash in their own table; a JWT is only ever verified as an access token.

pub mod csrf;
mod keys;
pub mod mail_seal;
mod maintenance;
mod sealed;
mod signer;
#[cfg(test)]
mod tests;
pub mod totp;

pub use keys::generate_signing_key;
pub use maintenance::{Rewrapped, retire_signing_key, rewrap};
pub use sealed::{
    PLAIN_JWT_SECRET_SETTING, SEALED_JWT_SECRET_SETTING, SEALED_TOTP_KEY_SETTING, open_setting,
    seal_setting, stored_hs256_secret, stored_totp_key,
};
pub use signer::TokenSigner;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::MIN_SECRET_LEN;
use crate::store::{StoreError, TokenHash};

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
    /// A stored private key could not be decrypted with the configured key-encryption key.
    #[error("signing key `{0}` cannot be decrypted with the configured key-encryption key")]
    Undecryptable(String),
    /// A stored key is malformed.
    #[error("signing key `{0}` is malformed")]
    Malformed(String),
    /// EdDSA is configured but no key is active.
    #[error("no active signing key")]
    NoActiveKey,
    /// A sealed setting (e.g. the generated JWT secret) could not be opened with the
    /// configured key-encryption key: another key sealed it, or it was altered.
    #[error(
        "the stored secret `{0}` cannot be decrypted with the configured key-encryption key \
         (is it the key this database was started with?)"
    )]
    SettingUndecryptable(String),
    /// Sealing a secret under the key-encryption key failed.
    #[error("sealing a secret under the key-encryption key failed")]
    Sealing,
    /// No signing key has this `kid`.
    #[error("no signing key `{0}`")]
    UnknownKey(String),
    /// The key is the active one, which signs new tokens: it cannot be retired.
    #[error("signing key `{0}` is the active one; rotate first (`keys rotate`), then retire it")]
    ActiveKey(String),
    /// The stored keys changed while they were being re-sealed; nothing was written.
    #[error("the stored keys changed while being re-sealed; nothing was written, run it again")]
    Changed,
    /// The store failed.
    #[error("cannot read or write the stored keys: {0}")]
    Store(StoreError),
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Malformed, forged, expired, wrong algorithm or issuer, ...
    Invalid,
    /// Signed with a `kid` this instance does not know (yet): reload the keys and retry once.
    UnknownKid,
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
