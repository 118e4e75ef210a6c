//! Turns `AUTH_TEST_POSTGRES_URL` into the `auth_test_postgres` cfg, so the Postgres
//! conformance tests are `#[ignore]`d, and counted as ignored in cargo's summary, when no
//! Postgres is given, instead of returning early and reporting `ok`. Changing the variable
//! rebuilds the tests.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=AUTH_TEST_POSTGRES_URL");
    println!("cargo::rustc-check-cfg=cfg(auth_test_postgres)");
    if std::env::var("AUTH_TEST_POSTGRES_URL").is_ok_and(|url| !url.trim().is_empty()) {
        println!("cargo::rustc-cfg=auth_test_postgres");
    }
}
