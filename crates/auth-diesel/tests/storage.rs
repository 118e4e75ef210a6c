//! Storage that stays flat (issue 11, item 3), counted in the database itself with raw SQL:
//! a thousand refreshes of a session leave the rows they found, on SQLite and PostgreSQL.
//! Plus the measurement behind docs/performance.md ("Storage"): bytes per user and per
//! session, `#[ignore]`d (run it with `--ignored --nocapture`).
//!
//! The PostgreSQL tests need `AUTH_TEST_POSTGRES_URL` (an admin URL) at build time and at run
//! time; without it they show as ignored.

use auth_core::store::{
    NewRefreshToken, NewSession, NewUser, RefreshRotation, SessionBounds, SessionRecord,
    SessionStore, TokenHash, UserStore,
};
use auth_diesel::{DieselStore, TestDatabase};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use uuid::Uuid;

const T0: i64 = 1_700_000_000;

/// One `BIGINT` column named `n`.
#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A raw connection to the test database, for counting what the store wrote.
enum Raw {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Raw {
    fn scalar(&mut self, sql: &str) -> i64 {
        let rows: Vec<Count> = match self {
            Raw::Sqlite(c) => diesel::sql_query(sql).load(c),
            Raw::Postgres(c) => diesel::sql_query(sql).load(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.first().map_or(0, |r| r.n)
    }

    fn execute(&mut self, sql: &str) {
        match self {
            Raw::Sqlite(c) => diesel::sql_query(sql).execute(c),
            Raw::Postgres(c) => diesel::sql_query(sql).execute(c),
        }
        .unwrap_or_else(|e| panic!("{}: {e}", &sql[..sql.len().min(80)]));
    }

    /// Every table the migrations made (the migrations' own bookkeeping aside).
    fn tables(&mut self) -> Vec<String> {
        #[derive(QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let rows: Vec<Name> = match self {
            Raw::Sqlite(c) => diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' AND name <> '__diesel_schema_migrations'",
            )
            .load(c),
            Raw::Postgres(c) => diesel::sql_query(
                "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' \
                 AND tablename <> '__diesel_schema_migrations'",
            )
            .load(c),
        }
        .expect("tables");
        let mut names: Vec<String> = rows.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    }

    /// Rows in every table.
    fn rows(&mut self) -> Vec<(String, i64)> {
        self.tables()
            .into_iter()
            .map(|t| {
                let n = self.scalar(&format!("SELECT COUNT(*) AS n FROM \"{t}\""));
                (t, n)
            })
            .collect()
    }

    /// Bytes of `table` with its indexes (and, on PostgreSQL, its TOAST), as allocated.
    fn bytes(&mut self, table: &str) -> i64 {
        match self {
            Raw::Sqlite(_) => self.scalar(&format!(
                "SELECT COALESCE(SUM(pgsize), 0) AS n FROM dbstat WHERE name IN \
                 (SELECT name FROM sqlite_master WHERE tbl_name = '{table}')"
            )),
            Raw::Postgres(_) => {
                self.scalar(&format!("SELECT pg_total_relation_size('{table}') AS n"))
            }
        }
    }
}

/// A fresh database of each kind, its store and a raw connection to it.
struct Fixture {
    store: DieselStore,
    raw: Raw,
    _keep: Keep,
}

enum Keep {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] TestDatabase),
}

fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("auth.db");
    let store = DieselStore::connect(&format!("sqlite://{}", path.display()), 4).expect("store");
    let raw = SqliteConnection::establish(&path.display().to_string()).expect("raw");
    Fixture {
        store,
        raw: Raw::Sqlite(raw),
        _keep: Keep::Sqlite(dir),
    }
}

fn postgres() -> Fixture {
    let admin = TestDatabase::admin_url_from_env().expect("AUTH_TEST_POSTGRES_URL");
    let database = TestDatabase::create(&admin, "auth_storage").expect("database");
    let store = DieselStore::connect(database.url(), 4).expect("store");
    let raw = PgConnection::establish(database.url()).expect("raw");
    Fixture {
        store,
        raw: Raw::Postgres(raw),
        _keep: Keep::Postgres(database),
    }
}

fn hash() -> TokenHash {
    TokenHash(rand_bytes())
}

fn rand_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(16) {
        chunk.copy_from_slice(Uuid::new_v4().as_bytes());
    }
    out
}

fn user(store: &DieselStore, i: usize) -> Uuid {
    store
        .create_user(&NewUser {
            id: Uuid::new_v4(),
            email: format!("user{i}@example.com"),
            email_key: format!("user{i}@example.com"),
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1${}", "x".repeat(70)),
            full_name: None,
            is_active: true,
            roles: vec!["user".to_owned()],
            organization_id: None,
            now: T0,
        })
        .expect("user")
        .id
}

/// Opens a session of `user` (as a login would) and returns it with its first token.
fn session(store: &DieselStore, user: Uuid) -> (Uuid, TokenHash) {
    let id = Uuid::new_v4();
    let first = hash();
    store
        .create_session(&NewSession {
            session: SessionRecord {
                id,
                user_id: user,
                access_jti: "a".repeat(22),
                user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) curl/8.5".to_owned()),
                created_at: T0,
                last_used_at: T0,
                expires_at: T0 + 30 * 86_400,
                profile: "rbac".to_owned(),
                bounds: SessionBounds {
                    created_at: T0,
                    access_ttl: Some(900),
                },
            },
            first_refresh: NewRefreshToken {
                hash: first,
                session_id: id,
                generation: 0,
                created_at: T0,
                expires_at: T0 + 30 * 86_400,
            },
            purge_expired_before: Some(T0),
        })
        .expect("session");
    (id, first)
}

/// Exchanges generation `from` (hash `old`) for a new one, with a `replay` blob.
fn rotate(store: &DieselStore, id: Uuid, from: u64, old: TokenHash, replay: &[u8]) -> TokenHash {
    let new = hash();
    let now = T0 + i64::try_from(from).expect("small") + 1;
    let rotated = store
        .rotate_refresh_token(&RefreshRotation {
            old,
            new: NewRefreshToken {
                hash: new,
                session_id: id,
                generation: from + 1,
                created_at: now,
                expires_at: now + 30 * 86_400,
            },
            new_access_jti: "b".repeat(22),
            replay: replay.to_vec(),
            now,
        })
        .expect("rotate");
    assert!(rotated, "generation {from}");
    new
}

/// A thousand refreshes of one session: every table holds exactly the rows it held after
/// the login (one session row), and the session's state is the last generation.
fn thousand_refreshes_add_no_row(mut fixture: Fixture) {
    let store = &fixture.store;
    let id = user(store, 0);
    let (session_id, mut current) = session(store, id);
    let after_login = fixture.raw.rows();
    let replay = vec![7u8; 700];
    for generation in 0..1000 {
        current = rotate(&fixture.store, session_id, generation, current, &replay);
    }
    let after = fixture.raw.rows();
    eprintln!("rows after the login: {after_login:?}\nrows after 1,000 refreshes: {after:?}");
    assert_eq!(after, after_login);
    let sessions = after.iter().find(|(t, _)| t == "sessions").map(|(_, n)| *n);
    assert_eq!(sessions, Some(1));
    assert!(!after.iter().any(|(t, _)| t == "refresh_tokens"));
    let record = fixture
        .store
        .find_refresh_token(session_id)
        .expect("find")
        .expect("kept");
    assert_eq!((record.generation, record.current), (1000, current));
}

#[test]
fn sqlite_thousand_refreshes_add_no_row() {
    thousand_refreshes_add_no_row(sqlite());
}

#[test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
)]
fn postgres_thousand_refreshes_add_no_row() {
    thousand_refreshes_add_no_row(postgres());
}

/// Users and sessions inserted for the measurement.
const MEASURED: usize = 2000;

/// Bytes per user (its row, role assignment and indexes) and per session (refreshed ten
/// times, so the previous generation and its replay are filled), as allocated by the
/// database: deltas over [`MEASURED`] of each.
fn measure(mut fixture: Fixture, backend: &str) {
    let user_tables = ["users", "user_roles"];
    let before: i64 = user_tables.iter().map(|t| fixture.raw.bytes(t)).sum();
    let users: Vec<Uuid> = (0..MEASURED).map(|i| user(&fixture.store, i)).collect();
    let after: i64 = user_tables.iter().map(|t| fixture.raw.bytes(t)).sum();
    let sessions_before = fixture.raw.bytes("sessions");
    // A replay as the core seals it: 12-byte nonce, 16-byte tag and the JSON pair (a real
    // HS256 one measured 591 bytes in all; this errs on the large side).
    let replay = vec![7u8; 12 + 16 + 640];
    for &u in &users {
        let (id, mut current) = session(&fixture.store, u);
        for generation in 0..10 {
            current = rotate(&fixture.store, id, generation, current, &replay);
        }
    }
    let sessions_after = fixture.raw.bytes("sessions");
    let n = i64::try_from(MEASURED).expect("small");
    println!(
        "{backend}: {MEASURED} users: {} bytes per user (users + user_roles with indexes)",
        (after - before) / n
    );
    println!(
        "{backend}: {MEASURED} sessions refreshed 10 times: {} bytes per session as written \
         (sessions with indexes)",
        (sessions_after - sessions_before) / n,
    );
    // Compacted: what the live rows take (PostgreSQL keeps dead row versions of every update
    // until vacuumed; SQLite rewrites in place, VACUUM only drops free pages).
    let pg = matches!(fixture.raw, Raw::Postgres(_));
    fixture
        .raw
        .execute(if pg { "VACUUM FULL sessions" } else { "VACUUM" });
    let compacted = fixture.raw.bytes("sessions");
    println!(
        "{backend}: {MEASURED} sessions refreshed 10 times: {} bytes per session compacted",
        compacted / n,
    );
    // The old layout for comparison: the table the migration drops, with the rows ten
    // refreshes left per session (ten used, with replay and successor, and the live one).
    fixture.raw.execute(&format!(
        "CREATE TABLE legacy_refresh_tokens (token_hash TEXT PRIMARY KEY NOT NULL, \
         session_id TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, \
         used_at BIGINT, replay {blob}, successor_hash TEXT)",
        blob = if pg { "BYTEA" } else { "BLOB" }
    ));
    fixture.raw.execute(
        "CREATE INDEX legacy_refresh_tokens_session_id_idx ON legacy_refresh_tokens (session_id)",
    );
    let replay_hex: String = replay.iter().map(|b| format!("{b:02x}")).collect();
    let replay_literal = if pg {
        format!("'\\x{replay_hex}'::bytea")
    } else {
        format!("X'{replay_hex}'")
    };
    for chunk in users.chunks(100) {
        let mut values = Vec::new();
        for _ in chunk {
            let session = Uuid::new_v4();
            let hashes: Vec<String> = (0..11).map(|_| hash().to_hex()).collect();
            for g in 0..11 {
                let (used, replay, successor) = if g < 10 {
                    (
                        (T0 + g).to_string(),
                        replay_literal.clone(),
                        format!("'{}'", hashes[g as usize + 1]),
                    )
                } else {
                    ("NULL".to_owned(), "NULL".to_owned(), "NULL".to_owned())
                };
                values.push(format!(
                    "('{}', '{session}', {T0}, {}, {used}, {replay}, {successor})",
                    hashes[g as usize],
                    T0 + 30 * 86_400,
                ));
            }
        }
        fixture.raw.execute(&format!(
            "INSERT INTO legacy_refresh_tokens VALUES {}",
            values.join(", ")
        ));
    }
    let legacy = fixture.raw.bytes("legacy_refresh_tokens");
    println!(
        "{backend}: old layout: {} bytes of refresh_tokens per session after 10 refreshes \
         (11 rows, on top of the session row)",
        legacy / n,
    );
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn sqlite_bytes_per_user_and_session() {
    measure(sqlite(), "sqlite");
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture (needs AUTH_TEST_POSTGRES_URL)"]
fn postgres_bytes_per_user_and_session() {
    measure(postgres(), "postgres");
}

/// The benchmark's write-limit measurement commits transactions on the store's pool and
/// leaves no table behind.
fn write_limit_commits_and_cleans_up(mut fixture: Fixture) {
    let before = fixture.raw.tables();
    let limit = fixture
        .store
        .measure_write_limit(2, std::time::Duration::from_millis(200))
        .expect("measured");
    assert_eq!(limit.writers, 2);
    assert!(limit.per_second > 0.0, "{limit:?}");
    assert_eq!(
        fixture.raw.tables(),
        before,
        "the scratch tables are dropped"
    );
}

#[test]
fn sqlite_write_limit_commits_and_cleans_up() {
    write_limit_commits_and_cleans_up(sqlite());
}

#[test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
)]
fn postgres_write_limit_commits_and_cleans_up() {
    write_limit_commits_and_cleans_up(postgres());
}
