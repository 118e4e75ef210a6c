//! The deadlines of one connection, enforced on its socket.
//!
//! Neither framework's own timer gives the rule "headers within the header timeout, idle
//! within the idle timeout": hyper's header timer also runs while a kept-alive connection is
//! idle (so it would cut idle connections at the header timeout), and actix's only runs for a
//! connection's first request (so a kept-alive connection could trickle its next headers for
//! ever). So every connection gets a [`ConnectionClock`], told by the request layer when a
//! request's headers are in ([`ConnectionClock::request_started`]) and when its answer is
//! out, and a [`TimedStream`] that fails the socket once the current step is past its
//! deadline.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::limits::ConnectionLimits;

/// Which step a connection is at, and until when it may stay there.
#[derive(Debug)]
pub(crate) struct ConnectionClock {
    header_timeout: Duration,
    idle_timeout: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Requests whose headers are in and whose answer is not yet out.
    in_flight: usize,
    /// Waiting for a next request on a kept-alive connection, none of its bytes seen yet.
    idle: bool,
    /// When the current step must be over; none while a request is in flight (the body
    /// deadline and the handler bound that).
    deadline: Option<Instant>,
}

impl ConnectionClock {
    /// The clock of a connection accepted now: its first request's headers are due within
    /// the header timeout.
    pub(crate) fn new(limits: &ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            header_timeout: limits.header_timeout,
            idle_timeout: limits.idle_timeout,
            state: Mutex::new(State {
                in_flight: 0,
                idle: false,
                deadline: Some(Instant::now() + limits.header_timeout),
            }),
        })
    }

    /// A request's headers are in: no connection deadline until every request in flight is
    /// answered, which happens when the returned guard is dropped.
    pub(crate) fn request_started(self: &Arc<Self>) -> InFlight {
        self.update(|state| {
            state.in_flight += 1;
            state.idle = false;
            state.deadline = None;
        });
        InFlight(Arc::clone(self))
    }

    /// When the current step must be over, if it has a deadline.
    fn deadline(&self) -> Option<Instant> {
        self.lock().deadline
    }

    fn request_finished(&self) {
        let idle_timeout = self.idle_timeout;
        self.update(|state| {
            state.in_flight = state.in_flight.saturating_sub(1);
            if state.in_flight == 0 {
                state.idle = true;
                state.deadline = Some(Instant::now() + idle_timeout);
            }
        });
    }

    /// Bytes came in. On an idle connection they start the next request, whose headers are
    /// now due within the header timeout.
    fn bytes_read(&self) {
        let header_timeout = self.header_timeout;
        self.update(|state| {
            if state.idle {
                state.idle = false;
                state.deadline = Some(Instant::now() + header_timeout);
            }
        });
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.lock());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few plain fields, valid after any panic of a holder.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A request in flight on a connection; dropping it (the answer is out, or the request was
/// abandoned) starts the idle timeout once no other request is in flight.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<ConnectionClock>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A socket that fails with [`io::ErrorKind::TimedOut`], on read and on a write that waits,
/// once its connection's current step is past its deadline; the framework then drops the
/// connection. Reads also tell the clock when a next request begins.
#[derive(Debug)]
pub(crate) struct TimedStream<S> {
    inner: S,
    clock: Arc<ConnectionClock>,
    /// Wakes the connection's task at the deadline, so a silent client is noticed.
    timer: Pin<Box<Sleep>>,
    /// The deadline `timer` is set for.
    armed: Option<Instant>,
}

impl<S> TimedStream<S> {
    /// `inner`, held to `clock`. Must be called within the Tokio runtime (for its timer).
    pub(crate) fn new(inner: S, clock: Arc<ConnectionClock>) -> Self {
        let armed = clock.deadline();
        // Without a deadline the timer is only reset later; `now` never fires unpolled.
        let timer = Box::pin(tokio::time::sleep_until(armed.unwrap_or_else(Instant::now)));
        Self {
            inner,
            clock,
            timer,
            armed,
        }
    }

    /// The connection's clock, for the request layer.
    pub(crate) fn clock(&self) -> &Arc<ConnectionClock> {
        &self.clock
    }

    /// Fails once the deadline has passed; otherwise makes sure the task is woken at it.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(deadline) = self.clock.deadline() else {
            return Ok(());
        };
        if self.armed != Some(deadline) {
            self.timer.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client took too long (header or idle timeout)",
            )),
            Poll::Pending => Ok(()),
        }
    }

    /// `polled` (a write's result), or the deadline's error when the write waits past it.
    fn unless_late<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => match self.poll_deadline(cx) {
                Ok(()) => Poll::Pending,
                Err(err) => Poll::Ready(Err(err)),
            },
            done => done,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // Checked before reading too: a client that trickles never leaves a read pending.
        this.poll_deadline(cx)?;
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.clock.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.unless_late(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.unless_late(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.unless_late(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> Arc<ConnectionClock> {
        ConnectionClock::new(&ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            ..ConnectionLimits::default()
        })
    }

    /// The deadline, as seconds from now (rounded up).
    fn due_in(clock: &ConnectionClock) -> Option<u64> {
        let left = clock.deadline()?.saturating_duration_since(Instant::now());
        Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    #[test]
    fn a_new_connection_owes_its_headers_then_idles_then_owes_the_next_headers() {
        let clock = clock();
        assert_eq!(due_in(&clock), Some(10));
        clock.bytes_read();
        assert_eq!(
            due_in(&clock),
            Some(10),
            "bytes of a first request change nothing"
        );
        let in_flight = clock.request_started();
        assert_eq!(
            due_in(&clock),
            None,
            "no deadline while a request is in flight"
        );
        clock.bytes_read();
        assert_eq!(due_in(&clock), None);
        drop(in_flight);
        assert_eq!(due_in(&clock), Some(60), "answered: idle");
        clock.bytes_read();
        assert_eq!(
            due_in(&clock),
            Some(10),
            "a next request's first bytes: headers due"
        );
        clock.bytes_read();
        assert_eq!(due_in(&clock), Some(10));
    }

    #[test]
    fn the_connection_idles_only_once_every_request_is_answered() {
        let clock = clock();
        let first = clock.request_started();
        let second = clock.request_started();
        drop(first);
        assert_eq!(due_in(&clock), None);
        drop(second);
        assert_eq!(due_in(&clock), Some(60));
    }
}
