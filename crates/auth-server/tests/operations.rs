//! Operations (issue 14, part 4) on every adapter and database (PostgreSQL when
//! `AUTH_TEST_POSTGRES_URL` is set): the metrics listener counts what the API answered, by
//! route template and status, logins by outcome, rate-limit refusals, principal-cache
//! lookups, hashing waits and the pool; `X-Request-Id` is echoed or made; and, through the
//! binary with `AUTH_LOG_FORMAT=json`, every log line of a request names its id.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

use auth_core::config::Limit;
use auth_diesel::TestDatabase;
use auth_server::{Adapter, ServeArgs, ServerHandle};
use serde_json::{Value, json};

const PREFIX: &str = "/api/v1/auth";
const PASSWORD: &str = "correct horse battery";

/// A server with its metrics listener.
struct Server {
    label: String,
    handle: ServerHandle,
    metrics: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
    _database: Option<TestDatabase>,
}

async fn servers() -> Vec<Server> {
    let admin = TestDatabase::admin_url_from_env();
    let mut servers = Vec::new();
    for adapter in Adapter::all() {
        for on_postgres in [false, true] {
            if on_postgres && admin.is_none() {
                continue;
            }
            let dir = tempfile::tempdir().expect("temp dir");
            let mut args = ServeArgs::defaults().expect("defaults");
            let database = match (&admin, on_postgres) {
                (Some(admin), true) => {
                    let database =
                        TestDatabase::create(admin, "auth_operations").expect("database");
                    args.database.database_url = database.url().to_owned();
                    Some(database)
                }
                _ => {
                    args.database.database_url =
                        format!("sqlite://{}", dir.path().join("t.db").display());
                    None
                }
            };
            args.database.db_pool_size = 3;
            args.mail.mail_outbox = Some(dir.path().join("outbox"));
            args.profiles = "native".into();
            args.jwt_secret = Some("s".repeat(64).into());
            args.argon2_memory_kib = 256;
            args.argon2_iterations = 1;
            args.rate_login_email_ip = Limit::per(2, 900);
            let app = auth_server::build_app(&args).await.expect("app");
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("metrics port");
            let metrics = format!("http://{}/metrics", listener.local_addr().expect("addr"));
            tokio::spawn(auth_server::serve_metrics(
                listener,
                app.clone(),
                std::future::pending(),
            ));
            let handle = auth_server::start(*adapter, app, "127.0.0.1:0")
                .await
                .expect("server");
            let backend = if on_postgres { "postgres" } else { "sqlite" };
            servers.push(Server {
                label: format!("{}/{backend}", adapter.name()),
                handle,
                metrics,
                client: reqwest::Client::new(),
                _dir: dir,
                _database: database,
            });
        }
    }
    servers
}

impl Server {
    async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Response {
        request
            .send()
            .await
            .unwrap_or_else(|err| panic!("{}: {err}", self.label))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let url = format!("{}{PREFIX}{path}", self.handle.base_url());
        let response = self.send(self.client.post(url).json(&body)).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn scrape(&self) -> String {
        let response = self.send(self.client.get(&self.metrics)).await;
        assert_eq!(response.status(), 200, "{}", self.label);
        let content_type = response.headers()["content-type"].to_str().unwrap_or("");
        assert!(
            content_type.starts_with("application/openmetrics-text"),
            "{content_type}"
        );
        response.text().await.expect("metrics text")
    }
}

/// The value of the sample `series` (its name and labels exactly as rendered).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_api_answered() {
    for server in servers().await {
        let label = &server.label;
        let email = format!("m-{}@example.com", uuid::Uuid::new_v4().simple());
        let (status, _) = server
            .post("/register", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(status, 201, "{label}");
        let wrong = json!({"email": email, "password": "not the password"});
        for _ in 0..2 {
            assert_eq!(server.post("/login", wrong.clone()).await.0, 401, "{label}");
        }
        // The third failure within the window is over the limit of 2.
        assert_eq!(server.post("/login", wrong).await.0, 429, "{label}");
        let other = format!("n-{}@example.com", uuid::Uuid::new_v4().simple());
        let (_, registered) = server
            .post("/register", json!({"email": other, "password": PASSWORD}))
            .await;
        let (status, login) = server
            .post("/login", json!({"email": other, "password": PASSWORD}))
            .await;
        assert_eq!(status, 200, "{label}: {login}");
        let token = registered["token"]["access_token"].as_str().expect("token");
        for _ in 0..2 {
            let me = format!("{}{PREFIX}/me", server.handle.base_url());
            let response = server.send(server.client.get(me).bearer_auth(token)).await;
            assert_eq!(response.status(), 200, "{label}");
        }
        let nowhere = format!("{}{PREFIX}/no/such/path", server.handle.base_url());
        assert_eq!(server.send(server.client.get(nowhere)).await.status(), 404);

        let text = server.scrape().await;
        let count = |series: &str| sample(&text, series).unwrap_or(0.0);
        let request = |method: &str, route: &str, status: u16| {
            format!(
                "auth_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
            )
        };
        let login = "/api/v1/auth/login";
        assert_eq!(count(&request("POST", login, 401)), 2.0, "{label}:\n{text}");
        assert_eq!(count(&request("POST", login, 429)), 1.0, "{label}");
        assert_eq!(count(&request("POST", login, 200)), 1.0, "{label}");
        assert_eq!(
            count(&request("POST", "/api/v1/auth/register", 201)),
            2.0,
            "{label}"
        );
        assert_eq!(
            count(&request("GET", "/api/v1/auth/me", 200)),
            2.0,
            "{label}"
        );
        assert_eq!(count(&request("GET", "unmatched", 404)), 1.0, "{label}");
        assert_eq!(
            count(&format!(
                "auth_http_request_duration_seconds_count{{route=\"{login}\"}}"
            )),
            4.0,
            "{label}"
        );
        assert_eq!(
            count("auth_logins_total{outcome=\"success\"}"),
            1.0,
            "{label}"
        );
        assert_eq!(
            count("auth_logins_total{outcome=\"invalid_credentials\"}"),
            2.0,
            "{label}"
        );
        assert_eq!(
            count("auth_logins_total{outcome=\"rate_limited\"}"),
            1.0,
            "{label}"
        );
        assert_eq!(
            count("auth_rate_limit_refusals_total{bucket=\"login\"}"),
            1.0,
            "{label}"
        );
        // The second `/me` found the principal the first one cached.
        assert!(
            count("auth_principal_cache_lookups_total{result=\"hit\"}") >= 1.0,
            "{label}"
        );
        // Two registrations and two failed and one good login hashed; the limited one
        // never reached the hasher.
        assert!(count("auth_hashing_wait_seconds_count") >= 5.0, "{label}");
        assert_eq!(count("auth_hashing_queue_depth"), 0.0, "{label}");
        assert_eq!(count("auth_db_pool_max_connections"), 3.0, "{label}");
        let open = count("auth_db_pool_connections{state=\"idle\"}")
            + count("auth_db_pool_connections{state=\"in_use\"}");
        assert!((1.0..=3.0).contains(&open), "{label}: {open} connections");
        assert!(text.ends_with("# EOF\n"), "{label}");

        // Other paths of the metrics listener are not found; the API has no /metrics.
        let other = server.metrics.replace("/metrics", "/other");
        assert_eq!(server.send(server.client.get(other)).await.status(), 404);
        let api = format!("{}/metrics", server.handle.base_url());
        assert_eq!(server.send(server.client.get(api)).await.status(), 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_made() {
    for server in servers().await {
        let label = &server.label;
        let url = format!("{}/healthz", server.handle.base_url());
        let id_of = |response: &reqwest::Response| {
            response.headers()["x-request-id"]
                .to_str()
                .expect("ascii")
                .to_owned()
        };
        let sent = server
            .send(server.client.get(&url).header("x-request-id", "trace-42.a"))
            .await;
        assert_eq!(id_of(&sent), "trace-42.a", "{label}");
        let bad = server
            .send(server.client.get(&url).header("x-request-id", "has space"))
            .await;
        let made = id_of(&bad);
        assert!(
            made.len() == 32 && made.bytes().all(|b| b.is_ascii_hexdigit()),
            "{label}: {made}"
        );
        let (first, second) = (
            id_of(&server.send(server.client.get(&url)).await),
            id_of(&server.send(server.client.get(&url)).await),
        );
        assert_ne!(first, second, "{label}");
    }
}

#[test]
fn every_json_log_line_of_a_request_names_its_id() {
    for adapter in ["axum", "actix", "warp"] {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_auth-server"))
            .args(["serve", "--bind", "127.0.0.1:0", "--adapter", adapter])
            .current_dir(dir.path())
            .env_clear()
            .env("AUTH_LOG_FORMAT", "json")
            .env("AUTH_ARGON2_MEMORY_KIB", "256")
            .env("AUTH_ARGON2_ITERATIONS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        // Lines are read on a thread of their own, so that waiting for one has a deadline.
        let (tx, rx) = std::sync::mpsc::channel::<Value>();
        let stderr = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let event = serde_json::from_str(&line)
                    .unwrap_or_else(|err| json!({"not_json": line, "error": err.to_string()}));
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        let wait_for = |message: &str| -> Value {
            loop {
                let event = rx
                    .recv_timeout(std::time::Duration::from_secs(20))
                    .unwrap_or_else(|_| panic!("{adapter}: no `{message}` line"));
                assert!(event.get("not_json").is_none(), "{adapter}: {event}");
                if event["message"] == message {
                    return event;
                }
            }
        };
        let addr = wait_for("listening")["addr"]
            .as_str()
            .expect("the address")
            .to_owned();
        let client = reqwest::blocking::Client::new();
        let register = client
            .post(format!("http://{addr}{PREFIX}/register"))
            .header("x-request-id", "reg-1")
            .json(&json!({"email": "a@example.com", "password": PASSWORD}))
            .send()
            .expect("register");
        assert_eq!(register.status(), 201);
        let request = wait_for("request");
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(request["span"]["request_id"], "reg-1", "{adapter}");
        assert_eq!(request["path"], format!("{PREFIX}/register"), "{adapter}");
    }
}
