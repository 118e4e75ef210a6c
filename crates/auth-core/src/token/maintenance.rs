//! What an operator does to the stored keys besides rotating them: retiring a signing key,
//! and re-sealing everything under a new key-encryption key. Plain functions over the store
//! (they block), for the command line and for embedders.

use super::KeyError;
use super::keys::{decrypt_private_key, encrypt_private_key};
use super::sealed::{SEALED_SETTINGS, open_setting, seal_plain_secret, seal_setting};
use crate::store::{KeyStore, Reseal, ResealedKey, ResealedSetting};

/// Retires the signing key `kid`: it is deleted (its private part with it), so servers stop
/// verifying the tokens it signed and stop publishing it once they reload their keys (within
/// a minute). The active key cannot be retired (`ActiveKey`: rotate first); an unknown `kid`
/// is `UnknownKey`.
pub fn retire_signing_key(store: &dyn KeyStore, kid: &str) -> Result<(), KeyError> {
    let keys = store.signing_keys().map_err(KeyError::Store)?;
    let key = keys
        .iter()
        .find(|key| key.kid == kid)
        .ok_or_else(|| KeyError::UnknownKey(kid.to_owned()))?;
    if key.active {
        return Err(KeyError::ActiveKey(kid.to_owned()));
    }
    // Conditional in the store too: the key may have gone since it was read.
    if store.delete_signing_key(kid).map_err(KeyError::Store)? {
        Ok(())
    } else {
        Err(KeyError::UnknownKey(kid.to_owned()))
    }
}

/// What [`rewrap`] re-sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewrapped {
    /// Private signing keys.
    pub signing_keys: usize,
    /// Sealed secrets besides them (the generated HS256 secret and the TOTP sealing key,
    /// when there are).
    pub secrets: usize,
}

/// Re-seals every private signing key, the generated HS256 secret and the TOTP sealing key
/// (each when there is one) from the key-encryption
/// key `old` to `new`, in one store transaction: after it, only `new` opens them. Nothing is
/// written when any of them does not open under `old` (`Undecryptable`,
/// `SettingUndecryptable`), or when the keys changed meanwhile (`Changed`: run it again). A
/// plain-text secret of an older release is sealed under `old` first, then moved with the
/// rest.
pub fn rewrap(store: &dyn KeyStore, old: &[u8; 32], new: &[u8; 32]) -> Result<Rewrapped, KeyError> {
    seal_plain_secret(store, old)?;
    let mut reseal = Reseal::default();
    for key in store.signing_keys().map_err(KeyError::Store)? {
        let seed = decrypt_private_key(old, &key.kid, &key.private_key)?;
        let new_private_key =
            encrypt_private_key(new, &key.kid, &seed).map_err(|_| KeyError::Sealing)?;
        reseal.signing_keys.push(ResealedKey {
            kid: key.kid,
            old_private_key: key.private_key,
            new_private_key,
        });
    }
    for name in SEALED_SETTINGS {
        let Some(old_value) = store.setting(name).map_err(KeyError::Store)? else {
            continue;
        };
        let secret = open_setting(old, name, &old_value)?;
        reseal.settings.push(ResealedSetting {
            key: name.to_owned(),
            new_value: seal_setting(new, name, &secret)?,
            old_value,
        });
    }
    if !store.reseal(&reseal).map_err(KeyError::Store)? {
        return Err(KeyError::Changed);
    }
    Ok(Rewrapped {
        signing_keys: reseal.signing_keys.len(),
        secrets: reseal.settings.len(),
    })
}
