//! The store contract suite (`auth_core::testing::store_suite`) on SQLite (a fresh temporary
//! file per case) and PostgreSQL (a fresh database per case, dropped afterwards even when
//! the case fails), plus what only the Diesel store has to show: connecting, migrating,
//! refusing bad URLs.
//!
//! The PostgreSQL tests need `AUTH_TEST_POSTGRES_URL` (an admin URL) at build time and at run
//! time; without it they show as ignored.

use std::time::{Duration, Instant};

use auth_core::store::{NewUser, Store, StoreError, UserRecord, UserStore};
use auth_core::testing::store_suite::StoreFixture;
use auth_diesel::{DieselStore, TestDatabase, create_postgres_database};
use uuid::Uuid;

/// Pool size of each store: the suite's racing cases use up to 8 threads (and 20 on one
/// rate limit, more than the pool holds).
const POOL_SIZE: u32 = 8;

/// A store plus whatever keeps its database alive; dropping it removes the database.
/// Field order matters: the pool closes before the database goes.
struct Harness {
    store: DieselStore,
    _guard: Guard,
}

impl StoreFixture for Harness {
    fn store(&self) -> &dyn Store {
        &self.store
    }
}

/// What a [`Harness`] owns besides its store.
enum Guard {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { _database: TestDatabase },
}

/// A store on a fresh SQLite file in a temporary directory.
fn sqlite_harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("auth.db");
    let url = format!("sqlite://{}", path.display());
    let store = DieselStore::connect(&url, POOL_SIZE).expect("connect sqlite");
    assert_eq!(store.backend(), "sqlite");
    Harness {
        store,
        _guard: Guard::Sqlite { _dir: dir },
    }
}

/// A fresh PostgreSQL database, dropped with the guard (also when the case fails). Only
/// called by tests that are ignored unless the crate was built with the variable set.
fn postgres_database() -> (String, Guard) {
    let admin = TestDatabase::admin_url_from_env()
        .expect("AUTH_TEST_POSTGRES_URL was set at build time but is not set now");
    let database = TestDatabase::create(&admin, "auth_test").expect("create test database");
    let url = database.url().to_owned();
    (
        url,
        Guard::Postgres {
            _database: database,
        },
    )
}

/// A store on a fresh PostgreSQL database.
fn postgres_harness() -> Harness {
    // The guard exists before connecting, so a failed connect still drops the database.
    let (url, guard) = postgres_database();
    let store = DieselStore::connect(&url, POOL_SIZE).expect("connect postgres");
    assert_eq!(store.backend(), "postgres");
    Harness {
        store,
        _guard: guard,
    }
}

mod sqlite {
    auth_core::store_contract_tests!(fixture = super::sqlite_harness());
}

mod postgres {
    auth_core::store_contract_tests!(
        #[cfg_attr(
            not(auth_test_postgres),
            ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
        )]
        fixture = super::postgres_harness()
    );
}

// ---------------------------------------------------------------------------------------
// Diesel-specific tests

fn make_user(store: &DieselStore, email: &str) -> UserRecord {
    store
        .create_user(&NewUser {
            id: Uuid::new_v4(),
            email: email.to_owned(),
            email_key: email.to_lowercase(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
            full_name: None,
            is_active: true,
            roles: vec!["user".to_owned()],
            organization_id: None,
            now: 1_700_000_000,
        })
        .expect("create user")
}

#[test]
fn sqlite_reconnect_runs_migrations_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("again.db");
    let first = DieselStore::connect(path.to_str().expect("utf-8 path"), 2).expect("connect");
    let user = make_user(&first, "persist@example.com");
    drop(first);
    for url in [
        format!("sqlite:{}", path.display()),
        format!("sqlite://{}", path.display()),
    ] {
        let store = DieselStore::connect(&url, 2).expect("reconnect");
        assert_eq!(store.find_user(user.id).expect("find"), Some(user.clone()));
    }
}

#[test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
)]
fn postgres_reconnect_runs_migrations_once() {
    let (url, _guard) = postgres_database();
    let first = DieselStore::connect(&url, 2).expect("connect");
    let user = make_user(&first, "persist@example.com");
    drop(first);
    // Two instances starting at once on the same database both come up.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| DieselStore::connect(&url, 2));
        let b = s.spawn(|| DieselStore::connect(&url, 2));
        (a.join().expect("join"), b.join().expect("join"))
    });
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a.find_user(user.id).expect("find"), Some(user.clone()));
    assert_eq!(b.find_user(user.id).expect("find"), Some(user));
}

#[test]
fn sqlite_parallel_first_connects_agree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| DieselStore::connect(&url, 2)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    for r in results {
        r.expect("connect").ping().expect("ping");
    }
}

#[test]
fn in_memory_sqlite_works() {
    for url in [":memory:", "sqlite::memory:"] {
        let store = DieselStore::connect(url, 8).expect("connect");
        assert_eq!(store.backend(), "sqlite");
        let user = make_user(&store, "mem@example.com");
        assert_eq!(store.find_user(user.id).expect("find"), Some(user));
    }
}

#[test]
fn unreachable_postgres_is_unavailable() {
    let started = Instant::now();
    let result = DieselStore::connect("postgres://postgres@127.0.0.1:1/postgres", 2);
    let elapsed = started.elapsed();
    match result {
        Err(StoreError::Unavailable(message)) => {
            assert!(!message.contains("password"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");

    match create_postgres_database("postgres://postgres@127.0.0.1:1/postgres", "x") {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn bad_urls_are_refused() {
    assert!(matches!(
        DieselStore::connect("mysql://localhost/db", 1),
        Err(StoreError::Other(_))
    ));
    match DieselStore::connect("/nonexistent-dir/for/sure/auth.db", 1) {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(create_postgres_database("postgres://h/db", "bad name").is_err());
}
