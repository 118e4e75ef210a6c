//! Secrets at rest under the key-encryption key (KEK): ChaCha20-Poly1305 with a random
//! nonce and the secret's name as associated data, so a sealed value opens only under its
//! own name. The same sealing protects the EdDSA private keys and the generated HS256
//! secret, so one KEK guards everything a copy of the database would otherwise give away.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit as _};

use super::KeyError;
use crate::store::KeyStore;

/// Setting that keeps the generated HS256 secret, sealed under the KEK.
pub const SEALED_JWT_SECRET_SETTING: &str = "jwt_secret_sealed";
/// Setting that keeps the key TOTP secrets are sealed with under EdDSA, itself sealed under
/// the KEK (so a KEK rewrap moves it with the rest, and the TOTP factors survive).
pub const SEALED_TOTP_KEY_SETTING: &str = "totp_key_sealed";
/// Every sealed setting a KEK rewrap moves.
pub(super) const SEALED_SETTINGS: [&str; 2] = [SEALED_JWT_SECRET_SETTING, SEALED_TOTP_KEY_SETTING];
/// Setting where releases before sealing kept the generated HS256 secret in plain text. It
/// is sealed (and deleted) the first time the secret is loaded.
pub const PLAIN_JWT_SECRET_SETTING: &str = "jwt_secret";

/// Bytes of the nonce that opens every sealed value.
pub(super) const NONCE_LEN: usize = 12;
/// Bytes of a generated HS256 secret.
const GENERATED_SECRET_LEN: usize = 32;
/// What a sealed setting starts with (its version, so the format can change later).
const SETTING_PREFIX: &str = "sealed-v1:";

fn cipher(kek: &[u8; 32]) -> ChaCha20Poly1305 {
    ChaCha20Poly1305::new(chacha20poly1305::Key::from_slice(kek))
}

/// `plain` sealed under `kek`, bound to `name`: nonce then ciphertext and tag.
pub(super) fn seal(
    kek: &[u8; 32],
    name: &[u8],
    plain: &[u8],
) -> Result<Vec<u8>, crate::error::Error> {
    let nonce: [u8; NONCE_LEN] = rand::random();
    let payload = Payload {
        msg: plain,
        aad: name,
    };
    let sealed = cipher(kek)
        .encrypt(chacha20poly1305::Nonce::from_slice(&nonce), payload)
        .map_err(|_| crate::error::Error::Internal)?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Opens what [`seal`] made; `None` under another key or name, or when it was altered.
pub(super) fn open(kek: &[u8; 32], name: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let payload = Payload {
        msg: ciphertext,
        aad: name,
    };
    cipher(kek)
        .decrypt(chacha20poly1305::Nonce::from_slice(nonce), payload)
        .ok()
}

/// Associated data of a sealed setting: its name, in a namespace apart from the `kid`s of
/// signing keys.
fn setting_name(key: &str) -> Vec<u8> {
    format!("setting:{key}").into_bytes()
}

/// `secret` sealed under `kek` as the value of the setting `key` (text, for a text column).
pub fn seal_setting(kek: &[u8; 32], key: &str, secret: &[u8]) -> Result<String, KeyError> {
    let sealed = seal(kek, &setting_name(key), secret).map_err(|_| KeyError::Sealing)?;
    Ok(format!(
        "{SETTING_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(sealed)
    ))
}

/// Opens the value of the sealed setting `key`: `SettingUndecryptable` under another KEK or
/// when altered or malformed. The error names the setting, never a value.
pub fn open_setting(kek: &[u8; 32], key: &str, value: &str) -> Result<Vec<u8>, KeyError> {
    value
        .strip_prefix(SETTING_PREFIX)
        .and_then(|text| URL_SAFE_NO_PAD.decode(text).ok())
        .and_then(|sealed| open(kek, &setting_name(key), &sealed))
        .ok_or_else(|| KeyError::SettingUndecryptable(key.to_owned()))
}

/// The database's generated HS256 secret, kept sealed under `kek`: created on first use (two
/// instances racing agree on one), the same on every later start with the same KEK. A
/// plain-text secret left by an older release is sealed first, so its tokens stay valid.
/// Blocks (store calls).
pub fn stored_hs256_secret(store: &dyn KeyStore, kek: &[u8; 32]) -> Result<Vec<u8>, KeyError> {
    seal_plain_secret(store, kek)?;
    let generated: [u8; GENERATED_SECRET_LEN] = rand::random();
    let candidate = seal_setting(kek, SEALED_JWT_SECRET_SETTING, &generated)?;
    let stored = store
        .get_or_init_setting(SEALED_JWT_SECRET_SETTING, &candidate)
        .map_err(KeyError::Store)?;
    open_setting(kek, SEALED_JWT_SECRET_SETTING, &stored)
}

/// The database's key for sealing TOTP secrets, kept sealed under `kek`: created on first use
/// (two instances racing agree on one), the same on every later start with the same KEK.
/// Blocks (store calls).
pub fn stored_totp_key(store: &dyn KeyStore, kek: &[u8; 32]) -> Result<[u8; 32], KeyError> {
    let generated: [u8; 32] = rand::random();
    let candidate = seal_setting(kek, SEALED_TOTP_KEY_SETTING, &generated)?;
    let stored = store
        .get_or_init_setting(SEALED_TOTP_KEY_SETTING, &candidate)
        .map_err(KeyError::Store)?;
    let key = open_setting(kek, SEALED_TOTP_KEY_SETTING, &stored)?;
    key.try_into()
        .map_err(|_| KeyError::SettingUndecryptable(SEALED_TOTP_KEY_SETTING.to_owned()))
}

/// Seals the plain-text secret of an older release, if there is one, then deletes the plain
/// row. The plain row goes only once a sealed secret that opens under `kek` is stored, so a
/// wrong KEK never loses the secret. When a sealed secret exists already, it wins (another
/// instance sealed first) and the plain row is simply deleted.
pub(super) fn seal_plain_secret(store: &dyn KeyStore, kek: &[u8; 32]) -> Result<(), KeyError> {
    let Some(plain) = store
        .setting(PLAIN_JWT_SECRET_SETTING)
        .map_err(KeyError::Store)?
    else {
        return Ok(());
    };
    let sealed = seal_setting(kek, SEALED_JWT_SECRET_SETTING, plain.as_bytes())?;
    let stored = store
        .get_or_init_setting(SEALED_JWT_SECRET_SETTING, &sealed)
        .map_err(KeyError::Store)?;
    open_setting(kek, SEALED_JWT_SECRET_SETTING, &stored)?;
    store
        .delete_setting(PLAIN_JWT_SECRET_SETTING)
        .map_err(KeyError::Store)?;
    tracing::info!(
        "the JWT secret an older release kept in plain text is now sealed under the \
         key-encryption key; the plain-text row is deleted"
    );
    Ok(())
}
