//! Queued mail at rest (issue 13): the bodies carry links with one-time tokens, so the queue
//! keeps each message sealed (ChaCha20-Poly1305) under a key derived from the secret every
//! instance shares. A copy of the database alone reads no link. Rotating that secret makes
//! the messages still queued unreadable: they are dropped, and logged, by the sender.

use super::csrf::derived_key;
use super::sealed::{open, seal};
use crate::config::Signing;
use crate::error::Error;
use crate::mail::Mail;

/// Domain separation of the derived key.
const KEY_LABEL: &[u8] = b"auth-toolkit mail queue key v1";
/// Associated data of every sealed message.
const NAME: &[u8] = b"queued-mail";

/// The key queued messages are sealed with (no `Debug` of its bytes).
pub struct MailSealKey([u8; 32]);

impl std::fmt::Debug for MailSealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MailSealKey(<redacted>)")
    }
}

impl MailSealKey {
    /// Derives the key from the signing secret the instances share.
    pub fn derive(signing: &Signing) -> Self {
        Self(derived_key(signing, KEY_LABEL))
    }

    /// The message sealed for the queue.
    pub fn seal(&self, mail: &Mail) -> Result<Vec<u8>, Error> {
        let plain = serde_json::to_vec(mail).map_err(|_| Error::Internal)?;
        seal(&self.0, NAME, &plain)
    }

    /// The message of a sealed payload; `None` under another key or when altered.
    pub fn open(&self, sealed: &[u8]) -> Option<Mail> {
        let plain = open(&self.0, NAME, sealed)?;
        serde_json::from_slice(&plain).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_message_opens_only_under_its_key() {
        let key = MailSealKey::derive(&Signing::Hs256 {
            secret: vec![1; 32],
        });
        let mail = Mail {
            to: "a@example.com".into(),
            subject: "s".into(),
            text: "https://app/?token=secret".into(),
            html: None,
        };
        let sealed = key.seal(&mail).unwrap();
        assert!(!String::from_utf8_lossy(&sealed).contains("secret"));
        assert_eq!(key.open(&sealed), Some(mail));
        let other = MailSealKey::derive(&Signing::Hs256 {
            secret: vec![2; 32],
        });
        assert_eq!(other.open(&sealed), None);
        assert_eq!(key.open(&sealed[..10]), None);
    }
}
