//! Just enough JWT handling to inspect access tokens and build tampered copies, signed with
//! HMAC keys of the suite's choosing. Only when the target gives its HS256 secret can the
//! suite sign a token the server would accept; the cases use that to vary one claim at a
//! time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Hmac;
use serde_json::Value;
use sha2::{Sha256, Sha384, Sha512};

/// The HMAC algorithms of JWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HmacAlg {
    /// HMAC-SHA256.
    Hs256,
    /// HMAC-SHA384.
    Hs384,
    /// HMAC-SHA512.
    Hs512,
}

impl HmacAlg {
    /// The `alg` header value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            HmacAlg::Hs256 => "HS256",
            HmacAlg::Hs384 => "HS384",
            HmacAlg::Hs512 => "HS512",
        }
    }

    /// The MAC of `input` under `key` (any length, the empty key included).
    pub(crate) fn mac(self, key: &[u8], input: &[u8]) -> Result<Vec<u8>, String> {
        fn run<M: hmac::Mac + hmac::digest::KeyInit>(
            key: &[u8],
            input: &[u8],
        ) -> Result<Vec<u8>, String> {
            let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(key)
                .map_err(|e| format!("HMAC refused the key: {e}"))?;
            mac.update(input);
            Ok(mac.finalize().into_bytes().to_vec())
        }
        match self {
            HmacAlg::Hs256 => run::<Hmac<Sha256>>(key, input),
            HmacAlg::Hs384 => run::<Hmac<Sha384>>(key, input),
            HmacAlg::Hs512 => run::<Hmac<Sha512>>(key, input),
        }
    }
}

/// A compact JWS split into its three base64url segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Jwt {
    header: String,
    claims: String,
    signature: String,
}

impl Jwt {
    /// Splits `token` into header, claims and signature.
    pub(crate) fn parse(token: &str) -> Result<Self, String> {
        let parts: Vec<&str> = token.split('.').collect();
        match parts.as_slice() {
            [header, claims, signature] => Ok(Self {
                header: (*header).to_owned(),
                claims: (*claims).to_owned(),
                signature: (*signature).to_owned(),
            }),
            _ => Err(format!(
                "a JWT has 3 dot-separated segments, this token has {}",
                parts.len()
            )),
        }
    }

    /// The decoded header.
    pub(crate) fn header(&self) -> Result<Value, String> {
        decode_json(&self.header, "header")
    }

    /// The decoded claims.
    pub(crate) fn claims(&self) -> Result<Value, String> {
        decode_json(&self.claims, "claims")
    }

    /// The same token with another header (signature unchanged).
    pub(crate) fn with_header(self, header: &Value) -> Self {
        Self {
            header: encode_json(header),
            ..self
        }
    }

    /// The same token with other claims (signature unchanged).
    pub(crate) fn with_claims(self, claims: &Value) -> Self {
        Self {
            claims: encode_json(claims),
            ..self
        }
    }

    /// The same token with an empty signature, as `alg: none` tokens have.
    pub(crate) fn without_signature(self) -> Self {
        Self {
            signature: String::new(),
            ..self
        }
    }

    /// The same token with one bit of the signature flipped.
    pub(crate) fn with_flipped_signature(self) -> Result<Self, String> {
        let mut bytes = URL_SAFE_NO_PAD
            .decode(&self.signature)
            .map_err(|e| format!("signature is not base64url: {e}"))?;
        let first = bytes.first_mut().ok_or("signature is empty")?;
        *first ^= 0x01;
        Ok(Self {
            signature: URL_SAFE_NO_PAD.encode(bytes),
            ..self
        })
    }

    /// The same header and claims, signed with `alg` under `key`; the header's `alg` is set
    /// to `alg`'s name first (the header must be a JSON object).
    pub(crate) fn signed(self, alg: HmacAlg, key: &[u8]) -> Result<Self, String> {
        let mut header = self.header()?;
        let fields = header
            .as_object_mut()
            .ok_or("the JWT header is not a JSON object")?;
        fields.insert("alg".to_owned(), Value::from(alg.name()));
        self.with_header(&header).signed_as_is(alg, key)
    }

    /// The same header (unchanged, whatever its `alg`) and claims, with a signature computed
    /// with `alg` under `key`.
    pub(crate) fn signed_as_is(self, alg: HmacAlg, key: &[u8]) -> Result<Self, String> {
        let input = format!("{}.{}", self.header, self.claims);
        let mac = alg.mac(key, input.as_bytes())?;
        Ok(Self {
            signature: URL_SAFE_NO_PAD.encode(mac),
            ..self
        })
    }

    /// The compact serialization.
    pub(crate) fn encode(&self) -> String {
        format!("{}.{}.{}", self.header, self.claims, self.signature)
    }

    /// The header and claims segments only: a token of two segments.
    pub(crate) fn encode_unsigned_two_segments(&self) -> String {
        format!("{}.{}", self.header, self.claims)
    }
}

fn decode_json(segment: &str, what: &str) -> Result<Value, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|e| format!("JWT {what} is not base64url: {e}"))?;
    serde_json::from_slice(&bytes).map_err(|e| format!("JWT {what} is not JSON: {e}"))
}

fn encode_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn token() -> String {
        format!(
            "{}.{}.{}",
            encode_json(&json!({"alg": "HS256", "typ": "JWT"})),
            encode_json(&json!({"sub": "u", "exp": 10})),
            URL_SAFE_NO_PAD.encode([0xAA, 0xBB]),
        )
    }

    #[test]
    fn parses_and_round_trips() {
        let jwt = Jwt::parse(&token()).unwrap();
        assert_eq!(jwt.header().unwrap()["alg"], "HS256");
        assert_eq!(jwt.claims().unwrap()["exp"], 10);
        assert_eq!(jwt.encode(), token());
    }

    #[test]
    fn rejects_wrong_segment_counts_and_bad_segments() {
        assert!(Jwt::parse("a.b").is_err());
        assert!(Jwt::parse("a.b.c.d").is_err());
        assert!(Jwt::parse("!!.b.c").unwrap().header().is_err());
    }

    #[test]
    fn tampering_changes_only_the_chosen_segment() {
        let original = Jwt::parse(&token()).unwrap();
        let [h, c, s] = segments(&original);

        let claims = original.clone().with_claims(&json!({"sub": "other"}));
        assert_eq!(claims.claims().unwrap()["sub"], "other");
        assert_eq!(
            segments(&claims),
            [h.clone(), segments(&claims)[1].clone(), s.clone()]
        );

        let header = original.clone().with_header(&json!({"alg": "none"}));
        assert_eq!(segments(&header)[1..], [c.clone(), s.clone()]);

        let flipped = original.clone().with_flipped_signature().unwrap();
        assert_eq!(segments(&flipped)[2], URL_SAFE_NO_PAD.encode([0xAB, 0xBB]));
        assert_eq!(segments(&flipped)[..2], [h, c]);

        assert!(original.without_signature().encode().ends_with('.'));
    }

    #[test]
    fn hmac_signatures_match_rfc_4231() {
        // RFC 4231, test case 2: key "Jefe".
        let data = b"what do ya want for nothing?";
        let hex = |bytes: Vec<u8>| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
        assert_eq!(
            hex(HmacAlg::Hs256.mac(b"Jefe", data).unwrap()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(HmacAlg::Hs384.mac(b"Jefe", data).unwrap().len(), 48);
        assert_eq!(
            hex(HmacAlg::Hs512.mac(b"Jefe", data).unwrap())[..32],
            *"164b7a7bfcf819e2e395fbe73b56e0a3"
        );
        assert_eq!(HmacAlg::Hs256.mac(b"", data).unwrap().len(), 32);
    }

    #[test]
    fn signing_sets_alg_and_signs_header_and_claims() {
        // The example token of RFC 7515, appendix A.1, re-signed.
        let key = URL_SAFE_NO_PAD
            .decode(
                "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow",
            )
            .unwrap();
        let header = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9";
        let claims = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let jwt = Jwt::parse(&format!("{header}.{claims}.x")).unwrap();
        let signed = jwt.clone().signed_as_is(HmacAlg::Hs256, &key).unwrap();
        assert_eq!(
            signed.signature,
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        let hs512 = jwt.signed(HmacAlg::Hs512, &key).unwrap();
        assert_eq!(hs512.header().unwrap()["alg"], "HS512");
        assert_eq!(hs512.header().unwrap()["typ"], "JWT");
        assert_eq!(URL_SAFE_NO_PAD.decode(&hs512.signature).unwrap().len(), 64);
        assert_eq!(hs512.encode_unsigned_two_segments().split('.').count(), 2);
    }

    fn segments(jwt: &Jwt) -> [String; 3] {
        [
            jwt.header.clone(),
            jwt.claims.clone(),
            jwt.signature.clone(),
        ]
    }
}
