//! A session ends at its absolute lifetime, counted from the login, however often it is
//! refreshed (issue 10, rule 1): over HTTP on every adapter, on SQLite and (with
//! `AUTH_TEST_POSTGRES_URL`) on PostgreSQL, with the core reading a clock the test moves, so
//! ten days pass in a second. Every token minted along the way expires at or before the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use auth_core::clock::Clock;
use auth_core::config::{Argon2Params, Config, Signing};
use auth_core::{App, Auth, MountSpec};
use auth_diesel::{DieselStore, TestDatabase};
use auth_server::Adapter;
use base64::Engine as _;
use serde_json::{Value, json};

/// The session lifetime under test.
const LIFETIME: i64 = 10 * 24 * 3600;
/// How far the clock moves between refreshes.
const STEP: i64 = 2 * 24 * 3600;

/// A clock that starts at the real time and moves only when told.
struct MovableClock {
    now: AtomicI64,
    origin: std::time::Instant,
}

impl Clock for MovableClock {
    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn monotonic(&self) -> Duration {
        // The principal cache's lifetime runs on this; moving the wall clock by days must
        // not leave a cached principal alive, so monotonic time moves with it.
        let moved = self.now.load(Ordering::SeqCst) - START.load(Ordering::SeqCst);
        self.origin.elapsed() + Duration::from_secs(u64::try_from(moved).unwrap_or(0))
    }
}

static START: AtomicI64 = AtomicI64::new(0);

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

async fn post(client: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let resp = client
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("an answer");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Logs in, refreshes every two days, and checks every token against the session's end;
/// at the end the refresh is refused. Errors say what went wrong.
async fn check(adapter: Adapter, store: Arc<DieselStore>) -> Result<(), String> {
    let start = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits");
    START.store(start, Ordering::SeqCst);
    let clock = Arc::new(MovableClock {
        now: AtomicI64::new(start),
        origin: std::time::Instant::now(),
    });
    let config = Config {
        signing: Signing::Hs256 {
            secret: vec![7; 32],
        },
        argon2: Argon2Params {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        session_lifetime: Duration::from_secs(LIFETIME as u64),
        refresh_ttl: Duration::from_secs(3 * 24 * 3600),
        ..Config::default()
    };
    let auth = tokio::task::spawn_blocking(move || {
        Auth::with_clock(store, config, clock.clone()).map(|auth| (auth, clock))
    })
    .await
    .expect("task")
    .map_err(|err| format!("auth: {err}"))?;
    let (auth, clock) = auth;
    let app = App::new(
        Arc::new(auth),
        &MountSpec::parse_list("native").expect("mounts"),
    )
    .map_err(|err| format!("app: {err}"))?;
    let server = auth_server::start(adapter, app, "127.0.0.1:0")
        .await
        .map_err(|err| format!("start: {err:#}"))?;
    let base = format!("{}/api/v1/auth", server.base_url());
    let client = reqwest::Client::new();
    let (status, body) = post(
        &client,
        format!("{base}/register"),
        json!({"email": format!("life-{}@example.com", rand::random::<u64>()), "password": "a long unusual password 4711"}),
    )
    .await;
    if status != 201 {
        return Err(format!("register: {status} {body}"));
    }
    let ends_at = start + LIFETIME;
    let mut refresh = body["token"]["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    for day in (STEP..LIFETIME).step_by(STEP as usize) {
        clock.now.store(start + day, Ordering::SeqCst);
        let (status, pair) = post(
            &client,
            format!("{base}/refresh"),
            json!({"refresh_token": refresh}),
        )
        .await;
        if status != 200 {
            return Err(format!("refresh on day {}: {status} {pair}", day / 86_400));
        }
        let exp = claims(pair["access_token"].as_str().unwrap_or_default())["exp"]
            .as_i64()
            .unwrap_or(i64::MAX);
        let expires_in = pair["expires_in"].as_i64().unwrap_or(i64::MAX);
        if exp > ends_at || start + day + expires_in != exp {
            return Err(format!(
                "day {}: exp {exp}, expires_in {expires_in}, session ends at {ends_at}",
                day / 86_400
            ));
        }
        refresh = pair["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
    }
    clock.now.store(ends_at, Ordering::SeqCst);
    let (status, body) = post(
        &client,
        format!("{base}/refresh"),
        json!({"refresh_token": refresh}),
    )
    .await;
    server
        .stop()
        .await
        .map_err(|err| format!("stop: {err:#}"))?;
    if status != 401 {
        return Err(format!(
            "refresh at the session's end: {status} {body}, not 401"
        ));
    }
    Ok(())
}

#[tokio::test]
async fn sqlite_sessions_end_at_their_absolute_lifetime() {
    let mut failures = Vec::new();
    for &adapter in Adapter::all() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("auth.db").display());
        let store = tokio::task::spawn_blocking(move || DieselStore::connect(&url, 2))
            .await
            .expect("task")
            .expect("store");
        if let Err(err) = check(adapter, Arc::new(store)).await {
            failures.push(format!("{}/sqlite: {err}", adapter.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[cfg_attr(not(auth_test_postgres), ignore = "set AUTH_TEST_POSTGRES_URL to run")]
#[tokio::test]
async fn postgres_sessions_end_at_their_absolute_lifetime() {
    let admin = TestDatabase::admin_url_from_env().expect("AUTH_TEST_POSTGRES_URL");
    let mut failures = Vec::new();
    for &adapter in Adapter::all() {
        let database = TestDatabase::create(&admin, "auth_lifetime").expect("database");
        let url = database.url().to_owned();
        let store = tokio::task::spawn_blocking(move || DieselStore::connect(&url, 2))
            .await
            .expect("task")
            .expect("store");
        if let Err(err) = check(adapter, Arc::new(store)).await {
            failures.push(format!("{}/postgres: {err}", adapter.name()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
