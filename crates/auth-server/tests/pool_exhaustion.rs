//! An exhausted pool answers, never hangs (issue 11, item 1): with one database connection,
//! held by a request stuck behind a lock another connection holds, every other request
//! (with the default, long store queue) gets 503 with `Retry-After` within about a second,
//! `/readyz` says 503 and `/livez` 200; once the lock goes, the server serves at once (an
//! exhausted pool does not open the database breaker). On every adapter, on SQLite and
//! (with `AUTH_TEST_POSTGRES_URL`) on PostgreSQL, each on a database of its own.

use std::time::{Duration, Instant};

use auth_diesel::TestDatabase;
use auth_server::{Adapter, ServeArgs};
use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, PgConnection, SqliteConnection};
use futures_util::future::join_all;

/// Registrations sent at once while the connection is stuck.
const SENT: usize = 6;
/// How soon the refused ones must be answered (the wait is 500 ms; the machine is loaded).
const PROMPT: Duration = Duration::from_millis(1500);
/// How long the lock is held.
const STUCK_FOR: Duration = Duration::from_secs(3);

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
    args.jwt_secret = Some(format!("{:064x}", rand::random::<u128>()).into());
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.argon2_parallelism = 1;
    args
}

/// (status, has Retry-After, time taken) of one request.
type Answer = (u16, bool, Duration);

async fn send(request: reqwest::RequestBuilder) -> Answer {
    let started = Instant::now();
    let resp = request.send().await.expect("an answer");
    let retry_after = resp.headers().contains_key("retry-after");
    (resp.status().as_u16(), retry_after, started.elapsed())
}

fn register(client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({
            "email": format!("x{:032x}@example.com", rand::random::<u128>()),
            "password": "a long unusual password 4711",
        }))
}

fn prompt_503(answer: &Answer) -> bool {
    answer.0 == 503 && answer.1 && answer.2 < PROMPT
}

async fn check(
    adapter: Adapter,
    database_url: &str,
    stuck: impl FnOnce() -> Stuck,
) -> Result<String, String> {
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
    // The first registration takes the one connection and waits on the lock.
    let first = tokio::spawn(send(register(&client, &base)));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = join_all((0..SENT).map(|_| tokio::spawn(send(register(&client, &base)))));
    let probes = async {
        let ready = send(client.get(format!("{base}/readyz"))).await;
        let live = send(client.get(format!("{base}/livez"))).await;
        (ready, live)
    };
    let (answers, (ready, live)) = tokio::join!(sent, probes);
    let answers: Vec<Answer> = answers.into_iter().map(|a| a.expect("task")).collect();
    tokio::time::sleep(STUCK_FOR.saturating_sub(Duration::from_secs(1))).await;
    lock.release();
    let first = first.await.expect("task");
    let after = send(register(&client, &base)).await;
    server
        .stop()
        .await
        .map_err(|err| format!("stop: {err:#}"))?;
    let refused = answers.iter().filter(|a| prompt_503(a)).count();
    if refused < SENT {
        return Err(format!(
            "expected all {SENT} registrations refused with 503 and Retry-After within \
             {PROMPT:?} while the one connection was stuck; got {answers:?}"
        ));
    }
    if !prompt_503(&ready) || live.0 != 200 || live.2 >= PROMPT {
        return Err(format!("readyz {ready:?}, livez {live:?} while stuck"));
    }
    if first.0 != 201 {
        return Err(format!("the stuck registration got {first:?}"));
    }
    if after.0 != 201 || after.2 >= PROMPT {
        return Err(format!("after the lock went, a registration got {after:?}"));
    }
    let slowest = answers.iter().map(|a| a.2).max().unwrap_or_default();
    Ok(format!(
        "{}: slowest 503 {slowest:?}, readyz {:?}",
        adapter.name(),
        ready.2
    ))
}

#[tokio::test]
async fn sqlite_pool_exhaustion_answers_503_promptly() {
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
        match check(adapter, &url, stuck).await {
            Ok(report) => println!("sqlite/{report}"),
            Err(err) => failures.push(format!("{}/sqlite: {err}", adapter.name())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[cfg_attr(not(auth_test_postgres), ignore = "set AUTH_TEST_POSTGRES_URL to run")]
#[tokio::test]
async fn postgres_pool_exhaustion_answers_503_promptly() {
    let admin = TestDatabase::admin_url_from_env().expect("AUTH_TEST_POSTGRES_URL");
    let mut failures = Vec::new();
    for &adapter in Adapter::all() {
        let database = TestDatabase::create(&admin, "auth_pool_exhaustion").expect("database");
        let url = database.url().to_owned();
        let stuck = || {
            let mut conn = PgConnection::establish(&url).expect("connect");
            conn.batch_execute("BEGIN; LOCK TABLE rate_limit_hits IN ACCESS EXCLUSIVE MODE")
                .expect("lock");
            Stuck::Postgres(conn)
        };
        match check(adapter, database.url(), stuck).await {
            Ok(report) => println!("postgres/{report}"),
            Err(err) => failures.push(format!("{}/postgres: {err}", adapter.name())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
