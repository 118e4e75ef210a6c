//! Cases of the conditional user writes: changes guarded by a protected role (the last
//! active holder stays, also against concurrent changes) and the compare-and-set of a
//! password hash.

use uuid::Uuid;

use super::support::{T0, THREADS, make_session, make_user, new_user, race, session_of, strings};
use crate::store::{Revocation, Store, StoreError, UserPatch, UserRecord};

/// The role the cases protect.
const ROLE: &str = "admin";

/// A patch setting the roles.
fn roles(names: &[&str]) -> UserPatch {
    UserPatch {
        roles: Some(strings(names)),
        ..UserPatch::default()
    }
}

/// A patch deactivating.
fn deactivate() -> UserPatch {
    UserPatch {
        is_active: Some(false),
        ..UserPatch::default()
    }
}

/// Creates a user with `roles`, active or not.
fn user_with(store: &dyn Store, email: &str, role_names: &[&str], active: bool) -> UserRecord {
    let mut user = new_user(email, role_names, T0);
    user.is_active = active;
    store.create_user(&user).expect("create user")
}

/// A guarded patch of `id` at `T0 + 1`.
fn guarded(
    store: &dyn Store,
    id: Uuid,
    patch: &UserPatch,
) -> Result<Option<UserRecord>, StoreError> {
    store.update_user(id, patch, Revocation::EVERYTHING, T0 + 1, Some(ROLE))
}

/// Panics unless `result` is `LastActiveHolder`.
fn expect_refused<T: std::fmt::Debug>(result: Result<T, StoreError>, what: &str) {
    match result {
        Err(StoreError::LastActiveHolder) => {}
        other => panic!("{what}: expected LastActiveHolder, got {other:?}"),
    }
}

/// How many active users hold [`ROLE`].
fn active_holders(store: &dyn Store, ids: &[Uuid]) -> usize {
    ids.iter()
        .filter_map(|id| store.find_user(*id).expect("find"))
        .filter(|user| user.is_active && user.roles.iter().any(|r| r == ROLE))
        .count()
}

/// A guarded change is refused, writing nothing (no revocation either), when it would take
/// the protected role from its last active holder: demotion, deactivation, deletion. An
/// inactive holder does not count; a change that keeps the holder, a change of anyone
/// else, an unguarded change and any change beside a second active holder go through.
pub fn guarded_changes_keep_an_active_holder(store: &dyn Store) {
    let last = user_with(store, "last@example.com", &[ROLE], true);
    let inactive = user_with(store, "asleep@example.com", &[ROLE], false);
    let plain = make_user(store, "plain@example.com");
    let (session, _) = make_session(store, last.id, T0);

    expect_refused(guarded(store, last.id, &roles(&[])), "demotion");
    expect_refused(guarded(store, last.id, &roles(&["user"])), "role swap");
    expect_refused(guarded(store, last.id, &deactivate()), "deactivation");
    expect_refused(store.delete_user(last.id, Some(ROLE)), "deletion");
    assert_eq!(store.find_user(last.id).expect("find"), Some(last.clone()));
    assert!(
        session_of(store, session.id, T0).is_some(),
        "nothing revoked"
    );
    assert!(
        store
            .find_refresh_token(session.id)
            .expect("find")
            .is_some()
    );

    let kept = guarded(store, last.id, &roles(&[ROLE, "user"])).expect("keeps the role");
    assert_eq!(kept.expect("exists").roles, strings(&[ROLE, "user"]));
    for patch in [roles(&[]), deactivate()] {
        guarded(store, plain.id, &patch).expect("not a holder");
        guarded(store, inactive.id, &patch).expect("an inactive holder");
    }
    assert!(
        store
            .delete_user(inactive.id, Some(ROLE))
            .expect("inactive")
    );
    assert!(
        store
            .delete_user(plain.id, Some(ROLE))
            .expect("not a holder")
    );
    assert_eq!(
        guarded(store, Uuid::new_v4(), &roles(&[])).expect("unknown"),
        None
    );
    assert!(
        !store
            .delete_user(Uuid::new_v4(), Some(ROLE))
            .expect("unknown")
    );

    let second = user_with(store, "second@example.com", &[ROLE], true);
    guarded(store, last.id, &roles(&[])).expect("beside a second holder");
    expect_refused(store.delete_user(second.id, Some(ROLE)), "the new last one");
    // Unguarded, the store checks nothing: the core guards every change that needs it.
    let unguarded = store
        .update_user(second.id, &roles(&[]), Revocation::NOTHING, T0 + 2, None)
        .expect("unguarded");
    assert_eq!(unguarded.expect("exists").roles, Vec::<String>::new());
}

/// Concurrent guarded changes (demotions, deactivations, deletions), each of another active
/// holder, never remove the last one together: of [`THREADS`] holders racing to remove one
/// each, exactly one change is refused and one holder stays. Two rounds.
pub fn concurrent_guarded_demotions_keep_an_active_holder(store: &dyn Store) {
    for round in 0..2 {
        let holders: Vec<UserRecord> = (0..THREADS)
            .map(|i| {
                user_with(
                    store,
                    &format!("race-{round}-{i}@example.com"),
                    &[ROLE],
                    true,
                )
            })
            .collect();
        let results = race(THREADS, |i| {
            let id = holders[i].id;
            match i % 3 {
                0 => guarded(store, id, &roles(&[])).map(|u| u.is_some()),
                1 => guarded(store, id, &deactivate()).map(|u| u.is_some()),
                _ => store.delete_user(id, Some(ROLE)),
            }
        });
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::LastActiveHolder)))
            .count();
        let done = results.iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(
            (done, refused),
            (THREADS - 1, 1),
            "round {round}: {results:?}"
        );
        let ids: Vec<Uuid> = holders.iter().map(|u| u.id).collect();
        assert_eq!(active_holders(store, &ids), 1, "round {round}");
        // The survivor lets the next round start from holders of its own only.
        let survivor = ids
            .iter()
            .find(|id| active_holders(store, &[**id]) == 1)
            .copied()
            .expect("a survivor");
        store
            .update_user(survivor, &roles(&[]), Revocation::NOTHING, T0 + 3, None)
            .expect("cleared");
    }
}

/// `replace_password_hash` swaps the hash only while it is still the expected one: a stale
/// expectation (the password changed meanwhile) writes nothing, concurrent swaps from one
/// hash have one winner, nothing is revoked, and an unknown user is false.
pub fn password_hash_replacement_is_compare_and_set(store: &dyn Store) {
    let user = make_user(store, "cas@example.com");
    let (session, _) = make_session(store, user.id, T0);
    let verified = user.password_hash.clone();
    assert!(
        store
            .replace_password_hash(user.id, &verified, "$argon2id$upgraded", T0 + 1)
            .expect("replace")
    );
    let found = store.find_user(user.id).expect("find").expect("exists");
    assert_eq!(
        (found.password_hash.as_str(), found.updated_at),
        ("$argon2id$upgraded", T0 + 1)
    );
    assert!(
        session_of(store, session.id, T0).is_some(),
        "nothing revoked"
    );

    // An upgrade of the old hash after the password changed loses.
    assert!(
        !store
            .replace_password_hash(user.id, &verified, "$argon2id$stale", T0 + 2)
            .expect("stale")
    );
    let found = store.find_user(user.id).expect("find").expect("exists");
    assert_eq!(
        (found.password_hash.as_str(), found.updated_at),
        ("$argon2id$upgraded", T0 + 1)
    );
    assert!(
        !store
            .replace_password_hash(Uuid::new_v4(), &verified, "$argon2id$x", T0)
            .expect("unknown")
    );

    let won = race(THREADS, |i| {
        store
            .replace_password_hash(
                user.id,
                "$argon2id$upgraded",
                &format!("$argon2id${i}"),
                T0 + 4,
            )
            .expect("racing replace")
    });
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let winner = won.iter().position(|w| *w).expect("a winner");
    let found = store.find_user(user.id).expect("find").expect("exists");
    assert_eq!(found.password_hash, format!("$argon2id${winner}"));
}
