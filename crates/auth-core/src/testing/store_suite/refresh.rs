//! Cases of the two refresh forms of [`SessionStore`](crate::store::SessionStore):
//! refresh-token exchange and bearer-form (access-token) rotation, on the session's
//! generations (current and previous kept, nothing older).

use super::support::{
    T0, THREADS, make_session, make_user, race, random_hash, rotation, seen, session_of,
};
use crate::store::{AccessRotation, PreviousRefresh, Store, StoreError, TokenHash};

/// `rotate_refresh_token` exchanges the current generation once: it becomes the previous
/// (used at `now`, with its replay), the new one the current; the session's jti,
/// `last_used_at` and expiry move; a stale generation, a wrong hash, or a token of another
/// session is refused with nothing written.
pub fn refresh_rotation(store: &dyn Store) {
    let user = make_user(store, "rita@example.com");
    let t = T0;
    let (session, h1) = make_session(store, user.id, t);

    let first = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("exists");
    assert_eq!(first.session_id, session.id);
    assert_eq!(first.user_id, user.id);
    assert_eq!((first.generation, first.current), (0, h1));
    assert_eq!(first.previous, None);
    assert_eq!(first.session_expires_at, session.expires_at);
    assert_eq!(first.session_bounds, session.bounds);

    let h2 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(session.id, 0, h1, h2, "jti-2", t + 10))
            .expect("rotate")
    );
    let second = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("kept");
    assert_eq!((second.generation, second.current), (1, h2));
    assert_eq!(
        second.previous,
        Some(PreviousRefresh {
            hash: h1,
            used_at: t + 10,
            replay: Some(vec![1, 2, 3, 0, 255]),
        })
    );
    assert_eq!(second.session_expires_at, t + 10 + 7200);
    let s = session_of(store, session.id, t + 10).expect("live");
    assert_eq!(s.access_jti, "jti-2");
    assert_eq!(s.last_used_at, t + 10);
    assert_eq!(s.expires_at, t + 10 + 7200);

    // The used generation again, a wrong hash, a generation skipped: refused, unchanged.
    for refused in [
        rotation(session.id, 0, h1, random_hash(), "jti-3", t + 20),
        rotation(session.id, 1, random_hash(), random_hash(), "jti-3", t + 20),
        rotation(session.id, 2, h2, random_hash(), "jti-3", t + 20),
        rotation(session.id, 0, h2, random_hash(), "jti-3", t + 20),
    ] {
        assert!(!store.rotate_refresh_token(&refused).expect("refused"));
    }
    let unchanged = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("kept");
    assert_eq!((unchanged.generation, unchanged.current), (1, h2));
    assert_eq!(unchanged.previous, second.previous);
    assert_eq!(
        session_of(store, session.id, t + 20)
            .expect("live")
            .access_jti,
        "jti-2"
    );

    // A token of another session cannot be exchanged through this one.
    let (other, other_hash) = make_session(store, user.id, t);
    assert!(
        !store
            .rotate_refresh_token(&rotation(session.id, 0, other_hash, random_hash(), "x", t))
            .expect("foreign")
    );
    assert_eq!(
        store
            .find_refresh_token(other.id)
            .expect("find")
            .expect("kept")
            .generation,
        0
    );

    // The next exchange replaces the previous generation: only two are ever kept.
    let h3 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(session.id, 1, h2, h3, "jti-4", t + 30))
            .expect("rotate")
    );
    let third = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("kept");
    assert_eq!((third.generation, third.current), (2, h3));
    assert_eq!(
        third.previous.map(|p| (p.hash, p.used_at)),
        Some((h2, t + 30))
    );

    // An unknown session is simply absent.
    assert!(
        store
            .find_refresh_token(uuid::Uuid::new_v4())
            .expect("find")
            .is_none()
    );
}

/// A thousand exchanges keep one state of constant size: the current generation and the
/// previous one, whatever came before (the Diesel tests also count the rows).
pub fn many_rotations_keep_two_generations(store: &dyn Store) {
    let user = make_user(store, "many@example.com");
    let t = T0;
    let (session, mut current) = make_session(store, user.id, t);
    for generation in 0..1000u64 {
        let next = random_hash();
        let now = t + i64::try_from(generation).expect("small");
        let r = rotation(session.id, generation, current, next, "jti", now);
        assert!(
            store.rotate_refresh_token(&r).expect("rotate"),
            "{generation}"
        );
        current = next;
    }
    let record = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("kept");
    assert_eq!((record.generation, record.current), (1000, current));
    assert_eq!(record.previous.map(|p| p.used_at), Some(t + 999));
}

/// Exchanges of one generation racing: exactly one wins, its token is the current one and
/// the session carries its jti.
pub fn concurrent_refresh_rotation_has_one_winner(store: &dyn Store) {
    let user = make_user(store, "conc@example.com");
    let t = T0;
    let (session, h1) = make_session(store, user.id, t);
    let results: Vec<(TokenHash, Result<bool, StoreError>)> = race(THREADS, |i| {
        let new = random_hash();
        let r = rotation(session.id, 0, h1, new, &format!("jti-{i}"), t + 1);
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
    let record = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("kept");
    assert_eq!((record.generation, record.current), (1, *winners[0]));
    assert_eq!(record.previous.map(|p| p.hash), Some(h1));
    let winner_index = results
        .iter()
        .position(|(_, r)| matches!(r, Ok(true)))
        .expect("winner");
    let s = session_of(store, session.id, t + 1).expect("live");
    assert_eq!(s.access_jti, format!("jti-{winner_index}"));
}

/// `rotate_access_token` only rotates while the presented jti is current and the session
/// live; it supersedes the current refresh token as the previous generation, used at `now`
/// with no replay (so presenting it later is reuse), and returns the new generation. Of
/// concurrent calls with one jti, one wins.
pub fn access_rotation_is_conditional_on_jti(store: &dyn Store) {
    let user = make_user(store, "ada@example.com");
    let t = T0;
    let (session, h1) = make_session(store, user.id, t);
    let h2 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(session.id, 0, h1, h2, "jti-2", t + 1))
            .expect("rotate")
    );

    let access = |old: &str, new: &str, hash: TokenHash, now: i64| AccessRotation {
        session_id: session.id,
        old_access_jti: old.to_owned(),
        new_access_jti: new.to_owned(),
        new_refresh: hash,
        expires_at: now + 9000,
        now,
    };

    // Wrong jti: nothing written.
    let h3 = random_hash();
    assert_eq!(
        store
            .rotate_access_token(&access(&session.access_jti, "jti-3", h3, t + 2))
            .expect("stale jti"),
        None
    );
    let before = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("kept");
    assert_eq!((before.generation, before.current), (1, h2));
    assert_eq!(
        session_of(store, session.id, t + 2)
            .expect("live")
            .access_jti,
        "jti-2"
    );

    // Current jti: rotates; the current refresh token is superseded with no replay.
    assert_eq!(
        store
            .rotate_access_token(&access("jti-2", "jti-3", h3, t + 3))
            .expect("rotate access"),
        Some(2)
    );
    let s = session_of(store, session.id, t + 3).expect("live");
    assert_eq!(s.access_jti, "jti-3");
    assert_eq!(s.last_used_at, t + 3);
    assert_eq!(s.expires_at, t + 3 + 9000);
    assert_eq!(s.bounds, session.bounds);
    assert_eq!(s.profile, session.profile);
    let after = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("kept");
    assert_eq!((after.generation, after.current), (2, h3));
    assert_eq!(
        after.previous,
        Some(PreviousRefresh {
            hash: h2,
            used_at: t + 3,
            replay: None,
        }),
        "superseded: used, no replay"
    );
    assert_eq!(after.session_expires_at, t + 3 + 9000);
    assert_eq!(after.session_bounds, session.bounds);
    // The superseded generation can no longer be exchanged; the new one can.
    assert!(
        !store
            .rotate_refresh_token(&rotation(session.id, 1, h2, random_hash(), "x", t + 3))
            .expect("superseded")
    );

    // The same old jti again: nothing.
    assert_eq!(
        store
            .rotate_access_token(&access("jti-2", "jti-4", random_hash(), t + 4))
            .expect("replayed jti"),
        None
    );

    // Concurrent calls with the current jti: one winner.
    let results = race(THREADS, |i| {
        store.rotate_access_token(&access("jti-3", &format!("jti-r{i}"), random_hash(), t + 5))
    });
    let won: Vec<_> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().copied().flatten())
        .collect();
    assert_eq!(won, vec![3], "{results:?}");
    let s = session_of(store, session.id, t + 5).expect("live");

    // A session expired at `now` cannot be rotated.
    let expired_at = t + 5 + 9000;
    assert_eq!(
        store
            .rotate_access_token(&access(&s.access_jti, "jti-5", random_hash(), expired_at))
            .expect("expired"),
        None
    );
    assert_eq!(
        store
            .session_with_user(session.id, seen(t + 6))
            .expect("lookup")
            .map(|(s, _)| s.access_jti),
        Some(s.access_jti.clone())
    );

    // A deleted session cannot be rotated.
    assert!(store.delete_session(user.id, session.id).expect("delete"));
    assert_eq!(
        store
            .rotate_access_token(&access(&s.access_jti, "jti-6", random_hash(), t + 7))
            .expect("gone"),
        None
    );
    assert!(
        store
            .find_refresh_token(session.id)
            .expect("find")
            .is_none()
    );
}
