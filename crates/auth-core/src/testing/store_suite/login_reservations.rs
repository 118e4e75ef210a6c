//! Cases of the login reservations of [`RateLimitStore`](crate::store::RateLimitStore): the
//! check and the reservation are one step, releases, and known addresses.

use super::support::{RATE_LIMIT_THREADS, T0, race};
use crate::store::{FailureCounts, FailureQuery, LoginAttempt, Reservation, Store};

/// An attempt for `email` from `ip` at `t` (windows of 100 s) under `max`.
fn attempt(
    email: &str,
    ip: &str,
    t: i64,
    max: FailureCounts,
    known_since: Option<i64>,
) -> LoginAttempt {
    LoginAttempt {
        query: FailureQuery {
            email_key: email.to_owned(),
            ip: ip.to_owned(),
            email_ip_since: t - 100,
            email_since: t - 100,
            ip_since: t - 100,
        },
        max,
        known_since,
        now: t,
    }
}

fn max(email_ip: u64, email: u64, ip: u64) -> FailureCounts {
    FailureCounts {
        email_ip,
        email,
        ip,
    }
}

/// Of many concurrent reservations for one email and client, exactly the limit succeed;
/// the rest are refused without a write.
pub fn concurrent_login_reservations_respect_the_limit(store: &dyn Store) {
    const LIMIT: u64 = 5;
    let t = T0;
    let limit = max(LIMIT, 100, 100);
    let results = race(RATE_LIMIT_THREADS, |_| {
        store
            .reserve_login_attempt(&attempt("a@example.com", "10.0.0.1", t, limit, None))
            .expect("reserve")
    });
    let reserved = results
        .iter()
        .filter(|r| **r == Reservation::Reserved)
        .count();
    assert_eq!(reserved, LIMIT as usize, "{results:?}");
    let q = attempt("a@example.com", "10.0.0.1", t, limit, None).query;
    assert_eq!(
        store.count_login_failures(&q).expect("count").email_ip,
        LIMIT
    );
}

/// A reservation is a failure until released; a refusal reports the counts and writes
/// nothing.
pub fn login_reservations_count_until_released(store: &dyn Store) {
    let t = T0;
    let limit = max(2, 100, 100);
    let a = attempt("a@example.com", "10.0.0.1", t, limit, None);
    for _ in 0..2 {
        assert_eq!(
            store.reserve_login_attempt(&a).expect("reserve"),
            Reservation::Reserved
        );
    }
    let refused = Reservation::Refused {
        counts: max(2, 2, 2),
        known: false,
    };
    assert_eq!(store.reserve_login_attempt(&a).expect("refused"), refused);
    assert_eq!(
        store.count_login_failures(&a.query).expect("count"),
        max(2, 2, 2)
    );
    store
        .release_login_attempt("a@example.com", "10.0.0.1", t)
        .expect("release");
    assert_eq!(
        store.count_login_failures(&a.query).expect("count"),
        max(1, 1, 1)
    );
    // Releasing what is not there is harmless; other emails and times are untouched.
    store
        .release_login_attempt("b@example.com", "10.0.0.1", t)
        .expect("release nothing");
    store
        .release_login_attempt("a@example.com", "10.0.0.1", t - 1)
        .expect("release nothing");
    assert_eq!(
        store.count_login_failures(&a.query).expect("count"),
        max(1, 1, 1)
    );
    assert_eq!(
        store.reserve_login_attempt(&a).expect("again"),
        Reservation::Reserved
    );
}

/// A known address (a successful login from it at or after `known_since`) is held only to
/// the email+IP limit; a stale or purged one is not known.
pub fn known_addresses_are_held_only_to_the_email_ip_limit(store: &dyn Store) {
    let t = T0;
    let email = "owner@example.com";
    // The per-email limit is full from three other addresses.
    for ip in ["10.0.0.2", "10.0.0.3", "10.0.0.4"] {
        store
            .record_login_failure(email, ip, t - 1)
            .expect("failure");
    }
    let limit = max(2, 3, 100);
    let at = |known_since| attempt(email, "10.0.0.9", t, limit, known_since);
    assert_eq!(
        store
            .reserve_login_attempt(&at(Some(t - 100)))
            .expect("unknown"),
        Reservation::Refused {
            counts: max(0, 3, 0),
            known: false
        }
    );
    store
        .remember_address(email, "10.0.0.9", t - 50)
        .expect("remember");
    store
        .remember_address(email, "10.0.0.9", t - 10)
        .expect("again, later");
    store
        .remember_address(email, "10.0.0.9", t - 30)
        .expect("an older one");
    assert_eq!(
        store
            .reserve_login_attempt(&at(Some(t - 10)))
            .expect("known"),
        Reservation::Reserved,
        "known since t - 10, the latest success"
    );
    assert!(matches!(
        store
            .reserve_login_attempt(&at(Some(t - 9)))
            .expect("stale"),
        Reservation::Refused { known: false, .. }
    ));
    assert!(matches!(
        store.reserve_login_attempt(&at(None)).expect("not asked"),
        Reservation::Refused { known: false, .. }
    ));
    // Still held to its own email+IP limit (one reserved above, one more allowed).
    assert_eq!(
        store
            .reserve_login_attempt(&at(Some(t - 100)))
            .expect("known"),
        Reservation::Reserved
    );
    assert_eq!(
        store
            .reserve_login_attempt(&at(Some(t - 100)))
            .expect("known, full"),
        Reservation::Refused {
            counts: max(2, 5, 2),
            known: true
        }
    );
    // Another email's known address is not this one's.
    let other = attempt(
        "other@example.com",
        "10.0.0.9",
        t,
        max(2, 3, 2),
        Some(t - 100),
    );
    assert!(matches!(
        store.reserve_login_attempt(&other).expect("other"),
        Reservation::Refused { known: false, .. }
    ));
    assert_eq!(
        store
            .purge_known_addresses(t - 10, 1000)
            .expect("purge none"),
        0
    );
    assert_eq!(store.purge_known_addresses(t - 9, 0).expect("limit 0"), 0);
    assert_eq!(store.purge_known_addresses(t - 9, 1000).expect("purge"), 1);
    assert!(matches!(
        store
            .reserve_login_attempt(&at(Some(t - 100)))
            .expect("forgotten"),
        Reservation::Refused { known: false, .. }
    ));
}
