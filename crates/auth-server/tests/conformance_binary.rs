//! The `auth-conformance` binary as an integrator runs it (issue 14, part 2): against
//! `auth-server serve` started with no flag (rate limits on, embedded SQLite, the port given
//! by `AUTH_BIND`), with only an admin user made by `auth-server user create`, it exits 0,
//! writes JUnit and JSON, and leaves no user behind. An unreachable URL is one line and exit
//! status 2.
//!
//! The binary is built by `cargo build -p auth-conformance` into this test's own target
//! directory: a test can use only its own package's binaries, and the conformance crate must
//! not depend on the server.

#[path = "no_flags/mod.rs"]
mod no_flags;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const ADMIN_EMAIL: &str = "conformance-admin@example.com";
const ADMIN_PASSWORD: &str = "an admin passphrase of some length";

/// The target directory this test binary was built into (`target/` of the workspace, or
/// `CARGO_TARGET_DIR`): `target/debug/deps/conformance_binary-…`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    exe.ancestors()
        .nth(3)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Builds the `auth-conformance` binary as `cargo install --path tests` would (default
/// features) and returns its path.
fn conformance_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = target_dir();
    let output = Command::new(cargo)
        .args(["build", "--quiet", "-p", "auth-conformance", "--bin"])
        .arg("auth-conformance")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "cargo build -p auth-conformance failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    target.join("debug").join("auth-conformance")
}

/// `auth-server user create --role admin` in `dir`, on the same default database.
fn create_admin(dir: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(["user", "create", "--role", "admin", "--email", ADMIN_EMAIL])
        .args(["--password", ADMIN_PASSWORD])
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("run auth-server user create");
    assert!(
        output.status.success(),
        "user create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run(binary: &Path, args: &[&str]) -> Output {
    Command::new(binary)
        .args(args)
        .env_clear()
        .env("AUTH_CONFORMANCE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .expect("run auth-conformance")
}

/// The users the deployment holds, through its admin API.
async fn user_emails(base: &str) -> Vec<String> {
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("login body");
    let token = login["token"]["access_token"].as_str().expect("a token");
    let users: Value = client
        .get(format!("{base}/api/v1/admin/users?limit=100"))
        .bearer_auth(token)
        .send()
        .await
        .expect("list users")
        .json()
        .await
        .expect("users body");
    users["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|user| user["email"].as_str().expect("email").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_passes_against_a_server_on_its_defaults_and_leaves_nothing() {
    let binary = conformance_binary();
    let dir = tempfile::tempdir().expect("temp dir");
    let server = no_flags::serve_with_no_flags(dir.path(), &[]);
    create_admin(dir.path());
    let (junit, json) = (dir.path().join("junit.xml"), dir.path().join("report.json"));
    let output = run(
        &binary,
        &[
            "--base-url",
            &server.base,
            "--admin-email",
            ADMIN_EMAIL,
            "--junit",
            junit.to_str().expect("utf-8 path"),
            "--json",
            json.to_str().expect("utf-8 path"),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "auth-conformance failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("Left behind: nothing."), "{stdout}");

    let junit = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert!(
        junit.starts_with("<?xml") && junit.contains("<testsuites name=\"auth-conformance\""),
        "{junit}"
    );
    assert!(junit.contains("failures=\"0\""), "{junit}");
    let passed = junit.matches("<testcase ").count() - junit.matches("<skipped").count();
    assert!(passed >= 150, "{passed} cases passed:\n{stdout}");

    let report: Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON file")).expect("JSON");
    assert_eq!(report["summary"]["failed"], json!(0), "{report}");
    assert_eq!(report["cleanup"]["left"], json!([]), "{report}");
    let deleted = report["cleanup"]["deleted"].as_array().map_or(0, Vec::len);
    assert!(deleted >= 50, "deleted {deleted} users");

    // What the run created is gone: only the admin is left.
    assert_eq!(
        user_emails(&server.base).await,
        vec![ADMIN_EMAIL.to_owned()]
    );
}

#[test]
fn an_unreachable_deployment_is_one_line_and_status_2() {
    let binary = conformance_binary();
    // Port 9 (discard) on loopback: nothing listens there.
    let output = run(&binary, &["--base-url", "http://127.0.0.1:9"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot connect to http://127.0.0.1:9/healthz"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    let output = run(
        &binary,
        &["--base-url", "http://127.0.0.1:9", "--group", "nope"],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no group \"nope\""), "{stderr}");
}
