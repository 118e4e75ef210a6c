//! Diesel storage for the auth toolkit: one [`DieselStore`] type that implements
//! [`auth_core::store::Store`] on SQLite or PostgreSQL, picked by the database URL.
//!
//! Both backends share one Diesel schema; the migrations creating it live in
//! `migrations/sqlite` and `migrations/postgres`, are embedded in the binary and are applied
//! at [`DieselStore::connect`]. Every query body is written once and expanded for each
//! connection type by the `with_conn!`/`write_tx!` macros.
//!
//! ```no_run
//! use auth_diesel::DieselStore;
//! # fn main() -> Result<(), auth_core::store::StoreError> {
//! let store = DieselStore::connect("sqlite://auth.db", 8)?;
//! assert_eq!(store.backend(), "sqlite");
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use auth_core::store::{StoreError, StoreResult};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::ConnectionManager;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

mod breaker;
mod broadcast;
mod error;
mod models;
mod schema;
mod store;
mod test_database;

use breaker::Breaker;
pub use broadcast::{CHANNEL, LISTENER_APPLICATION_NAME};
use error::{Fail, map_connection, map_pool};
pub use store::WriteLimit;
pub use test_database::{TEST_POSTGRES_URL_ENV, TestDatabase};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long start-up waits for its first connection (and libpq for one connection attempt,
/// so that a host that never answers cannot hold an attempt forever).
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// How often the breaker's probe tries an unreachable database (see [`breaker`]).
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// Lock key that serializes migrations of concurrently starting instances on PostgreSQL.
const MIGRATION_LOCK_KEY: i64 = 0x6175_7468_6469_6573; // "authdies"

/// Settings applied to every new SQLite connection.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                              PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

type SqlitePool = r2d2::Pool<ConnectionManager<SqliteConnection>>;
type PgPool = r2d2::Pool<ConnectionManager<PgConnection>>;

/// The two kinds of pool behind a [`DieselStore`]. Cloning shares the pool.
#[derive(Clone)]
enum Pools {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A [`Store`](auth_core::store::Store) on SQLite or PostgreSQL through Diesel and an r2d2
/// connection pool. Cheap to share behind an `Arc`; every method blocks.
pub struct DieselStore {
    pools: Pools,
    /// Fails calls at once while the database is unreachable.
    breaker: Breaker,
    /// How long a call waits for a pooled connection.
    checkout_timeout: Duration,
}

/// How a [`DieselStore`] connects: the pool's size and how long a call may wait for one of
/// its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Most connections in the pool (at least one is used).
    pub pool_size: u32,
    /// How long a call waits for a pooled connection before it fails with
    /// [`StoreError::Unavailable`]: both when every connection is busy (an exhausted pool)
    /// and when none can be opened (then the store's breaker opens, and later calls fail at
    /// once until the database answers again). Keep it well under a second so that no
    /// request of an outage waits long. Start-up waits longer (about five seconds) for its
    /// first connection.
    pub checkout_timeout: Duration,
}

impl ConnectOptions {
    /// The checkout timeout used unless one is given.
    pub const DEFAULT_CHECKOUT_TIMEOUT: Duration = Duration::from_millis(500);

    /// A pool of `pool_size` connections with [`Self::DEFAULT_CHECKOUT_TIMEOUT`].
    pub fn new(pool_size: u32) -> Self {
        Self {
            pool_size,
            checkout_timeout: Self::DEFAULT_CHECKOUT_TIMEOUT,
        }
    }
}

impl fmt::Debug for DieselStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DieselStore")
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

/// Applies [`SQLITE_PRAGMAS`] to each connection the pool opens.
#[derive(Debug, Clone, Copy)]
struct SqliteCustomizer;

impl r2d2::CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqliteCustomizer {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(SQLITE_PRAGMAS)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Where a database URL points.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Sqlite(String),
    Postgres(String),
}

fn parse_url(url: &str) -> StoreResult<Target> {
    let url = url.trim();
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres(url.to_owned()));
    }
    let path = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if let Some((scheme, _)) = url.split_once("://") {
        return Err(StoreError::Other(format!(
            "unsupported database URL scheme `{scheme}` (use postgres:// or sqlite://)"
        )));
    } else {
        url
    };
    if path.is_empty() {
        return Err(StoreError::Other("empty SQLite database path".to_owned()));
    }
    Ok(Target::Sqlite(path.to_owned()))
}

/// Whether a SQLite path names an in-memory database (each connection its own).
fn is_memory(path: &str) -> bool {
    path == ":memory:" || path.contains("mode=memory")
}

/// The file a SQLite database URL opens, as [`DieselStore::connect`] reads the URL: `None`
/// for PostgreSQL, in-memory SQLite and URLs `connect` refuses. A `file:` URI gives its path
/// without the query. Lets a caller keep files beside the database (e.g. a key file).
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let Ok(Target::Sqlite(path)) = parse_url(url) else {
        return None;
    };
    if is_memory(&path) {
        return None;
    }
    let path = match path.strip_prefix("file:") {
        Some(uri) => {
            let uri = uri.split(['?', '#']).next().unwrap_or_default();
            // `file://localhost/p` and `file:///p` are `/p`; `file:p` is `p`.
            uri.strip_prefix("//localhost")
                .or_else(|| uri.strip_prefix("//"))
                .unwrap_or(uri)
                .to_owned()
        }
        None => path,
    };
    (!path.is_empty()).then(|| std::path::PathBuf::from(path))
}

/// Adds libpq's `connect_timeout` to a URL that does not set one, so that a host that
/// never answers cannot hold a connection attempt forever.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout={}", CONNECTION_TIMEOUT.as_secs())
}

fn migration_error(e: impl fmt::Display) -> Fail {
    Fail::other(format!("migration failed: {e}"))
}

impl DieselStore {
    /// Opens a pool of at most `pool_size` connections and applies pending migrations.
    ///
    /// `postgres://` and `postgresql://` URLs select PostgreSQL; `sqlite://PATH`,
    /// `sqlite:PATH`, a plain file path or `:memory:` select SQLite (an in-memory database
    /// always gets a single connection, since each connection would see its own database).
    /// A database that cannot be reached within about five seconds yields
    /// [`StoreError::Unavailable`]. Calls wait at most
    /// [`ConnectOptions::DEFAULT_CHECKOUT_TIMEOUT`] for a connection.
    pub fn connect(url: &str, pool_size: u32) -> Result<DieselStore, StoreError> {
        Self::connect_with(url, ConnectOptions::new(pool_size))
    }

    /// [`DieselStore::connect`] with the pool settings of `options`.
    pub fn connect_with(url: &str, options: ConnectOptions) -> Result<DieselStore, StoreError> {
        let pool_size = options.pool_size.max(1);
        let timeout = options.checkout_timeout.max(Duration::from_millis(1));
        let pools = match parse_url(url)? {
            Target::Sqlite(path) => Pools::Sqlite(Self::sqlite_pool(&path, pool_size, timeout)?),
            Target::Postgres(url) => {
                Pools::Postgres(Self::postgres_pool(&url, pool_size, timeout)?)
            }
        };
        Ok(DieselStore {
            pools,
            breaker: Breaker::new(PROBE_INTERVAL),
            checkout_timeout: timeout,
        })
    }

    fn sqlite_pool(path: &str, pool_size: u32, timeout: Duration) -> StoreResult<SqlitePool> {
        let memory = is_memory(path);
        // Open once outside the pool so a bad path fails at once with a clear message
        // rather than after the pool's retries.
        SqliteConnection::establish(path).map_err(map_connection)?;
        let mut builder = r2d2::Pool::builder()
            .connection_timeout(timeout)
            // The breaker logs an outage once; r2d2 would log every failed attempt.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .connection_customizer(Box::new(SqliteCustomizer));
        builder = if memory {
            // The single connection is the database: never let the pool recycle it.
            builder
                .max_size(1)
                .min_idle(Some(1))
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            builder.max_size(pool_size).min_idle(Some(pool_size.min(2)))
        };
        // Unchecked: `build` would wait only the short checkout timeout for its first
        // connections; start-up waits longer below.
        let pool = builder.build_unchecked(ConnectionManager::<SqliteConnection>::new(path));
        let mut conn = pool.get_timeout(CONNECTION_TIMEOUT).map_err(map_pool)?;
        conn.immediate_transaction(|c| -> Result<(), Fail> {
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(migration_error)?;
            Ok(())
        })
        .map_err(Fail::into_store)?;
        drop(conn);
        Ok(pool)
    }

    fn postgres_pool(url: &str, pool_size: u32, timeout: Duration) -> StoreResult<PgPool> {
        // Unchecked for the same reason as SQLite's. The checkout timeout also bounds
        // r2d2's reconnection backoff (half of it), so a returning database is found soon.
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(pool_size.min(2)))
            .connection_timeout(timeout)
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(ConnectionManager::<PgConnection>::new(
                with_connect_timeout(url),
            ));
        let mut conn = pool.get_timeout(CONNECTION_TIMEOUT).map_err(map_pool)?;
        let c: &mut PgConnection = &mut conn;
        c.transaction(|c| -> Result<(), Fail> {
            // Two instances starting on a fresh database must not both create the tables.
            c.batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"
            ))?;
            c.run_pending_migrations(POSTGRES_MIGRATIONS)
                .map_err(migration_error)?;
            Ok(())
        })
        .map_err(Fail::into_store)?;
        drop(conn);
        Ok(pool)
    }

    /// What the connection pool holds right now (for the metrics).
    pub fn pool_use(&self) -> auth_core::metrics::PoolUse {
        let (state, max) = match &self.pools {
            Pools::Sqlite(pool) => (pool.state(), pool.max_size()),
            Pools::Postgres(pool) => (pool.state(), pool.max_size()),
        };
        auth_core::metrics::PoolUse {
            connections: state.connections,
            idle: state.idle_connections,
            max,
        }
    }

    /// The backend in use: `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.pools {
            Pools::Sqlite(_) => "sqlite",
            Pools::Postgres(_) => "postgres",
        }
    }
}

/// Checks that `name` is a plain identifier (so it can be spliced into DDL unquoted).
fn check_database_name(name: &str) -> StoreResult<()> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && name.len() <= 63 && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(StoreError::Other(
            "database name must be 1-63 ASCII letters, digits or underscores".to_owned(),
        ))
    }
}

/// Replaces the database (path) of a `postgres://` URL, keeping credentials, host and query.
fn url_with_database(url: &str, name: &str) -> StoreResult<String> {
    let bad = || StoreError::Other("expected a postgres:// or postgresql:// URL".to_owned());
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if scheme != "postgres" && scheme != "postgresql" {
        return Err(bad());
    }
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let query = rest[authority_end..]
        .find('?')
        .map(|i| &rest[authority_end + i..])
        .unwrap_or("");
    Ok(format!("{scheme}://{authority}/{name}{query}"))
}

fn admin_connection(admin_url: &str) -> StoreResult<PgConnection> {
    if !matches!(parse_url(admin_url)?, Target::Postgres(_)) {
        return Err(StoreError::Other(
            "expected a postgres:// or postgresql:// URL".to_owned(),
        ));
    }
    PgConnection::establish(&with_connect_timeout(admin_url)).map_err(map_connection)
}

/// Creates the PostgreSQL database `name` through the server of `admin_url` (a URL of a
/// role allowed to create databases) and returns the URL of the new database. `name` must
/// be a plain identifier. Meant for test harnesses and tooling.
pub fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, StoreError> {
    check_database_name(name)?;
    let url = url_with_database(admin_url, name)?;
    let mut conn = admin_connection(admin_url)?;
    conn.batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .map_err(error::map_diesel)?;
    Ok(url)
}

/// Drops the PostgreSQL database `name` (if it exists), terminating its connections
/// (`DROP DATABASE ... WITH (FORCE)`, PostgreSQL 13 or later).
pub fn drop_postgres_database(admin_url: &str, name: &str) -> Result<(), StoreError> {
    check_database_name(name)?;
    let mut conn = admin_connection(admin_url)?;
    conn.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .map_err(error::map_diesel)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        let pg = |u: &str| Target::Postgres(u.to_owned());
        let lite = |p: &str| Target::Sqlite(p.to_owned());
        assert_eq!(
            parse_url("postgres://u@h/db").ok(),
            Some(pg("postgres://u@h/db"))
        );
        assert_eq!(parse_url("postgresql://h").ok(), Some(pg("postgresql://h")));
        assert_eq!(parse_url("sqlite://a/b.db").ok(), Some(lite("a/b.db")));
        assert_eq!(parse_url("sqlite:///abs.db").ok(), Some(lite("/abs.db")));
        assert_eq!(parse_url("sqlite:x.db").ok(), Some(lite("x.db")));
        assert_eq!(parse_url("sqlite::memory:").ok(), Some(lite(":memory:")));
        assert_eq!(parse_url(":memory:").ok(), Some(lite(":memory:")));
        assert_eq!(parse_url("data/auth.db").ok(), Some(lite("data/auth.db")));
        assert!(parse_url("mysql://h/db").is_err());
        assert!(parse_url("sqlite://").is_err());
    }

    #[test]
    fn sqlite_files_are_found() {
        let file = |u: &str| sqlite_file(u).map(|p| p.display().to_string());
        assert_eq!(file("sqlite://auth.db").as_deref(), Some("auth.db"));
        assert_eq!(
            file("sqlite:///var/lib/a.db").as_deref(),
            Some("/var/lib/a.db")
        );
        assert_eq!(file("data/auth.db").as_deref(), Some("data/auth.db"));
        assert_eq!(file("sqlite://file:x.db?mode=rwc").as_deref(), Some("x.db"));
        assert_eq!(
            file("sqlite:file:///srv/x.db").as_deref(),
            Some("/srv/x.db")
        );
        for none in [
            "postgres://u:p@h/db",
            ":memory:",
            "sqlite::memory:",
            "sqlite://file:m?mode=memory&cache=shared",
            "mysql://h/db",
            "file:///srv/x.db",
        ] {
            assert_eq!(file(none), None, "{none}");
        }
    }

    #[test]
    fn database_urls_are_rewritten() {
        let u = |a: &str| url_with_database(a, "t1").ok();
        assert_eq!(
            u("postgres://postgres@127.0.0.1:5432/postgres").as_deref(),
            Some("postgres://postgres@127.0.0.1:5432/t1")
        );
        assert_eq!(
            u("postgresql://u:p@h").as_deref(),
            Some("postgresql://u:p@h/t1")
        );
        assert_eq!(
            u("postgres://h/db?sslmode=disable").as_deref(),
            Some("postgres://h/t1?sslmode=disable")
        );
        assert_eq!(
            u("postgres://h?sslmode=disable").as_deref(),
            Some("postgres://h/t1?sslmode=disable")
        );
        assert!(u("sqlite://x").is_none());
        assert_eq!(
            with_connect_timeout("postgres://h/db"),
            "postgres://h/db?connect_timeout=5"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/db?a=b"),
            "postgres://h/db?a=b&connect_timeout=5"
        );
    }

    /// What the upgrade must keep and add: the old user is still there, and the new tables
    /// work.
    fn check_upgraded(store: &DieselStore) {
        use auth_core::store::{KeyStore, RateLimitStore, SigningKeyRecord, UserStore};
        let id = uuid::Uuid::parse_str(OLD_USER_ID).expect("uuid");
        let user = store.find_user(id).expect("find").expect("old user kept");
        assert_eq!(user.email, "old@example.com");
        store
            .record_login_failure("old@example.com", "10.0.0.1", 5)
            .expect("login_failures");
        assert_eq!(
            store
                .hit_rate_limit("b", "k", 0, 1, 5)
                .expect("rate_limit_hits"),
            (0, None)
        );
        let key = SigningKeyRecord {
            kid: "k1".to_owned(),
            algorithm: "EdDSA".to_owned(),
            public_key: vec![1; 32],
            private_key: vec![2; 40],
            created_at: 5,
            active: true,
        };
        store.add_signing_key(&key).expect("signing_keys");
        assert_eq!(store.signing_keys().expect("keys"), vec![key]);
    }

    const OLD_USER_ID: &str = "5f0c3a52-8a4c-4f2e-9d7e-0d6f3c1b2a99";
    const INSERT_OLD_USER: &str = "INSERT INTO users (id, email, email_key, password_hash, \
        created_at, updated_at) VALUES ('5f0c3a52-8a4c-4f2e-9d7e-0d6f3c1b2a99', \
        'old@example.com', 'old@example.com', 'x', 1, 1)";

    #[test]
    fn sqlite_databases_of_the_first_release_are_upgraded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("old.db");
        let path = path.to_str().expect("utf-8 path");
        let mut conn = SqliteConnection::establish(path).expect("open");
        // Only the first migration, like a database created by the first release.
        conn.run_next_migration(SQLITE_MIGRATIONS)
            .expect("first migration");
        conn.batch_execute(INSERT_OLD_USER).expect("old user");
        drop(conn);
        let store = DieselStore::connect(path, 2).expect("upgrade");
        check_upgraded(&store);
    }

    #[test]
    #[cfg_attr(
        not(auth_test_postgres),
        ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
    )]
    fn postgres_databases_of_the_first_release_are_upgraded() {
        let admin = TestDatabase::admin_url_from_env()
            .expect("AUTH_TEST_POSTGRES_URL was set at build time but is not set now");
        // Dropped at the end, also when an assertion fails.
        let database = TestDatabase::create(&admin, "auth_test").expect("create");
        let mut conn = PgConnection::establish(database.url()).expect("open");
        conn.run_next_migration(POSTGRES_MIGRATIONS)
            .expect("first migration");
        conn.batch_execute(INSERT_OLD_USER).expect("old user");
        drop(conn);
        let store = DieselStore::connect(database.url(), 2).expect("upgrade");
        check_upgraded(&store);
    }

    #[test]
    fn database_names_are_checked() {
        assert!(check_database_name("auth_test_0af3").is_ok());
        assert!(check_database_name("").is_err());
        assert!(check_database_name("1abc").is_err());
        assert!(check_database_name("a\"; DROP").is_err());
        assert!(check_database_name(&"a".repeat(64)).is_err());
    }
}
