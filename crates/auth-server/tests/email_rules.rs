//! The email rules that need a server configured away from its defaults, checked on the
//! server's own request path with mail going to a real SMTP exchange (the suite's sink):
//! `--require-verified-email`, token expiry (a 2 s verification TTL), the per-IP mail limit,
//! and the no-enumeration timing of `/password/forgot` and `/magic-link`.

use std::time::{Duration, Instant};

use auth_conformance::mailbox::{Mailbox as _, SmtpSink};
use auth_core::App;
use auth_core::config::Limit;
use auth_core::http::{Body, Request, RequestHeaders};
use auth_server::ServeArgs;
use bytes::Bytes;
use serde_json::{Value, json};

const PREFIX: &str = "/api/v1/auth";
const PASSWORD: &str = "correct horse battery";

/// A server on a fresh SQLite file, mailing to `sink`, with `change` applied to its defaults.
async fn server(
    sink: &SmtpSink,
    dir: &tempfile::TempDir,
    change: impl FnOnce(&mut ServeArgs),
) -> App {
    let mut args = ServeArgs::defaults().expect("defaults");
    args.database.database_url = format!("sqlite://{}", dir.path().join("t.db").display());
    args.profiles = "native".into();
    args.mail.smtp_url = Some(sink.url().into());
    args.mail.verify_email_url = Some("https://app.example/verify".into());
    args.mail.reset_password_url = Some("https://app.example/reset".into());
    args.mail.magic_link_url = Some("https://app.example/magic".into());
    change(&mut args);
    auth_server::build_app(&args).await.expect("app")
}

struct Answer {
    status: u16,
    body: Value,
}

async fn post(app: &App, path: &str, ip: &str, body: Value) -> Answer {
    let response = app
        .handle(Request {
            method: "POST".into(),
            path: format!("{PREFIX}{path}"),
            query: None,
            headers: RequestHeaders {
                content_type: Some("application/json".into()),
                ..RequestHeaders::default()
            },
            client_ip: ip.parse().ok(),
            body: Body::Complete(Bytes::from(body.to_string())),
        })
        .await;
    Answer {
        status: response.status,
        body: serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    }
}

async fn register(app: &App, email: &str) {
    let answer = post(
        app,
        "/register",
        "10.0.0.1",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

async fn token_to(sink: &SmtpSink, to: &str) -> String {
    sink.next_to(to, Duration::from_secs(15))
        .await
        .unwrap_or_else(|| panic!("no mail to {to}"))
        .token()
        .expect("a token in the mail")
}

fn code(answer: &Answer) -> String {
    answer.body.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_require_verified_email_login_waits_for_the_link() {
    let (sink, dir) = (
        SmtpSink::start().expect("sink"),
        tempfile::tempdir().unwrap(),
    );
    let app = server(&sink, &dir, |args| args.mail.require_verified_email = true).await;
    register(&app, "late@example.com").await;
    let login = json!({"email": "late@example.com", "password": PASSWORD});
    let refused = post(&app, "/login", "10.0.0.2", login.clone()).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
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
    assert_eq!(post(&app, "/login", "10.0.0.2", wrong).await.status, 401);

    let token = token_to(&sink, "late@example.com").await;
    let verified = post(&app, "/verify-email", "10.0.0.2", json!({"token": token})).await;
    assert_eq!(verified.status, 204, "{}", verified.body);
    let accepted = post(&app, "/login", "10.0.0.2", login).await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_flag_an_unverified_account_signs_in() {
    let (sink, dir) = (
        SmtpSink::start().expect("sink"),
        tempfile::tempdir().unwrap(),
    );
    let app = server(&sink, &dir, |_| {}).await;
    register(&app, "early@example.com").await;
    let login = json!({"email": "early@example.com", "password": PASSWORD});
    let answer = post(&app, "/login", "10.0.0.2", login).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_verification_link_is_refused() {
    let (sink, dir) = (
        SmtpSink::start().expect("sink"),
        tempfile::tempdir().unwrap(),
    );
    let app = server(&sink, &dir, |args| args.mail.verify_email_ttl = 2).await;
    register(&app, "slow@example.com").await;
    let token = token_to(&sink, "slow@example.com").await;
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let answer = post(&app, "/verify-email", "10.0.0.2", json!({"token": token})).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(code(&answer).contains("INVALID_TOKEN"), "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_link_within_its_lifetime_works() {
    let (sink, dir) = (
        SmtpSink::start().expect("sink"),
        tempfile::tempdir().unwrap(),
    );
    let app = server(&sink, &dir, |args| args.mail.verify_email_ttl = 30).await;
    register(&app, "quick@example.com").await;
    let token = token_to(&sink, "quick@example.com").await;
    let answer = post(&app, "/verify-email", "10.0.0.2", json!({"token": token})).await;
    assert_eq!(answer.status, 204, "{}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_ip_is_limited_across_addresses() {
    let (sink, dir) = (
        SmtpSink::start().expect("sink"),
        tempfile::tempdir().unwrap(),
    );
    let app = server(&sink, &dir, |args| {
        args.mail.rate_mail_ip = Limit::parse("3/3600").expect("limit");
    })
    .await;
    for n in 0..3 {
        let body = json!({"email": format!("someone{n}@example.com")});
        let answer = post(&app, "/password/forgot", "10.0.0.9", body).await;
        assert_eq!(answer.status, 202, "request {n}: {}", answer.body);
    }
    let body = json!({"email": "someone-else@example.com"});
    let refused = post(&app, "/password/forgot", "10.0.0.9", body.clone()).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    // The magic link shares the bucket: it is one client asking for mail.
    let magic = post(&app, "/magic-link", "10.0.0.9", body.clone()).await;
    assert_eq!(magic.status, 429, "{}", magic.body);
    // Another client is not affected.
    let other = post(&app, "/password/forgot", "10.0.0.10", body).await;
    assert_eq!(other.status, 202, "{}", other.body);
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Times `path` for an existing and an unknown address, interleaved; prints the medians.
async fn medians(app: &App, path: &str) -> (Duration, Duration) {
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
            let answer = post(app, path, &ip, json!({"email": email})).await;
            into.push(started.elapsed());
            assert_eq!(answer.status, 202, "{path} {email}: {}", answer.body);
        }
    }
    let (known, unknown) = (median(known), median(unknown));
    println!("{path}: median {known:?} for an account, {unknown:?} for an unknown address");
    (known, unknown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_requests_take_the_same_time_for_unknown_addresses() {
    let (sink, dir) = (
        SmtpSink::start().expect("sink"),
        tempfile::tempdir().unwrap(),
    );
    let app = server(&sink, &dir, |_| {}).await;
    register(&app, "known@example.com").await;
    for path in ["/password/forgot", "/magic-link"] {
        let (known, unknown) = medians(&app, path).await;
        let ratio = unknown.as_secs_f64() / known.as_secs_f64();
        assert!(
            (0.7..1.4).contains(&ratio),
            "{path}: unknown {unknown:?} vs known {known:?} (ratio {ratio:.2})"
        );
        // The same body either way.
        let a = post(
            &app,
            path,
            "10.2.0.1",
            json!({"email": "known@example.com"}),
        )
        .await;
        let b = post(
            &app,
            path,
            "10.2.0.2",
            json!({"email": "unknown@example.com"}),
        )
        .await;
        assert_eq!(a.body, b.body);
    }
}
