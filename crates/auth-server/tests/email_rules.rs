//! The email rules that need a server configured away from its defaults, over HTTP on every
//! adapter and database (Postgres with `AUTH_TEST_POSTGRES_URL`), with mail going to a real
//! SMTP exchange (the suite's sink): `--require-verified-email`, token expiry (a 2 s
//! verification TTL), the per-IP mail limit, and the no-enumeration timing of
//! `/password/forgot` and `/magic-link` (SQLite only, as `timing.rs`: the padding is the
//! core's, and one database suffices to see it).
//!
//! Each request names its client by `X-Forwarded-For`, the servers trusting the loopback as a
//! proxy, so that per-IP limits can be told apart.

use std::time::{Duration, Instant};

use auth_conformance::mailbox::{Mailbox as _, SmtpSink};
use auth_core::config::Limit;
use auth_diesel::TestDatabase;
use auth_server::{Adapter, ServeArgs, ServerHandle};
use serde_json::{Value, json};

const PREFIX: &str = "/api/v1/auth";
const PASSWORD: &str = "correct horse battery";

/// One server under test, with what it needs kept alive.
struct Server {
    label: String,
    handle: ServerHandle,
    sink: SmtpSink,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

/// Every adapter on SQLite, and on Postgres when it is configured (`postgres: false` for
/// SQLite only), each with `change` applied to its defaults and a sink of its own.
async fn servers(postgres: bool, change: impl Fn(&mut ServeArgs)) -> Vec<Server> {
    let admin = TestDatabase::admin_url_from_env().filter(|_| postgres);
    let mut servers = Vec::new();
    for adapter in Adapter::all() {
        for on_postgres in [false, true] {
            if on_postgres && admin.is_none() {
                continue;
            }
            let dir = tempfile::tempdir().expect("temp dir");
            let sink = SmtpSink::start().expect("sink");
            let mut args = ServeArgs::defaults().expect("defaults");
            let database = match (&admin, on_postgres) {
                (Some(admin), true) => {
                    let database =
                        TestDatabase::create(admin, "auth_email_rules").expect("database");
                    args.database.database_url = database.url().to_owned();
                    Some(database)
                }
                _ => {
                    args.database.database_url =
                        format!("sqlite://{}", dir.path().join("t.db").display());
                    None
                }
            };
            args.profiles = "native".into();
            args.jwt_secret = Some("s".repeat(64).into());
            args.argon2_memory_kib = 256;
            args.argon2_iterations = 1;
            args.argon2_parallelism = 1;
            args.trusted_proxies =
                vec![auth_core::http::parse_trusted_proxy("127.0.0.1").expect("proxy")];
            args.mail.smtp_url = Some(sink.url().into());
            args.mail.verify_email_url = Some("https://app.example/verify".into());
            args.mail.reset_password_url = Some("https://app.example/reset".into());
            args.mail.magic_link_url = Some("https://app.example/magic".into());
            change(&mut args);
            let app = auth_server::build_app(&args).await.expect("app");
            let handle = auth_server::start(*adapter, app, "127.0.0.1:0")
                .await
                .expect("server");
            let backend = if on_postgres { "postgres" } else { "sqlite" };
            servers.push(Server {
                label: format!("{}/{backend}", adapter.name()),
                handle,
                sink,
                client: reqwest::Client::new(),
                _dir: dir,
                _database: database,
            });
        }
    }
    servers
}

struct Answer {
    status: u16,
    retry_after: bool,
    body: Value,
}

impl Server {
    async fn post(&self, path: &str, ip: &str, body: Value) -> Answer {
        let response = self
            .client
            .post(format!("{}{PREFIX}{path}", self.handle.base_url()))
            .header("x-forwarded-for", ip)
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|err| panic!("{}: {path}: {err}", self.label));
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body = response.json().await.unwrap_or(Value::Null);
        Answer {
            status,
            retry_after,
            body,
        }
    }

    async fn register(&self, email: &str) {
        let body = json!({"email": email, "password": PASSWORD});
        let answer = self.post("/register", "10.0.0.1", body).await;
        assert_eq!(answer.status, 201, "{}: {}", self.label, answer.body);
    }

    async fn token_to(&self, to: &str) -> String {
        self.sink
            .next_to(to, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("{}: no mail to {to}", self.label))
            .token()
            .expect("a token in the mail")
    }
}

fn code(answer: &Answer) -> String {
    answer.body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_require_verified_email_login_waits_for_the_link() {
    for server in servers(true, |args| args.mail.require_verified_email = true).await {
        require_verified(&server).await;
    }
}

async fn require_verified(server: &Server) {
    server.register("late@example.com").await;
    let login = json!({"email": "late@example.com", "password": PASSWORD});
    let refused = server.post("/login", "10.0.0.2", login.clone()).await;
    assert_eq!(refused.status, 403, "{}: {}", server.label, refused.body);
    assert!(
        code(&refused).contains("EMAIL_NOT_VERIFIED"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.get("access_token").is_none(),
        "no session before verification: {}",
        refused.body
    );
    // A wrong password is still 401, so the 403 tells nothing to someone without it.
    let wrong = json!({"email": "late@example.com", "password": "not the password"});
    assert_eq!(server.post("/login", "10.0.0.2", wrong).await.status, 401);

    let token = server.token_to("late@example.com").await;
    let verified = server
        .post("/verify-email", "10.0.0.2", json!({"token": token}))
        .await;
    assert_eq!(verified.status, 204, "{}: {}", server.label, verified.body);
    let accepted = server.post("/login", "10.0.0.2", login).await;
    assert_eq!(accepted.status, 200, "{}: {}", server.label, accepted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_an_unverified_account_signs_in() {
    for server in servers(true, |_| {}).await {
        unverified_signs_in(&server).await;
    }
}

async fn unverified_signs_in(server: &Server) {
    server.register("early@example.com").await;
    let login = json!({"email": "early@example.com", "password": PASSWORD});
    let answer = server.post("/login", "10.0.0.2", login).await;
    assert_eq!(answer.status, 200, "{}: {}", server.label, answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_verification_link_is_refused() {
    let servers = servers(true, |args| args.mail.verify_email_ttl = 2).await;
    let mut tokens = Vec::new();
    for server in &servers {
        server.register("slow@example.com").await;
        tokens.push(server.token_to("slow@example.com").await);
    }
    // One wait for all: each token is at least this old when used.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    for (server, token) in servers.iter().zip(tokens) {
        expired_is_refused(server, token).await;
    }
}

async fn expired_is_refused(server: &Server, token: String) {
    let answer = server
        .post("/verify-email", "10.0.0.2", json!({"token": token}))
        .await;
    assert_eq!(answer.status, 400, "{}: {}", server.label, answer.body);
    assert!(code(&answer).contains("INVALID_TOKEN"), "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_link_within_its_lifetime_works() {
    for server in servers(true, |args| args.mail.verify_email_ttl = 30).await {
        fresh_works(&server).await;
    }
}

async fn fresh_works(server: &Server) {
    server.register("quick@example.com").await;
    let token = server.token_to("quick@example.com").await;
    let answer = server
        .post("/verify-email", "10.0.0.2", json!({"token": token}))
        .await;
    assert_eq!(answer.status, 204, "{}: {}", server.label, answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_ip_is_limited_across_addresses() {
    let limited = |args: &mut ServeArgs| {
        args.mail.rate_mail_ip = Limit::parse("3/3600").expect("limit");
    };
    for server in servers(true, limited).await {
        ip_limited(&server).await;
    }
}

async fn ip_limited(server: &Server) {
    for n in 0..3 {
        let body = json!({"email": format!("someone{n}@example.com")});
        let answer = server.post("/password/forgot", "10.0.0.9", body).await;
        assert_eq!(answer.status, 202, "request {n}: {}", answer.body);
    }
    let body = json!({"email": "someone-else@example.com"});
    let refused = server
        .post("/password/forgot", "10.0.0.9", body.clone())
        .await;
    assert_eq!(refused.status, 429, "{}: {}", server.label, refused.body);
    assert!(
        refused.retry_after,
        "{}: a 429 says when to retry",
        server.label
    );
    // The magic link shares the bucket: it is one client asking for mail.
    let magic = server.post("/magic-link", "10.0.0.9", body.clone()).await;
    assert_eq!(magic.status, 429, "{}: {}", server.label, magic.body);
    // Another client is not affected.
    let other = server.post("/password/forgot", "10.0.0.10", body).await;
    assert_eq!(other.status, 202, "{}: {}", server.label, other.body);
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Times `path` for an existing and an unknown address, interleaved; prints the medians.
async fn medians(server: &Server, path: &str) -> (Duration, Duration) {
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for n in 0..9 {
        // A fresh IP per pair keeps the per-IP limit out of the way; the per-address limit
        // answers 202 as well, so it does not change what is measured.
        let ip = format!("10.1.0.{n}");
        for (email, into) in [
            ("known@example.com", &mut known),
            ("unknown@example.com", &mut unknown),
        ] {
            let started = Instant::now();
            let answer = server.post(path, &ip, json!({"email": email})).await;
            into.push(started.elapsed());
            assert_eq!(answer.status, 202, "{path} {email}: {}", answer.body);
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    println!(
        "{}: {path}: median {known:?} for an account, {unknown:?} for an unknown address",
        server.label
    );
    (known, unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_requests_take_the_same_time_for_unknown_addresses() {
    for server in servers(false, |_| {}).await {
        same_time(&server).await;
    }
}

async fn same_time(server: &Server) {
    server.register("known@example.com").await;
    for path in ["/password/forgot", "/magic-link"] {
        let (known, unknown) = medians(server, path).await;
        let ratio = unknown.as_secs_f64() / known.as_secs_f64();
        assert!(
            (0.7..1.4).contains(&ratio) && known >= auth_core::service::ANSWER_FLOOR,
            "{}: {path}: unknown {unknown:?} vs known {known:?} (ratio {ratio:.2})",
            server.label
        );
        // The same body either way.
        let a = server
            .post(path, "10.2.0.1", json!({"email": "known@example.com"}))
            .await;
        let b = server
            .post(path, "10.2.0.2", json!({"email": "unknown@example.com"}))
            .await;
        assert_eq!(a.body, b.body);
    }
}
