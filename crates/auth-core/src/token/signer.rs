//! [`TokenSigner`]: signs and verifies access tokens with one pinned algorithm, and remembers
//! tokens that verified so a busy client's token is decoded once.

use std::sync::{Arc, RwLock};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use uuid::Uuid;

use super::keys::EdKeys;
use super::{Claims, KeyError, MIN_SECRET_LEN, VerifiedClaims, VerifyError, secrets_equal};
use crate::clock::Clock;
use crate::config::{Config, MAX_LEEWAY, Signing};
use crate::memo::Memo;
use crate::store::SigningKeyRecord;

/// The keys of the configured algorithm.
enum Keys {
    /// HS256: one shared secret signs and verifies.
    Hs256 {
        encoding: EncodingKey,
        decoding: DecodingKey,
    },
    /// EdDSA: keys from the database (`None` until the first load), private parts decrypted
    /// with the key-encryption key.
    EdDsa {
        key_encryption_key: [u8; 32],
        keys: RwLock<Option<EdKeys>>,
    },
}

/// Keys and the pinned validation, built once at start-up; EdDSA keys can be reloaded.
pub struct TokenSigner {
    issuer: String,
    keys: Keys,
    validation: Validation,
    clock: Arc<dyn Clock>,
    /// Tokens that passed full verification, by their exact text.
    ///
    /// Verification is a pure function of the token's bytes, the keys and the clock, so a
    /// token seen before needs only its validity window checked against the clock again.
    /// Whether its session is still alive is not remembered here: the caller checks that
    /// every time. Loading new keys empties the memo (a removed key stops verifying at once).
    verified: Memo<Box<str>, (VerifiedClaims, ValidityWindow)>,
}

/// Most tokens remembered as verified; past this the memo starts afresh.
const MAX_VERIFIED_TOKENS: usize = 10_000;

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("eddsa", &self.uses_stored_keys())
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Builds the signer from the configuration: one algorithm, pinned; `iss` required and
    /// checked; `exp`, `sub` required; `exp` and `nbf` checked against `clock`; leeway
    /// clamped to 30 s. With EdDSA, call
    /// [`TokenSigner::load_keys`] before signing.
    pub fn new(config: &Config, clock: Arc<dyn Clock>) -> Result<Self, KeyError> {
        let (algorithm, keys) = match &config.signing {
            Signing::Hs256 { secret } => {
                if secret.len() < MIN_SECRET_LEN {
                    return Err(KeyError::SecretTooShort);
                }
                let keys = Keys::Hs256 {
                    encoding: EncodingKey::from_secret(secret),
                    decoding: DecodingKey::from_secret(secret),
                };
                (Algorithm::HS256, keys)
            }
            Signing::EdDsa { key_encryption_key } => {
                let keys = Keys::EdDsa {
                    key_encryption_key: *key_encryption_key,
                    keys: RwLock::new(None),
                };
                (Algorithm::EdDSA, keys)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway.min(MAX_LEEWAY).as_secs();
        // `exp` (required) and `nbf` are judged by [`ValidityWindow`] against the core's clock,
        // not by jsonwebtoken against the system's: one clock for every rule.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        Ok(Self {
            issuer: config.issuer.clone(),
            keys,
            validation,
            clock,
            verified: Memo::new(MAX_VERIFIED_TOKENS),
        })
    }

    /// The issuer written into tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether tokens are signed with EdDSA keys from the database.
    pub fn uses_stored_keys(&self) -> bool {
        matches!(self.keys, Keys::EdDsa { .. })
    }

    /// Replaces the EdDSA key set with the stored keys (decrypting the active private part).
    /// Nothing to do with HS256.
    pub fn load_keys(&self, records: &[SigningKeyRecord]) -> Result<(), KeyError> {
        let Keys::EdDsa {
            key_encryption_key,
            keys,
        } = &self.keys
        else {
            return Ok(());
        };
        let loaded = EdKeys::from_records(key_encryption_key, records)?;
        let mut keys = keys.write().map_err(|_| KeyError::NoActiveKey)?;
        *keys = Some(loaded);
        // A removed key must stop verifying the tokens it signed.
        self.verified.clear();
        Ok(())
    }

    /// The JWKS document (public keys only); `None` without EdDSA.
    pub fn jwks(&self) -> Option<serde_json::Value> {
        let Keys::EdDsa { keys, .. } = &self.keys else {
            return None;
        };
        let keys = keys.read().ok()?;
        Some(
            keys.as_ref()
                .map_or_else(|| serde_json::json!({ "keys": [] }), |k| k.jwks.clone()),
        )
    }

    /// Signs the claims.
    pub fn sign(&self, claims: &Claims) -> Result<String, crate::error::Error> {
        let failed = |err: jsonwebtoken::errors::Error| {
            tracing::error!(error = %err, "signing an access token failed");
            crate::error::Error::Internal
        };
        match &self.keys {
            Keys::Hs256 { encoding, .. } => {
                jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, encoding)
                    .map_err(failed)
            }
            Keys::EdDsa { keys, .. } => {
                let keys = keys.read().map_err(|_| crate::error::Error::Internal)?;
                let Some(EdKeys {
                    active: (kid, encoding),
                    ..
                }) = keys.as_ref()
                else {
                    tracing::error!("no active signing key");
                    return Err(crate::error::Error::Internal);
                };
                let mut header = Header::new(Algorithm::EdDSA);
                header.kid = Some(kid.clone());
                jsonwebtoken::encode(&header, claims, encoding).map_err(failed)
            }
        }
    }

    /// Verifies signature, algorithm, issuer, expiry and not-before. Only the configured
    /// algorithm is accepted; `kid` only selects among this server's own keys; `jku`, `x5u`
    /// and `jwk` headers are never looked at.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, VerifyError> {
        let now = self.clock.now();
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(i64::MAX);
        if let Some((claims, _)) = self
            .verified
            .get(token, |(_, window)| window.contains(now, leeway))
        {
            return Ok(claims);
        }
        let generation = self.verified.generation();
        let (claims, window) = self.decode(token)?;
        if !window.contains(now, leeway) {
            return Err(VerifyError::Invalid);
        }
        self.verified
            .put(token.into(), (claims.clone(), window), generation);
        Ok(claims)
    }

    /// Decodes and checks a token in full (what [`Self::verify`] does on a memo miss).
    fn decode(&self, token: &str) -> Result<(VerifiedClaims, ValidityWindow), VerifyError> {
        // A JWT has exactly three segments; refuse anything else before parsing.
        if token.split('.').count() != 3 {
            return Err(VerifyError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Invalid)?;
        if !self.validation.algorithms.contains(&header.alg) {
            return Err(VerifyError::Invalid);
        }
        let data = match &self.keys {
            Keys::Hs256 { decoding, .. } => {
                jsonwebtoken::decode::<Claims>(token, decoding, &self.validation)
            }
            Keys::EdDsa { keys, .. } => {
                let kid = header.kid.ok_or(VerifyError::Invalid)?;
                let keys = keys.read().map_err(|_| VerifyError::Invalid)?;
                let decoding = keys
                    .as_ref()
                    .and_then(|keys| {
                        keys.verifying
                            .iter()
                            .find(|(known, _)| secrets_equal(known, &kid))
                    })
                    .map(|(_, key)| key)
                    .ok_or(VerifyError::UnknownKid)?;
                jsonwebtoken::decode::<Claims>(token, decoding, &self.validation)
            }
        }
        .map_err(|_| VerifyError::Invalid)?;
        let claims = data.claims;
        let window = ValidityWindow {
            exp: claims.exp,
            nbf: claims.nbf,
        };
        let verified = VerifiedClaims {
            user_id: Uuid::parse_str(&claims.sub).map_err(|_| VerifyError::Invalid)?,
            session_id: Uuid::parse_str(&claims.sid).map_err(|_| VerifyError::Invalid)?,
            jti: claims.jti,
        };
        Ok((verified, window))
    }
}

/// When a verified token is valid: `exp` and `nbf` as signed.
#[derive(Debug, Clone, Copy)]
pub(super) struct ValidityWindow {
    exp: i64,
    nbf: Option<i64>,
}

impl ValidityWindow {
    #[cfg(test)]
    pub(super) fn for_test(exp: i64, nbf: Option<i64>) -> Self {
        Self { exp, nbf }
    }

    /// The same rule `jsonwebtoken` applies: expired when `exp < now - leeway`, not yet
    /// valid when `nbf > now + leeway`.
    pub(super) fn contains(&self, now: i64, leeway: i64) -> bool {
        self.exp >= now.saturating_sub(leeway)
            && self.nbf.is_none_or(|nbf| nbf <= now.saturating_add(leeway))
    }
}
