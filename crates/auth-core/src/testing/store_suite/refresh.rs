//! Cases of the two refresh forms of [`SessionStore`](crate::store::SessionStore):
//! refresh-token exchange and bearer-form (access-token) rotation.

use super::support::{
    T0, THREADS, make_session, make_user, race, random_hash, rotation, seen, session_of,
};
use crate::store::{AccessRotation, NewRefreshToken, Store, StoreError, TokenHash};

/// `rotate_refresh_token` exchanges an unused token once: marks it used with its replay,
/// inserts the successor, moves the session's jti, `last_used_at` and expiry; a used token
/// or one of another session is refused with nothing written; `successor_used` follows.
pub fn refresh_rotation(store: &dyn Store) {
    let user = make_user(store, "rita@example.com");
    let t = T0;
    let (session, h1) = make_session(store, user.id, t);

    let first = store
        .find_refresh_token(&h1)
        .expect("find")
        .expect("exists");
    assert_eq!(first.session_id, session.id);
    assert_eq!(first.user_id, user.id);
    assert_eq!(first.expires_at, session.expires_at);
    assert_eq!(first.used_at, None);
    assert_eq!(first.replay, None);
    assert!(!first.successor_used);
    assert_eq!(first.session_expires_at, session.expires_at);

    let h2 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(session.id, h1, h2, "jti-2", t + 10))
            .expect("rotate")
    );
    let used = store.find_refresh_token(&h1).expect("find").expect("kept");
    assert_eq!(used.used_at, Some(t + 10));
    assert_eq!(used.replay, Some(vec![1, 2, 3, 0, 255]));
    assert!(!used.successor_used);
    assert_eq!(
        used.session_expires_at,
        t + 10 + 7200,
        "the session's new expiry"
    );
    let s = session_of(store, session.id, t + 10).expect("live");
    assert_eq!(s.access_jti, "jti-2");
    assert_eq!(s.last_used_at, t + 10);
    assert_eq!(s.expires_at, t + 10 + 7200);
    let second = store.find_refresh_token(&h2).expect("find").expect("new");
    assert_eq!(second.used_at, None);
    assert_eq!(second.expires_at, t + 10 + 7200);

    // The same old token again: false, and nothing written.
    let h3 = random_hash();
    assert!(
        !store
            .rotate_refresh_token(&rotation(session.id, h1, h3, "jti-3", t + 20))
            .expect("rotate again")
    );
    assert!(store.find_refresh_token(&h3).expect("find").is_none());
    let unchanged = store.find_refresh_token(&h1).expect("find").expect("kept");
    assert_eq!(unchanged.used_at, Some(t + 10));
    let s = session_of(store, session.id, t + 20).expect("live");
    assert_eq!(s.access_jti, "jti-2");
    assert_eq!(s.last_used_at, t + 10);

    // A token of another session cannot be exchanged into this one.
    let (other_session, other_hash) = make_session(store, user.id, t);
    assert!(
        !store
            .rotate_refresh_token(&rotation(session.id, other_hash, random_hash(), "x", t))
            .expect("cross-session")
    );
    assert!(
        store
            .find_refresh_token(&other_hash)
            .expect("find")
            .expect("kept")
            .used_at
            .is_none()
    );
    assert!(session_of(store, other_session.id, t).is_some());

    // Using the successor marks the first one's successor as used.
    let h4 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(session.id, h2, h4, "jti-4", t + 30))
            .expect("rotate successor")
    );
    assert!(
        store
            .find_refresh_token(&h1)
            .expect("find")
            .expect("kept")
            .successor_used
    );
    assert!(
        !store
            .find_refresh_token(&h2)
            .expect("find")
            .expect("kept")
            .successor_used
    );

    // An unknown token is simply absent.
    assert!(
        store
            .find_refresh_token(&random_hash())
            .expect("find")
            .is_none()
    );
}

/// Exchanges of one refresh token racing: exactly one wins, only its successor exists and
/// the session carries its jti.
pub fn concurrent_refresh_rotation_has_one_winner(store: &dyn Store) {
    let user = make_user(store, "conc@example.com");
    let t = T0;
    let (session, h1) = make_session(store, user.id, t);
    let results: Vec<(TokenHash, Result<bool, StoreError>)> = race(THREADS, |i| {
        let new = random_hash();
        let r = rotation(session.id, h1, new, &format!("jti-{i}"), t + 1);
        (new, store.rotate_refresh_token(&r))
    });
    let winners: Vec<&TokenHash> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(true)))
        .map(|(h, _)| h)
        .collect();
    let losers = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(false)))
        .count();
    assert_eq!(
        (winners.len(), losers),
        (1, THREADS - 1),
        "{:?}",
        results.iter().map(|(_, r)| r).collect::<Vec<_>>()
    );
    // Exactly the winner's token exists.
    for (hash, _) in &results {
        let exists = store.find_refresh_token(hash).expect("find").is_some();
        assert_eq!(exists, hash == winners[0]);
    }
    let winner_index = results
        .iter()
        .position(|(_, r)| matches!(r, Ok(true)))
        .expect("winner");
    let s = session_of(store, session.id, t + 1).expect("live");
    assert_eq!(s.access_jti, format!("jti-{winner_index}"));
}

/// `rotate_access_token` only rotates while the presented jti is current and the session
/// live; it marks the session's unused refresh token used at `now` with no replay (so
/// presenting it later is reuse) and keeps used ones. The session's bounds come back with
/// every refresh token.
pub fn access_rotation_is_conditional_on_jti(store: &dyn Store) {
    let user = make_user(store, "ada@example.com");
    let t = T0;
    let (session, h1) = make_session(store, user.id, t);
    // h1 is exchanged for h2, so h1 is a used token and h2 the live one.
    let h2 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(session.id, h1, h2, "jti-2", t + 1))
            .expect("rotate")
    );

    let access = |old: &str, new: &str, hash: TokenHash, now: i64| AccessRotation {
        session_id: session.id,
        old_access_jti: old.to_owned(),
        new_access_jti: new.to_owned(),
        new_refresh: NewRefreshToken {
            hash,
            session_id: session.id,
            created_at: now,
            expires_at: now + 9000,
        },
        now,
    };

    // Wrong jti: false, nothing written.
    let h3 = random_hash();
    assert!(
        !store
            .rotate_access_token(&access(&session.access_jti, "jti-3", h3, t + 2))
            .expect("stale jti")
    );
    assert!(store.find_refresh_token(&h3).expect("find").is_none());
    assert!(store.find_refresh_token(&h2).expect("find").is_some());
    assert_eq!(
        session_of(store, session.id, t + 2)
            .expect("live")
            .access_jti,
        "jti-2"
    );

    // Current jti: rotates, supersedes the unused refresh token as used, keeps the used one.
    assert!(
        store
            .rotate_access_token(&access("jti-2", "jti-3", h3, t + 3))
            .expect("rotate access")
    );
    let s = session_of(store, session.id, t + 3).expect("live");
    assert_eq!(s.access_jti, "jti-3");
    assert_eq!(s.last_used_at, t + 3);
    assert_eq!(s.expires_at, t + 3 + 9000);
    assert_eq!(s.bounds, session.bounds);
    assert_eq!(s.profile, session.profile);
    let superseded = store
        .find_refresh_token(&h2)
        .expect("find")
        .expect("superseded kept");
    assert_eq!(superseded.used_at, Some(t + 3), "superseded counts as used");
    assert!(superseded.replay.is_none(), "and has no replay");
    assert_eq!(superseded.session_bounds, session.bounds);
    let old = store
        .find_refresh_token(&h1)
        .expect("find")
        .expect("used kept");
    assert!(old.successor_used, "a superseded successor counts as used");
    let new = store.find_refresh_token(&h3).expect("find").expect("new");
    assert_eq!((new.used_at, new.expires_at), (None, t + 3 + 9000));

    // The same old jti again: false.
    let h4 = random_hash();
    assert!(
        !store
            .rotate_access_token(&access("jti-2", "jti-4", h4, t + 4))
            .expect("replayed jti")
    );
    assert!(store.find_refresh_token(&h4).expect("find").is_none());

    // A session expired at `now` cannot be rotated.
    let expired_at = t + 3 + 9000;
    assert!(
        !store
            .rotate_access_token(&access("jti-3", "jti-5", random_hash(), expired_at))
            .expect("expired")
    );
    assert_eq!(
        store
            .session_with_user(session.id, seen(t + 4))
            .expect("lookup")
            .map(|(s, _)| s.access_jti),
        Some("jti-3".to_owned())
    );
    assert!(store.find_refresh_token(&h3).expect("find").is_some());

    // A deleted session cannot be rotated.
    assert!(store.delete_session(user.id, session.id).expect("delete"));
    assert!(
        !store
            .rotate_access_token(&access("jti-3", "jti-5", random_hash(), t + 5))
            .expect("gone")
    );
}
