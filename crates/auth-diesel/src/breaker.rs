//! A circuit breaker in front of the connection pool: once the database is found
//! unreachable, calls fail at once instead of each waiting for the pool's checkout timeout,
//! until one background probe reaches the database again.
//!
//! It lives in the Diesel store rather than in a store wrapper of the core because only
//! here can a lost database be told from a busy one: a checkout that timed out with a
//! connection error, or a connection left broken by a failed call, trips the breaker; a
//! lock timeout or an exhausted pool (both also `StoreError::Unavailable`) does not, since
//! the database is answering and the next call may well succeed.
//!
//! States: *closed* (calls pass) and *open* (calls fail at once with
//! [`StoreError::Unavailable`]). The first trip logs one warning and starts one probe thread;
//! the probe tries the database `interval` after its previous try ended (each try bounded by
//! the pool's checkout timeout) and, on its first success, closes the breaker, logs one line and exits. So an
//! outage costs one thread, two log lines and no request waits on it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use auth_core::store::{StoreError, StoreResult};

/// What callers are told while the breaker is open.
const OPEN_MESSAGE: &str = "database unreachable (circuit open, probing)";

/// The breaker's shared state; the probe thread holds it weakly, so dropping the store
/// ends the probe.
#[derive(Debug, Default)]
struct Shared {
    /// Fast path of [`Breaker::check`]: true while open.
    open: AtomicBool,
    /// When the current outage began; `Some` exactly while open (and a probe runs).
    since: Mutex<Option<Instant>>,
}

/// A circuit breaker; see the module documentation.
#[derive(Debug)]
pub(crate) struct Breaker {
    shared: Arc<Shared>,
    interval: Duration,
}

impl Breaker {
    /// A closed breaker whose probe, once tripped, tries every `interval`.
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            shared: Arc::default(),
            interval,
        }
    }

    /// Fails at once with [`StoreError::Unavailable`] while the breaker is open.
    pub(crate) fn check(&self) -> StoreResult<()> {
        if self.is_open() {
            Err(StoreError::Unavailable(OPEN_MESSAGE.to_owned()))
        } else {
            Ok(())
        }
    }

    /// Whether calls are currently refused.
    pub(crate) fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::Acquire)
    }

    /// Records that the database was found unreachable (`reason` is logged once, so it
    /// must hold no secret: database error texts never quote the URL's password). Opens
    /// the breaker and starts the probe, unless it is open already. `probe` is made only
    /// then: it tries the database once, within a bounded time.
    pub(crate) fn trip<P>(&self, reason: &str, probe: impl FnOnce() -> P)
    where
        P: Fn() -> Result<(), String> + Send + 'static,
    {
        let mut since = lock(&self.shared.since);
        if since.is_some() {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        let interval = self.interval;
        let probe = probe();
        let spawned = std::thread::Builder::new()
            .name("db-probe".to_owned())
            .spawn(move || probe_loop(&weak, interval, &probe));
        match spawned {
            Ok(_) => {
                *since = Some(Instant::now());
                self.shared.open.store(true, Ordering::Release);
                // libpq's messages span lines; the log line must stay one line.
                let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
                tracing::warn!(
                    error = %reason,
                    "database unreachable: refusing database calls at once until it answers \
                     again"
                );
            }
            // Without a probe nothing would close the breaker again: stay closed, so calls
            // keep trying the database themselves (slower, but never stuck).
            Err(err) => tracing::error!(error = %err, "cannot start the database probe"),
        }
    }
}

/// The probe thread: every `interval`, try the database; on the first success close the
/// breaker and exit. Exits as well when the store is gone.
fn probe_loop(shared: &Weak<Shared>, interval: Duration, probe: &dyn Fn() -> Result<(), String>) {
    let mut tries: u64 = 0;
    loop {
        std::thread::sleep(interval);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        tries += 1;
        if probe().is_ok() {
            let mut since = lock(&shared.since);
            let down_for = since.take().map(|t| t.elapsed()).unwrap_or_default();
            shared.open.store(false, Ordering::Release);
            tracing::info!(
                down_ms = down_for.as_millis() as u64,
                probes = tries,
                "database reachable again: serving database calls"
            );
            return;
        }
    }
}

/// Locks `mutex`, also after a panic elsewhere (the state is a plain value, always valid).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A fake database: refuses the first `failures` probes, then answers.
    fn fake(
        failures: u32,
    ) -> (
        Arc<AtomicU32>,
        impl Fn() -> Result<(), String> + Send + 'static,
    ) {
        let tries = Arc::new(AtomicU32::new(0));
        let counter = tries.clone();
        let probe = move || {
            if counter.fetch_add(1, Ordering::AcqRel) < failures {
                Err("connection refused".to_owned())
            } else {
                Ok(())
            }
        };
        (tries, probe)
    }

    /// Waits (bounded) until the breaker closes; false if it never did.
    fn closes_within(breaker: &Breaker, limit: Duration) -> bool {
        let started = Instant::now();
        while breaker.is_open() {
            if started.elapsed() > limit {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    #[test]
    fn a_closed_breaker_lets_calls_through() {
        let breaker = Breaker::new(Duration::from_millis(5));
        assert!(breaker.check().is_ok());
        assert!(!breaker.is_open());
    }

    #[test]
    fn a_trip_refuses_calls_until_a_probe_succeeds() {
        let breaker = Breaker::new(Duration::from_millis(5));
        let (tries, probe) = fake(3);
        breaker.trip("connection refused", || probe);
        assert!(matches!(breaker.check(), Err(StoreError::Unavailable(_))));
        assert!(closes_within(&breaker, Duration::from_secs(10)));
        assert!(breaker.check().is_ok());
        // Three refusals, then the success that closed it; no probe after that.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(tries.load(Ordering::Acquire), 4);
    }

    #[test]
    fn trips_while_open_start_no_second_probe() {
        let breaker = Breaker::new(Duration::from_millis(20));
        let (tries, probe) = fake(2);
        breaker.trip("first", || probe);
        let mut made = 0;
        for _ in 0..100 {
            breaker.trip("again", || {
                made += 1;
                || Ok(())
            });
        }
        assert_eq!(made, 0, "no probe is made while one runs");
        assert!(closes_within(&breaker, Duration::from_secs(10)));
        assert_eq!(tries.load(Ordering::Acquire), 3);
    }

    #[test]
    fn a_breaker_trips_again_after_recovering() {
        let breaker = Breaker::new(Duration::from_millis(5));
        for _ in 0..3 {
            let (_, probe) = fake(1);
            breaker.trip("down", || probe);
            assert!(breaker.is_open());
            assert!(closes_within(&breaker, Duration::from_secs(10)));
        }
    }

    #[test]
    fn dropping_the_breaker_ends_the_probe() {
        let breaker = Breaker::new(Duration::from_millis(5));
        let (tries, probe) = fake(u32::MAX);
        breaker.trip("down", || probe);
        std::thread::sleep(Duration::from_millis(30));
        drop(breaker);
        std::thread::sleep(Duration::from_millis(30));
        let after_drop = tries.load(Ordering::Acquire);
        std::thread::sleep(Duration::from_millis(60));
        assert!(tries.load(Ordering::Acquire) <= after_drop + 1);
    }
}
