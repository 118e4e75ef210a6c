//! Mapping of Diesel and r2d2 errors to [`StoreError`].
//!
//! Messages carry the database's own error text (never SQL parameter values, which Diesel
//! always binds) so they are safe to log.

use auth_core::store::StoreError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// The error type of every closure run on a connection: either a store error, or a request
/// to roll the current transaction back and report "nothing written".
#[derive(Debug)]
pub(crate) enum Fail {
    /// A real failure.
    Store(StoreError),
    /// A conditional write found nothing to do; the transaction is rolled back.
    Abort,
}

impl Fail {
    /// A failure with a message for the logs.
    pub(crate) fn other(message: impl Into<String>) -> Self {
        Fail::Store(StoreError::Other(message.into()))
    }

    /// Turns the failure into a [`StoreError`]; an unexpected `Abort` becomes `Other`.
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Abort => StoreError::Other("transaction aborted".to_owned()),
        }
    }
}

impl From<DieselError> for Fail {
    fn from(e: DieselError) -> Self {
        Fail::Store(map_diesel(e))
    }
}

impl From<r2d2::Error> for Fail {
    fn from(e: r2d2::Error) -> Self {
        Fail::Store(map_pool(e))
    }
}

/// A pool that could not hand out a connection in time is an unavailable database.
pub(crate) fn map_pool(e: r2d2::Error) -> StoreError {
    StoreError::Unavailable(e.to_string().trim_end().to_owned())
}

/// Whether the message of a checkout that timed out says connections could not be opened
/// (r2d2 appends the last connection error), rather than that every connection was busy.
pub(crate) fn checkout_found_no_database(message: &str) -> bool {
    message
        .strip_prefix("timed out waiting for connection")
        .is_some_and(|rest| !rest.trim().is_empty())
}

/// Whether a database message means "could not reach it / it did not answer in time".
fn looks_unavailable(message: &str) -> bool {
    const MARKERS: &[&str] = &[
        "database is locked",
        "database table is locked",
        "database is busy",
        "closed the connection",
        "terminating connection",
        "could not connect",
        "connection refused",
        "no connection to the server",
        "the database system is starting up",
        "the database system is shutting down",
    ];
    let lower = message.to_ascii_lowercase();
    MARKERS.iter().any(|m| lower.contains(m))
}

/// Maps a Diesel error. Unique violations are conflicts; lost connections and lock
/// timeouts are `Unavailable`; everything else is `Other`. Only the primary message is
/// kept: PostgreSQL's detail line may quote row values and is dropped.
pub(crate) fn map_diesel(e: DieselError) -> StoreError {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => StoreError::Conflict,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            info,
        ) => StoreError::Unavailable(info.message().to_owned()),
        DieselError::DatabaseError(kind, info) => {
            let message = info.message();
            if looks_unavailable(message) {
                StoreError::Unavailable(message.to_owned())
            } else {
                StoreError::Other(format!("{kind:?}: {message}"))
            }
        }
        DieselError::NotFound => StoreError::Other("record not found".to_owned()),
        other => StoreError::Other(other.to_string()),
    }
}

/// Maps a failure to open a connection outside the pool.
pub(crate) fn map_connection(e: diesel::ConnectionError) -> StoreError {
    match e {
        diesel::ConnectionError::InvalidConnectionUrl(m) => {
            StoreError::Other(format!("invalid database URL: {m}"))
        }
        other => StoreError::Unavailable(other.to_string().trim_end().to_owned()),
    }
}
