//! The suite's own TOTP (RFC 6238 over RFC 4226: HMAC-SHA-1, 6 digits, 30-second steps),
//! written from the RFCs and independent of the server's implementation, so a case that
//! enables TOTP proves the server computes codes as every authenticator app does. Checked
//! against the RFC's test vectors and, where Debian's `oathtool` is installed, against it.

use hmac::{Hmac, Mac as _};
use sha1::Sha1;

/// Seconds per step.
pub(crate) const STEP: u64 = 30;

/// A TOTP secret as an authenticator app holds it.
#[derive(Clone)]
pub(crate) struct Totp {
    key: Vec<u8>,
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
        (!key.is_empty()).then_some(Self { key })
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

    /// The code of the step `offset` steps from now's (by this machine's clock).
    pub(crate) fn code(&self, offset: i64) -> String {
        self.code_at_step(current_step().saturating_add_signed(offset))
    }
}

/// The current time step.
pub(crate) fn current_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / STEP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_test_vectors() {
        // Appendix B, SHA-1 ("12345678901234567890"), last six digits.
        let totp = Totp {
            key: b"12345678901234567890".to_vec(),
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
