//! The hashing pool's tests.

use super::*;

fn cheap() -> Argon2Params {
    Argon2Params {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

#[tokio::test]
async fn hashes_verify_and_detect_parameter_changes() {
    let hasher = PasswordHasher::new(cheap(), 2, 8, 0).unwrap();
    let phc = hasher.hash("correct horse".into()).await.unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
    let ok = hasher
        .verify("correct horse".into(), Some(phc.clone()))
        .await;
    assert_eq!(ok.unwrap(), Verification::Match);
    let bad = hasher.verify("wrong".into(), Some(phc.clone())).await;
    assert_eq!(bad.unwrap(), Verification::Mismatch);

    let stronger = PasswordHasher::new(
        Argon2Params {
            memory_kib: 128,
            ..cheap()
        },
        1,
        8,
        0,
    )
    .unwrap();
    let upgrade = stronger.verify("correct horse".into(), Some(phc)).await;
    assert_eq!(upgrade.unwrap(), Verification::MatchNeedsRehash);
}

#[test]
fn our_hashes_and_the_argon2_crates_verify_each_other() {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
    let params = Params::new(64, 1, 1, None).unwrap();
    let mut blocks = Blocks::new(&params);
    let ours = hash_with(&params, b"correct horse", &mut blocks).unwrap();
    let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let parsed = PasswordHash::new(&ours).unwrap();
    assert!(reference.verify_password(b"correct horse", &parsed).is_ok());
    assert!(
        reference
            .verify_password(b"correct horsE", &parsed)
            .is_err()
    );

    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let theirs = reference.hash_password(b"battery staple", &salt).unwrap();
    let theirs = theirs.to_string();
    let verify =
        |password: &[u8], blocks: &mut Blocks| verify_with(&params, password, &theirs, blocks);
    assert_eq!(verify(b"battery staple", &mut blocks), Verification::Match);
    assert_eq!(
        verify(b"battery stapl", &mut blocks),
        Verification::Mismatch
    );
}

#[test]
fn other_variants_and_bigger_hashes_verify_without_growing_the_kept_array() {
    use argon2::password_hash::PasswordHasher as _;
    let params = Params::new(64, 1, 1, None).unwrap();
    let mut blocks = Blocks::new(&params);
    let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
    let cases = [
        (
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(64, 1, 1, None),
        ),
        (
            Algorithm::Argon2d,
            Version::V0x10,
            Params::new(64, 2, 1, None),
        ),
        (
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(256, 1, 2, Some(48)),
        ),
    ];
    for (algorithm, version, stored) in cases {
        let hasher = Argon2::new(algorithm, version, stored.unwrap());
        let phc = hasher
            .hash_password(b"password123", &salt)
            .unwrap()
            .to_string();
        let found = verify_with(&params, b"password123", &phc, &mut blocks);
        assert_eq!(found, Verification::MatchNeedsRehash, "{phc}");
        let found = verify_with(&params, b"password124", &phc, &mut blocks);
        assert_eq!(found, Verification::Mismatch, "{phc}");
    }
    assert_eq!(blocks.array.len(), params.block_count());
}

#[test]
fn truncated_or_foreign_phc_strings_are_mismatches() {
    let params = Params::new(64, 1, 1, None).unwrap();
    let mut blocks = Blocks::new(&params);
    let good = hash_with(&params, b"pw", &mut blocks).unwrap();
    let cut = &good[..good.rfind('$').unwrap()];
    for phc in [
        cut,
        "$scrypt$ln=4,r=8,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=64,t=1,p=1$",
    ] {
        assert_eq!(
            verify_with(&params, b"pw", phc, &mut blocks),
            Verification::Mismatch
        );
    }
}

#[tokio::test]
async fn unknown_user_never_matches() {
    let hasher = PasswordHasher::new(cheap(), 1, 8, 0).unwrap();
    let result = hasher.verify("anything".into(), None).await.unwrap();
    assert_eq!(result, Verification::Mismatch);
}

#[tokio::test]
async fn bcrypt_hashes_verify_and_ask_for_an_upgrade() {
    let hasher = PasswordHasher::new(cheap(), 1, 8, 0).unwrap();
    let imported = bcrypt::hash("password123", 4).unwrap();
    assert!(is_supported_hash(&imported));
    let ok = hasher
        .verify("password123".into(), Some(imported.clone()))
        .await;
    assert_eq!(ok.unwrap(), Verification::MatchNeedsRehash);
    let bad = hasher.verify("password124".into(), Some(imported)).await;
    assert_eq!(bad.unwrap(), Verification::Mismatch);
    assert!(!is_supported_hash("$2b$nonsense"));
}

#[tokio::test]
async fn bcrypt_hashes_never_match_beyond_72_bytes() {
    let hasher = PasswordHasher::new(cheap(), 1, 8, 0).unwrap();
    let exact = "x".repeat(BCRYPT_MAX_BYTES);
    let imported = bcrypt::hash(&exact, 4).unwrap();
    let verify = |password: String| hasher.verify(password, Some(imported.clone()));
    assert_eq!(
        verify(exact.clone()).await.unwrap(),
        Verification::MatchNeedsRehash
    );
    // bcrypt itself would say yes to both: it reads 72 bytes only.
    assert!(bcrypt::verify(format!("{exact}y"), &imported).unwrap());
    for longer in [format!("{exact}y"), format!("{exact}{exact}")] {
        assert_eq!(verify(longer).await.unwrap(), Verification::Mismatch);
    }
    // 72 bytes of multi-byte characters are still 72 bytes.
    let wide = "é".repeat(BCRYPT_MAX_BYTES / 2);
    let imported = bcrypt::hash(&wide, 4).unwrap();
    let result = hasher.verify(wide.clone(), Some(imported.clone())).await;
    assert_eq!(result.unwrap(), Verification::MatchNeedsRehash);
    let result = hasher.verify(format!("{wide}é"), Some(imported)).await;
    assert_eq!(result.unwrap(), Verification::Mismatch);
}

#[tokio::test]
async fn garbage_hash_is_a_mismatch() {
    let hasher = PasswordHasher::new(cheap(), 1, 8, 0).unwrap();
    let result = hasher
        .verify("x".into(), Some("not a hash".into()))
        .await
        .unwrap();
    assert_eq!(result, Verification::Mismatch);
}

#[tokio::test]
async fn a_wait_given_up_gives_its_queue_place_back() {
    // One slot, one waiting place. A hash holds the slot; a second waits, then is dropped
    // (its client went away): the place must be free again for a third.
    let hasher = PasswordHasher::new(cheap(), 1, 1, 0).unwrap();
    let slot = hasher.inner.slots.clone().acquire_owned().await.unwrap();
    let waiting = hasher.hash("whatever1".into());
    let gave_up = tokio::time::timeout(Duration::from_millis(50), waiting).await;
    assert!(gave_up.is_err(), "it waits while the slot is held");
    assert_eq!(hasher.inner.waiting.load(Ordering::Acquire), 0);
    assert_eq!(hasher.instruments().queue_depth.get(), 0);
    drop(slot);
    assert!(hasher.hash("whatever2".into()).await.is_ok());
}

#[tokio::test]
async fn full_queue_is_refused() {
    let hasher = PasswordHasher::new(cheap(), 1, 0, 0).unwrap();
    let result = hasher.hash("whatever1".into()).await;
    assert!(matches!(result, Err(Error::Overloaded(_))));
}
