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
use crate::store::{SigningKeyRecord, TokenHash};

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
}

/// How access tokens are signed.
#[derive(Clone, PartialEq, Eq)]
pub enum Signing {
    /// HS256 with the configured secret.
    Hs256,
    /// EdDSA (Ed25519) with keys kept in the database, private parts encrypted with this
    /// 32-byte key-encryption key.
    EdDsa {
        /// The key-encryption key.
        key_encryption_key: [u8; 32],
    },
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signing::Hs256 => f.write_str("Hs256"),
            Signing::EdDsa { .. } => f.write_str("EdDsa { .. }"),
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// Malformed, forged, expired, wrong algorithm or issuer, ...
    Invalid,
    /// Signed with a `kid` this instance does not know (yet): reload the keys and retry once.
    UnknownKid,
}

/// The EdDSA keys in use: the active one signs, every one verifies.
struct EdKeys {
    active: Option<(String, EncodingKey)>,
    verifying: Vec<(String, DecodingKey)>,
    jwks: serde_json::Value,
}

/// Keys and the pinned validation, built once at start-up; EdDSA keys can be reloaded.
pub struct TokenSigner {
    issuer: String,
    hs256: Option<(EncodingKey, DecodingKey)>,
    ed: Option<std::sync::RwLock<EdKeys>>,
    key_encryption_key: Option<[u8; 32]>,
    validation: Validation,
    /// Tokens that verified, so a busy client's token is decoded and checked once.
    verified: VerifiedTokens,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("issuer", &self.issuer)
            .field("eddsa", &self.ed.is_some())
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Builds the signer from the configuration: one algorithm, pinned; `iss` required and
    /// checked; `exp`, `sub` required; `nbf` checked; leeway clamped to 30 s. With EdDSA, call
    /// [`TokenSigner::load_keys`] before signing.
    pub fn new(config: &Config) -> Result<Self, KeyError> {
        let algorithm = match config.signing {
            Signing::Hs256 => Algorithm::HS256,
            Signing::EdDsa { .. } => Algorithm::EdDSA,
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway.min(MAX_LEEWAY).as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        let (hs256, ed, key_encryption_key) = match &config.signing {
            Signing::Hs256 => {
                if config.jwt_secret.len() < MIN_SECRET_LEN {
                    return Err(KeyError::SecretTooShort);
                }
                let keys = (
                    EncodingKey::from_secret(&config.jwt_secret),
                    DecodingKey::from_secret(&config.jwt_secret),
                );
                (Some(keys), None, None)
            }
            Signing::EdDsa { key_encryption_key } => {
                let empty = EdKeys {
                    active: None,
                    verifying: Vec::new(),
                    jwks: serde_json::json!({ "keys": [] }),
                };
                (
                    None,
                    Some(std::sync::RwLock::new(empty)),
                    Some(*key_encryption_key),
                )
            }
        };
        Ok(Self {
            issuer: config.issuer.clone(),
            hs256,
            ed,
            key_encryption_key,
            validation,
            verified: VerifiedTokens::default(),
        })
    }

    /// The issuer written into tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Whether tokens are signed with EdDSA keys from the database.
    pub fn uses_stored_keys(&self) -> bool {
        self.ed.is_some()
    }

    /// Replaces the EdDSA key set with the stored keys (decrypting the private parts).
    pub fn load_keys(&self, records: &[SigningKeyRecord]) -> Result<(), KeyError> {
        let (Some(ed), Some(kek)) = (&self.ed, &self.key_encryption_key) else {
            return Ok(());
        };
        let mut active = None;
        let mut verifying = Vec::new();
        let mut jwks = Vec::new();
        for record in records.iter().filter(|r| r.algorithm == "EdDSA") {
            let public: [u8; 32] = record
                .public_key
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::Malformed(record.kid.clone()))?;
            verifying.push((record.kid.clone(), DecodingKey::from_ed_der(&public)));
            jwks.push(serde_json::json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(public),
                "kid": record.kid,
                "alg": "EdDSA",
                "use": "sig",
            }));
            if record.active {
                let seed = decrypt_private_key(kek, &record.kid, &record.private_key)?;
                active = Some((
                    record.kid.clone(),
                    EncodingKey::from_ed_der(&pkcs8_ed25519(&seed)),
                ));
            }
        }
        if active.is_none() {
            return Err(KeyError::NoActiveKey);
        }
        let mut keys = ed.write().map_err(|_| KeyError::NoActiveKey)?;
        *keys = EdKeys {
            active,
            verifying,
            jwks: serde_json::json!({ "keys": jwks }),
        };
        // A removed key must stop verifying the tokens it signed.
        self.verified.clear();
        Ok(())
    }

    /// The JWKS document (public keys only); `None` without EdDSA.
    pub fn jwks(&self) -> Option<serde_json::Value> {
        let keys = self.ed.as_ref()?.read().ok()?;
        Some(keys.jwks.clone())
    }

    /// Signs the claims.
    pub fn sign(&self, claims: &Claims) -> Result<String, crate::Error> {
        let failed = |err: jsonwebtoken::errors::Error| {
            tracing::error!(error = %err, "signing an access token failed");
            crate::Error::Internal
        };
        if let Some((encoding, _)) = &self.hs256 {
            return jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, encoding)
                .map_err(failed);
        }
        let keys = self
            .ed
            .as_ref()
            .and_then(|ed| ed.read().ok())
            .ok_or(crate::Error::Internal)?;
        let Some((kid, encoding)) = &keys.active else {
            tracing::error!("no active signing key");
            return Err(crate::Error::Internal);
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, encoding).map_err(failed)
    }

    /// Verifies signature, algorithm, issuer, expiry and not-before. Only the configured
    /// algorithm is accepted; `kid` only selects among this server's own keys; `jku`, `x5u`
    /// and `jwk` headers are never looked at.
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, VerifyError> {
        let now = chrono::Utc::now().timestamp();
        let leeway = i64::try_from(self.validation.leeway).unwrap_or(i64::MAX);
        if let Some(claims) = self.verified.get(token, now, leeway) {
            return Ok(claims);
        }
        let generation = self.verified.generation();
        let (claims, window) = self.decode(token)?;
        self.verified.put(token, &claims, window, generation);
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
        let data = if let Some((_, decoding)) = &self.hs256 {
            jsonwebtoken::decode::<Claims>(token, decoding, &self.validation)
        } else {
            let kid = header.kid.ok_or(VerifyError::Invalid)?;
            let keys = self
                .ed
                .as_ref()
                .and_then(|ed| ed.read().ok())
                .ok_or(VerifyError::Invalid)?;
            let decoding = keys
                .verifying
                .iter()
                .find(|(known, _)| secrets_equal(known, &kid))
                .map(|(_, key)| key)
                .ok_or(VerifyError::UnknownKid)?;
            jsonwebtoken::decode::<Claims>(token, decoding, &self.validation)
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
struct ValidityWindow {
    exp: i64,
    nbf: Option<i64>,
}

impl ValidityWindow {
    /// The same rule `jsonwebtoken` applies: expired when `exp < now - leeway`, not yet
    /// valid when `nbf > now + leeway`.
    fn contains(&self, now: i64, leeway: i64) -> bool {
        self.exp >= now.saturating_sub(leeway)
            && self.nbf.is_none_or(|nbf| nbf <= now.saturating_add(leeway))
    }
}

/// Most tokens remembered as verified; past this the memo starts afresh.
const MAX_VERIFIED_TOKENS: usize = 10_000;

/// Access tokens that passed full verification, by their exact text.
///
/// Verification is a pure function of the token's bytes, the keys and the clock, so a token
/// seen before needs only its validity window checked against the clock again. Whether its
/// session is still alive is not remembered here: the caller checks that every time. Loading
/// new keys empties the memo (a removed key stops verifying at once), and a generation counter
/// keeps a verification that raced a key reload from being remembered after it.
#[derive(Default)]
struct VerifiedTokens {
    entries:
        std::sync::Mutex<std::collections::HashMap<Box<str>, (VerifiedClaims, ValidityWindow)>>,
    generation: std::sync::atomic::AtomicU64,
}

impl VerifiedTokens {
    fn get(&self, token: &str, now: i64, leeway: i64) -> Option<VerifiedClaims> {
        let entries = self.entries.lock().ok()?;
        let (claims, window) = entries.get(token)?;
        window.contains(now, leeway).then(|| claims.clone())
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    fn put(&self, token: &str, claims: &VerifiedClaims, window: ValidityWindow, generation: u64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if self.generation() != generation {
            return;
        }
        if entries.len() >= MAX_VERIFIED_TOKENS {
            entries.clear();
        }
        entries.insert(token.into(), (claims.clone(), window));
    }

    fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            entries.clear();
        }
    }
}

/// A new Ed25519 signing key, its private part encrypted under `key_encryption_key`.
pub fn generate_signing_key(
    key_encryption_key: &[u8; 32],
    now: i64,
    active: bool,
) -> Result<SigningKeyRecord, crate::Error> {
    let seed: [u8; 32] = rand::random();
    let public = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let kid = format!("ed-{}", &new_jti()[..16]);
    let private_key = encrypt_private_key(key_encryption_key, &kid, &seed)?;
    Ok(SigningKeyRecord {
        kid,
        algorithm: "EdDSA".to_owned(),
        public_key: public.to_vec(),
        private_key,
        created_at: now,
        active,
    })
}

/// PKCS#8 v1 DER of an Ed25519 private key seed (RFC 8410).
fn pkcs8_ed25519(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

fn key_cipher(key_encryption_key: &[u8; 32]) -> chacha20poly1305::ChaCha20Poly1305 {
    use chacha20poly1305::KeyInit as _;
    chacha20poly1305::ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(key_encryption_key))
}

fn encrypt_private_key(
    kek: &[u8; 32],
    kid: &str,
    seed: &[u8; 32],
) -> Result<Vec<u8>, crate::Error> {
    use chacha20poly1305::aead::{Aead as _, Payload};
    let nonce: [u8; 12] = rand::random();
    let sealed = key_cipher(kek)
        .encrypt(
            chacha20poly1305::Nonce::from_slice(&nonce),
            Payload {
                msg: seed,
                aad: kid.as_bytes(),
            },
        )
        .map_err(|_| crate::Error::Internal)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

fn decrypt_private_key(kek: &[u8; 32], kid: &str, sealed: &[u8]) -> Result<[u8; 32], KeyError> {
    use chacha20poly1305::aead::{Aead as _, Payload};
    if sealed.len() < 12 {
        return Err(KeyError::Malformed(kid.to_owned()));
    }
    let (nonce, ciphertext) = sealed.split_at(12);
    let plain = key_cipher(kek)
        .decrypt(
            chacha20poly1305::Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: kid.as_bytes(),
            },
        )
        .map_err(|_| KeyError::Undecryptable(kid.to_owned()))?;
    plain
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Malformed(kid.to_owned()))
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
        assert!(s.verify(&s.sign(&claims(-60)).unwrap()).is_err());
        let mut c = claims(60);
        c.iss = "someone-else".into();
        assert!(s.verify(&s.sign(&c).unwrap()).is_err());
        let mut c = claims(60);
        c.nbf = Some(c.iat + 3600);
        assert!(s.verify(&s.sign(&c).unwrap()).is_err());
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
        assert!(s.verify(&token).is_err());
        assert!(s.verify("a.b").is_err());
        assert!(s.verify("a.b.c.d").is_err());
    }

    fn eddsa() -> (TokenSigner, [u8; 32]) {
        let kek = [9u8; 32];
        let config = Config {
            signing: Signing::EdDsa {
                key_encryption_key: kek,
            },
            ..Config::default()
        };
        (TokenSigner::new(&config).unwrap(), kek)
    }

    #[test]
    fn eddsa_signs_with_the_active_key_and_verifies_older_ones() {
        let (s, kek) = eddsa();
        let first = generate_signing_key(&kek, 1, true).unwrap();
        s.load_keys(std::slice::from_ref(&first)).unwrap();
        let old_token = s.sign(&claims(60)).unwrap();
        let header = jsonwebtoken::decode_header(&old_token).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(first.kid.as_str()));

        let second = generate_signing_key(&kek, 2, true).unwrap();
        let retired = SigningKeyRecord {
            active: false,
            ..first
        };
        s.load_keys(&[second.clone(), retired]).unwrap();
        assert!(s.verify(&old_token).is_ok(), "older keys keep verifying");
        let new_token = s.sign(&claims(60)).unwrap();
        let header = jsonwebtoken::decode_header(&new_token).unwrap();
        assert_eq!(header.kid.as_deref(), Some(second.kid.as_str()));
        assert_eq!(s.jwks().unwrap()["keys"].as_array().unwrap().len(), 2);
        assert!(
            !s.jwks().unwrap().to_string().contains("\"d\""),
            "no private part"
        );
    }

    #[test]
    fn a_remembered_token_stops_verifying_when_its_key_is_removed() {
        let (s, kek) = eddsa();
        let first = generate_signing_key(&kek, 1, true).unwrap();
        s.load_keys(std::slice::from_ref(&first)).unwrap();
        let token = s.sign(&claims(60)).unwrap();
        assert!(s.verify(&token).is_ok());
        assert!(s.verify(&token).is_ok(), "second time from the memo");
        let second = generate_signing_key(&kek, 2, true).unwrap();
        s.load_keys(std::slice::from_ref(&second)).unwrap();
        assert!(matches!(s.verify(&token), Err(VerifyError::UnknownKid)));
    }

    #[test]
    fn remembered_tokens_still_expire_and_wait_for_nbf() {
        let memo = VerifiedTokens::default();
        let claims = VerifiedClaims {
            user_id: Uuid::new_v4(),
            session_id: Uuid::new_v4(),
            jti: new_jti(),
        };
        let window = ValidityWindow {
            exp: 1_000,
            nbf: Some(900),
        };
        memo.put("t", &claims, window, memo.generation());
        assert_eq!(memo.get("t", 950, 5), Some(claims.clone()));
        assert_eq!(
            memo.get("t", 1_005, 5),
            Some(claims.clone()),
            "within leeway"
        );
        assert_eq!(memo.get("t", 1_006, 5), None, "expired");
        assert_eq!(memo.get("t", 894, 5), None, "not yet valid");
        assert_eq!(memo.get("other", 950, 5), None);
        // A verification that raced a key reload is not remembered.
        let before = memo.generation();
        memo.clear();
        memo.put("t", &claims, window, before);
        assert_eq!(memo.get("t", 950, 5), None);
    }

    #[test]
    fn an_expired_token_is_refused_even_after_verifying_once() {
        let s = signer();
        // Expires 4 s ago: inside the default 5 s leeway, so it verifies and is remembered.
        let token = s.sign(&claims(-4)).unwrap();
        assert!(s.verify(&token).is_ok());
        std::thread::sleep(std::time::Duration::from_millis(2_100));
        assert!(s.verify(&token).is_err(), "past the leeway, memo or not");
    }

    #[test]
    fn eddsa_refuses_hs256_and_unknown_kids() {
        let (s, kek) = eddsa();
        let key = generate_signing_key(&kek, 1, true).unwrap();
        s.load_keys(std::slice::from_ref(&key)).unwrap();
        // HS256 signed with the public key as the secret: the classic confusion attack.
        let forged = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims(60),
            &EncodingKey::from_secret(&key.public_key),
        )
        .unwrap();
        assert_eq!(s.verify(&forged), Err(VerifyError::Invalid));
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("../../etc/passwd".into());
        let other = generate_signing_key(&kek, 1, true).unwrap();
        let seed = decrypt_private_key(&kek, &other.kid, &other.private_key).unwrap();
        let token = jsonwebtoken::encode(
            &header,
            &claims(60),
            &EncodingKey::from_ed_der(&pkcs8_ed25519(&seed)),
        )
        .unwrap();
        assert_eq!(s.verify(&token), Err(VerifyError::UnknownKid));
    }

    #[test]
    fn private_keys_need_the_right_key_encryption_key() {
        let (s, kek) = eddsa();
        let key = generate_signing_key(&kek, 1, true).unwrap();
        assert!(decrypt_private_key(&[1; 32], &key.kid, &key.private_key).is_err());
        assert!(decrypt_private_key(&kek, "other-kid", &key.private_key).is_err());
        assert!(s.load_keys(&[]).is_err(), "no active key");
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
