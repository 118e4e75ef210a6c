//! The audit webhook on every adapter and database (PostgreSQL with
//! `AUTH_TEST_POSTGRES_URL`): a failed login reaches a real HTTP receiver on loopback as a
//! JSON event whose `X-Audit-Signature` is the HMAC-SHA256 of the body under the configured
//! secret; the receiver's first answer, a 503, is retried. Also the settings' refusals.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_diesel::TestDatabase;
use auth_server::{Adapter, ServeArgs};
use hmac::Mac as _;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const SECRET: &str = "a webhook secret of some length";

/// One request the receiver got: its signature header and body.
type Delivery = (String, Vec<u8>);

/// An HTTP/1.1 receiver on loopback: answers 503 to its first request, 204 to the rest, and
/// keeps what it got.
async fn receiver() -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/audit", listener.local_addr().expect("addr"));
    let got: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let kept = got.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            // Head and body (small): read until the announced length is in.
            let (head_end, length) = loop {
                let n = socket.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break (None, 0);
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if raw.len() >= end + 4 + length {
                        break (Some(end), length);
                    }
                }
            };
            let Some(end) = head_end else { continue };
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let signature = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("x-audit-signature")
                        .then(|| value.trim().to_owned())
                })
                .unwrap_or_default();
            let body = raw[end + 4..end + 4 + length].to_vec();
            let first = {
                let mut got = kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                got.push((signature, body));
                got.len() == 1
            };
            let status = if first {
                "503 Service Unavailable"
            } else {
                "204 No Content"
            };
            let answer =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    (url, got)
}

fn args(url: &str, database_url: String, dir: &tempfile::TempDir) -> ServeArgs {
    let mut args = ServeArgs::defaults().expect("defaults");
    args.database.database_url = database_url;
    args.mail.mail_outbox = Some(dir.path().join("outbox"));
    args.profiles = "native".into();
    args.jwt_secret = Some("s".repeat(64).into());
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.audit_webhook_url = Some(url.to_owned());
    args.audit_webhook_secret = Some(SECRET.into());
    args
}

fn signature_of(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_events_reach_the_webhook_signed_and_retried() {
    let admin = TestDatabase::admin_url_from_env();
    for adapter in Adapter::all() {
        for on_postgres in [false, true] {
            if on_postgres && admin.is_none() {
                continue;
            }
            let label = format!(
                "{}/{}",
                adapter.name(),
                if on_postgres { "postgres" } else { "sqlite" }
            );
            let dir = tempfile::tempdir().expect("temp dir");
            let database = on_postgres.then(|| {
                TestDatabase::create(admin.as_deref().unwrap_or_default(), "auth_webhook")
                    .expect("database")
            });
            let url = match &database {
                Some(database) => database.url().to_owned(),
                None => format!("sqlite://{}", dir.path().join("t.db").display()),
            };
            let (hook, got) = receiver().await;
            let app = auth_server::build_app(&args(&hook, url, &dir))
                .await
                .expect("app");
            let server = auth_server::start(*adapter, app, "127.0.0.1:0")
                .await
                .expect("server");
            let login = reqwest::Client::new()
                .post(format!("{}/api/v1/auth/login", server.base_url()))
                .header("user-agent", "webhook-test")
                .json(&json!({"email": "nobody@example.com", "password": "not a password"}))
                .send()
                .await
                .expect("login");
            assert_eq!(login.status(), 401, "{label}");
            // The 503 and, a second later, the retry.
            let mut deliveries = Vec::new();
            for _ in 0..100 {
                deliveries = got
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                if deliveries.len() >= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert_eq!(deliveries.len(), 2, "{label}: {deliveries:?}");
            assert_eq!(
                deliveries[0], deliveries[1],
                "{label}: the same event retried"
            );
            let (signature, body) = &deliveries[0];
            assert_eq!(signature, &signature_of(body), "{label}");
            let event: Value = serde_json::from_slice(body).expect("JSON");
            assert_eq!(event["kind"], "login.failed", "{label}: {event}");
            assert_eq!(event["user_agent"], "webhook-test", "{label}");
            assert_eq!(event["detail"]["reason"], "invalid_credentials", "{label}");
            assert!(!String::from_utf8_lossy(body).contains("not a password"));
            server.stop().await.expect("stop");
        }
    }
}

#[tokio::test]
async fn a_webhook_needs_a_long_enough_secret_and_an_http_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut short = args("http://127.0.0.1:9/x", db.clone(), &dir);
    short.audit_webhook_secret = Some("short".into());
    let err = auth_server::build_app(&short).await.expect_err("refused");
    assert!(format!("{err:#}").contains("16 characters"), "{err:#}");
    let ftp = args("ftp://127.0.0.1/x", db, &dir);
    let err = auth_server::build_app(&ftp).await.expect_err("refused");
    assert!(
        format!("{err:#}").contains("http:// or https://"),
        "{err:#}"
    );
}
