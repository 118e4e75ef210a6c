//! Time, as the core sees it: one injectable source for every `now`, so that expiry, reuse
//! windows, rate-limit windows and cache lifetimes can be tested on a fixed clock.

use std::time::{Duration, Instant};

/// Where the core reads the time. Every rule that depends on time asks this, never the
/// system directly; stores are handed the `now` the core read.
pub trait Clock: Send + Sync + 'static {
    /// Wall-clock time in whole Unix seconds (UTC).
    fn now(&self) -> i64;
    /// Monotonic time since an arbitrary fixed origin, for lifetimes shorter than a second
    /// (the principal cache). Never goes backwards.
    fn monotonic(&self) -> Duration;
}

/// The real clock: the system's wall clock and [`Instant`].
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A system clock whose monotonic origin is now.
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// A clamped conversion of a duration to whole seconds, for Unix-second arithmetic.
pub fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}
