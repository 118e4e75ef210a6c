//! Revocations between instances on PostgreSQL: `pg_notify` to publish, `LISTEN` on a
//! dedicated connection to hear (see [`auth_core::broadcast`]).
//!
//! Publishing takes a pooled connection right after the revoking transaction committed, so a
//! message never announces a revocation that did not happen (and needs no change to the
//! store's transactions). Hearing needs a connection of its own, outside the pool and outside
//! any transaction-mode pooler, because `LISTEN` belongs to a database session: a thread
//! keeps it, reads what arrived every [`POLL`] (a non-blocking read of the socket, no query),
//! checks it with `SELECT 1` every [`PING_EVERY`], and when it breaks reconnects with a
//! bounded backoff and flushes the principal cache (messages may have been missed meanwhile).

use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use auth_core::broadcast::{Alone, Broadcast, Listener, Notice, Subscription};
use auth_core::store::StoreResult;
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
                pool: pool.clone(),
                listen_url: with_application_name(&with_connect_timeout(listen_url)),
            }),
            Pools::Sqlite(_) => Arc::new(Alone),
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
    pool: PgPool,
    /// Never logged: it may carry a password.
    listen_url: String,
}

impl Broadcast for PgBroadcast {
    fn publish(&self, notice: Notice) -> StoreResult<()> {
        let mut conn = self.pool.get().map_err(map_pool)?;
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<Text, _>(CHANNEL)
            .bind::<Text, _>(notice.encode())
            .execute(&mut *conn)
            .map_err(map_diesel)?;
        Ok(())
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
