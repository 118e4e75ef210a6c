//! Rebuilds the crate when a migration is added or changed: `embed_migrations!` reads the
//! `migrations` directory at compile time, and Cargo would not notice a new folder.
//!
//! Also sets `cfg(auth_test_postgres)` when `AUTH_TEST_POSTGRES_URL` is set and non-empty,
//! so the PostgreSQL tests run then and show as ignored (not as passing) otherwise.

fn main() {
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-env-changed=AUTH_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(auth_test_postgres)");
    let postgres = std::env::var("AUTH_TEST_POSTGRES_URL").is_ok_and(|url| !url.trim().is_empty());
    if postgres {
        println!("cargo::rustc-cfg=auth_test_postgres");
    }
}
