//! Signing, verification, key handling, secrets at rest and opaque tokens.

use std::sync::Arc;

use uuid::Uuid;

use jsonwebtoken::{Algorithm, EncodingKey, Header};

use super::keys::{decrypt_private_key, pkcs8_ed25519};
use super::*;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Signing};
use crate::store::{KeyStore as _, SigningKeyRecord};
use crate::testing::MemoryStore;

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

// Secrets at rest: sealing under the key-encryption key, the stored HS256 secret and its
// upgrade from plain text, retiring keys and re-sealing under a new key-encryption key, on
// the memory store.

const KEK: [u8; 32] = [3; 32];
const OTHER_KEK: [u8; 32] = [4; 32];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn sealed_settings_open_only_under_their_key_and_name() {
    let sealed = seal_setting(&KEK, "a", b"the secret").unwrap();
    assert_eq!(open_setting(&KEK, "a", &sealed).unwrap(), b"the secret");
    assert!(!sealed.contains("the secret") && !sealed.contains(&hex(b"the secret")));
    // A fresh nonce each time.
    assert_ne!(seal_setting(&KEK, "a", b"the secret").unwrap(), sealed);

    let refused = |key: &[u8; 32], name: &str, value: &str| {
        matches!(
            open_setting(key, name, value),
            Err(KeyError::SettingUndecryptable(n)) if n == name
        )
    };
    assert!(refused(&OTHER_KEK, "a", &sealed), "another key");
    assert!(refused(&KEK, "b", &sealed), "another name");
    let mut tampered = sealed.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert!(refused(&KEK, "a", &tampered), "altered");
    for garbage in [
        "",
        "sealed-v1:",
        "sealed-v1:!!",
        "plain text",
        "sealed-v2:AAAA",
    ] {
        assert!(refused(&KEK, "a", garbage), "{garbage:?}");
    }
    // The message names the setting and the key-encryption key, never a value.
    let message = open_setting(&OTHER_KEK, "a", &sealed)
        .unwrap_err()
        .to_string();
    assert!(message.contains("key-encryption key"), "{message}");
}

#[test]
fn the_generated_secret_is_sealed_and_stable() {
    let store = MemoryStore::new();
    let secret = stored_hs256_secret(&store, &KEK).unwrap();
    assert!(secret.len() >= crate::config::MIN_SECRET_LEN);
    assert_eq!(stored_hs256_secret(&store, &KEK).unwrap(), secret);

    let stored = store.setting(SEALED_JWT_SECRET_SETTING).unwrap().unwrap();
    assert!(!stored.contains(&hex(&secret)));
    assert_eq!(
        open_setting(&KEK, SEALED_JWT_SECRET_SETTING, &stored).unwrap(),
        secret
    );
    assert_eq!(store.setting(PLAIN_JWT_SECRET_SETTING).unwrap(), None);
    assert!(matches!(
        stored_hs256_secret(&store, &OTHER_KEK),
        Err(KeyError::SettingUndecryptable(_))
    ));
    // The wrong key changed nothing.
    assert_eq!(
        store.setting(SEALED_JWT_SECRET_SETTING).unwrap(),
        Some(stored)
    );
}

#[test]
fn a_plain_secret_of_an_older_release_is_sealed_then_deleted() {
    let store = MemoryStore::new();
    let plain = hex(&[9; 32]);
    store
        .get_or_init_setting(PLAIN_JWT_SECRET_SETTING, &plain)
        .unwrap();
    // The older release signed with the row's text.
    assert_eq!(stored_hs256_secret(&store, &KEK).unwrap(), plain.as_bytes());
    assert_eq!(store.setting(PLAIN_JWT_SECRET_SETTING).unwrap(), None);
    assert_eq!(stored_hs256_secret(&store, &KEK).unwrap(), plain.as_bytes());
}

#[test]
fn a_plain_secret_is_kept_until_a_sealed_one_opens() {
    let store = MemoryStore::new();
    let sealed = stored_hs256_secret(&store, &KEK).unwrap();
    // An older release started again and wrote a plain secret of its own.
    store
        .get_or_init_setting(PLAIN_JWT_SECRET_SETTING, &hex(&[1; 32]))
        .unwrap();
    assert!(stored_hs256_secret(&store, &OTHER_KEK).is_err());
    assert!(store.setting(PLAIN_JWT_SECRET_SETTING).unwrap().is_some());
    // Under the right key the sealed secret wins and the plain row goes.
    assert_eq!(stored_hs256_secret(&store, &KEK).unwrap(), sealed);
    assert_eq!(store.setting(PLAIN_JWT_SECRET_SETTING).unwrap(), None);
}

/// A store with an older inactive key and an active one, sealed under `KEK`.
fn store_with_two_keys() -> (MemoryStore, String, String) {
    let store = MemoryStore::new();
    let old = generate_signing_key(&KEK, 1, true).unwrap();
    let active = generate_signing_key(&KEK, 2, true).unwrap();
    store.add_signing_key(&old).unwrap();
    store.add_signing_key(&active).unwrap();
    (store, old.kid, active.kid)
}

#[test]
fn only_inactive_keys_are_retired() {
    let (store, old, active) = store_with_two_keys();
    assert!(matches!(
        retire_signing_key(&store, &active),
        Err(KeyError::ActiveKey(kid)) if kid == active
    ));
    assert!(matches!(
        retire_signing_key(&store, "ed-unknown"),
        Err(KeyError::UnknownKey(kid)) if kid == "ed-unknown"
    ));
    retire_signing_key(&store, &old).unwrap();
    let kids: Vec<String> = store
        .signing_keys()
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, vec![active]);
    assert!(matches!(
        retire_signing_key(&store, &old),
        Err(KeyError::UnknownKey(_))
    ));
}

#[test]
fn rewrap_moves_every_sealed_secret_to_the_new_key() {
    let (store, _, _) = store_with_two_keys();
    let secret = stored_hs256_secret(&store, &KEK).unwrap();
    let before = store.signing_keys().unwrap();

    // A wrong current key changes nothing.
    assert!(matches!(
        rewrap(&store, &OTHER_KEK, &[5; 32]),
        Err(KeyError::Undecryptable(_))
    ));
    assert_eq!(store.signing_keys().unwrap(), before);

    let done = rewrap(&store, &KEK, &OTHER_KEK).unwrap();
    assert_eq!(
        done,
        Rewrapped {
            signing_keys: 2,
            secrets: 1
        }
    );
    for key in store.signing_keys().unwrap() {
        let seed = decrypt_private_key(&OTHER_KEK, &key.kid, &key.private_key).unwrap();
        let old = before.iter().find(|k| k.kid == key.kid).unwrap();
        assert_eq!(
            decrypt_private_key(&KEK, &old.kid, &old.private_key).unwrap(),
            seed
        );
        assert!(decrypt_private_key(&KEK, &key.kid, &key.private_key).is_err());
        assert_eq!((key.active, &key.public_key), (old.active, &old.public_key));
    }
    assert_eq!(stored_hs256_secret(&store, &OTHER_KEK).unwrap(), secret);
    assert!(stored_hs256_secret(&store, &KEK).is_err());
}

#[test]
fn rewrap_seals_a_plain_secret_too_and_needs_nothing_stored() {
    let empty = MemoryStore::new();
    let nothing = Rewrapped {
        signing_keys: 0,
        secrets: 0,
    };
    assert_eq!(rewrap(&empty, &KEK, &OTHER_KEK).unwrap(), nothing);

    let store = MemoryStore::new();
    let plain = hex(&[7; 32]);
    store
        .get_or_init_setting(PLAIN_JWT_SECRET_SETTING, &plain)
        .unwrap();
    assert_eq!(rewrap(&store, &KEK, &OTHER_KEK).unwrap().secrets, 1);
    assert_eq!(store.setting(PLAIN_JWT_SECRET_SETTING).unwrap(), None);
    assert_eq!(
        stored_hs256_secret(&store, &OTHER_KEK).unwrap(),
        plain.as_bytes()
    );
}

#[test]
fn rewrap_moves_the_totp_key_too() {
    let store = MemoryStore::new();
    let key = stored_totp_key(&store, &KEK).unwrap();
    assert_eq!(stored_totp_key(&store, &KEK).unwrap(), key, "made once");
    let done = rewrap(&store, &KEK, &OTHER_KEK).unwrap();
    assert_eq!(done.secrets, 1);
    assert_eq!(stored_totp_key(&store, &OTHER_KEK).unwrap(), key);
    assert!(stored_totp_key(&store, &KEK).is_err());
}
