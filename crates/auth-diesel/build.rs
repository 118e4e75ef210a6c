//! Rebuilds the crate when a migration is added or changed: `embed_migrations!` reads the
//! `migrations` directory at compile time, and Cargo would not notice a new folder.
//!
//! Also turns `AUTH_TEST_POSTGRES_URL` into the `auth_test_postgres` cfg, so the Postgres
//! tests (unit and integration) are `#[ignore]`d, and counted as ignored in cargo's summary,
//! when no Postgres is given, instead of returning early and reporting `ok`.

fn main() {
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-env-changed=AUTH_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(auth_test_postgres)");
    if std::env::var("AUTH_TEST_POSTGRES_URL").is_ok_and(|url| !url.trim().is_empty()) {
        println!("cargo::rustc-cfg=auth_test_postgres");
    }
}
