//! The suite's own TOTP (RFC 6238 over RFC 4226: HMAC-SHA-1, 6 digits, 30-second steps),
//! written from the RFCs and independent of the server's implementation, so a case that
//! enables TOTP proves the server computes codes as every authenticator app does. Checked
//! against the RFC's test vectors and, where Debian's `oathtool` is installed, against it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac as _};
use sha1::Sha1;

/// Seconds per step.
pub(crate) const STEP: u64 = 30;

/// How long before a step ends the suite stops sending the previous step's code: a request
/// sent later could reach the server after the boundary, where that code is two steps old.
const PREVIOUS_STEP_MARGIN: Duration = Duration::from_secs(10);

/// A TOTP secret as an authenticator app holds it, and the steps the suite has spent on it.
pub(crate) struct Totp {
    key: Vec<u8>,
    /// The lowest step not yet sent: the server takes each step once and only ascending.
    next_step: AtomicU64,
}

impl Totp {
    /// The secret from its base32 form (RFC 4648, padding and case ignored); `None` for text
    /// that is not base32.
    pub(crate) fn from_base32(text: &str) -> Option<Self> {
        let mut bits: u64 = 0;
        let mut count = 0u32;
        let mut key = Vec::new();
        for c in text.trim_end_matches('=').chars() {
            let value = match c.to_ascii_uppercase() {
                c @ 'A'..='Z' => c as u64 - 'A' as u64,
                c @ '2'..='7' => c as u64 - '2' as u64 + 26,
                _ => return None,
            };
            bits = (bits << 5) | value;
            count += 5;
            if count >= 8 {
                count -= 8;
                key.push((bits >> count) as u8);
                bits &= (1 << count) - 1;
            }
        }
        (!key.is_empty()).then_some(Self {
            key,
            next_step: AtomicU64::new(0),
        })
    }

    /// The code of time step `step` (RFC 4226's HOTP of the counter).
    pub(crate) fn code_at_step(&self, step: u64) -> String {
        let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(&self.key) else {
            unreachable!("HMAC takes keys of every length")
        };
        mac.update(&step.to_be_bytes());
        let digest = mac.finalize().into_bytes();
        let offset = usize::from(digest[19] & 0x0f);
        let binary = (u32::from(digest[offset] & 0x7f) << 24)
            | (u32::from(digest[offset + 1]) << 16)
            | (u32::from(digest[offset + 2]) << 8)
            | u32::from(digest[offset + 3]);
        format!("{:06}", binary % 1_000_000)
    }

    /// A code the server must take, sent now: of the steps it accepts (now's, one before, one
    /// after), the lowest this authenticator has not sent yet. The previous step's code only
    /// while the boundary is more than [`PREVIOUS_STEP_MARGIN`] away (a request may land after
    /// it); when the next step's code is spent too, this waits for the boundary.
    pub(crate) async fn fresh_code(&self) -> String {
        loop {
            let (now, into_step) = clock();
            if let Some(step) = safe_step(self.next_step.load(Ordering::SeqCst), now, into_step) {
                self.next_step.store(step + 1, Ordering::SeqCst);
                return self.code_at_step(step);
            }
            tokio::time::sleep(Duration::from_secs(STEP) - into_step).await;
        }
    }

    /// A six-digit string the server must refuse: the code of no step within two of now's.
    pub(crate) fn wrong_code(&self) -> String {
        let (now, _) = clock();
        let near: Vec<String> = (now - 2..=now + 2)
            .map(|step| self.code_at_step(step))
            .collect();
        (0..10u32)
            .map(|digit| digit.to_string().repeat(6))
            .find(|candidate| !near.contains(candidate))
            .unwrap_or_else(|| unreachable!("five steps cannot have ten codes"))
    }
}

/// The lowest step from `next` on whose code, sent `into_step` into step `now`, the server
/// takes however late in its window it arrives; `None` until the next boundary.
fn safe_step(next: u64, now: u64, into_step: Duration) -> Option<u64> {
    let earliest = if into_step + PREVIOUS_STEP_MARGIN < Duration::from_secs(STEP) {
        now - 1
    } else {
        now
    };
    let step = next.max(earliest);
    (step <= now + 1).then_some(step)
}

/// The current time step and how far into it the clock is.
fn clock() -> (u64, Duration) {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let step = since_epoch.as_secs() / STEP;
    (step, since_epoch - Duration::from_secs(step * STEP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_test_vectors() {
        // Appendix B, SHA-1 ("12345678901234567890"), last six digits.
        let totp = Totp {
            key: b"12345678901234567890".to_vec(),
            next_step: AtomicU64::new(0),
        };
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
            (20_000_000_000, "353130"),
        ] {
            assert_eq!(totp.code_at_step(time / STEP), code, "T = {time}");
        }
    }

    #[test]
    fn codes_sent_keep_clear_of_a_step_boundary() {
        let early = Duration::from_secs(5);
        let late = Duration::from_secs(25);
        // Early in a step: the previous step's code, then now's, then the next one's.
        assert_eq!(safe_step(0, 100, early), Some(99));
        assert_eq!(safe_step(100, 100, early), Some(100));
        assert_eq!(safe_step(101, 100, early), Some(101));
        assert_eq!(safe_step(102, 100, early), None);
        // Late in a step the previous step's code would land two steps old.
        assert_eq!(safe_step(0, 100, late), Some(100));
        assert_eq!(safe_step(99, 100, late), Some(100));
    }

    #[test]
    fn base32_decodes_as_rfc_4648_says() {
        let totp = Totp::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(totp.key, b"12345678901234567890");
        assert!(Totp::from_base32("not base32!").is_none());
    }

    /// Debian's `oathtool` agrees, where it is installed (CI installs it).
    #[test]
    fn oathtool_agrees_where_installed() {
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        let totp = Totp::from_base32(secret).unwrap();
        for time in [0u64, 59, 1_111_111_109, 1_700_000_000, 2_000_000_000] {
            let output = std::process::Command::new("oathtool")
                .args(["--totp", "--base32", "--now"])
                .arg(format!("@{time}"))
                .arg(secret)
                .output();
            let Ok(output) = output else {
                eprintln!("oathtool not installed: skipped");
                return;
            };
            assert!(output.status.success(), "oathtool failed: {output:?}");
            let code = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            assert_eq!(totp.code_at_step(time / STEP), code, "T = {time}");
        }
    }
}
