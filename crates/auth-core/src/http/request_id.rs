//! The request id: the `X-Request-Id` a client or proxy sent, when it is a sane token, or
//! a fresh one. It is echoed on the answer and named by every log line of the request.

/// The longest id accepted from a client.
pub const MAX_LEN: usize = 128;

/// `given` when it is 1 to [`MAX_LEN`] characters of letters, digits and `-_.:/+=@`
/// (what proxies and tracing systems use, and nothing that could forge a log field or a
/// header); otherwise 32 fresh random hex digits.
pub fn accept_or_make(given: Option<&str>) -> String {
    match given {
        Some(id) if is_acceptable(id) => id.to_owned(),
        _ => format!("{:032x}", rand::random::<u128>()),
    }
}

fn is_acceptable(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=@".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept_and_others_replaced() {
        assert_eq!(
            accept_or_make(Some("req-1234_ab.c:d/e+f=g@h")),
            "req-1234_ab.c:d/e+f=g@h"
        );
        for bad in ["", "a b", "x\ny", "quote\"", &"a".repeat(MAX_LEN + 1), "é"] {
            let made = accept_or_make(Some(bad));
            assert_ne!(made, bad);
            assert_eq!(made.len(), 32);
            assert!(made.bytes().all(|b| b.is_ascii_hexdigit()));
        }
        assert_ne!(accept_or_make(None), accept_or_make(None));
    }
}
