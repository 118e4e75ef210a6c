//! The store-job queue is bounded (issue 10, rule 13): while the database is stuck (a lock
//! held by another connection), requests beyond the queue's capacity get 503 with
//! `Retry-After` at once instead of piling up, and once the database moves again the
//! server serves as before. On every adapter, on SQLite and (with
//! `AUTH_TEST_POSTGRES_URL`) on PostgreSQL, each on a database of its own.

use std::time::{Duration, Instant};

use auth_diesel::TestDatabase;
use auth_server::{Adapter, ServeArgs};
use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, PgConnection, SqliteConnection};
use futures_util::future::join_all;

/// Store calls the servers under test may have pending (one running, one queued).
const STORE_QUEUE: u64 = 2;
/// Registrations sent at once while the database is stuck.
const SENT: usize = 8;
/// How soon the refused ones must be answered.
const PROMPT: Duration = Duration::from_secs(1);
/// How long the database stays stuck.
const STUCK_FOR: Duration = Duration::from_secs(2);

/// A connection holding a lock that stops every registration's first write.
enum Stuck {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl Stuck {
    fn release(self) {
        match self {
            Stuck::Sqlite(mut conn) => conn.batch_execute("ROLLBACK").expect("rollback"),
            Stuck::Postgres(mut conn) => conn.batch_execute("ROLLBACK").expect("rollback"),
        }
    }
}

fn args(database_url: &str) -> ServeArgs {
    let mut args = ServeArgs::defaults().expect("default settings");
    args.database.database_url = database_url.to_owned();
    // Mail goes to the OS temp directory, never into the source tree (on Postgres the
    // default outbox is the working directory, which is the crate's under `cargo test`).
    args.mail.mail_outbox = Some(std::env::temp_dir().join("auth-server-test-outbox"));
    args.database.db_pool_size = 1;
    args.store_queue = STORE_QUEUE;
    args.jwt_secret = Some(format!("{:064x}", rand::random::<u128>()).into());
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.argon2_parallelism = 1;
    args
}

async fn register(client: &reqwest::Client, base: &str, n: usize) -> (u16, bool, Duration) {
    let started = Instant::now();
    let resp = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({
            "email": format!("q{n}-{}@example.com", uuid_like()),
            "password": "a long unusual password 4711",
        }))
        .send()
        .await
        .expect("an answer");
    let retry_after = resp.headers().contains_key("retry-after");
    (resp.status().as_u16(), retry_after, started.elapsed())
}

fn uuid_like() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Registrations beyond the queue are refused promptly while `stuck` holds; then the
/// server recovers. Errors name what went wrong.
async fn check(
    adapter: Adapter,
    database_url: &str,
    stuck: impl FnOnce() -> Stuck,
) -> Result<(), String> {
    let app = auth_server::build_app(&args(database_url))
        .await
        .map_err(|err| format!("app: {err:#}"))?;
    let server = auth_server::start(adapter, app, "127.0.0.1:0")
        .await
        .map_err(|err| format!("start: {err:#}"))?;
    let base = server.base_url();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let lock = stuck();
    let sent = join_all((0..SENT).map(|n| {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move { register(&client, &base, n).await })
    }));
    let release = async {
        tokio::time::sleep(STUCK_FOR).await;
        lock.release();
    };
    let (answers, ()) = tokio::join!(sent, release);
    let answers: Vec<(u16, bool, Duration)> =
        answers.into_iter().map(|a| a.expect("task")).collect();
    let refused_promptly = answers
        .iter()
        .filter(|(status, retry_after, took)| *status == 503 && *retry_after && *took < PROMPT)
        .count();
    let capacity = usize::try_from(STORE_QUEUE).expect("small");
    if refused_promptly < SENT - capacity {
        return Err(format!(
            "expected at least {} of {SENT} registrations refused with 503 and Retry-After \
             within {PROMPT:?} while the database was stuck; got {answers:?}",
            SENT - capacity
        ));
    }
    let (status, _, _) = register(&client, &base, SENT).await;
    server
        .stop()
        .await
        .map_err(|err| format!("stop: {err:#}"))?;
    if status != 201 {
        return Err(format!(
            "after the database moved again, a registration got {status}"
        ));
    }
    Ok(())
}

#[tokio::test]
async fn sqlite_store_queue_is_bounded() {
    let mut failures = Vec::new();
    for &adapter in Adapter::all() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("auth.db");
        let url = format!("sqlite://{}", path.display());
        let stuck = || {
            let mut conn = SqliteConnection::establish(&path.display().to_string()).expect("open");
            conn.batch_execute("BEGIN EXCLUSIVE").expect("lock");
            Stuck::Sqlite(conn)
        };
        if let Err(err) = check(adapter, &url, stuck).await {
            failures.push(format!("{}/sqlite: {err}", adapter.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[cfg_attr(not(auth_test_postgres), ignore = "set AUTH_TEST_POSTGRES_URL to run")]
#[tokio::test]
async fn postgres_store_queue_is_bounded() {
    let admin = TestDatabase::admin_url_from_env().expect("AUTH_TEST_POSTGRES_URL");
    let mut failures = Vec::new();
    for &adapter in Adapter::all() {
        let database = TestDatabase::create(&admin, "auth_store_queue").expect("database");
        let url = database.url().to_owned();
        let stuck = || {
            let mut conn = PgConnection::establish(&url).expect("connect");
            conn.batch_execute("BEGIN; LOCK TABLE rate_limit_hits IN ACCESS EXCLUSIVE MODE")
                .expect("lock");
            Stuck::Postgres(conn)
        };
        if let Err(err) = check(adapter, database.url(), stuck).await {
            failures.push(format!("{}/postgres: {err}", adapter.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
