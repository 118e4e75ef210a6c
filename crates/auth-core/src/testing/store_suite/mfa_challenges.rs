//! Cases of [`MfaStore`](crate::store::MfaStore) for challenges: found for their purpose
//! while live (`expires_at > now`), wrong answers counted up to a maximum, taken once,
//! purged in batches.

use uuid::Uuid;

use super::support::{T0, THREADS, make_user, race, random_hash};
use crate::store::{ChallengePurpose, ChallengeRecord, Store, StoreError};

/// A fresh challenge for `purpose` of `user`, made at `created_at`, working five minutes.
pub(super) fn challenge(
    user: Option<Uuid>,
    purpose: ChallengePurpose,
    created_at: i64,
) -> ChallengeRecord {
    ChallengeRecord {
        hash: random_hash(),
        purpose,
        user_id: user,
        state: Some(r#"{"challenge":"abc"}"#.to_owned()),
        failures: 0,
        created_at,
        expires_at: created_at + 300,
    }
}

/// The challenge `c` as found at `now` for its own purpose.
fn find(store: &dyn Store, c: &ChallengeRecord, now: i64) -> Option<ChallengeRecord> {
    store
        .find_challenge(&c.hash, c.purpose, now)
        .expect("find_challenge")
}

/// The challenge `c` taken at `now` for its own purpose.
fn take(store: &dyn Store, c: &ChallengeRecord, now: i64) -> Option<ChallengeRecord> {
    store
        .take_challenge(&c.hash, c.purpose, now)
        .expect("take_challenge")
}

/// A challenge reads back as stored, for its own purpose only, while `expires_at > now`;
/// every purpose round-trips, with or without a user or a state; a taken hash is a
/// `Conflict` and an unknown user `Other`.
pub fn challenges_are_found_by_purpose_until_expiry(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "challenge@example.com").id;
    let c = challenge(Some(user), ChallengePurpose::MfaLogin, t);
    store.create_challenge(&c).expect("create");

    assert_eq!(find(store, &c, t), Some(c.clone()));
    assert_eq!(find(store, &c, c.expires_at - 1), Some(c.clone()));
    assert_eq!(find(store, &c, c.expires_at), None, "expired at expires_at");
    assert_eq!(find(store, &c, c.expires_at + 1), None);
    for other in ChallengePurpose::ALL
        .into_iter()
        .filter(|p| *p != c.purpose)
    {
        let found = store
            .find_challenge(&c.hash, other, t)
            .expect("other purpose");
        assert_eq!(found, None, "{other:?}");
    }
    let unknown = store
        .find_challenge(&random_hash(), c.purpose, t)
        .expect("unknown");
    assert_eq!(unknown, None);

    // A taken hash is a conflict, and the stored challenge is left as it was.
    let same_hash = ChallengeRecord {
        hash: c.hash,
        ..challenge(None, ChallengePurpose::StepUp, t + 5)
    };
    match store.create_challenge(&same_hash) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(find(store, &c, t), Some(c.clone()));

    match store.create_challenge(&challenge(Some(Uuid::new_v4()), c.purpose, t)) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }

    for (i, purpose) in ChallengePurpose::ALL.into_iter().enumerate() {
        let mut each = challenge((i % 2 == 0).then_some(user), purpose, t + 10);
        if i < 2 {
            each.state = None;
        }
        store.create_challenge(&each).expect("create");
        assert_eq!(find(store, &each, t + 10), Some(each), "{purpose:?}");
    }
}

/// `fail_challenge` counts wrong answers and deletes the challenge at `max`; `None` once
/// it is gone, or for an unknown hash.
pub fn failed_challenges_are_counted_and_deleted_at_max(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "fail@example.com").id;
    let c = challenge(Some(user), ChallengePurpose::MfaLogin, t);
    store.create_challenge(&c).expect("create");

    assert_eq!(store.fail_challenge(&c.hash, 3).expect("fail"), Some(1));
    assert_eq!(store.fail_challenge(&c.hash, 3).expect("fail"), Some(2));
    let counted = ChallengeRecord {
        failures: 2,
        ..c.clone()
    };
    assert_eq!(find(store, &c, t + 1), Some(counted.clone()));
    assert_eq!(take(store, &c, t + 1), Some(counted), "taken as counted");

    let d = challenge(Some(user), ChallengePurpose::StepUp, t);
    store.create_challenge(&d).expect("create");
    assert_eq!(store.fail_challenge(&d.hash, 2).expect("fail"), Some(1));
    assert_eq!(store.fail_challenge(&d.hash, 2).expect("at max"), Some(2));
    assert_eq!(find(store, &d, t + 1), None, "deleted at max");
    assert_eq!(store.fail_challenge(&d.hash, 2).expect("gone"), None);
    assert_eq!(
        store.fail_challenge(&random_hash(), 5).expect("unknown"),
        None
    );
}

/// Concurrent wrong answers are each counted once.
pub fn concurrent_challenge_failures_are_each_counted(store: &dyn Store) {
    let t = T0;
    let c = challenge(None, ChallengePurpose::PasskeyLogin, t);
    store.create_challenge(&c).expect("create");
    let results = race(THREADS, |_| store.fail_challenge(&c.hash, 100));
    let mut counts: Vec<u32> = results
        .into_iter()
        .map(|r| r.expect("fail").expect("still there"))
        .collect();
    counts.sort_unstable();
    let expected: Vec<u32> = (1..=u32::try_from(THREADS).expect("threads")).collect();
    assert_eq!(counts, expected);
    let failures = find(store, &c, t).expect("still there").failures;
    assert_eq!(u32::try_from(THREADS).ok(), Some(failures));
}

/// `take_challenge` returns the challenge and deletes it, once; not for another purpose
/// (which leaves it), and not at or after its expiry.
pub fn challenges_are_taken_once_for_their_purpose_while_live(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "take@example.com").id;
    let c = challenge(Some(user), ChallengePurpose::PasskeyRegistration, t);
    store.create_challenge(&c).expect("create");

    for other in ChallengePurpose::ALL
        .into_iter()
        .filter(|p| *p != c.purpose)
    {
        let taken = store.take_challenge(&c.hash, other, t).expect("other");
        assert_eq!(taken, None, "{other:?}");
    }
    assert_eq!(find(store, &c, t), Some(c.clone()), "left alone");
    assert_eq!(take(store, &c, c.expires_at - 1), Some(c.clone()));
    assert_eq!(take(store, &c, t), None, "single use");
    assert_eq!(find(store, &c, t), None, "and gone");

    let expired = challenge(Some(user), ChallengePurpose::MfaLogin, t);
    store.create_challenge(&expired).expect("create");
    assert_eq!(take(store, &expired, expired.expires_at), None, "at expiry");
    assert_eq!(take(store, &expired, expired.expires_at + 60), None);
    let unknown = store
        .take_challenge(&random_hash(), ChallengePurpose::MfaLogin, t)
        .expect("unknown");
    assert_eq!(unknown, None);
}

/// Of callers taking one challenge at once, exactly one gets it.
pub fn concurrent_takes_of_a_challenge_have_one_winner(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "take-race@example.com").id;
    let c = challenge(Some(user), ChallengePurpose::MfaLogin, t);
    store.create_challenge(&c).expect("create");
    let results = race(THREADS, |_| store.take_challenge(&c.hash, c.purpose, t + 1));
    let won: Vec<ChallengeRecord> = results
        .into_iter()
        .filter_map(|r| r.expect("take"))
        .collect();
    assert_eq!(won, vec![c]);
}

/// Challenges that expired at or before `before` are purged, at most `limit` per call, and
/// counted; live ones stay.
pub fn expired_challenges_are_purged_in_batches(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "purge-challenges@example.com").id;
    let before = t + 1000;
    let expired: Vec<ChallengeRecord> = (0..5)
        .map(|i| {
            let mut c = challenge(Some(user), ChallengePurpose::ALL[i % 4], t);
            c.expires_at = before - i64::try_from(i).unwrap_or(0);
            c
        })
        .collect();
    let live: Vec<ChallengeRecord> = (0..2)
        .map(|i| {
            let mut c = challenge(None, ChallengePurpose::PasskeyLogin, t);
            c.expires_at = before + 1 + i;
            c
        })
        .collect();
    for c in expired.iter().chain(&live) {
        store.create_challenge(c).expect("create");
    }
    assert_eq!(
        store.purge_expired_challenges(before, 0).expect("zero"),
        0,
        "a limit of 0 deletes nothing"
    );
    let mut counts = Vec::new();
    loop {
        let n = store.purge_expired_challenges(before, 2).expect("purge");
        counts.push(n);
        if n == 0 {
            break;
        }
        assert!(counts.len() <= 5, "purging never ends: {counts:?}");
    }
    assert_eq!(counts, vec![2, 2, 1, 0]);
    for c in &expired {
        assert_eq!(find(store, c, t), None);
    }
    for c in &live {
        assert_eq!(find(store, c, t), Some(c.clone()));
    }
}
