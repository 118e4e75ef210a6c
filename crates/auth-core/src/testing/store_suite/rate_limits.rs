//! Cases of [`RateLimitStore`](crate::store::RateLimitStore): failed logins in three
//! windows, rate-limit hits, housekeeping.

use super::support::{RATE_LIMIT_THREADS, T0, race};
use crate::store::{FailureCounts, FailureQuery, FailureSeries, Store};

/// The failures of [`failure_fixture`], relative to `t`: (email, IP, seconds before `t`),
/// deliberately out of time order.
const FAILURES: &[(&str, &str, i64)] = &[
    ("a@example.com", "10.0.0.1", 10),
    ("a@example.com", "10.0.0.1", 100),
    ("a@example.com", "10.0.0.2", 30),
    ("a@example.com", "10.0.0.1", 50),
    ("a@example.com", "10.0.0.1", 61),
    ("b@example.com", "10.0.0.1", 20),
    ("b@example.com", "10.0.0.1", 200),
    ("a@example.com", "10.0.0.1", 101),
];

/// Records [`FAILURES`] and returns `t`.
fn failure_fixture(store: &dyn Store) -> i64 {
    let t = T0;
    for (email, ip, ago) in FAILURES {
        store
            .record_login_failure(email, ip, t - ago)
            .expect("record failure");
    }
    t
}

/// Windows of 60 s (email+IP), 100 s (email) and 25 s (IP) ending at `t`.
fn failure_query(email: &str, ip: &str, t: i64) -> FailureQuery {
    FailureQuery {
        email_key: email.to_owned(),
        ip: ip.to_owned(),
        email_ip_since: t - 60,
        email_since: t - 100,
        ip_since: t - 25,
    }
}

/// Expected counts.
fn counts(email_ip: u64, email: u64, ip: u64) -> FailureCounts {
    FailureCounts {
        email_ip,
        email,
        ip,
    }
}

/// `count_login_failures` counts each of the three series in its own window (the start
/// included).
pub fn login_failures_are_counted_per_window(store: &dyn Store) {
    let t = T0;
    let empty = failure_query("a@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&empty).expect("count"),
        counts(0, 0, 0)
    );

    let t = failure_fixture(store);
    // email+IP since t-60: 10, 50 (61, 100, 101 are older; 30 is another IP).
    // email since t-100 (inclusive): 10, 30, 50, 61, 100.
    // IP since t-25: a's 10 and b's 20.
    let a = failure_query("a@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&a).expect("count"),
        counts(2, 5, 2)
    );
    // Another IP of the same email: its own email+IP and IP counts, the same email count.
    let other_ip = failure_query("a@example.com", "10.0.0.2", t);
    assert_eq!(
        store.count_login_failures(&other_ip).expect("count"),
        counts(1, 5, 0)
    );
    let mut narrower = other_ip.clone();
    narrower.email_ip_since = t - 29;
    narrower.ip_since = t - 30;
    assert_eq!(
        store.count_login_failures(&narrower).expect("count"),
        counts(0, 5, 1)
    );
    // Another email from the same IP.
    let b = failure_query("b@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&b).expect("count"),
        counts(1, 1, 2)
    );
    // Unknown email, unknown IP.
    let nobody = failure_query("c@example.com", "10.0.0.9", t);
    assert_eq!(
        store.count_login_failures(&nobody).expect("count"),
        counts(0, 0, 0)
    );
    let from_a_ip = failure_query("c@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&from_a_ip).expect("count"),
        counts(0, 0, 2)
    );
}

/// `nth_login_failure` gives the `skip`-th oldest failure of one series in its window.
pub fn nth_login_failure_per_series(store: &dyn Store) {
    let t = failure_fixture(store);
    let q = failure_query("a@example.com", "10.0.0.1", t);
    let series = |series: FailureSeries| -> Vec<Option<i64>> {
        (0..6)
            .map(|skip| store.nth_login_failure(&q, series, skip).expect("nth"))
            .collect()
    };
    let ago = |secs: &[i64]| -> Vec<Option<i64>> {
        let mut v: Vec<Option<i64>> = secs.iter().map(|s| Some(t - s)).collect();
        v.resize(6, None);
        v
    };
    assert_eq!(series(FailureSeries::EmailIp), ago(&[50, 10]));
    assert_eq!(series(FailureSeries::Email), ago(&[100, 61, 50, 30, 10]));
    assert_eq!(series(FailureSeries::Ip), ago(&[20, 10]));
    assert_eq!(
        store
            .nth_login_failure(&q, FailureSeries::Email, u64::MAX)
            .expect("huge skip"),
        None
    );
    let nobody = failure_query("c@example.com", "10.0.0.9", t);
    for s in [
        FailureSeries::EmailIp,
        FailureSeries::Email,
        FailureSeries::Ip,
    ] {
        assert_eq!(store.nth_login_failure(&nobody, s, 0).expect("nth"), None);
    }
}

/// `clear_login_failures` forgets every failure of one email, from every IP, and nothing else.
pub fn clear_login_failures_forgets_only_that_email(store: &dyn Store) {
    let t = failure_fixture(store);
    store
        .clear_login_failures("a@example.com")
        .expect("clear a");
    let a = failure_query("a@example.com", "10.0.0.1", t);
    // Only b's failure at t-20 is left in the IP window.
    assert_eq!(
        store.count_login_failures(&a).expect("count"),
        counts(0, 0, 1)
    );
    let a2 = failure_query("a@example.com", "10.0.0.2", t);
    assert_eq!(
        store.count_login_failures(&a2).expect("count"),
        counts(0, 0, 0)
    );
    assert_eq!(
        store
            .nth_login_failure(&a, FailureSeries::Email, 0)
            .expect("nth"),
        None
    );
    let b = failure_query("b@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&b).expect("count"),
        counts(1, 1, 1)
    );
    let mut all_of_b = b.clone();
    all_of_b.email_since = t - 1000;
    assert_eq!(
        store.count_login_failures(&all_of_b).expect("count").email,
        2
    );
    // Clearing an email without failures (or twice) is fine.
    store.clear_login_failures("a@example.com").expect("again");
    store
        .clear_login_failures("c@example.com")
        .expect("unknown");
    assert_eq!(
        store.count_login_failures(&b).expect("count"),
        counts(1, 1, 1)
    );
}

/// `hit_rate_limit` counts hits of one bucket and key since the window's start (included),
/// records one more only below the limit, and reports the oldest hit in the window.
pub fn rate_limit_hits_count_in_their_window(store: &dyn Store) {
    let t = T0;
    let hit = |key: &str, since: i64, limit: u64, at: i64| {
        store
            .hit_rate_limit("register", key, since, limit, at)
            .expect("hit")
    };
    assert_eq!(hit("k", t - 60, 3, t - 100), (0, None));
    assert_eq!(hit("k", t - 60, 3, t - 40), (0, None), "t-100 is outside");
    assert_eq!(hit("k", t - 60, 3, t - 20), (1, Some(t - 40)));
    assert_eq!(hit("k", t - 60, 3, t), (2, Some(t - 40)));
    // Full: counted, not recorded.
    assert_eq!(hit("k", t - 60, 3, t), (3, Some(t - 40)));
    assert_eq!(hit("k", t - 60, 3, t), (3, Some(t - 40)));
    // The window's start is inclusive.
    assert_eq!(hit("k", t - 100, 0, t), (4, Some(t - 100)));
    // A wider limit records again.
    assert_eq!(hit("k", t - 60, 4, t), (3, Some(t - 40)));
    assert_eq!(hit("k", t - 60, 0, t), (4, Some(t - 40)));
    // Other keys and buckets are separate.
    assert_eq!(hit("other", t - 60, 3, t), (0, None));
    assert_eq!(
        store
            .hit_rate_limit("login", "k", t - 60, 3, t)
            .expect("other bucket"),
        (0, None)
    );
    // A separator in bucket or key does not merge counts.
    assert_eq!(
        store
            .hit_rate_limit("register:k", "", t - 60, 3, t)
            .expect("separator"),
        (0, None)
    );
}

/// Hits racing on one rate limit: exactly `limit` are admitted, with the counts 0..limit.
pub fn concurrent_rate_limit_hits_respect_the_limit(store: &dyn Store) {
    const LIMIT: u64 = 5;
    let t = T0;
    let results: Vec<(u64, Option<i64>)> = race(RATE_LIMIT_THREADS, |_| {
        store
            .hit_rate_limit("login", "10.0.0.1", t - 60, LIMIT, t)
            .expect("hit")
    });
    let mut admitted: Vec<u64> = results
        .iter()
        .map(|(count, _)| *count)
        .filter(|count| *count < LIMIT)
        .collect();
    admitted.sort_unstable();
    assert_eq!(admitted, (0..LIMIT).collect::<Vec<_>>(), "{results:?}");
    let refused = results.iter().filter(|(count, _)| *count >= LIMIT).count();
    assert_eq!(refused, RATE_LIMIT_THREADS - LIMIT as usize, "{results:?}");
    for (count, oldest) in &results {
        assert_eq!(*oldest, (*count > 0).then_some(t), "{results:?}");
    }
    // Exactly LIMIT hits were recorded.
    assert_eq!(
        store
            .hit_rate_limit("login", "10.0.0.1", t - 60, 0, t)
            .expect("count"),
        (LIMIT, Some(t))
    );
}

/// `purge_rate_limits` deletes failures and hits strictly older than `before`, at most
/// `limit` of each per call, and says how many.
pub fn purge_rate_limits_removes_old_rows(store: &dyn Store) {
    let t = T0;
    assert_eq!(store.purge_rate_limits(t, 1000).expect("purge empty"), 0);
    for ago in [300, 200, 100, 10] {
        store
            .record_login_failure("a@example.com", "10.0.0.1", t - ago)
            .expect("failure");
        store
            .hit_rate_limit("register", "10.0.0.1", t - 1000, 100, t - ago)
            .expect("hit");
    }
    // Rows at exactly `before` stay; one of each table per call with a limit of one.
    assert_eq!(store.purge_rate_limits(t - 100, 1).expect("batch"), 2);
    assert_eq!(store.purge_rate_limits(t - 100, 1).expect("batch"), 2);
    assert_eq!(store.purge_rate_limits(t - 100, 1).expect("again"), 0);
    let q = FailureQuery {
        email_key: "a@example.com".to_owned(),
        ip: "10.0.0.1".to_owned(),
        email_ip_since: t - 1000,
        email_since: t - 1000,
        ip_since: t - 1000,
    };
    assert_eq!(
        store.count_login_failures(&q).expect("count"),
        counts(2, 2, 2)
    );
    assert_eq!(
        store
            .nth_login_failure(&q, FailureSeries::EmailIp, 0)
            .expect("nth"),
        Some(t - 100)
    );
    assert_eq!(
        store
            .hit_rate_limit("register", "10.0.0.1", t - 1000, 0, t)
            .expect("hits"),
        (2, Some(t - 100))
    );
    assert_eq!(store.purge_rate_limits(t + 1, 1000).expect("purge all"), 4);
    assert_eq!(
        store.count_login_failures(&q).expect("count"),
        counts(0, 0, 0)
    );
}
