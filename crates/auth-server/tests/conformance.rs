//! The conformance suite against every adapter, in-process, each on fresh databases: SQLite
//! always, Postgres when `AUTH_TEST_POSTGRES_URL` names an admin connection (each run
//! creates its own databases there and drops them afterwards); without it the Postgres
//! tests are ignored, and cargo's summary says so (the build script sets
//! `auth_test_postgres`).
//!
//! Every adapter is checked with the configurations of [`MATRIX`], one server and one
//! database each, concurrently; `cargo xtask conformance` checks the same ones against the
//! server binary. Every server applies the contract's rate limits and trusts 127.0.0.1 as
//! a proxy, so each case of the suite comes from a client IP of its own, and sends its mail
//! to an SMTP sink of its own, which the suite reads as its mailbox. A skipped case
//! fails the test unless the matrix expects it (`auth_conformance::matrix::EXPECTED_SKIPS`).

use std::sync::Arc;

use auth_conformance::mailbox::{Mailbox, SmtpSink};
use auth_conformance::matrix::{
    ANOTHER_PROXY, CORS_ORIGIN, MATRIX, MATRIX_LIMITS, ServerConfig, Signing, TRUSTED_PROXIES,
    unexpected_skips,
};
use auth_conformance::{
    Credentials, Failure, Hooks, Limit, Mount, Report, SUITE_REUSE_INTERVAL, Target, render_skips,
    render_table, run_suite,
};
use auth_core::App;
use auth_core::service::NewAccount;
use auth_diesel::TestDatabase;
use auth_server::{Adapter, ServeArgs, SigningAlgorithm};
use futures_util::future::{BoxFuture, join_all};

/// User management through the app's own core, standing in for `auth-server user ...`.
struct AppHooks(App);

impl Hooks for AppHooks {
    fn set_active(&self, email: &str, active: bool) -> BoxFuture<'static, Result<(), String>> {
        let app = self.0.clone();
        let email = email.to_owned();
        Box::pin(async move {
            app.auth()
                .operator()
                .set_active_by_email(&email, active)
                .await
                .map(drop)
                .map_err(|err| err.to_string())
        })
    }

    fn create_user(
        &self,
        email: &str,
        password: &str,
        full_name: Option<&str>,
        roles: &[String],
    ) -> BoxFuture<'static, Result<(), String>> {
        let app = self.0.clone();
        let account = NewAccount {
            email: email.to_owned(),
            password: password.to_owned(),
            full_name: full_name.map(str::to_owned),
            roles: roles.to_vec(),
            organization_id: None,
            is_active: true,
            ..NewAccount::default()
        };
        Box::pin(async move {
            app.auth()
                .operator()
                .create_user(account)
                .await
                .map(drop)
                .map_err(|err| err.to_string())
        })
    }

    fn import_user(
        &self,
        email: &str,
        password_hash: &str,
    ) -> BoxFuture<'static, Result<(), String>> {
        let app = self.0.clone();
        let account = NewAccount {
            email: email.to_owned(),
            password_hash: Some(password_hash.to_owned()),
            is_active: true,
            ..NewAccount::default()
        };
        Box::pin(async move {
            app.auth()
                .operator()
                .create_user(account)
                .await
                .map(drop)
                .map_err(|err| err.to_string())
        })
    }
}

/// `n` random bytes as lower-case hex.
fn random_hex(n: usize) -> String {
    (0..n)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The server's form of one of the suite's limits.
fn server_limit(limit: Limit) -> auth_core::config::Limit {
    auth_core::config::Limit::per(u64::from(limit.max), limit.window.as_secs())
}

/// The server's settings for `config` on `database_url`, sending mail to `smtp_url`, and
/// the HS256 secret when it signs with one.
fn settings(
    database_url: &str,
    smtp_url: &str,
    config: ServerConfig<'_>,
) -> (ServeArgs, Option<String>) {
    let mut args = ServeArgs::defaults().expect("default settings");
    args.database.database_url = database_url.to_owned();
    args.mail.smtp_url = Some(smtp_url.into());
    args.mail.mail_outbox = None;
    args.database.db_pool_size = 4;
    // Cheap hashing keeps the suite fast; the cost parameters are covered by unit tests.
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.argon2_parallelism = 1;
    args.refresh_reuse_interval = SUITE_REUSE_INTERVAL.as_secs();
    args.profiles = config.profiles.to_owned();
    args.access_ttl = String::new();
    let secret = match config.signing {
        Signing::Hs256 => {
            args.signing_algorithm = SigningAlgorithm::Hs256;
            Some(random_hex(32))
        }
        Signing::Eddsa => {
            args.signing_algorithm = SigningAlgorithm::Eddsa;
            args.key_encryption.key_encryption_key = Some(random_hex(32).into());
            None
        }
    };
    args.jwt_secret = secret.clone().map(Into::into);
    // The suite's requests come from 127.0.0.1 with a client IP per case in
    // `X-Forwarded-For`, so the contract's limits apply per case.
    args.trusted_proxies = TRUSTED_PROXIES
        .split(',')
        .map(|proxy| auth_core::http::parse_trusted_proxy(proxy).expect("a valid range"))
        .collect();
    args.cors_allowed_origins = vec![CORS_ORIGIN.to_owned()];
    args.mfa.webauthn_rp_id = Some(auth_conformance::matrix::WEBAUTHN_RP_ID.to_owned());
    args.mfa.webauthn_rp_origin = vec![auth_conformance::matrix::WEBAUTHN_ORIGIN.to_owned()];
    args.rate_login_email_ip = server_limit(MATRIX_LIMITS.login_email_ip);
    args.rate_login_email = server_limit(MATRIX_LIMITS.login_email);
    args.rate_login_ip = server_limit(MATRIX_LIMITS.login_ip);
    args.rate_register_ip = server_limit(MATRIX_LIMITS.register_ip);
    args.rate_refresh_ip = server_limit(MATRIX_LIMITS.refresh_ip);
    args.rate_passkey_ip = server_limit(MATRIX_LIMITS.passkey_ip);
    (args, secret)
}

/// A fresh admin user's credentials.
fn admin_credentials() -> Credentials {
    Credentials {
        email: format!("admin-{:016x}@example.com", rand::random::<u64>()),
        password: format!("pw-{:032x}", rand::random::<u128>()),
    }
}

/// Runs the suite against `adapter` serving `config` on `database_url`; a server that
/// cannot be set up fails every case (so the other configurations still report).
async fn run(adapter: Adapter, database_url: String, config: ServerConfig<'static>) -> Report {
    let (label, profiles) = (config.label(), config.profiles);
    let unavailable = |expected: String, err: String| {
        Report::unavailable(label.clone(), None, Failure::new(expected, err))
    };
    let mounts = match Mount::parse_list(profiles) {
        Ok(mounts) => mounts,
        Err(err) => {
            return unavailable(format!("a profile list, not {profiles:?}"), err.to_string());
        }
    };
    // One sink per server, so no case reads another server's mail.
    let sink = match SmtpSink::start() {
        Ok(sink) => Arc::new(sink),
        Err(err) => return unavailable("an SMTP sink".to_owned(), err.to_string()),
    };
    let (args, jwt_secret) = settings(&database_url, &sink.url(), config);
    let app = match auth_server::build_app(&args).await {
        Ok(app) => app,
        Err(err) => {
            return unavailable(format!("the app builds for {label}"), format!("{err:#}"));
        }
    };
    let server = match auth_server::start(adapter, app.clone(), "127.0.0.1:0").await {
        Ok(server) => server,
        Err(err) => return unavailable("the server starts".to_owned(), format!("{err:#}")),
    };
    let hooks = Arc::new(AppHooks(app));
    let admin = admin_credentials();
    let created = hooks
        .create_user(&admin.email, &admin.password, None, &["admin".to_owned()])
        .await;
    let report = match created {
        Ok(()) => {
            let target = Target {
                base_url: server.base_url(),
                label: label.clone(),
                hooks: Some(hooks),
                reuse_interval: Some(SUITE_REUSE_INTERVAL),
                profiles: mounts,
                admin: Some(admin),
                forwarded_for: true,
                another_proxy: Some(ANOTHER_PROXY),
                limits: Some(MATRIX_LIMITS),
                jwt_secret: jwt_secret.map(String::into_bytes),
                cors_origin: Some(CORS_ORIGIN.to_owned()),
                mailbox: Some(sink as Arc<dyn Mailbox>),
            };
            run_suite(&target, None).await
        }
        Err(err) => unavailable("the admin user is created".to_owned(), err),
    };
    server.stop().await.expect("server stops cleanly");
    report
}

/// Prints one table (a column per configuration) and the skip reasons; fails on any failed
/// case and on any skip the matrix does not expect.
fn assert_green(title: &str, reports: &[Report]) {
    let table = render_table(reports);
    println!("== {title}\n{table}\n{}", render_skips(reports));
    let failed: usize = reports.iter().map(Report::failed).sum();
    assert_eq!(failed, 0, "conformance failures on {title}:\n{table}");
    assert!(
        reports.iter().all(|r| r.passed() > 0),
        "a configuration ran no case"
    );
    let unexpected: Vec<String> = MATRIX
        .iter()
        .zip(reports)
        .flat_map(|(config, report)| unexpected_skips(config, report))
        .map(|skip| skip.to_string())
        .collect();
    assert!(
        unexpected.is_empty(),
        "skips on {title} that auth_conformance::matrix::EXPECTED_SKIPS does not list:\n{}",
        unexpected.join("\n")
    );
}

async fn on_sqlite(adapter: Adapter) {
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = MATRIX.iter().enumerate().map(|(i, config)| {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("auth-{i}.db")).display()
        );
        run(adapter, url, *config)
    });
    let reports = join_all(runs).await;
    assert_green(&format!("{}/sqlite", adapter.name()), &reports);
}

/// Runs the matrix for `adapter` on fresh Postgres databases. Only compiled as a running test
/// when `AUTH_TEST_POSTGRES_URL` was set, so reaching here without it (the binary run by
/// hand, `--include-ignored`) fails loudly rather than passing.
async fn on_postgres(adapter: Adapter) {
    let admin_url = TestDatabase::admin_url_from_env()
        .expect("AUTH_TEST_POSTGRES_URL names the admin URL the Postgres tests use");
    let databases: Vec<TestDatabase> = MATRIX
        .iter()
        .map(|_| {
            TestDatabase::create(&admin_url, "auth_test").unwrap_or_else(|err| {
                panic!("cannot create a test database through {admin_url}: {err}")
            })
        })
        .collect();
    let runs = databases
        .iter()
        .zip(MATRIX)
        .map(|(database, config)| run(adapter, database.url().to_owned(), *config));
    let reports = join_all(runs).await;
    // The servers are stopped; dropping the guards removes the databases even if the
    // assertion fails.
    assert_green(&format!("{}/postgres", adapter.name()), &reports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn axum_on_sqlite() {
    on_sqlite(Adapter::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_on_sqlite() {
    on_sqlite(Adapter::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warp_on_sqlite() {
    on_sqlite(Adapter::Warp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to an admin URL to run against PostgreSQL"
)]
async fn axum_on_postgres() {
    on_postgres(Adapter::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to an admin URL to run against PostgreSQL"
)]
async fn actix_on_postgres() {
    on_postgres(Adapter::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to an admin URL to run against PostgreSQL"
)]
async fn warp_on_postgres() {
    on_postgres(Adapter::Warp).await;
}
