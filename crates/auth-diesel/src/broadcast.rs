//! Revocations between instances on PostgreSQL: `pg_notify` to publish, `LISTEN` on a
//! dedicated connection to hear (see [`auth_core::broadcast`]).
//!
//! Publishing hands the notice, right after the revoking transaction committed (so a message
//! never announces a revocation that did not happen), to a publishing thread through a
//! bounded queue of [`QUEUE`] notices: the request does not wait for a `NOTIFY` of its own
//! (one more commit on the pool per revocation, refresh rotations included), and notices that
//! pile up under load go out together, one per line, in one `pg_notify` of up to [`BATCH`].
//! A notice that cannot be queued or sent is logged; the other instances then honour the
//! revocation when their principal cache entry expires (`--principal-cache-ms`, the
//! documented worst case), as they do for any lost message. Hearing needs a connection of its own, outside the pool and outside
//! any transaction-mode pooler, because `LISTEN` belongs to a database session: a thread
//! keeps it, reads what arrived every [`POLL`] (a non-blocking read of the socket, no query),
//! checks it with `SELECT 1` every [`PING_EVERY`], and when it breaks reconnects with a
//! bounded backoff and flushes the principal cache (messages may have been missed meanwhile).

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use auth_core::broadcast::{Alone, Broadcast, Listener, Notice, Subscription};
use auth_core::store::{StoreError, StoreResult};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::error::{map_connection, map_diesel, map_pool};
use crate::{DieselStore, PgPool, Pools, with_connect_timeout};

/// The channel every instance of one database publishes on and listens to (channels are per
/// database, so several databases on one server do not hear each other).
pub const CHANNEL: &str = "auth_revocations";

/// The `application_name` of the listening connection (unless the URL sets one), so an
/// operator can find it in `pg_stat_activity`.
pub const LISTENER_APPLICATION_NAME: &str = "auth-revocations";

/// How often the listening connection is read for messages: the most a message waits once
/// it has arrived.
pub const POLL: Duration = Duration::from_millis(20);

/// How often the listening connection is checked with a query, so a connection that died
/// silently (a half-open TCP connection) is noticed.
const PING_EVERY: Duration = Duration::from_secs(5);

/// Notices waiting for the publishing thread at most.
const QUEUE: usize = 4096;
/// Notices sent in one `pg_notify` at most (about 40 bytes each, under the 8,000-byte limit
/// of a payload).
const BATCH: usize = 100;

/// The first and the longest wait between reconnection attempts.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl DieselStore {
    /// The broadcast of revocations for this store: on PostgreSQL, `NOTIFY` through the pool
    /// and `LISTEN` on its own connection to `listen_url` (the database URL, or a direct one
    /// when the pool goes through a transaction-mode pooler); on SQLite, which one instance
    /// opens, [`Alone`].
    pub fn broadcast(&self, listen_url: &str) -> Arc<dyn Broadcast> {
        match &self.pools {
            Pools::Postgres(pool) => Arc::new(PgBroadcast {
                queue: start_publisher(pool.clone()),
                listen_url: with_application_name(&with_connect_timeout(listen_url)),
            }),
            Pools::Sqlite(_) => Arc::new(Alone),
        }
    }

    /// Publishes `notice` now and waits until it is sent (for a command that exits right
    /// after, such as `keys rotate`); nothing to do on SQLite.
    pub fn publish_now(&self, notice: Notice) -> StoreResult<()> {
        match &self.pools {
            Pools::Postgres(pool) => notify(pool, &notice.encode()),
            Pools::Sqlite(_) => Ok(()),
        }
    }
}

/// Adds `application_name` to a URL that does not set one.
fn with_application_name(url: &str) -> String {
    if url.contains("application_name=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={LISTENER_APPLICATION_NAME}")
}

/// [`Broadcast`] over PostgreSQL's `LISTEN`/`NOTIFY`.
struct PgBroadcast {
    /// To the publishing thread, which ends when this is dropped.
    queue: SyncSender<Notice>,
    /// Never logged: it may carry a password.
    listen_url: String,
}

impl Broadcast for PgBroadcast {
    fn publish(&self, notice: Notice) -> StoreResult<()> {
        self.queue.try_send(notice).map_err(|err| {
            StoreError::Unavailable(match err {
                TrySendError::Full(_) => "the revocation queue is full".to_owned(),
                TrySendError::Disconnected(_) => "the revocation publisher stopped".to_owned(),
            })
        })
    }

    fn subscribe(&self, listener: Listener) -> std::io::Result<Subscription> {
        // The first attempt is made here, so an instance is listening before it serves.
        let first = match listen(&self.listen_url) {
            Ok(conn) => Some(conn),
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for revocations; retrying");
                None
            }
        };
        let (stop, stopped) = mpsc::channel::<()>();
        let url = self.listen_url.clone();
        std::thread::Builder::new()
            .name("auth-revocations".to_owned())
            .spawn(move || run(&url, first, &listener, &stopped))?;
        // Dropping the sender stops the thread at its next wait.
        Ok(Box::new(stop))
    }
}

/// Starts the publishing thread of `pool`; it ends when the sender is dropped.
fn start_publisher(pool: PgPool) -> SyncSender<Notice> {
    let (queue, notices) = mpsc::sync_channel::<Notice>(QUEUE);
    let spawned = std::thread::Builder::new()
        .name("auth-revocations-out".to_owned())
        .spawn(move || publish_until_dropped(&pool, &notices));
    if let Err(err) = spawned {
        // Publishing then fails (disconnected) and is logged at each revocation.
        tracing::error!(error = %err, "cannot start the revocation publisher");
    }
    queue
}

/// Sends what arrives, batched, until every sender is gone.
fn publish_until_dropped(pool: &PgPool, notices: &Receiver<Notice>) {
    let mut failing = false;
    while let Ok(first) = notices.recv() {
        let mut payload = first.encode();
        let mut count = 1;
        while count < BATCH {
            let Ok(next) = notices.try_recv() else { break };
            payload.push('\n');
            payload.push_str(&next.encode());
            count += 1;
        }
        match notify(pool, &payload) {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("publishing revocations again");
            }
            Ok(_) => {}
            // Once per failing stretch: an outage would otherwise log every revocation.
            Err(err) if !failing => {
                failing = true;
                tracing::warn!(error = %err, notices = count, "publishing revocations failed; \
                    other instances honour them when their cache entries expire");
            }
            Err(_) => {}
        }
    }
}

/// One `pg_notify` of `payload` on a pooled connection.
fn notify(pool: &PgPool, payload: &str) -> StoreResult<()> {
    let mut conn = pool.get().map_err(map_pool)?;
    diesel::sql_query("SELECT pg_notify($1, $2)")
        .bind::<Text, _>(CHANNEL)
        .bind::<Text, _>(payload)
        .execute(&mut *conn)
        .map_err(map_diesel)?;
    Ok(())
}

/// Opens the listening connection.
fn listen(url: &str) -> StoreResult<PgConnection> {
    let mut conn = PgConnection::establish(url).map_err(map_connection)?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}"))
        .map_err(map_diesel)?;
    Ok(conn)
}

/// Hands every message that arrived to `listener`.
fn drain(conn: &mut PgConnection, listener: &Listener) -> StoreResult<()> {
    for notification in conn.notifications_iter() {
        let notification = notification.map_err(map_diesel)?;
        if notification.channel == CHANNEL {
            listener.heard_text(&notification.payload);
        }
    }
    Ok(())
}

/// The listening thread: reads, checks, reconnects, until `stopped` says so.
fn run(url: &str, mut conn: Option<PgConnection>, listener: &Listener, stopped: &Receiver<()>) {
    let mut backoff = BACKOFF_MIN;
    let mut checked = Instant::now();
    loop {
        let wait = match conn.as_mut() {
            Some(c) => {
                let mut result = drain(c, listener);
                if result.is_ok() && checked.elapsed() >= PING_EVERY {
                    checked = Instant::now();
                    result = c.batch_execute("SELECT 1").map_err(map_diesel);
                }
                if let Err(err) = result {
                    tracing::warn!(
                        error = %err,
                        "the revocation listener lost its connection; reconnecting \
                         (revocations by other instances apply within the principal cache \
                         lifetime meanwhile)"
                    );
                    conn = None;
                    BACKOFF_MIN
                } else {
                    POLL
                }
            }
            None => match listen(url) {
                Ok(c) => {
                    // Whatever was published while we were away is lost: forget everything.
                    listener.missed();
                    tracing::info!("the revocation listener is listening again");
                    conn = Some(c);
                    checked = Instant::now();
                    backoff = BACKOFF_MIN;
                    POLL
                }
                Err(err) => {
                    tracing::debug!(error = %err, "the revocation listener cannot reconnect yet");
                    let wait = backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    wait
                }
            },
        };
        match stopped.recv_timeout(wait) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_connection_is_named_unless_the_url_names_it() {
        assert_eq!(
            with_application_name("postgres://h/db"),
            "postgres://h/db?application_name=auth-revocations"
        );
        assert_eq!(
            with_application_name("postgres://h/db?sslmode=disable"),
            "postgres://h/db?sslmode=disable&application_name=auth-revocations"
        );
        assert_eq!(
            with_application_name("postgres://h/db?application_name=x"),
            "postgres://h/db?application_name=x"
        );
    }
}
