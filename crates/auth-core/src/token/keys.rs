//! EdDSA signing keys: generation, and their private parts encrypted at rest under the
//! configured key-encryption key (ChaCha20-Poly1305, the `kid` as associated data).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey};

use super::sealed::{NONCE_LEN, open, seal};
use super::{KeyError, new_jti};
use crate::store::SigningKeyRecord;

/// The EdDSA keys in use: the active one signs, every one verifies.
pub(super) struct EdKeys {
    pub(super) active: (String, EncodingKey),
    pub(super) verifying: Vec<(String, DecodingKey)>,
    pub(super) jwks: serde_json::Value,
}

impl EdKeys {
    /// Builds the key set from the stored keys, decrypting the active private part.
    pub(super) fn from_records(
        kek: &[u8; 32],
        records: &[SigningKeyRecord],
    ) -> Result<Self, KeyError> {
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
        Ok(Self {
            active: active.ok_or(KeyError::NoActiveKey)?,
            verifying,
            jwks: serde_json::json!({ "keys": jwks }),
        })
    }
}

/// A new Ed25519 signing key, its private part encrypted under `key_encryption_key`.
pub fn generate_signing_key(
    key_encryption_key: &[u8; 32],
    now: i64,
    active: bool,
) -> Result<SigningKeyRecord, crate::error::Error> {
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
pub(super) fn pkcs8_ed25519(seed: &[u8; 32]) -> Vec<u8> {
    const PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(seed);
    der
}

/// Seals an Ed25519 seed under `kek`, bound to its `kid`.
pub(super) fn encrypt_private_key(
    kek: &[u8; 32],
    kid: &str,
    seed: &[u8; 32],
) -> Result<Vec<u8>, crate::error::Error> {
    seal(kek, kid.as_bytes(), seed)
}

/// Opens the private part of key `kid`: `Undecryptable` under another key-encryption key (or
/// when it was tampered with), `Malformed` when it is not a sealed seed.
pub(super) fn decrypt_private_key(
    kek: &[u8; 32],
    kid: &str,
    sealed: &[u8],
) -> Result<[u8; 32], KeyError> {
    if sealed.len() < NONCE_LEN {
        return Err(KeyError::Malformed(kid.to_owned()));
    }
    let plain =
        open(kek, kid.as_bytes(), sealed).ok_or_else(|| KeyError::Undecryptable(kid.to_owned()))?;
    plain
        .as_slice()
        .try_into()
        .map_err(|_| KeyError::Malformed(kid.to_owned()))
}
