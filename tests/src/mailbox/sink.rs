//! [`SmtpSink`]: a small SMTP server (RFC 5321) that keeps what it receives for the suite.
//!
//! It speaks what a submission client such as lettre needs and no more: `EHLO`/`HELO`,
//! `MAIL FROM`, `RCPT TO`, `DATA` (with dot-unstuffing), `RSET`, `NOOP`, `QUIT`; no TLS, no
//! AUTH (it listens on loopback for tests). It runs on a thread of its own with its own
//! Tokio runtime, so it works the same under any caller (a test's runtime, the xtask's, or
//! none), and stops when dropped. Everything is bounded: line and message sizes, recipients
//! per message, connections at once, idle time per command, and the mail it keeps.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, oneshot};

use super::{Mailbox, ReceivedMail};
use session::Session;

mod session;

/// Longest line taken, command or message text, with its CRLF (RFC 5321 asks for 512 and
/// 1,000; clients folding long headers stay well under this).
const MAX_LINE: usize = 8 * 1024;
/// Largest message taken (advertised as `SIZE`).
const MAX_MESSAGE: usize = 1024 * 1024;
/// Recipients one message may have.
const MAX_RECIPIENTS: usize = 100;
/// Connections served at once; more are told to come back later.
const MAX_CONNECTIONS: usize = 32;
/// How long the sink waits for the client's next line before it hangs up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of mail kept (not yet taken) at once; past it new messages get `452`.
const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;
/// The name the sink gives itself in its greeting.
const NAME: &str = "auth-conformance-sink";

/// An SMTP server on a local port that keeps every message it receives for
/// [`Mailbox::next_to`]. Stops (closes its port and every connection) when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What the connections and the mailbox share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken whenever a message is kept.
    arrived: Notify,
    /// Numbers the accepted messages, for the `250` reply.
    accepted: AtomicU64,
}

#[derive(Default)]
struct State {
    /// One entry per envelope recipient of each message, oldest first.
    kept: VecDeque<Kept>,
    /// The bytes of the raw messages in `kept`.
    kept_bytes: usize,
    /// Recipients refused with `550` (lower-cased).
    refused: HashSet<String>,
}

struct Kept {
    /// The recipient this entry is for, lower-cased.
    recipient: String,
    mail: ReceivedMail,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the queue as consistent as a
        // finished push or pop: keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, to: &str) -> Option<ReceivedMail> {
        let to = to.to_ascii_lowercase();
        let mut state = self.state();
        let index = state.kept.iter().position(|kept| kept.recipient == to)?;
        let kept = state.kept.remove(index)?;
        state.kept_bytes = state.kept_bytes.saturating_sub(kept.mail.raw.len());
        Some(kept.mail)
    }

    /// Keeps `mail` once per recipient; `false` (nothing kept) when there is no room.
    fn keep(&self, mail: ReceivedMail) -> bool {
        let mut state = self.state();
        let size = mail.raw.len().saturating_mul(mail.to.len());
        if state.kept_bytes.saturating_add(size) > MAX_KEPT_BYTES {
            return false;
        }
        state.kept_bytes += size;
        for recipient in &mail.to {
            state.kept.push_back(Kept {
                recipient: recipient.to_ascii_lowercase(),
                mail: mail.clone(),
            });
        }
        drop(state);
        self.arrived.notify_waiters();
        true
    }

    fn refuses(&self, recipient: &str) -> bool {
        self.state()
            .refused
            .contains(&recipient.to_ascii_lowercase())
    }
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1.
    pub fn start() -> io::Result<SmtpSink> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts a sink listening on `addr` (port 0 for a free one), e.g. for a deployment
    /// elsewhere on this machine to be pointed at.
    pub fn start_on(addr: SocketAddr) -> io::Result<SmtpSink> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = StdListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let listener = {
            let _inside = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = oneshot::channel();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("smtp-sink".to_owned())
            .spawn(move || runtime.block_on(accept_loop(listener, serving, stopped)))?;
        Ok(SmtpSink {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, for a server's `--smtp-url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// From now on answers `RCPT TO` for `address` (any case) with `550`, as a server does
    /// for a mailbox that does not exist: for the permanent-failure paths.
    pub fn refuse(&self, address: &str) {
        self.shared
            .state()
            .refused
            .insert(address.to_ascii_lowercase());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The loop ends at once on the signal and the runtime drops its connections with
        // it, so this wait is short; it makes "dropped" mean "the port is closed".
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Mailbox for SmtpSink {
    fn next_to<'a>(
        &'a self,
        to: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Option<ReceivedMail>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                // Registered before looking, so a message kept in between still wakes us.
                let arrived = self.shared.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                if let Some(mail) = self.shared.take(to) {
                    return Some(mail);
                }
                if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                    return self.shared.take(to);
                }
            }
        })
    }

    fn count_to(&self, to: &str) -> usize {
        let to = to.to_ascii_lowercase();
        self.shared
            .state()
            .kept
            .iter()
            .filter(|kept| kept.recipient == to)
            .count()
    }
}

/// Accepts connections until `stopped`, each served on a task of its own.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stopped: oneshot::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stopped);
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of descriptors, or a connection reset before it was accepted: go on.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(async move {
                    let _slot = slot;
                    // A client that goes away mid-session is its own business.
                    let _ = Session::new(stream, shared).run().await;
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut stream = stream;
                    let _ = stream
                        .write_all(b"421 4.3.2 too many connections, try again later\r\n")
                        .await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests;
