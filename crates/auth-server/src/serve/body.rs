//! The body deadline: a request's body must be in within the body timeout of its headers.
//!
//! The frameworks' own body timeouts (tower-http's `TimeoutBody`, for one) restart at every
//! chunk, so a client trickling a byte a second would never meet them; this one is a single
//! deadline for the whole body. The body fails at the deadline, and the request layer then
//! answers 408 and closes the connection, whatever the handler made of the cut-off body.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Until when a request's body may come in.
#[derive(Debug)]
pub(crate) struct BodyDeadline {
    deadline: Instant,
    /// Made when the body first waits, so bodies that are in at once cost no timer.
    timer: Option<Pin<Box<Sleep>>>,
    missed: Missed,
}

/// Whether a body missed its deadline, readable after the handler is done with the body.
#[derive(Debug, Clone, Default)]
pub(crate) struct Missed(Arc<AtomicBool>);

impl Missed {
    /// Whether the body was cut off at its deadline.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Release);
    }
}

impl BodyDeadline {
    /// A deadline `timeout` from now (the headers are in), and the flag that tells whether
    /// the body missed it.
    pub(crate) fn start(timeout: Duration) -> (Self, Missed) {
        let missed = Missed::default();
        let deadline = Self {
            deadline: Instant::now() + timeout,
            timer: None,
            missed: missed.clone(),
        };
        (deadline, missed)
    }

    /// Whether the deadline has passed, checked before every read of the body: data that
    /// arrives after it does not count.
    pub(crate) fn passed(&mut self) -> bool {
        if Instant::now() >= self.deadline {
            self.missed.set();
        }
        self.missed.is_set()
    }

    /// For a read of the body that waits: whether the deadline has passed, and otherwise
    /// makes sure the task is woken at it.
    pub(crate) fn poll_passed(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            self.missed.set();
        }
        self.missed.is_set()
    }

    /// The error a body that missed its deadline fails with.
    pub(crate) fn error() -> io::Error {
        io::Error::new(
            io::ErrorKind::TimedOut,
            "the request body did not arrive within the body timeout",
        )
    }
}
