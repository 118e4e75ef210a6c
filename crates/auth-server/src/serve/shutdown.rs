//! What a graceful shutdown needs: its signal, its grace, and how many requests are being
//! answered right now across all connections (what it reports as cut when the grace ends
//! before they finish).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// When and how a server stops: at `signal`, giving the requests in flight `grace`.
pub(crate) struct Stop<F> {
    /// Resolves when shutdown begins.
    pub(crate) signal: F,
    /// How long requests in flight get to finish.
    pub(crate) grace: Duration,
    /// The requests in flight, counted by every connection.
    pub(crate) in_flight: InFlight,
}

/// Logs, at the end of the grace, how many requests are still running and so will be cut
/// (nothing when none is).
pub(crate) fn log_cut(in_flight: &InFlight, grace: Duration) {
    let cut = in_flight.count();
    if cut > 0 {
        tracing::warn!(
            cut,
            grace_secs = grace.as_secs(),
            "shutdown grace over: {cut} requests still running were cut"
        );
    }
}

/// A shared count of requests in flight; clones count together.
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    /// Counts one more request until the returned guard is dropped (answered, or cut).
    pub(crate) fn start(&self) -> Request {
        self.0.fetch_add(1, Ordering::Relaxed);
        Request(Arc::clone(&self.0))
    }

    /// Requests started and not yet answered.
    /// Waits until no request is in flight or `until` has come (checking every 10 ms).
    pub(crate) async fn drained_by(&self, until: tokio::time::Instant) {
        while self.count() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One request in flight; dropping it ends the count.
#[derive(Debug)]
pub(crate) struct Request(Arc<AtomicUsize>);

impl Drop for Request {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests_until_their_guards_drop() {
        let in_flight = InFlight::default();
        let first = in_flight.start();
        let second = in_flight.clone().start();
        assert_eq!(in_flight.count(), 2);
        drop(first);
        assert_eq!(in_flight.count(), 1);
        drop(second);
        assert_eq!(in_flight.count(), 0);
    }
}
