//! The conformance suite against every adapter, in-process, each on fresh databases: SQLite
//! always, Postgres when `AUTH_TEST_POSTGRES_URL` names an admin connection (each run
//! creates its own databases there and drops them afterwards).
//!
//! Every adapter is checked with three profile sets, one server and one database each,
//! concurrently: the default `native,envelope,rbac`, and `personal-token` and `jwt-user`
//! alone (they claim `native`'s `POST /api/v1/auth/login`).

use std::sync::Arc;
use std::time::Duration;

use auth_conformance::{
    Credentials, Failure, Hooks, Mount, Report, Target, render_table, run_suite,
};
use auth_core::App;
use auth_core::config::Limit;
use auth_core::service::NewAccount;
use auth_server::{Adapter, ServeArgs};
use futures_util::future::{BoxFuture, join_all};

/// Replays allowed within this window; short so the suite can wait past it.
const REUSE_INTERVAL: Duration = Duration::from_secs(2);
/// The profile sets every adapter is checked with.
const PROFILE_SETS: &[&str] = &["native,envelope,rbac", "personal-token", "jwt-user"];

/// User management through the app's own core, standing in for `auth-server user ...`.
struct AppHooks(App);

impl Hooks for AppHooks {
    fn set_active(&self, email: &str, active: bool) -> BoxFuture<'static, Result<(), String>> {
        let app = self.0.clone();
        let email = email.to_owned();
        Box::pin(async move {
            app.auth()
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
                .create_account(account)
                .await
                .map(drop)
                .map_err(|err| err.to_string())
        })
    }
}

fn settings(database_url: &str, profiles: &str) -> ServeArgs {
    let mut args = ServeArgs::defaults().expect("default settings");
    args.database.database_url = database_url.to_owned();
    args.database.db_pool_size = 4;
    args.jwt_secret = None;
    // Cheap hashing keeps the suite fast; the cost parameters are covered by unit tests.
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.argon2_parallelism = 1;
    args.refresh_reuse_interval = REUSE_INTERVAL.as_secs();
    args.profiles = profiles.to_owned();
    args.access_ttl = String::new();
    // The suite makes hundreds of users and logins from one address and does not cover rate
    // limiting; the limits have tests of their own.
    let off = Limit::parse("off").expect("`off` is a limit");
    args.rate_login_email_ip = off;
    args.rate_login_email = off;
    args.rate_login_ip = off;
    args.rate_register_ip = off;
    args.rate_refresh_ip = off;
    args
}

/// A fresh admin user's credentials.
fn admin_credentials() -> Credentials {
    Credentials {
        email: format!("admin-{:016x}@example.com", rand::random::<u64>()),
        password: format!("pw-{:032x}", rand::random::<u128>()),
    }
}

/// Runs the suite against `adapter` serving `profiles` on `database_url`; a server that
/// cannot be set up fails every case (so the other profile sets still report).
async fn run(adapter: Adapter, database_url: String, profiles: &'static str) -> Report {
    let label = profiles.to_owned();
    let unavailable = |expected: String, err: String| {
        Report::unavailable(label.clone(), None, Failure::new(expected, err))
    };
    let mounts = match Mount::parse_list(profiles) {
        Ok(mounts) => mounts,
        Err(err) => {
            return unavailable(format!("a profile list, not {profiles:?}"), err.to_string());
        }
    };
    let app = match auth_server::build_app(&settings(&database_url, profiles)).await {
        Ok(app) => app,
        Err(err) => {
            return unavailable(
                format!("the app builds with profiles {profiles}"),
                format!("{err:#}"),
            );
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
                reuse_interval: Some(REUSE_INTERVAL),
                profiles: mounts,
                admin: Some(admin),
            };
            run_suite(&target, None).await
        }
        Err(err) => unavailable("the admin user is created".to_owned(), err),
    };
    server.stop().await.expect("server stops cleanly");
    report
}

/// Prints one table (a column per profile set) and fails on any failed case.
fn assert_green(title: &str, reports: &[Report]) {
    let table = render_table(reports);
    println!("== {title}\n{table}");
    let failed: usize = reports.iter().map(Report::failed).sum();
    assert_eq!(failed, 0, "conformance failures on {title}:\n{table}");
    assert!(
        reports.iter().all(|r| r.passed() > 0),
        "a profile set ran no case"
    );
}

async fn on_sqlite(adapter: Adapter) {
    let dir = tempfile::tempdir().expect("temp dir");
    let runs = PROFILE_SETS.iter().enumerate().map(|(i, profiles)| {
        let url = format!(
            "sqlite://{}",
            dir.path().join(format!("auth-{i}.db")).display()
        );
        run(adapter, url, profiles)
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
    let databases: Vec<PostgresDatabase> = PROFILE_SETS
        .iter()
        .map(|_| PostgresDatabase::create(&admin_url))
        .collect();
    let runs = databases
        .iter()
        .zip(PROFILE_SETS)
        .map(|(database, profiles)| run(adapter, database.url.clone(), profiles));
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
