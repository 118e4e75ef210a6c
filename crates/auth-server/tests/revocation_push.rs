//! Revocations pushed to every instance (issue 11, item 2): three in-process servers, one
//! per adapter, on one PostgreSQL database, each with a principal cache of a minute, so only
//! the `LISTEN`/`NOTIFY` push can explain an instance refusing, within 100 ms, a token that
//! another instance revoked: logout, password change, an admin revoking a user's sessions,
//! a refresh making the old access token stale, session delete, deactivation, user delete
//! and refresh reuse detection; and a key rotation by `keys rotate`. Then the listening
//! connections are killed: the instances reconnect, flush what they cached (a revocation
//! nobody announced is honoured), and hear revocations again.
//!
//! Prints the measured times (max and median over every run) with `--nocapture`.

use std::time::{Duration, Instant};

use auth_core::service::NewAccount;
use auth_diesel::{LISTENER_APPLICATION_NAME, TestDatabase};
use auth_server::{Adapter, ServeArgs, ServerHandle};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::{Value, json};

/// Longer than any test: an entry only leaves a cache by eviction.
const CACHE_MS: u64 = 60_000;
/// The promise.
const WITHIN: Duration = Duration::from_millis(100);
/// How often the other instance is asked whether it still accepts the token.
const POLL: Duration = Duration::from_millis(5);
/// When to give up polling (the measurement then reports this).
const GIVE_UP: Duration = Duration::from_secs(1);
/// Runs of each scenario.
const RUNS: usize = 20;
const PASSWORD: &str = "a long unusual password 4711";
const NEW_PASSWORD: &str = "another long unusual password 0815";
const ADMIN_EMAIL: &str = "admin@example.com";

fn args(database_url: &str) -> ServeArgs {
    let mut args = ServeArgs::defaults().expect("default settings");
    args.database.database_url = database_url.to_owned();
    // Mail goes to the OS temp directory, never into the source tree (on Postgres the
    // default outbox is the working directory, which is the crate's under `cargo test`).
    args.mail.mail_outbox = Some(std::env::temp_dir().join("auth-server-test-outbox"));
    args.database.db_pool_size = 4;
    args.profiles = "native,admin".to_owned();
    args.principal_cache_ms = CACHE_MS;
    args.jwt_secret = Some("s".repeat(64).into());
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.argon2_parallelism = 1;
    // Many registrations and refreshes from one address: not what is tested here.
    args.rate_register_ip = auth_core::config::Limit::per(1_000_000, 3600);
    args.rate_refresh_ip = auth_core::config::Limit::per(1_000_000, 3600);
    args
}

/// Three servers (axum, actix, warp) on one database.
struct Cluster {
    servers: Vec<ServerHandle>,
    client: reqwest::Client,
    database: TestDatabase,
}

impl Cluster {
    async fn start(name: &str) -> Self {
        let admin = TestDatabase::admin_url_from_env().expect("AUTH_TEST_POSTGRES_URL");
        let database = TestDatabase::create(&admin, name).expect("database");
        let mut servers = Vec::new();
        for (n, &adapter) in Adapter::all().iter().enumerate() {
            let app = auth_server::build_app(&args(database.url()))
                .await
                .expect("app");
            if n == 0 {
                app.auth()
                    .operator()
                    .create_user(NewAccount {
                        email: ADMIN_EMAIL.to_owned(),
                        password: PASSWORD.to_owned(),
                        roles: vec!["admin".to_owned()],
                        is_active: true,
                        ..NewAccount::default()
                    })
                    .await
                    .expect("admin");
            }
            servers.push(
                auth_server::start(adapter, app, "127.0.0.1:0")
                    .await
                    .expect("start"),
            );
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Self {
            servers,
            client,
            database,
        }
    }

    fn base(&self, n: usize) -> String {
        format!("{}/api/v1", self.servers[n % self.servers.len()].base_url())
    }

    async fn call(
        &self,
        n: usize,
        method: &str,
        path: &str,
        token: &str,
        body: Value,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base(n));
        let mut request = self
            .client
            .request(method.parse().expect("method"), url)
            .bearer_auth(token);
        if !body.is_null() {
            request = request.json(&body);
        }
        let resp = request.send().await.expect("an answer");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Registers a fresh user on server `n`: (user id, access token, refresh token).
    async fn register(&self, n: usize) -> (String, String, String) {
        let email = format!("u{:016x}@example.com", rand::random::<u64>());
        let (status, body) = self
            .call(
                n,
                "POST",
                "/auth/register",
                "",
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 201, "register: {body}");
        let text = |v: &Value| v.as_str().expect("a string").to_owned();
        (
            text(&body["user"]["id"]),
            text(&body["token"]["access_token"]),
            text(&body["token"]["refresh_token"]),
        )
    }

    async fn login(&self, n: usize, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                n,
                "POST",
                "/auth/login",
                "",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(status, 200, "login: {body}");
        body["token"]["access_token"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    async fn email(&self, n: usize, token: &str) -> String {
        let (status, body) = self.call(n, "GET", "/auth/me", token, Value::Null).await;
        assert_eq!(status, 200, "me: {body}");
        body["email"].as_str().expect("email").to_owned()
    }

    /// Caches `token` on server `n` (two reads: the second is served from the cache).
    async fn warm(&self, n: usize, token: &str) {
        for _ in 0..2 {
            let (status, body) = self.call(n, "GET", "/auth/me", token, Value::Null).await;
            assert_eq!(status, 200, "warming: {body}");
        }
    }

    /// How long after now server `n` still accepts `token` (polling every 5 ms).
    async fn refused_after(&self, n: usize, token: &str) -> Duration {
        let started = Instant::now();
        loop {
            let (status, _) = self.call(n, "GET", "/auth/me", token, Value::Null).await;
            if status == 401 || started.elapsed() > GIVE_UP {
                return started.elapsed();
            }
            tokio::time::sleep(POLL).await;
        }
    }

    async fn stop(self) {
        for server in self.servers {
            server.stop().await.expect("stop");
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    Logout,
    PasswordChange,
    AdminRevokesSessions,
    Refresh,
    SessionDelete,
    Deactivation,
    UserDelete,
    ReuseDetection,
}

/// Every scenario.
const SCENARIOS: [Scenario; 8] = [
    Scenario::Logout,
    Scenario::PasswordChange,
    Scenario::AdminRevokesSessions,
    Scenario::Refresh,
    Scenario::SessionDelete,
    Scenario::Deactivation,
    Scenario::UserDelete,
    Scenario::ReuseDetection,
];

/// One run: revoke on server `a`, measure until server `b` refuses.
async fn measure(cluster: &Cluster, scenario: Scenario, a: usize, b: usize) -> Duration {
    let (user_id, access, refresh) = cluster.register(a).await;
    match scenario {
        Scenario::Logout => {
            cluster.warm(b, &access).await;
            let (status, body) = cluster
                .call(a, "POST", "/auth/logout", &access, Value::Null)
                .await;
            assert_eq!(status, 204, "logout: {body}");
            cluster.refused_after(b, &access).await
        }
        Scenario::PasswordChange => {
            // A password change keeps the session that made it: the other one goes.
            let email = cluster.email(a, &access).await;
            let other = cluster.login(a, &email, PASSWORD).await;
            cluster.warm(b, &other).await;
            let change = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
            let (status, body) = cluster
                .call(a, "POST", "/auth/password", &access, change)
                .await;
            assert_eq!(status, 204, "password: {body}");
            cluster.refused_after(b, &other).await
        }
        Scenario::AdminRevokesSessions => {
            let admin = cluster.login(a, ADMIN_EMAIL, PASSWORD).await;
            cluster.warm(b, &access).await;
            let path = format!("/admin/users/{user_id}/sessions");
            let (status, body) = cluster.call(a, "DELETE", &path, &admin, Value::Null).await;
            assert!(
                status == 204 || status == 200,
                "admin revoke: {status} {body}"
            );
            cluster.refused_after(b, &access).await
        }
        Scenario::Refresh => {
            cluster.warm(b, &access).await;
            let (status, body) = cluster
                .call(
                    a,
                    "POST",
                    "/auth/refresh",
                    "",
                    json!({"refresh_token": refresh}),
                )
                .await;
            assert_eq!(status, 200, "refresh: {body}");
            cluster.refused_after(b, &access).await
        }
        Scenario::SessionDelete => {
            let email = cluster.email(a, &access).await;
            let other = cluster.login(a, &email, PASSWORD).await;
            let (status, list) = cluster
                .call(a, "GET", "/auth/sessions", &other, Value::Null)
                .await;
            assert_eq!(status, 200, "sessions: {list}");
            let id = list
                .as_array()
                .and_then(|all| all.iter().find(|s| s["current"] == json!(true)))
                .and_then(|s| s["id"].as_str())
                .unwrap_or_else(|| panic!("no current session in {list}"))
                .to_owned();
            cluster.warm(b, &other).await;
            let path = format!("/auth/sessions/{id}");
            let (status, body) = cluster.call(a, "DELETE", &path, &access, Value::Null).await;
            assert_eq!(status, 204, "session delete: {body}");
            cluster.refused_after(b, &other).await
        }
        Scenario::Deactivation | Scenario::UserDelete => {
            let admin = cluster.login(a, ADMIN_EMAIL, PASSWORD).await;
            cluster.warm(b, &access).await;
            let path = format!("/admin/users/{user_id}");
            let (status, body) = if matches!(scenario, Scenario::Deactivation) {
                let patch = json!({"is_active": false});
                cluster.call(a, "PATCH", &path, &admin, patch).await
            } else {
                cluster.call(a, "DELETE", &path, &admin, Value::Null).await
            };
            assert!(
                status == 200 || status == 204,
                "{scenario:?}: {status} {body}"
            );
            cluster.refused_after(b, &access).await
        }
        Scenario::ReuseDetection => {
            let refresh_with = |token: String| async move {
                let (status, body) = cluster
                    .call(
                        a,
                        "POST",
                        "/auth/refresh",
                        "",
                        json!({"refresh_token": token}),
                    )
                    .await;
                (status, body)
            };
            let (status, second) = refresh_with(refresh.clone()).await;
            assert_eq!(status, 200, "refresh: {second}");
            let next = second["refresh_token"]
                .as_str()
                .expect("refresh token")
                .to_owned();
            let (status, third) = refresh_with(next).await;
            assert_eq!(status, 200, "refresh: {third}");
            let current = third["access_token"]
                .as_str()
                .expect("access token")
                .to_owned();
            cluster.warm(b, &current).await;
            // The first token again, its successor used: reuse, the session is revoked.
            let (status, body) = refresh_with(refresh).await;
            assert_eq!(status, 401, "reuse: {body}");
            cluster.refused_after(b, &current).await
        }
    }
}

fn summary(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    (times[times.len() - 1], times[times.len() / 2])
}

#[cfg_attr(not(auth_test_postgres), ignore = "set AUTH_TEST_POSTGRES_URL to run")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_reach_every_instance_within_100_ms() {
    let cluster = Cluster::start("auth_revocation_push").await;
    let mut failures = Vec::new();
    for scenario in SCENARIOS {
        let mut times = Vec::new();
        for run in 0..RUNS {
            // Every ordered pair of adapters, in turn.
            let (a, b) = (run % 3, (run + 1 + run / 3 % 2) % 3);
            times.push(measure(&cluster, scenario, a, b).await);
        }
        let (max, median) = summary(&mut times);
        println!("{scenario:?}: {RUNS} runs, max {max:?}, median {median:?}");
        if max >= WITHIN {
            failures.push(format!(
                "{scenario:?}: the other instance still accepted the token after {max:?} \
                 (median {median:?}); expected under {WITHIN:?}"
            ));
        }
    }
    cluster.stop().await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The listening connections of this database.
fn listeners(conn: &mut PgConnection) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(format!(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = '{LISTENER_APPLICATION_NAME}'"
    ))
    .get_result::<Count>(conn)
    .expect("count")
    .n
}

/// CPU time (user + system, in clock ticks) of this process's revocation listener threads.
fn listener_ticks() -> u64 {
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .expect("tasks")
        .flatten()
    {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != "auth-revocation" {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is the 3rd, utime the 14th, stime the 15th.
        let rest = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields
            .get(11)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
        ticks += fields
            .get(12)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0);
    }
    ticks
}

#[cfg_attr(not(auth_test_postgres), ignore = "set AUTH_TEST_POSTGRES_URL to run")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listening_connection_comes_back() {
    let cluster = Cluster::start("auth_revocation_reconnect").await;
    let mut conn = PgConnection::establish(cluster.database.url()).expect("connect");
    assert_eq!(
        listeners(&mut conn),
        3,
        "one listening connection per instance"
    );

    // Idle cost of the three listeners.
    let before = listener_ticks();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = listener_ticks() - before;
    println!("idle: three listener threads used {idle} clock ticks (1/100 s) in 2 s");

    // A revocation nobody announces (written behind the servers' backs), with the token
    // cached on every instance: only the flush on reconnecting can make them refuse it.
    let (user_id, unannounced, _) = cluster.register(0).await;
    for n in 0..3 {
        cluster.warm(n, &unannounced).await;
    }
    diesel::sql_query("DELETE FROM sessions WHERE user_id = $1")
        .bind::<diesel::sql_types::Text, _>(&user_id)
        .execute(&mut conn)
        .expect("delete the sessions");
    for n in 0..3 {
        let (status, _) = cluster
            .call(n, "GET", "/auth/me", &unannounced, Value::Null)
            .await;
        assert_eq!(
            status, 200,
            "cached on instance {n} before the reconnection"
        );
    }

    let killed = Instant::now();
    diesel::sql_query(format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = '{LISTENER_APPLICATION_NAME}'"
    ))
    .execute(&mut conn)
    .expect("terminate");
    // Killed ones may linger in the view a moment: wait until three live ones are back.
    tokio::time::sleep(Duration::from_millis(50)).await;
    while listeners(&mut conn) < 3 {
        assert!(
            killed.elapsed() < Duration::from_secs(10),
            "the instances did not reconnect within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("reconnected {:?} after the kill", killed.elapsed());
    // The flush follows the reconnection within a poll interval.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for n in 0..3 {
        let (status, _) = cluster
            .call(n, "GET", "/auth/me", &unannounced, Value::Null)
            .await;
        assert_eq!(
            status, 401,
            "instance {n} still served a principal cached before the drop"
        );
    }
    let mut times = Vec::new();
    for run in 0..6 {
        times.push(measure(&cluster, Scenario::Logout, run % 3, (run + 1) % 3).await);
    }
    let (max, median) = summary(&mut times);
    println!(
        "after reconnecting: logout reached the other instance in max {max:?}, median {median:?}"
    );
    cluster.stop().await;
    assert!(
        max < WITHIN,
        "after reconnecting, a logout took {max:?} to reach another instance"
    );
    assert!(idle < 20, "idle listeners used {idle} ticks in 2 s");
}

/// The kids server `base` publishes now.
async fn kids(client: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks: Value = client
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .expect("an answer")
        .json()
        .await
        .expect("a JWKS");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|key| key["kid"].as_str().map(str::to_owned))
        .collect()
}

#[cfg_attr(not(auth_test_postgres), ignore = "set AUTH_TEST_POSTGRES_URL to run")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_reaches_every_instance() {
    let admin = TestDatabase::admin_url_from_env().expect("AUTH_TEST_POSTGRES_URL");
    let database = TestDatabase::create(&admin, "auth_revocation_keys").expect("database");
    let mut args = args(database.url());
    args.jwt_secret = None;
    args.signing_algorithm = auth_server::SigningAlgorithm::Eddsa;
    args.key_encryption.key_encryption_key =
        Some(format!("{:064x}", rand::random::<u128>()).into());
    let mut servers = Vec::new();
    for &adapter in Adapter::all() {
        let app = auth_server::build_app(&args).await.expect("app");
        servers.push(
            auth_server::start(adapter, app, "127.0.0.1:0")
                .await
                .expect("start"),
        );
    }
    let client = reqwest::Client::new();
    let before = kids(&client, &servers[1].base_url()).await;
    assert_eq!(before.len(), 1, "one key at first: {before:?}");
    auth_server::run_keys_command(
        args.database.clone(),
        args.key_encryption.clone(),
        auth_server::KeysCommand::Rotate,
    )
    .await
    .expect("rotate");
    let rotated = Instant::now();
    let mut seen = Vec::new();
    for server in &servers {
        while kids(&client, &server.base_url()).await.len() < 2 && rotated.elapsed() < GIVE_UP {
            tokio::time::sleep(POLL).await;
        }
        seen.push(rotated.elapsed());
    }
    println!("key rotation: every instance published the new key {seen:?} after the command");
    for server in servers {
        server.stop().await.expect("stop");
    }
    assert!(
        seen.iter().all(|t| *t < WITHIN),
        "a rotation reached the instances after {seen:?}"
    );
}
