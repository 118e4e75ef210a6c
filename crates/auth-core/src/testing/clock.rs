//! [`FixedClock`]: time that moves only when a test says so.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::clock::Clock;

/// A clock standing still at a Unix second until [`FixedClock::advance`] moves it. Its
/// monotonic time moves with it (in whole milliseconds).
#[derive(Debug, Default)]
pub struct FixedClock {
    millis: AtomicI64,
}

impl FixedClock {
    /// A clock at `unix_seconds`.
    pub fn at(unix_seconds: i64) -> Self {
        Self {
            millis: AtomicI64::new(unix_seconds.saturating_mul(1_000)),
        }
    }

    /// Moves the clock forward by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.millis
            .fetch_add(seconds.saturating_mul(1_000), Ordering::AcqRel);
    }

    /// Moves the clock forward by `millis` milliseconds.
    pub fn advance_millis(&self, millis: i64) {
        self.millis.fetch_add(millis, Ordering::AcqRel);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.millis.load(Ordering::Acquire).div_euclid(1_000)
    }

    fn monotonic(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.millis.load(Ordering::Acquire)).unwrap_or(0))
    }
}
