//! Cases of [`MfaStore`](crate::store::MfaStore) for second factors: the TOTP factor
//! (pending until confirmed, its last used step a compare-and-set), recovery codes (used
//! once), passkeys (a credential id registered once), resetting them all, and every row going
//! with its user. Challenges are in `mfa_challenges`.

use uuid::Uuid;

use super::mfa_challenges::challenge;
use super::support::{T0, THREADS, make_user, race, random_hash};
use crate::store::{
    ChallengePurpose, ChallengeRecord, MfaFactors, PasskeyRecord, Store, StoreError, TokenHash,
    TotpRecord,
};

/// A sealed secret as the core would store it (any bytes: a store keeps them as they are).
fn sealed(tag: u8) -> Vec<u8> {
    let mut bytes = vec![tag, 0, 255, 1];
    bytes.extend_from_slice(Uuid::new_v4().as_bytes());
    bytes
}

/// `n` random recovery-code hashes.
fn codes(n: usize) -> Vec<TokenHash> {
    (0..n).map(|_| random_hash()).collect()
}

/// A passkey of `user` made at `created_at`, never used, to insert.
pub(super) fn passkey(user: Uuid, created_at: i64) -> PasskeyRecord {
    PasskeyRecord {
        id: Uuid::new_v4(),
        user_id: user,
        credential_id: format!("cred-{}", Uuid::new_v4().simple()),
        name: "laptop".to_owned(),
        data: r#"{"cred":{"counter":0}}"#.to_owned(),
        created_at,
        last_used_at: None,
    }
}

/// The user's factors.
fn factors(store: &dyn Store, user: Uuid) -> MfaFactors {
    store.mfa_factors(user).expect("mfa_factors")
}

/// Sets up and confirms a TOTP factor at `T0` (step 100) with `codes`; returns its secret.
fn enable_totp(store: &dyn Store, user: Uuid, codes: &[TokenHash]) -> Vec<u8> {
    let secret = sealed(9);
    assert!(store.begin_totp(user, &secret, T0).expect("begin"));
    assert!(
        store
            .confirm_totp(user, &secret, 100, codes, T0 + 1)
            .expect("confirm")
    );
    secret
}

/// A setup is pending (and no factor) until confirmed; a new setup replaces a pending one;
/// only the pending secret is confirmed, once, setting the step and replacing the recovery
/// codes; a confirmed factor refuses a new setup. An unknown user is `Other`.
pub fn totp_setup_is_pending_until_confirmed(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "totp@example.com").id;
    assert_eq!(factors(store, user), MfaFactors::default());
    assert!(!factors(store, user).any());
    assert_eq!(store.totp(user).expect("totp"), None);

    let first = sealed(1);
    assert!(store.begin_totp(user, &first, t).expect("begin"));
    let pending = TotpRecord {
        user_id: user,
        secret_sealed: first.clone(),
        confirmed_at: None,
        last_used_step: None,
        created_at: t,
    };
    assert_eq!(store.totp(user).expect("totp"), Some(pending));
    assert_eq!(factors(store, user), MfaFactors::default(), "pending");

    // A second setup replaces the pending one: the first can no longer be confirmed.
    let second = sealed(2);
    assert!(store.begin_totp(user, &second, t + 10).expect("again"));
    let replaced = store.totp(user).expect("totp").expect("pending");
    assert_eq!(replaced.secret_sealed, second);
    assert_eq!(replaced.created_at, t + 10);
    let old = codes(1);
    store
        .replace_recovery_codes(user, &old, t)
        .expect("old codes");
    let new = codes(3);
    assert!(
        !store
            .confirm_totp(user, &first, 50, &new, t + 11)
            .expect("replaced secret"),
    );
    assert_eq!(
        store
            .totp(user)
            .expect("totp")
            .expect("pending")
            .confirmed_at,
        None,
        "nothing written"
    );
    assert_eq!(factors(store, user).recovery_codes, 1, "codes left alone");

    assert!(
        store
            .confirm_totp(user, &second, 50, &new, t + 12)
            .expect("confirm")
    );
    let confirmed = TotpRecord {
        user_id: user,
        secret_sealed: second.clone(),
        confirmed_at: Some(t + 12),
        last_used_step: Some(50),
        created_at: t + 10,
    };
    assert_eq!(store.totp(user).expect("totp"), Some(confirmed.clone()));
    let enabled = MfaFactors {
        totp: true,
        recovery_codes: 3,
        passkeys: 0,
    };
    assert_eq!(factors(store, user), enabled);
    assert!(enabled.any());
    assert!(
        !store.use_recovery_code(user, &old[0]).expect("old code"),
        "codes replaced"
    );

    // Only once, and a confirmed factor refuses a new setup, writing nothing.
    assert!(
        !store
            .confirm_totp(user, &second, 60, &codes(2), t + 13)
            .expect("twice")
    );
    assert!(!store.begin_totp(user, &sealed(3), t + 14).expect("refused"));
    assert_eq!(store.totp(user).expect("totp"), Some(confirmed));
    assert_eq!(factors(store, user), enabled);

    // No factor: nothing to confirm. An unknown user cannot set one up.
    let other = make_user(store, "totp-none@example.com").id;
    assert!(
        !store
            .confirm_totp(other, &second, 1, &codes(1), t)
            .expect("no factor")
    );
    assert_eq!(factors(store, other), MfaFactors::default());
    match store.begin_totp(Uuid::new_v4(), &sealed(4), t) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }
}

/// `use_totp_step` accepts a step only on a confirmed factor and only after the last one:
/// the same step twice, or an earlier one after a later, is refused.
pub fn totp_steps_are_compare_and_set(store: &dyn Store) {
    let user = make_user(store, "steps@example.com").id;
    assert!(!store.use_totp_step(user, 1).expect("no factor"));
    let secret = sealed(1);
    assert!(store.begin_totp(user, &secret, T0).expect("begin"));
    assert!(!store.use_totp_step(user, 1).expect("pending"), "pending");

    assert!(
        store
            .confirm_totp(user, &secret, 100, &[], T0 + 1)
            .expect("confirm")
    );
    assert!(!store.use_totp_step(user, 100).expect("the confirming step"));
    assert!(!store.use_totp_step(user, 99).expect("earlier"));
    assert!(store.use_totp_step(user, 101).expect("next"));
    assert!(!store.use_totp_step(user, 101).expect("same"), "replayed");
    assert!(store.use_totp_step(user, 105).expect("later"));
    assert!(!store.use_totp_step(user, 103).expect("earlier after later"));
    let last = store.totp(user).expect("totp").expect("factor");
    assert_eq!(last.last_used_step, Some(105));
    assert_eq!(last.confirmed_at, Some(T0 + 1));
    assert!(
        !store
            .use_totp_step(Uuid::new_v4(), 200)
            .expect("unknown user")
    );
}

/// Of concurrent confirmations of one setup, uses of one step and uses of one recovery code,
/// exactly one wins each.
pub fn concurrent_mfa_uses_have_one_winner(store: &dyn Store) {
    let user = make_user(store, "mfa-race@example.com").id;
    let secret = sealed(1);
    assert!(store.begin_totp(user, &secret, T0).expect("begin"));
    let sets: Vec<Vec<TokenHash>> = (0..THREADS).map(|_| codes(2)).collect();
    let confirmed = race(THREADS, |i| {
        store.confirm_totp(user, &secret, 10, &sets[i], T0 + 1)
    });
    let winners: Vec<usize> = (0..THREADS)
        .filter(|i| *confirmed[*i].as_ref().expect("confirm"))
        .collect();
    assert_eq!(winners.len(), 1, "{confirmed:?}");
    // The winner's codes, and only those, are stored.
    assert_eq!(factors(store, user).recovery_codes, 2);
    let winning = &sets[winners[0]];
    assert!(store.use_recovery_code(user, &winning[0]).expect("use"));

    let used = race(THREADS, |_| store.use_totp_step(user, 11));
    let won = used.iter().filter(|r| *r.as_ref().expect("use")).count();
    assert_eq!(won, 1, "{used:?}");

    let taken = race(THREADS, |_| store.use_recovery_code(user, &winning[1]));
    let won = taken.iter().filter(|r| *r.as_ref().expect("use")).count();
    assert_eq!(won, 1, "{taken:?}");
    assert_eq!(factors(store, user).recovery_codes, 0);
}

/// Deleting the TOTP factor, pending or confirmed, deletes every recovery code of the user
/// and nobody else's; false when there was none.
pub fn deleting_totp_removes_its_recovery_codes(store: &dyn Store) {
    let user = make_user(store, "delete-totp@example.com").id;
    let bystander = make_user(store, "delete-totp-other@example.com").id;
    let theirs = codes(2);
    enable_totp(store, bystander, &theirs);
    let mine = codes(3);
    enable_totp(store, user, &mine);

    assert!(store.delete_totp(user).expect("delete"));
    assert_eq!(store.totp(user).expect("totp"), None);
    assert_eq!(factors(store, user), MfaFactors::default());
    assert!(!store.use_recovery_code(user, &mine[0]).expect("gone"));
    assert!(!store.delete_totp(user).expect("again"), "nothing left");

    // A pending factor is deleted too; afterwards a new setup starts afresh.
    assert!(store.begin_totp(user, &sealed(5), T0 + 5).expect("begin"));
    assert!(store.delete_totp(user).expect("pending"));
    assert_eq!(store.totp(user).expect("totp"), None);
    assert!(store.begin_totp(user, &sealed(6), T0 + 6).expect("afresh"));

    let kept = MfaFactors {
        totp: true,
        recovery_codes: 2,
        passkeys: 0,
    };
    assert_eq!(factors(store, bystander), kept);
    assert!(!store.delete_totp(Uuid::new_v4()).expect("unknown user"));
}

/// A recovery code works once, only for its user; replacing the codes drops the old ones,
/// duplicates count once, an unknown user is `Other`.
pub fn recovery_codes_are_used_once(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "codes@example.com").id;
    let other = make_user(store, "codes-other@example.com").id;
    let first = codes(2);
    store
        .replace_recovery_codes(user, &first, t)
        .expect("codes");
    assert_eq!(factors(store, user).recovery_codes, 2);
    assert!(
        !factors(store, user).any(),
        "codes alone are no second factor"
    );

    assert!(
        !store.use_recovery_code(other, &first[0]).expect("theirs"),
        "another user's code"
    );
    assert!(
        !store
            .use_recovery_code(user, &random_hash())
            .expect("unknown")
    );
    assert!(store.use_recovery_code(user, &first[0]).expect("use"));
    assert!(
        !store.use_recovery_code(user, &first[0]).expect("twice"),
        "used up"
    );
    assert_eq!(factors(store, user).recovery_codes, 1);

    let mut second = codes(3);
    second.push(second[0]);
    store
        .replace_recovery_codes(user, &second, t + 1)
        .expect("replace");
    assert_eq!(factors(store, user).recovery_codes, 3, "a duplicate once");
    assert!(!store.use_recovery_code(user, &first[1]).expect("replaced"));
    assert!(store.use_recovery_code(user, &second[2]).expect("new"));

    // The same hash may be a code of two users.
    store
        .replace_recovery_codes(other, &second[..1], t)
        .expect("same hash");
    assert!(store.use_recovery_code(other, &second[0]).expect("theirs"));
    assert!(store.use_recovery_code(user, &second[0]).expect("mine"));

    store
        .replace_recovery_codes(user, &[], t + 2)
        .expect("none");
    assert_eq!(factors(store, user).recovery_codes, 0);
    match store.replace_recovery_codes(Uuid::new_v4(), &codes(1), t) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }
}

/// Passkeys list oldest first and are found by credential id; a credential id registered
/// to anyone is a `Conflict` (writing nothing); an unknown user is `Other`.
pub fn passkeys_are_listed_oldest_first_and_unique(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "passkeys@example.com").id;
    let other = make_user(store, "passkeys-other@example.com").id;
    let (a, b, c) = (passkey(user, t + 2), passkey(user, t), passkey(user, t + 1));
    for key in [&a, &b, &c] {
        store.add_passkey(key).expect("add");
    }
    let listed = store.list_passkeys(user).expect("list");
    assert_eq!(listed, vec![b.clone(), c.clone(), a.clone()]);
    assert_eq!(store.list_passkeys(other).expect("none"), vec![]);
    assert_eq!(store.find_passkey(&c.credential_id).expect("find"), Some(c));
    assert_eq!(store.find_passkey("cred-unknown").expect("unknown"), None);
    let with_keys = MfaFactors {
        totp: false,
        recovery_codes: 0,
        passkeys: 3,
    };
    assert_eq!(factors(store, user), with_keys);
    assert!(with_keys.any());

    let taken = PasskeyRecord {
        credential_id: a.credential_id.clone(),
        ..passkey(other, t)
    };
    match store.add_passkey(&taken) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.list_passkeys(other).expect("nothing written"), vec![]);
    assert_eq!(store.find_passkey(&a.credential_id).expect("find"), Some(a));

    match store.add_passkey(&passkey(Uuid::new_v4(), t)) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }
}

/// `touch_passkey` replaces the data and sets `last_used_at`; a passkey is deleted only by
/// its owner.
pub fn passkeys_are_touched_and_deleted_by_their_owner(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "touch@example.com").id;
    let other = make_user(store, "touch-other@example.com").id;
    let key = passkey(user, t);
    store.add_passkey(&key).expect("add");

    let data = r#"{"cred":{"counter":7}}"#;
    assert!(store.touch_passkey(key.id, data, t + 60).expect("touch"));
    let touched = PasskeyRecord {
        data: data.to_owned(),
        last_used_at: Some(t + 60),
        ..key.clone()
    };
    assert_eq!(
        store.find_passkey(&key.credential_id).expect("find"),
        Some(touched.clone())
    );
    assert!(
        !store
            .touch_passkey(Uuid::new_v4(), data, t)
            .expect("unknown")
    );

    assert!(!store.delete_passkey(other, key.id).expect("not theirs"));
    assert_eq!(store.list_passkeys(user).expect("kept"), vec![touched]);
    assert!(store.delete_passkey(user, key.id).expect("delete"));
    assert!(!store.delete_passkey(user, key.id).expect("again"));
    assert_eq!(store.find_passkey(&key.credential_id).expect("gone"), None);
    assert!(!store.touch_passkey(key.id, data, t + 120).expect("gone"));
    assert_eq!(factors(store, user).passkeys, 0);
}

/// `reset_mfa` removes the user's TOTP factor, recovery codes, passkeys and challenges in
/// one go and returns what the user had; nobody else's rows are touched.
pub fn reset_mfa_removes_every_factor(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "reset@example.com").id;
    let other = make_user(store, "reset-other@example.com").id;
    for id in [user, other] {
        enable_totp(store, id, &codes(2));
        store.add_passkey(&passkey(id, t)).expect("add");
        store.add_passkey(&passkey(id, t + 1)).expect("add");
    }
    let mine = challenge(Some(user), ChallengePurpose::MfaLogin, t);
    let theirs = challenge(Some(other), ChallengePurpose::StepUp, t);
    let anonymous = challenge(None, ChallengePurpose::PasskeyLogin, t);
    for c in [&mine, &theirs, &anonymous] {
        store.create_challenge(c).expect("challenge");
    }

    let had = MfaFactors {
        totp: true,
        recovery_codes: 2,
        passkeys: 2,
    };
    assert_eq!(store.reset_mfa(user).expect("reset"), had);
    assert_eq!(factors(store, user), MfaFactors::default());
    assert_eq!(store.totp(user).expect("totp"), None);
    assert_eq!(store.list_passkeys(user).expect("list"), vec![]);
    let find = |c: &ChallengeRecord| {
        store
            .find_challenge(&c.hash, c.purpose, t + 1)
            .expect("find")
    };
    assert_eq!(find(&mine), None);
    assert_eq!(find(&theirs), Some(theirs.clone()));
    assert_eq!(find(&anonymous), Some(anonymous.clone()));
    assert_eq!(factors(store, other), had, "nobody else's");
    assert_eq!(store.reset_mfa(user).expect("again"), MfaFactors::default());

    // A pending factor goes too, and does not count as one.
    assert!(store.begin_totp(user, &sealed(1), t + 2).expect("begin"));
    assert_eq!(
        store.reset_mfa(user).expect("pending"),
        MfaFactors::default()
    );
    assert_eq!(store.totp(user).expect("totp"), None);
}

/// Deleting a user deletes their TOTP factor, recovery codes, passkeys and challenges, and
/// nobody else's.
pub fn mfa_rows_go_with_their_user(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "mfa-gone@example.com").id;
    let bystander = make_user(store, "mfa-stays@example.com").id;
    let mut keys = Vec::new();
    let mut challenges = Vec::new();
    for id in [user, bystander] {
        enable_totp(store, id, &codes(2));
        let key = passkey(id, t);
        store.add_passkey(&key).expect("add");
        keys.push(key);
        let c = challenge(Some(id), ChallengePurpose::StepUp, t);
        store.create_challenge(&c).expect("challenge");
        challenges.push(c);
    }
    assert!(store.delete_user(user, None).expect("delete"));

    assert_eq!(store.totp(user).expect("totp"), None);
    assert_eq!(factors(store, user), MfaFactors::default());
    assert_eq!(
        store.find_passkey(&keys[0].credential_id).expect("key"),
        None
    );
    let gone = &challenges[0];
    assert_eq!(
        store
            .find_challenge(&gone.hash, gone.purpose, t)
            .expect("challenge"),
        None
    );
    // The passkey's credential id is free again.
    let again = PasskeyRecord {
        credential_id: keys[0].credential_id.clone(),
        ..passkey(bystander, t + 1)
    };
    store.add_passkey(&again).expect("credential id free");

    let kept = MfaFactors {
        totp: true,
        recovery_codes: 2,
        passkeys: 2,
    };
    assert_eq!(factors(store, bystander), kept);
    let theirs = &challenges[1];
    assert_eq!(
        store
            .find_challenge(&theirs.hash, theirs.purpose, t)
            .expect("challenge"),
        Some(theirs.clone())
    );
    assert_eq!(
        store
            .purge_expired_challenges(i64::MAX, 100)
            .expect("purge"),
        1,
        "only the bystander's challenge is left"
    );
}
