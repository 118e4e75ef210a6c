//! Cases of the batched housekeeping calls the background purger makes:
//! [`SessionStore::purge_expired_sessions`](crate::store::SessionStore::purge_expired_sessions),
//! [`PersonalTokenStore::purge_expired_personal_tokens`](crate::store::PersonalTokenStore::purge_expired_personal_tokens),
//! [`OneTimeTokenStore::purge_one_time_tokens`](crate::store::OneTimeTokenStore::purge_one_time_tokens)
//! and [`RateLimitStore::purge_known_addresses`](crate::store::RateLimitStore::purge_known_addresses).

use super::support::{
    T0, make_session, make_user, one_time_token, personal_token, seen, session_of,
};
use crate::store::{FailureCounts, FailureQuery, LoginAttempt, Reservation};
use crate::store::{Store, TokenPurpose};

/// Expired sessions (expiry at or before `before`) go, at most `limit` per call, with their
/// refresh state; live ones and their refresh state stay.
pub fn expired_sessions_are_purged_in_batches(store: &dyn Store) {
    let user = make_user(store, "purge@example.com");
    let t = T0;
    // make_session: one hour from its creation. Five expired by `t`, one at exactly `t`.
    let expired: Vec<_> = (0..5)
        .map(|i| make_session(store, user.id, t - 4000 - i).0)
        .collect();
    let (edge, _) = make_session(store, user.id, t - 3600);
    let (live, _) = make_session(store, user.id, t - 3599);

    assert_eq!(store.purge_expired_sessions(t, 4).expect("first batch"), 4);
    assert_eq!(store.purge_expired_sessions(t, 4).expect("second batch"), 2);
    assert_eq!(store.purge_expired_sessions(t, 4).expect("nothing left"), 0);
    for session in expired.iter().chain([&edge]) {
        assert!(
            store
                .find_refresh_token(session.id)
                .expect("find")
                .is_none()
        );
    }
    assert!(session_of(store, live.id, t).is_some());
    assert!(store.find_refresh_token(live.id).expect("find").is_some());
    assert_eq!(
        store
            .list_sessions(user.id, t - 10_000)
            .expect("list")
            .len(),
        1
    );
}

/// Personal tokens past their expiry go, at most `limit` per call; unexpired ones and ones
/// without an expiry stay.
pub fn expired_personal_tokens_are_purged_in_batches(store: &dyn Store) {
    let user = make_user(store, "purge-pat@example.com");
    let t = T0;
    let mut doomed = Vec::new();
    for i in 0..3 {
        let mut token = personal_token(user.id, &format!("old-{i}"), t - 100);
        token.expires_at = Some(t - i);
        store.create_personal_token(&token).expect("create");
        doomed.push(token);
    }
    let mut live = personal_token(user.id, "live", t);
    live.expires_at = Some(t + 1);
    store.create_personal_token(&live).expect("create");
    let mut forever = personal_token(user.id, "forever", t);
    forever.expires_at = None;
    store.create_personal_token(&forever).expect("create");

    assert_eq!(store.purge_expired_personal_tokens(t, 2).expect("batch"), 2);
    assert_eq!(store.purge_expired_personal_tokens(t, 2).expect("batch"), 1);
    assert_eq!(store.purge_expired_personal_tokens(t, 2).expect("done"), 0);
    for token in &doomed {
        let found = store
            .personal_token_with_user(&token.hash, seen(t))
            .expect("lookup");
        assert!(found.is_none());
    }
    let names: Vec<String> = store
        .list_personal_tokens(user.id)
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"live".to_owned()) && names.contains(&"forever".to_owned()));
}

/// Known addresses last used before `before` go, at most `limit` per call; a newer one stays.
pub fn known_addresses_are_purged_in_batches(store: &dyn Store) {
    let t = T0;
    for i in 0..3 {
        store
            .remember_address("k@example.com", &format!("10.0.0.{i}"), t - 100 - i)
            .expect("remember");
    }
    store
        .remember_address("k@example.com", "10.0.0.9", t)
        .expect("remember");
    assert_eq!(store.purge_known_addresses(t, 2).expect("batch"), 2);
    assert_eq!(store.purge_known_addresses(t, 2).expect("batch"), 1);
    assert_eq!(store.purge_known_addresses(t, 2).expect("done"), 0);
    // The newer address is still known: with one failure of the email from elsewhere, the
    // email limit (1) would refuse it; as a known address only the email+IP limit applies.
    let attempt = LoginAttempt {
        query: FailureQuery {
            email_key: "k@example.com".to_owned(),
            ip: "10.0.0.9".to_owned(),
            email_ip_since: t - 1000,
            email_since: t - 1000,
            ip_since: t - 1000,
        },
        now: t + 1,
        max: FailureCounts {
            email_ip: 5,
            email: 1,
            ip: 1,
        },
        known_since: Some(t - 1000),
    };
    store
        .record_login_failure("k@example.com", "10.0.0.8", t)
        .expect("failure");
    assert!(matches!(
        store.reserve_login_attempt(&attempt).expect("reserve"),
        Reservation::Reserved
    ));
}

/// One-time tokens with `expires_at <= before` go, at most `limit` per call; a live one
/// stays and still works.
pub fn expired_one_time_tokens_are_purged_in_batches(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "purge-once@example.com");
    let doomed: Vec<_> = (0..3)
        .map(|i| {
            let mut token = one_time_token(&user, TokenPurpose::ALL[i % 4], t - 100);
            token.expires_at = t - i64::try_from(i).expect("small");
            store.create_one_time_token(&token).expect("create");
            token
        })
        .collect();
    let mut live = one_time_token(&user, TokenPurpose::PasswordReset, t - 100);
    live.expires_at = t + 1;
    store.create_one_time_token(&live).expect("create");

    assert_eq!(store.purge_one_time_tokens(t, 2).expect("batch"), 2);
    assert_eq!(store.purge_one_time_tokens(t, 2).expect("batch"), 1);
    assert_eq!(store.purge_one_time_tokens(t, 2).expect("done"), 0);
    for token in &doomed {
        // At `t - 50` each would still work, had it not been purged.
        let found = store
            .consume_one_time_token(&token.hash, token.purpose, t - 50)
            .expect("consume");
        assert_eq!(found, None);
    }
    let found = store
        .consume_one_time_token(&live.hash, live.purpose, t)
        .expect("consume");
    assert!(found.is_some());
}
