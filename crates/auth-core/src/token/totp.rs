//! Second-factor secrets (issue 15): TOTP per RFC 6238 (HMAC-SHA-1, 6 digits, 30-second
//! steps, codes of the step before and after accepted too, for clock drift), the TOTP secret
//! sealed at rest, and recovery codes.
//!
//! The codes themselves come from `totp-rs`; which step a code matched is ours to know, since
//! the store refuses a step once used ([`crate::store::MfaStore::use_totp_step`]), so a code
//! works once even within its window.
//!
//! At rest a TOTP secret is sealed (ChaCha20-Poly1305), bound to its user: a copy of the
//! database alone yields no secret, and a sealed secret moved to another user's row does not
//! open. The key: with EdDSA a random one generated once and kept sealed under the
//! key-encryption key (`SEALED_TOTP_KEY_SETTING`; a KEK rewrap moves it), with HS256 one
//! derived from the HS256 secret (the generated one never changes; replacing a configured
//! secret voids every TOTP factor, whose owners then sign in with a recovery code or a
//! passkey and set TOTP up again).

use subtle::ConstantTimeEq as _;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use super::csrf::derived_key;
use super::sealed::{open, seal};
use super::{TokenHash, hash_token};
use crate::config::Signing;
use crate::error::Error;

/// Seconds per TOTP step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Bytes of a generated secret (160 bits, RFC 4226's recommendation).
const SECRET_LEN: usize = 20;
/// Recovery codes issued at a time.
pub const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code, without its dash (50 bits of base32).
const RECOVERY_CODE_CHARS: usize = 10;
/// The alphabet of recovery codes: lower-case RFC 4648 base32.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
/// Domain separation of the sealing key.
const KEY_LABEL: &[u8] = b"auth-toolkit totp secret key v1";

/// A TOTP shared secret (no `Debug` of its bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(Vec<u8>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret(<redacted>)")
    }
}

impl TotpSecret {
    /// A new random secret.
    pub fn generate() -> Self {
        Self(rand::random::<[u8; SECRET_LEN]>().to_vec())
    }

    /// A secret of these bytes (test vectors, an opened seal).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    fn totp(&self, issuer: &str, account: &str) -> TOTP {
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            1,
            STEP_SECS.unsigned_abs(),
            self.0.clone(),
            Some(issuer.to_owned()),
            account.to_owned(),
        )
    }

    /// The secret in base32 without padding, as authenticator apps take it typed in.
    pub fn base32(&self) -> String {
        self.totp("", "").get_secret_base32()
    }

    /// The `otpauth://totp/…` URI of the Key Uri Format (what a QR code carries).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> String {
        self.totp(issuer, account).get_url()
    }

    /// The code of a time step.
    pub fn code_at(&self, step: i64) -> String {
        let time = u64::try_from(step.saturating_mul(STEP_SECS)).unwrap_or(0);
        self.totp("", "").generate(time)
    }

    /// The step, of the one `now` falls in and the one on each side, whose code is `code`;
    /// every candidate is compared in constant time. `None` for a wrong or malformed code.
    pub fn matching_step(&self, code: &str, now: i64) -> Option<i64> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let current = now.div_euclid(STEP_SECS);
        let mut matched = None;
        for step in [current - 1, current, current + 1] {
            let expected = self.code_at(step);
            if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
                matched = Some(step);
            }
        }
        matched
    }
}

/// The key TOTP secrets are sealed with (no `Debug` of its bytes).
pub struct TotpSealKey([u8; 32]);

impl std::fmt::Debug for TotpSealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSealKey(<redacted>)")
    }
}

/// The associated data binding a sealed secret to its user.
fn sealed_name(user_id: Uuid) -> Vec<u8> {
    let mut name = b"totp-secret:".to_vec();
    name.extend_from_slice(user_id.as_bytes());
    name
}

impl TotpSealKey {
    /// Derives the key from the signing secret the instances share (HS256).
    pub fn derive(signing: &Signing) -> Self {
        Self(derived_key(signing, KEY_LABEL))
    }

    /// The key kept in the database (EdDSA, see [`super::stored_totp_key`]).
    pub fn from_stored(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// The user's secret, sealed.
    pub fn seal(&self, user_id: Uuid, secret: &TotpSecret) -> Result<Vec<u8>, Error> {
        seal(&self.0, &sealed_name(user_id), &secret.0)
    }

    /// The user's secret; `None` under another key, for another user, or when altered.
    pub fn open(&self, user_id: Uuid, sealed: &[u8]) -> Option<TotpSecret> {
        open(&self.0, &sealed_name(user_id), sealed).map(TotpSecret)
    }
}

/// A new set of recovery codes, each `xxxxx-xxxxx` (50 random bits), shown to the user once.
pub fn generate_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes: [u8; RECOVERY_CODE_CHARS] = rand::random();
            let chars: String = bytes
                .iter()
                .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b & 31)]))
                .collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The stored hash of a recovery code as a user may type it (any letter case, with or
/// without the dash and spaces); `None` when it cannot be one. The codes carry 50 random
/// bits and each works once, so SHA-256 suffices (no password hash needed).
pub fn recovery_code_hash(typed: &str) -> Option<TokenHash> {
    let normal: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let valid = normal.len() == RECOVERY_CODE_CHARS
        && normal.bytes().all(|b| RECOVERY_ALPHABET.contains(&b));
    valid.then(|| hash_token(&normal))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B's SHA-1 secret: "12345678901234567890".
    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn codes_match_rfc_6238_test_vectors() {
        // Appendix B, SHA-1, the last six of the eight digits given there.
        let vectors = [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ];
        let secret = rfc_secret();
        for (time, code) in vectors {
            assert_eq!(secret.code_at(time / STEP_SECS), code, "T = {time}");
            assert_eq!(secret.matching_step(code, time), Some(time / STEP_SECS));
        }
    }

    #[test]
    fn a_code_matches_its_step_and_the_neighbours_only() {
        let secret = TotpSecret::generate();
        let now = 1_700_000_015;
        let step = now / STEP_SECS;
        for offset in [-1, 0, 1] {
            let code = secret.code_at(step + offset);
            assert_eq!(secret.matching_step(&code, now), Some(step + offset));
        }
        for far in [-2, 2] {
            let code = secret.code_at(step + far);
            // A far code may collide with a near one by chance (1 in 10^6); skip then.
            if (-1..=1).all(|o| secret.code_at(step + o) != code) {
                assert_eq!(secret.matching_step(&code, now), None);
            }
        }
        for malformed in ["", "12345", "1234567", "12a456", "１２３４５６"] {
            assert_eq!(secret.matching_step(malformed, now), None);
        }
    }

    #[test]
    fn the_uri_follows_the_key_uri_format() {
        let uri = rfc_secret().otpauth_uri("Example Co", "ada@example.com");
        assert!(
            uri.starts_with("otpauth://totp/Example%20Co:ada%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=Example%20Co"), "{uri}");
        assert_eq!(rfc_secret().base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn a_sealed_secret_opens_only_for_its_user_under_its_key() {
        let key = TotpSealKey::derive(&Signing::Hs256 {
            secret: vec![1; 32],
        });
        let (ada, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let secret = TotpSecret::generate();
        let sealed = key.seal(ada, &secret).unwrap();
        assert_eq!(key.open(ada, &sealed), Some(secret));
        assert_eq!(key.open(bob, &sealed), None);
        let other = TotpSealKey::derive(&Signing::Hs256 {
            secret: vec![2; 32],
        });
        assert_eq!(other.open(ada, &sealed), None);
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_as_typed() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(code.len(), 11);
        let hash = recovery_code_hash(code).unwrap();
        assert_eq!(recovery_code_hash(&code.to_uppercase()), Some(hash));
        assert_eq!(recovery_code_hash(&code.replace('-', "")), Some(hash));
        assert_eq!(recovery_code_hash("short"), None);
        assert_eq!(recovery_code_hash("0000000000"), None);
    }
}
