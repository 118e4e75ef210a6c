//! Login timing does not reveal whether an account exists or is active: unknown email, wrong
//! password and deactivated-with-wrong-password all pay for one hash with the configured
//! (default) argon2 parameters. Prints the medians; fails only on a gross difference (a
//! missing dummy hash would make unknown emails ~100x faster), so load does not make it flaky.

use std::time::{Duration, Instant};

use auth_core::App;
use auth_core::http::{Body, Request, RequestHeaders};
use auth_core::service::NewAccount;
use auth_server::ServeArgs;
use bytes::Bytes;

const SAMPLES: usize = 15;

fn login(email: &str, password: &str) -> Request {
    Request {
        method: "POST".into(),
        path: "/api/v1/auth/login".into(),
        query: None,
        headers: RequestHeaders {
            content_type: Some("application/json".into()),
            ..RequestHeaders::default()
        },
        client_ip: "127.0.0.1".parse().ok(),
        body: Body::Complete(Bytes::from(
            serde_json::json!({"email": email, "password": password}).to_string(),
        )),
    }
}

async fn time(app: &App, email: &str, password: &str) -> (u16, Duration) {
    let started = Instant::now();
    let response = app.handle(login(email, password)).await;
    (response.status, started.elapsed())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_wrong_and_inactive_logins_take_the_same_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut args = ServeArgs::defaults().expect("defaults");
    args.database.database_url = format!("sqlite://{}", dir.path().join("t.db").display());
    args.profiles = "native".into();
    // Real default cost (m=19456 KiB, t=2, p=1): the point is the hash's time.
    args.rate_login_email_ip = auth_core::config::Limit::parse("off").expect("limit");
    args.rate_login_email = auth_core::config::Limit::parse("off").expect("limit");
    args.rate_login_ip = auth_core::config::Limit::parse("off").expect("limit");
    let app = auth_server::build_app(&args).await.expect("app");
    for (email, active) in [
        ("active@example.com", true),
        ("inactive@example.com", false),
    ] {
        app.auth()
            .operator()
            .create_user(NewAccount {
                email: email.into(),
                password: "right password".into(),
                is_active: active,
                ..NewAccount::default()
            })
            .await
            .expect("account");
    }
    let (mut unknown, mut wrong, mut inactive) = (Vec::new(), Vec::new(), Vec::new());
    // Interleaved, so drifting load hits every kind alike.
    for _ in 0..SAMPLES {
        let (status, took) = time(&app, "nobody@example.com", "wrong password").await;
        assert_eq!(status, 401);
        unknown.push(took);
        let (status, took) = time(&app, "active@example.com", "wrong password").await;
        assert_eq!(status, 401);
        wrong.push(took);
        let (status, took) = time(&app, "inactive@example.com", "wrong password").await;
        assert_eq!(status, 401);
        inactive.push(took);
    }
    let (unknown, wrong, inactive) = (median(unknown), median(wrong), median(inactive));
    println!(
        "login medians over {SAMPLES} samples: unknown email {unknown:?}, wrong password {wrong:?}, \
         inactive with wrong password {inactive:?}"
    );
    for (name, value) in [("unknown email", unknown), ("inactive", inactive)] {
        let ratio = value.as_secs_f64() / wrong.as_secs_f64();
        assert!(
            (0.5..2.0).contains(&ratio),
            "{name} median {value:?} vs wrong password {wrong:?} (ratio {ratio:.2})"
        );
    }
}
