//! `cargo xtask ci`: the checks CI (`.ci/run`) runs, in order, stopping at the first failure
//! (`.ci/run` also starts Postgres and installs the Python tools, cargo-deny and Chromium).

/// Runs the checks; `Ok(false)` when one fails.
pub fn run() -> anyhow::Result<bool> {
    let steps: [(&str, &[&str]); 9] = [
        ("format", &["fmt", "--all", "--check"]),
        (
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        ("tests", &["test", "--workspace"]),
        // The short chaos run, as in .ci/run.
        (
            "chaos (short)",
            &[
                "xtask",
                "chaos",
                "--short",
                "--database",
                "all",
                "--cases",
                "kill9,outage,pool,instances,soak,failover",
            ],
        ),
        (
            "chaos sigterm",
            &[
                "xtask",
                "chaos",
                "--short",
                "--database",
                "sqlite",
                "--cases",
                "sigterm",
            ],
        ),
        (
            "licences",
            &["deny", "check", "licenses", "bans", "sources"],
        ),
        ("server build", &["build", "-p", "auth-server"]),
        // As in .ci/run, which also installs Chromium when it is missing.
        ("browser", &["xtask", "browser"]),
        (
            "bench smoke test",
            &["xtask", "bench", "--quick", "--database", "sqlite"],
        ),
    ];
    if auth_diesel::TestDatabase::admin_url_from_env().is_none() {
        eprintln!(
            "note: {} is not set, so the Postgres tests are ignored (cargo's summary counts \
             them; .ci/run sets it)",
            auth_diesel::TEST_POSTGRES_URL_ENV
        );
    }
    for (name, args) in steps {
        eprintln!("== {name}: cargo {}", args.join(" "));
        let status = crate::cargo().args(args).status()?;
        if !status.success() {
            eprintln!("== {name} failed");
            return Ok(false);
        }
    }
    eprintln!("== external checks: bash scripts/external_checks.sh");
    let status = std::process::Command::new("bash")
        .arg("scripts/external_checks.sh")
        .current_dir(crate::project_root())
        .status()?;
    if !status.success() {
        eprintln!(
            "== external checks failed (they need python3 with openapi-spec-validator, schemathesis, pyjwt, cryptography)"
        );
        return Ok(false);
    }
    eprintln!("== all checks passed");
    Ok(true)
}
