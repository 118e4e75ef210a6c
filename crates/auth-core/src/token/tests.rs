//! Signing, verification, key handling and opaque tokens.

use std::sync::Arc;

use uuid::Uuid;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::keys::{decrypt_private_key, pkcs8_ed25519};
use super::*;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Signing};
use crate::store::SigningKeyRecord;

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock::new())
}

fn signer() -> TokenSigner {
    let config = Config {
        signing: Signing::Hs256 {
            secret: vec![7; 32],
        },
        ..Config::default()
    };
    TokenSigner::new(&config, clock()).unwrap()
}

fn claims(exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        iss: "auth-server".into(),
        sub: Uuid::new_v4().to_string(),
        sid: Uuid::new_v4().to_string(),
        jti: new_jti(),
        iat: now,
        exp: now + exp_offset,
        nbf: None,
        email: "a@example.com".into(),
        roles: vec![],
        org_id: None,
    }
}

#[test]
fn round_trip() {
    let s = signer();
    let c = claims(60);
    let token = s.sign(&c).unwrap();
    let verified = s.verify(&token).unwrap();
    assert_eq!(verified.jti, c.jti);
}

#[test]
fn refuses_expired_beyond_leeway_and_wrong_issuer() {
    let s = signer();
    assert!(s.verify(&s.sign(&claims(-60)).unwrap()).is_err());
    let mut c = claims(60);
    c.iss = "someone-else".into();
    assert!(s.verify(&s.sign(&c).unwrap()).is_err());
    let mut c = claims(60);
    c.nbf = Some(c.iat + 3600);
    assert!(s.verify(&s.sign(&c).unwrap()).is_err());
}

#[test]
fn refuses_other_secret_and_tampering() {
    let s = signer();
    let other = TokenSigner::new(
        &Config {
            signing: Signing::Hs256 {
                secret: vec![8; 32],
            },
            ..Config::default()
        },
        clock(),
    )
    .unwrap();
    let token = other.sign(&claims(60)).unwrap();
    assert!(s.verify(&token).is_err());
    assert!(s.verify("a.b").is_err());
    assert!(s.verify("a.b.c.d").is_err());
}

fn eddsa() -> (TokenSigner, [u8; 32]) {
    let kek = [9u8; 32];
    let config = Config {
        signing: Signing::EdDsa {
            key_encryption_key: kek,
        },
        ..Config::default()
    };
    (TokenSigner::new(&config, clock()).unwrap(), kek)
}

#[test]
fn eddsa_signs_with_the_active_key_and_verifies_older_ones() {
    let (s, kek) = eddsa();
    let first = generate_signing_key(&kek, 1, true).unwrap();
    s.load_keys(std::slice::from_ref(&first)).unwrap();
    let old_token = s.sign(&claims(60)).unwrap();
    let header = jsonwebtoken::decode_header(&old_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some(first.kid.as_str()));

    let second = generate_signing_key(&kek, 2, true).unwrap();
    let retired = SigningKeyRecord {
        active: false,
        ..first
    };
    s.load_keys(&[second.clone(), retired]).unwrap();
    assert!(s.verify(&old_token).is_ok(), "older keys keep verifying");
    let new_token = s.sign(&claims(60)).unwrap();
    let header = jsonwebtoken::decode_header(&new_token).unwrap();
    assert_eq!(header.kid.as_deref(), Some(second.kid.as_str()));
    assert_eq!(s.jwks().unwrap()["keys"].as_array().unwrap().len(), 2);
    assert!(
        !s.jwks().unwrap().to_string().contains("\"d\""),
        "no private part"
    );
}

#[test]
fn a_remembered_token_stops_verifying_when_its_key_is_removed() {
    let (s, kek) = eddsa();
    let first = generate_signing_key(&kek, 1, true).unwrap();
    s.load_keys(std::slice::from_ref(&first)).unwrap();
    let token = s.sign(&claims(60)).unwrap();
    assert!(s.verify(&token).is_ok());
    assert!(s.verify(&token).is_ok(), "second time from the memo");
    let second = generate_signing_key(&kek, 2, true).unwrap();
    s.load_keys(std::slice::from_ref(&second)).unwrap();
    assert!(matches!(s.verify(&token), Err(VerifyError::UnknownKid)));
}

#[test]
fn validity_windows_follow_jsonwebtokens_rule() {
    let window = super::signer::ValidityWindow::for_test(1_000, Some(900));
    assert!(window.contains(950, 5));
    assert!(window.contains(1_005, 5), "within leeway");
    assert!(!window.contains(1_006, 5), "expired");
    assert!(!window.contains(894, 5), "not yet valid");
}

#[test]
fn an_expired_token_is_refused_even_after_verifying_once() {
    let clock = Arc::new(crate::testing::FixedClock::at(
        chrono::Utc::now().timestamp(),
    ));
    let config = Config {
        signing: Signing::Hs256 {
            secret: vec![7; 32],
        },
        ..Config::default()
    };
    let s = TokenSigner::new(&config, clock.clone()).unwrap();
    // Expires 4 s ago: inside the default 5 s leeway, so it verifies and is remembered.
    let token = s.sign(&claims(-4)).unwrap();
    assert!(s.verify(&token).is_ok());
    assert!(s.verify(&token).is_ok(), "from the memo");
    clock.advance(2);
    assert!(s.verify(&token).is_err(), "past the leeway, memo or not");
}

#[test]
fn eddsa_refuses_hs256_and_unknown_kids() {
    let (s, kek) = eddsa();
    let key = generate_signing_key(&kek, 1, true).unwrap();
    s.load_keys(std::slice::from_ref(&key)).unwrap();
    // HS256 signed with the public key as the secret: the classic confusion attack.
    let forged = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(60),
        &EncodingKey::from_secret(&key.public_key),
    )
    .unwrap();
    assert_eq!(s.verify(&forged), Err(VerifyError::Invalid));
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("../../etc/passwd".into());
    let other = generate_signing_key(&kek, 1, true).unwrap();
    let seed = decrypt_private_key(&kek, &other.kid, &other.private_key).unwrap();
    let token = jsonwebtoken::encode(
        &header,
        &claims(60),
        &EncodingKey::from_ed_der(&pkcs8_ed25519(&seed)),
    )
    .unwrap();
    assert_eq!(s.verify(&token), Err(VerifyError::UnknownKid));
}

#[test]
fn private_keys_need_the_right_key_encryption_key() {
    let (s, kek) = eddsa();
    let key = generate_signing_key(&kek, 1, true).unwrap();
    assert!(decrypt_private_key(&[1; 32], &key.kid, &key.private_key).is_err());
    assert!(decrypt_private_key(&kek, "other-kid", &key.private_key).is_err());
    assert!(s.load_keys(&[]).is_err(), "no active key");
}

#[test]
fn short_secret_is_refused() {
    let config = Config {
        signing: Signing::Hs256 {
            secret: vec![1; 31],
        },
        ..Config::default()
    };
    assert!(TokenSigner::new(&config, clock()).is_err());
}

#[test]
fn opaque_tokens_have_prefix_and_hash() {
    let t = OpaqueToken::generate(PERSONAL_PREFIX);
    assert!(t.secret.starts_with(PERSONAL_PREFIX));
    assert_eq!(hash_token(&t.secret), t.hash);
    assert!(secrets_equal(&t.secret, &t.secret.clone()));
    assert!(!secrets_equal(&t.secret, "x"));
}
