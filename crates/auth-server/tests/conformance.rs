//! The conformance suite against every adapter, in-process, each on fresh databases: SQLite
//! always, Postgres when `AUTH_TEST_POSTGRES_URL` names an admin connection (each run
//! creates its own databases there and drops them afterwards).
//!
//! Every adapter is checked with four server configurations, one server and one database
//! each, concurrently: the default profile set `native,envelope,rbac` signing with HS256 and
//! with EdDSA, and `personal-token` and `jwt-user` alone (they claim `native`'s
//! `POST /api/v1/auth/login`). Every server applies the contract's rate limits and trusts
//! 127.0.0.1 as a proxy, so each case of the suite comes from a client IP of its own.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use auth_conformance::{
    Credentials, Failure, Hooks, Limit, Limits, Mount, Report, SUITE_REUSE_INTERVAL, Target,
    render_table, run_suite,
};
use auth_core::App;
use auth_core::service::NewAccount;
use auth_server::{Adapter, ServeArgs, SigningAlgorithm};
use futures_util::future::{BoxFuture, join_all};

/// The rate limits every server applies.
const LIMITS: Limits = Limits::CONTRACT;

/// One server configuration the suite runs against.
#[derive(Debug, Clone, Copy)]
struct Config {
    /// The mounted profiles.
    profiles: &'static str,
    /// How access tokens are signed.
    signing: SigningAlgorithm,
}

impl Config {
    /// The column label: the profile set, with `(eddsa)` when signing with EdDSA.
    fn label(self) -> String {
        match self.signing {
            SigningAlgorithm::Hs256 => self.profiles.to_owned(),
            SigningAlgorithm::Eddsa => format!("{} (eddsa)", self.profiles),
        }
    }
}

/// The configurations every adapter is checked with.
const CONFIGS: &[Config] = &[
    Config {
        profiles: "native,envelope,rbac",
        signing: SigningAlgorithm::Hs256,
    },
    Config {
        profiles: "personal-token",
        signing: SigningAlgorithm::Hs256,
    },
    Config {
        profiles: "jwt-user",
        signing: SigningAlgorithm::Hs256,
    },
    Config {
        profiles: "native,envelope,rbac",
        signing: SigningAlgorithm::Eddsa,
    },
];

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

/// The server's settings for `config` on `database_url`, and the HS256 secret when it
/// signs with one.
fn settings(database_url: &str, config: Config) -> (ServeArgs, Option<String>) {
    let mut args = ServeArgs::defaults().expect("default settings");
    args.database.database_url = database_url.to_owned();
    args.database.db_pool_size = 4;
    // Cheap hashing keeps the suite fast; the cost parameters are covered by unit tests.
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.argon2_parallelism = 1;
    args.refresh_reuse_interval = SUITE_REUSE_INTERVAL.as_secs();
    args.profiles = config.profiles.to_owned();
    args.access_ttl = String::new();
    args.signing_algorithm = config.signing;
    let secret = match config.signing {
        SigningAlgorithm::Hs256 => Some(random_hex(32)),
        SigningAlgorithm::Eddsa => {
            args.key_encryption.key_encryption_key = Some(random_hex(32));
            None
        }
    };
    args.jwt_secret = secret.clone();
    // The suite's requests come from 127.0.0.1 with a client IP per case in
    // `X-Forwarded-For`, so the contract's limits apply per case.
    args.trusted_proxies = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    args.rate_login_email_ip = server_limit(LIMITS.login_email_ip);
    args.rate_login_email = server_limit(LIMITS.login_email);
    args.rate_login_ip = server_limit(LIMITS.login_ip);
    args.rate_register_ip = server_limit(LIMITS.register_ip);
    args.rate_refresh_ip = server_limit(LIMITS.refresh_ip);
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
async fn run(adapter: Adapter, database_url: String, config: Config) -> Report {
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
    let (args, jwt_secret) = settings(&database_url, config);
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
                limits: Some(LIMITS),
                jwt_secret: jwt_secret.map(String::into_bytes),
            };
            run_suite(&target, None).await
        }
        Err(err) => unavailable("the admin user is created".to_owned(), err),
    };
    server.stop().await.expect("server stops cleanly");
    report
}

/// Prints one table (a column per configuration) and fails on any failed case.
fn assert_green(title: &str, reports: &[Report]) {
    let table = render_table(reports);
    println!("== {title}\n{table}");
    let failed: usize = reports.iter().map(Report::failed).sum();
    assert_eq!(failed, 0, "conformance failures on {title}:\n{table}");
    assert!(
        reports.iter().all(|r| r.passed() > 0),
        "a configuration ran no case"
    );
}

async fn on_sqlite(adapter: Adapter) {
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = CONFIGS.iter().enumerate().map(|(i, config)| {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("auth-{i}.db")).display()
        );
        run(adapter, url, *config)
    });
    let reports = join_all(runs).await;
    assert_green(&format!("{}/sqlite", adapter.name()), &reports);
}

/// A Postgres database of this test's own, dropped when the guard goes.
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    fn create(admin_url: &str) -> Self {
        let name = format!("auth_test_{:016x}", rand::random::<u64>());
        let url = auth_diesel::create_postgres_database(admin_url, &name).expect("create database");
        Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if let Err(err) = auth_diesel::drop_postgres_database(&self.admin_url, &self.name) {
            eprintln!("could not drop {}: {err}", self.name);
        }
    }
}

async fn on_postgres(adapter: Adapter) {
    let Ok(admin_url) = std::env::var("AUTH_TEST_POSTGRES_URL") else {
        eprintln!(
            "AUTH_TEST_POSTGRES_URL is not set: skipping {} on Postgres",
            adapter.name()
        );
        return;
    };
    let databases: Vec<PostgresDatabase> = CONFIGS
        .iter()
        .map(|_| PostgresDatabase::create(&admin_url))
        .collect();
    let runs = databases
        .iter()
        .zip(CONFIGS)
        .map(|(database, config)| run(adapter, database.url.clone(), *config));
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
async fn axum_on_postgres() {
    on_postgres(Adapter::Axum).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn actix_on_postgres() {
    on_postgres(Adapter::Actix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn warp_on_postgres() {
    on_postgres(Adapter::Warp).await;
}
