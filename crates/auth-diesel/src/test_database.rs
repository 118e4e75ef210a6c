//! A throw-away PostgreSQL database for tests and tooling: the one guard the store tests,
//! the in-tree conformance test and `cargo xtask` share.

use std::fmt;

use auth_core::store::StoreError;

use crate::{create_postgres_database, drop_postgres_database};

/// The environment variable naming the PostgreSQL admin URL the Postgres tests run under.
/// Unset or empty, they are ignored (the crates concerned turn it into the
/// `auth_test_postgres` cfg in their build scripts, so cargo's summary counts them as
/// ignored rather than passed).
pub const TEST_POSTGRES_URL_ENV: &str = "AUTH_TEST_POSTGRES_URL";

/// A PostgreSQL database of its own, created under an admin URL with a unique name and
/// dropped (its connections terminated) when this value goes, also while a panicking test
/// unwinds. Close pools on it before dropping the guard or together with it: the drop
/// forces their connections closed.
///
/// ```no_run
/// use auth_diesel::{DieselStore, TestDatabase};
/// # fn main() -> Result<(), auth_core::store::StoreError> {
/// let database = TestDatabase::create("postgres://postgres@127.0.0.1/postgres", "auth_test")?;
/// let store = DieselStore::connect(database.url(), 4)?;
/// # drop(store);
/// # Ok(()) }
/// ```
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a database named `{prefix}_{32 hex digits}` through `admin_url` (a role
    /// allowed to create databases). `prefix` is a plain identifier of at most 30
    /// characters, so that the name stays within PostgreSQL's 63 and says who made it when
    /// a killed process leaves one behind.
    pub fn create(admin_url: &str, prefix: &str) -> Result<Self, StoreError> {
        if prefix.len() > 30 {
            return Err(StoreError::Other(
                "test database prefix longer than 30 characters".to_owned(),
            ));
        }
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let url = create_postgres_database(admin_url, &name)?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        })
    }

    /// The admin URL of [`TEST_POSTGRES_URL_ENV`], when set and not blank.
    pub fn admin_url_from_env() -> Option<String> {
        std::env::var(TEST_POSTGRES_URL_ENV)
            .ok()
            .filter(|url| !url.trim().is_empty())
    }

    /// The URL of this database (the admin URL with its database replaced).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URLs may carry a password: only the name is shown.
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // A drop cannot fail; a database left behind is worth a line, not a second panic
        // during a failing test's unwinding.
        if let Err(err) = drop_postgres_database(&self.admin_url, &self.name) {
            eprintln!("could not drop test database {}: {err}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use auth_core::store::Store as _;

    use super::*;

    #[test]
    fn long_prefixes_and_bad_urls_are_refused_before_connecting() {
        let long = "p".repeat(31);
        assert!(TestDatabase::create("postgres://127.0.0.1:1/postgres", &long).is_err());
        assert!(TestDatabase::create("sqlite://x.db", "auth_test").is_err());
        assert!(TestDatabase::create("postgres://127.0.0.1:1/postgres", "bad-prefix").is_err());
    }

    #[test]
    #[cfg_attr(
        not(auth_test_postgres),
        ignore = "set AUTH_TEST_POSTGRES_URL to an admin URL to run against PostgreSQL"
    )]
    fn the_database_exists_until_the_guard_goes_even_on_a_panic() {
        let admin = TestDatabase::admin_url_from_env()
            .unwrap_or_else(|| panic!("{TEST_POSTGRES_URL_ENV} is not set"));
        let database = TestDatabase::create(&admin, "auth_test").expect("create");
        assert!(database.name().starts_with("auth_test_"));
        let name = database.name().to_owned();
        crate::DieselStore::connect(database.url(), 1)
            .expect("connect")
            .ping()
            .expect("ping");
        let unwound = std::panic::catch_unwind(move || {
            let _database = database;
            panic!("a failing test");
        });
        assert!(unwound.is_err());
        // Creating the name again succeeds only if the guard dropped it while unwinding.
        create_postgres_database(&admin, &name).expect("the database outlived its guard");
        drop_postgres_database(&admin, &name).expect("drop");
    }
}
