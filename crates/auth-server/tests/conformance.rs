//! The conformance suite against every adapter, in-process, each on its own fresh database:
//! SQLite always, Postgres when `AUTH_TEST_POSTGRES_URL` names an admin connection (each run
//! creates its own database there and drops it afterwards).

use std::sync::Arc;
use std::time::Duration;

use auth_conformance::{Hooks, Report, Target, render_table, run_suite};
use auth_core::App;
use auth_server::{Adapter, ServeArgs};
use futures_util::future::BoxFuture;

/// Replays allowed within this window; short so the suite can wait past it.
const REUSE_INTERVAL: Duration = Duration::from_secs(2);

/// Activation through the app's own core, standing in for `auth-server user (de)activate`.
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
}

fn settings(database_url: &str) -> ServeArgs {
    let mut args = ServeArgs::defaults().expect("default settings");
    args.database.database_url = database_url.to_owned();
    args.database.db_pool_size = 4;
    args.jwt_secret = None;
    // Cheap hashing keeps the suite fast; the cost parameters are covered by unit tests.
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.argon2_parallelism = 1;
    args.refresh_reuse_interval = REUSE_INTERVAL.as_secs();
    args.profiles = "native".to_owned();
    args.access_ttl = String::new();
    args
}

async fn run(adapter: Adapter, database: &str, database_url: &str) -> Report {
    let app = auth_server::build_app(&settings(database_url))
        .await
        .expect("app builds");
    let server = auth_server::start(adapter, app.clone(), "127.0.0.1:0")
        .await
        .expect("server starts");
    let target = Target {
        base_url: server.base_url(),
        label: format!("{}/{database}", adapter.name()),
        hooks: Some(Arc::new(AppHooks(app))),
        reuse_interval: Some(REUSE_INTERVAL),
    };
    let report = run_suite(&target, None).await;
    server.stop().await.expect("server stops cleanly");
    report
}

fn assert_green(report: &Report) {
    let table = render_table(std::slice::from_ref(report));
    println!("{table}");
    assert_eq!(report.failed(), 0, "conformance failures:\n{table}");
    assert!(report.passed() > 0, "no case ran");
}

async fn on_sqlite(adapter: Adapter) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("auth.db").display());
    assert_green(&run(adapter, "sqlite", &url).await);
}

/// A Postgres database of this test's own, dropped when the guard goes.
struct PostgresDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PostgresDatabase {
    fn create(admin_url: &str) -> Self {
        let name = format!("auth_test_{:016x}", rand_u64());
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

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

async fn on_postgres(adapter: Adapter) {
    let Ok(admin_url) = std::env::var("AUTH_TEST_POSTGRES_URL") else {
        eprintln!(
            "AUTH_TEST_POSTGRES_URL is not set: skipping {} on Postgres",
            adapter.name()
        );
        return;
    };
    let database = PostgresDatabase::create(&admin_url);
    let report = run(adapter, "postgres", &database.url).await;
    // The server is stopped; dropping the guard removes the database even if the assertion fails.
    assert_green(&report);
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
