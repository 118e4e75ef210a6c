//! Cases of [`SessionStore`](crate::store::SessionStore) around a session's life: opening,
//! looking up, touching, listing, expiring, purging and deleting.

use uuid::Uuid;

use super::support::{T0, make_session, make_user, new_session, seen, session_of};
use crate::store::{Store, StoreError, Use};

/// Sessions authenticate until their expiry (exclusive), carry their user, are touched as
/// [`Use`] says, list live ones oldest first, and are deleted only by their owner, with their
/// refresh tokens.
pub fn session_lifecycle(store: &dyn Store) {
    let user = make_user(store, "sam@example.com");
    let other = make_user(store, "other@example.com");
    let t = T0;
    let (s1, _) = make_session(store, user.id, t - 100);
    let (s2, _) = make_session(store, user.id, t - 50);

    // Lookup joins the user and refreshes a stale last_used_at.
    let (found, found_user) = store
        .session_with_user(s1.id, seen(t))
        .expect("lookup")
        .expect("live");
    assert_eq!(found_user, user);
    assert_eq!(found.id, s1.id);
    assert_eq!(found.access_jti, s1.access_jti);
    assert_eq!(found.user_agent.as_deref(), Some("test-agent"));
    assert_eq!(found.last_used_at, t);
    // Within a minute it is left alone.
    assert_eq!(
        session_of(store, s1.id, t + 30).expect("live").last_used_at,
        t
    );
    assert_eq!(
        session_of(store, s1.id, t + 61).expect("live").last_used_at,
        t + 61
    );
    // Exactly: a `last_used_at` equal to `touch_before` stays, an older one moves to `now`.
    let at = |touch_before| Use {
        now: t,
        touch_before,
    };
    let (kept, _) = store
        .session_with_user(s2.id, at(t - 50))
        .expect("lookup")
        .expect("live");
    assert_eq!(kept.last_used_at, t - 50);
    let (moved, _) = store
        .session_with_user(s2.id, at(t - 49))
        .expect("lookup")
        .expect("live");
    assert_eq!(moved.last_used_at, t);
    assert_eq!(session_of(store, s2.id, t).expect("live").last_used_at, t);

    // Expiry.
    assert!(session_of(store, s1.id, s1.expires_at - 1).is_some());
    assert!(session_of(store, s1.id, s1.expires_at).is_none());
    assert!(session_of(store, Uuid::new_v4(), t).is_none());

    // Listing: live ones only, oldest first.
    let ids: Vec<Uuid> = store
        .list_sessions(user.id, t)
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec![s1.id, s2.id]);
    let later: Vec<Uuid> = store
        .list_sessions(user.id, s1.expires_at)
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(later, vec![s2.id]);
    assert!(store.list_sessions(other.id, t).expect("list").is_empty());

    // Deleting: only the owner's, and it takes the refresh tokens along.
    assert!(store.find_refresh_token(s1.id).expect("find").is_some());
    assert!(!store.delete_session(other.id, s1.id).expect("delete"));
    assert!(store.delete_session(user.id, s1.id).expect("delete"));
    assert!(!store.delete_session(user.id, s1.id).expect("delete again"));
    assert!(session_of(store, s1.id, t).is_none());
    assert!(store.find_refresh_token(s1.id).expect("find").is_none());
    assert!(session_of(store, s2.id, t).is_some());
}

/// An expired session does not authenticate, but its refresh tokens still read back with the
/// session's expiry (for the core to judge); a new session purges the user's sessions expired
/// at or before `purge_expired_before`, and only when asked to.
pub fn expired_session_reads_as_revoked(store: &dyn Store) {
    let user = make_user(store, "exp@example.com");
    let other = make_user(store, "exp-other@example.com");
    let t = T0;
    let (session, _) = make_session(store, user.id, t - 4000); // expired 400 s ago
    let (edge, _) = make_session(store, user.id, t - 3600); // expires exactly at t
    let (young, _) = make_session(store, user.id, t - 3599); // expires 1 s after t
    let (others, _) = make_session(store, other.id, t - 4000);
    assert!(session_of(store, session.id, t).is_none());
    let record = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("row");
    assert_eq!(record.session_expires_at, t - 400);
    assert!(record.session_expires_at <= t, "reads as revoked");

    // Without a purge, a new session leaves the expired ones.
    make_session(store, user.id, t);
    assert!(
        store
            .find_refresh_token(session.id)
            .expect("find")
            .is_some()
    );

    // A new login clears the user's sessions expired at or before the given time.
    let (mut login, _) = new_session(user.id, t);
    login.purge_expired_before = Some(t);
    store.create_session(&login).expect("login");
    assert!(
        store
            .find_refresh_token(session.id)
            .expect("find")
            .is_none()
    );
    assert!(store.find_refresh_token(edge.id).expect("find").is_none());
    assert!(store.find_refresh_token(young.id).expect("find").is_some());
    assert!(
        store
            .find_refresh_token(login.session.id)
            .expect("find")
            .is_some()
    );
    assert!(
        store.find_refresh_token(others.id).expect("find").is_some(),
        "not another user's"
    );
    assert_eq!(store.list_sessions(user.id, t).expect("list").len(), 3);
}

/// A refresh token written with a session must belong to it: `create_session` refuses one of
/// another session (`Other`) and writes nothing. A session of an unknown user is `Other`; a taken session id is a `Conflict`.
pub fn refresh_tokens_belong_to_their_session(store: &dyn Store) {
    let user = make_user(store, "own@example.com");
    let t = T0;
    let (mut stray, _) = new_session(user.id, t);
    stray.first_refresh.session_id = Uuid::new_v4();
    assert!(matches!(
        store.create_session(&stray),
        Err(StoreError::Other(_))
    ));
    assert!(session_of(store, stray.session.id, t).is_none());
    assert!(
        store
            .find_refresh_token(stray.session.id)
            .expect("find")
            .is_none()
    );

    let (orphan, _) = new_session(Uuid::new_v4(), t);
    assert!(matches!(
        store.create_session(&orphan),
        Err(StoreError::Other(_))
    ));
    assert!(session_of(store, orphan.session.id, t).is_none());

    let (session, hash) = make_session(store, user.id, t);
    let (mut again, _) = new_session(user.id, t);
    again.session.id = session.id;
    again.first_refresh.session_id = session.id;
    assert!(matches!(
        store.create_session(&again),
        Err(StoreError::Conflict)
    ));
    let record = store
        .find_refresh_token(session.id)
        .expect("find")
        .expect("kept");
    assert_eq!((record.generation, record.current), (0, hash));
}
