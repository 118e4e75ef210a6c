//! Just enough JWT handling to inspect access tokens and build tampered copies. The suite
//! never holds a signing key, so every token it builds must be refused.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

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

    /// The compact serialization.
    pub(crate) fn encode(&self) -> String {
        format!("{}.{}.{}", self.header, self.claims, self.signature)
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

    fn segments(jwt: &Jwt) -> [String; 3] {
        [
            jwt.header.clone(),
            jwt.claims.clone(),
            jwt.signature.clone(),
        ]
    }
}
