//! Delivering audit events to a webhook: what delivers one (a [`Webhook`], the server's
//! HTTP client; the core knows no HTTP client) and how a body is signed.
//!
//! The audit log in the database is the record; the webhook is a copy pushed as events
//! happen, best effort: a bounded in-memory queue, one delivery at a time in order, retried
//! with backoff on a transient failure, dropped (with a warning) after the last retry, on a
//! permanent failure, or when the queue is full. Events queued when the process stops are not
//! delivered; they are still in `GET /api/v1/admin/audit`.

use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    /// Worth another try later (unreachable, timeout, 5xx, 408, 429).
    #[error("temporary webhook failure: {0}")]
    Transient(String),
    /// Will never succeed (another 4xx): the event is dropped.
    #[error("permanent webhook failure: {0}")]
    Permanent(String),
}

/// Delivers one signed body. Error texts are logged, so they must not contain the body.
pub trait Webhook: Send + Sync + 'static {
    /// POSTs `body` (one event as JSON) with `signature` (see [`sign`]) in its
    /// `X-Audit-Signature` header.
    fn deliver<'a>(
        &'a self,
        body: &'a [u8],
        signature: &'a str,
    ) -> BoxFuture<'a, Result<(), WebhookError>>;
}

/// The header a receiver checks: `sha256=` and the lower-case hex HMAC-SHA256 of the body
/// under the shared secret (compare it in constant time).
pub fn sign(key: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// The name of the header carrying [`sign`]'s value.
pub const SIGNATURE_HEADER: &str = "X-Audit-Signature";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_rfc_4231_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
