//! Second factors on the memory store with the fixed clock: what needs time to pass (the
//! `mfa_token`'s five minutes, TOTP steps), what needs another configuration (seed profiles'
//! password-only opt-in) and what a conformance case cannot see (the notices, the audit
//! events, the sealed secret). The wire is the conformance group `mfa`'s.

use std::sync::Arc;

use super::audit::of_kind;
use super::email_flows::take_mail;
use super::{PASSWORD, TERMS, World, client, config};
use crate::error::Error;
use crate::principal::Principal;
use crate::service::{LoginOutcome, SecondFactor};
use crate::store::MfaStore as _;
use crate::testing::MemoryStore;
use crate::token::totp::{STEP_SECS, TotpSecret};

/// `email`'s principal through a fresh login.
async fn principal(world: &World, email: &str) -> Principal {
    let grant = world.login(email).await;
    world
        .auth
        .sessions()
        .authenticate(World::bearer(&grant.tokens.access_token).as_deref())
        .await
        .expect("authenticates")
}

/// The code of the step `offset` steps from the world's now.
fn code(secret: &TotpSecret, world: &World, offset: i64) -> String {
    use crate::clock::Clock as _;
    secret.code_at(world.clock.now().div_euclid(STEP_SECS) + offset)
}

/// Enables TOTP for `email`; its secret, recovery codes and the secret's bytes.
async fn enable(world: &World, email: &str) -> (TotpSecret, Vec<String>, Vec<u8>, Principal) {
    let me = principal(world, email).await;
    let mfa = world.auth.mfa();
    let setup = mfa
        .setup_totp(
            &me,
            PASSWORD.to_owned(),
            &SecondFactor::default(),
            client(1),
        )
        .await
        .expect("setup");
    let bytes = base32_decode(&setup.secret);
    let secret = TotpSecret::from_bytes(bytes.clone());
    let codes = mfa
        .confirm_totp(&me, &code(&secret, world, -1), client(1))
        .await
        .expect("confirmed");
    (secret, codes, bytes, me)
}

/// RFC 4648 base32 without padding (the suite has its own; this one only reads ours back).
fn base32_decode(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut count, mut out) = (0u64, 0u32, Vec::new());
    for c in text.bytes() {
        let value = alphabet.iter().position(|a| *a == c).expect("base32") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// The `mfa_token` of a password login that needs the second step.
async fn first_step(world: &World, email: &str) -> String {
    match world
        .auth
        .sessions()
        .begin_login(email, PASSWORD.to_owned(), client(1), TERMS)
        .await
        .expect("first step")
    {
        LoginOutcome::SecondFactor(challenge) => challenge.mfa_token,
        LoginOutcome::Session(_) => panic!("a session without the second step"),
    }
}

fn with_code(code: String) -> SecondFactor {
    SecondFactor {
        code: Some(code),
        ..SecondFactor::default()
    }
}

#[tokio::test]
async fn the_mfa_token_lives_five_minutes() {
    let world = World::new();
    world.account("late@example.com", &[]).await;
    let (secret, _, _, _) = enable(&world, "late@example.com").await;
    let token = first_step(&world, "late@example.com").await;
    world.clock.advance(301);
    let refused = world
        .auth
        .mfa()
        .verify(
            &token,
            &with_code(code(&secret, &world, 0)),
            client(1),
            TERMS,
        )
        .await;
    assert_eq!(refused.err(), Some(Error::InvalidMfaToken));
    let token = first_step(&world, "late@example.com").await;
    world.clock.advance(299);
    world
        .auth
        .mfa()
        .verify(
            &token,
            &with_code(code(&secret, &world, 0)),
            client(1),
            TERMS,
        )
        .await
        .expect("within five minutes");
}

#[tokio::test]
async fn a_right_password_alone_clears_no_failure() {
    // Limit 3 per email and IP: two wrong codes, a fresh mfa_token, one more wrong code,
    // and the next attempt is limited, however many right passwords came between.
    let mut config = config();
    config.rate_limits.login_email_ip = crate::config::Limit::per(3, 900);
    let world = World::with(config);
    world.account("guess@example.com", &[]).await;
    enable(&world, "guess@example.com").await;
    let wrong = || SecondFactor {
        recovery_code: Some("aaaaa-aaaaa".to_owned()),
        ..SecondFactor::default()
    };
    let mfa = world.auth.mfa();
    for _ in 0..2 {
        let token = first_step(&world, "guess@example.com").await;
        let answer = mfa.verify(&token, &wrong(), client(1), TERMS).await;
        assert_eq!(answer.err(), Some(Error::SecondFactorFailed));
    }
    let token = first_step(&world, "guess@example.com").await;
    assert_eq!(
        mfa.verify(&token, &wrong(), client(1), TERMS).await.err(),
        Some(Error::SecondFactorFailed)
    );
    let limited = world
        .auth
        .sessions()
        .begin_login("guess@example.com", PASSWORD.to_owned(), client(1), TERMS)
        .await;
    assert!(matches!(limited, Err(Error::RateLimited(_))), "{limited:?}");
}

#[tokio::test]
async fn seed_profiles_refuse_a_second_factor_unless_allowed() {
    let world = World::new();
    world.account("seed@example.com", &[]).await;
    enable(&world, "seed@example.com").await;
    let sessions = world.auth.sessions();
    let refused = sessions
        .login("seed@example.com", PASSWORD.to_owned(), client(1), TERMS)
        .await;
    assert_eq!(refused.err(), Some(Error::MfaRequired));
    // The personal-token profile's login.
    let refused = world
        .auth
        .accounts()
        .check_credentials("seed@example.com", PASSWORD.to_owned(), client(1))
        .await;
    assert_eq!(refused.err(), Some(Error::MfaRequired));

    let mut allowed = config();
    allowed.mfa.seed_profiles_password_only = true;
    let store = Arc::new(MemoryStore::new());
    let world = World::on(store, allowed);
    world.account("opt@example.com", &[]).await;
    enable(&world, "opt@example.com").await;
    world
        .auth
        .sessions()
        .login("opt@example.com", PASSWORD.to_owned(), client(1), TERMS)
        .await
        .expect("password-only through a seed profile, when allowed");
    // Native still asks for the second step.
    first_step(&world, "opt@example.com").await;
}

#[tokio::test]
async fn factors_bring_notices_and_audit_events_and_the_secret_is_sealed() {
    let store = Arc::new(MemoryStore::new());
    let world = World::on(store.clone(), config());
    world.account("note@example.com", &[]).await;
    let (secret, _, bytes, me) = enable(&world, "note@example.com").await;
    let stored = store.totp(me.user.id).expect("read").expect("a factor");
    assert!(
        !stored
            .secret_sealed
            .windows(bytes.len())
            .any(|w| w == bytes.as_slice())
    );
    let plain = code(&secret, &world, 0);
    world
        .auth
        .mfa()
        .disable_totp(
            &me,
            PASSWORD.to_owned(),
            &with_code(code(&secret, &world, 0)),
            client(1),
        )
        .await
        .expect("disabled");
    let mails = take_mail(&store);
    let subjects: Vec<&str> = mails.iter().map(|m| m.subject.as_str()).collect();
    assert!(
        subjects.contains(&"A second factor was added to your account"),
        "{subjects:?}"
    );
    assert!(
        subjects.contains(&"A second factor was removed from your account"),
        "{subjects:?}"
    );
    assert!(mails.iter().all(|m| !m.text.contains(&plain)));
    assert_eq!(of_kind(&store, "mfa.factor_added").len(), 1);
    assert_eq!(of_kind(&store, "mfa.factor_removed").len(), 1);
    // The account signs in with the password alone again.
    first_step_is_skipped(&world, "note@example.com").await;
}

async fn first_step_is_skipped(world: &World, email: &str) {
    let outcome = world
        .auth
        .sessions()
        .begin_login(email, PASSWORD.to_owned(), client(1), TERMS)
        .await
        .expect("login");
    assert!(matches!(outcome, LoginOutcome::Session(_)));
}

#[tokio::test]
async fn an_admin_reset_removes_every_factor_and_tells_the_user() {
    let store = Arc::new(MemoryStore::new());
    let world = World::on(store.clone(), config());
    world.account("lost@example.com", &[]).await;
    let (_, _, _, me) = enable(&world, "lost@example.com").await;
    take_mail(&store);
    let id = me.user.id;
    world.auth.operator().reset_mfa(id).await.expect("reset");
    first_step_is_skipped(&world, "lost@example.com").await;
    let mails = take_mail(&store);
    assert!(
        mails
            .iter()
            .any(|m| m.text.contains("every second factor (by an administrator)"))
    );
    assert_eq!(of_kind(&store, "admin.mfa_reset").len(), 1);
}

#[tokio::test]
async fn totp_factors_survive_a_kek_rewrap_under_eddsa() {
    let eddsa = |kek: [u8; 32]| {
        let mut config = config();
        config.signing = crate::config::Signing::EdDsa {
            key_encryption_key: kek,
        };
        config
    };
    let store = Arc::new(MemoryStore::new());
    let world = World::on(store.clone(), eddsa([1; 32]));
    world.account("kek@example.com", &[]).await;
    let (secret, _, _, _) = enable(&world, "kek@example.com").await;
    crate::token::rewrap(store.as_ref(), &[1; 32], &[2; 32]).expect("rewrapped");
    let world = World::on(store, eddsa([2; 32]));
    let token = first_step(&world, "kek@example.com").await;
    world
        .auth
        .mfa()
        .verify(
            &token,
            &with_code(code(&secret, &world, 0)),
            client(1),
            TERMS,
        )
        .await
        .expect("the factor still verifies under the new KEK");
}
