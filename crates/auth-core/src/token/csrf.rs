//! CSRF tokens of cookie sessions (issue 12, rule 2): one token per
//! session, `HMAC-SHA256(key, session id)`, so it is the same in every tab and on every
//! instance, needs no column, and dies with its session. The key is derived from the secret
//! every instance already shares: the HS256 secret, or with EdDSA the key-encryption key.
//! Rotating that secret changes every CSRF token; a page then gets its new one from a refresh.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use uuid::Uuid;

use crate::config::Signing;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation of the derived key from every other use of the shared secret.
const KEY_LABEL: &[u8] = b"auth-toolkit csrf key v1";
/// Domain separation of the per-session token.
const TOKEN_LABEL: &[u8] = b"csrf-session:";

/// The key CSRF tokens are made and checked with (no `Debug` of its bytes).
pub struct CsrfKey([u8; 32]);

impl std::fmt::Debug for CsrfKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfKey(<redacted>)")
    }
}

/// An HMAC-SHA256 keyed with `key` (HMAC takes keys of any length, so this cannot fail).
fn mac(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// A key of its own for one use (`label`), derived from the secret every instance shares:
/// the HS256 secret, or with EdDSA the key-encryption key.
pub(crate) fn derived_key(signing: &Signing, label: &[u8]) -> [u8; 32] {
    let base: &[u8] = match signing {
        Signing::Hs256 { secret } => secret,
        Signing::EdDsa { key_encryption_key } => key_encryption_key,
    };
    let mut derived = mac(base);
    derived.update(label);
    derived.finalize().into_bytes().into()
}

impl CsrfKey {
    /// Derives the key from the signing secret the instances share.
    pub fn derive(signing: &Signing) -> Self {
        Self(derived_key(signing, KEY_LABEL))
    }

    fn session_mac(&self, session_id: Uuid) -> HmacSha256 {
        let mut token = mac(&self.0);
        token.update(TOKEN_LABEL);
        token.update(session_id.as_bytes());
        token
    }

    /// The CSRF token of a session: 43 URL-safe characters.
    pub fn token_for(&self, session_id: Uuid) -> String {
        URL_SAFE_NO_PAD.encode(self.session_mac(session_id).finalize().into_bytes())
    }

    /// Whether `presented` is the session's token, compared in constant time.
    pub fn verify(&self, session_id: Uuid, presented: &str) -> bool {
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(presented.trim()) else {
            return false;
        };
        self.session_mac(session_id).verify_slice(&bytes).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_bound_to_its_session_and_key() {
        let key = CsrfKey::derive(&Signing::Hs256 {
            secret: vec![7; 32],
        });
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let token = key.token_for(a);
        assert_eq!(token.len(), 43);
        assert!(key.verify(a, &token));
        assert!(!key.verify(b, &token));
        assert!(!key.verify(a, "not base64 !"));
        assert!(!key.verify(a, ""));
        let other = CsrfKey::derive(&Signing::EdDsa {
            key_encryption_key: [8; 32],
        });
        assert!(!other.verify(a, &token));
        assert_eq!(format!("{key:?}"), "CsrfKey(<redacted>)");
    }
}
