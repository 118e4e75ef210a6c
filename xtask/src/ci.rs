//! `cargo xtask ci`: the checks CI runs, in order, stopping at the first failure.

/// Runs the checks; `Ok(false)` when one fails.
pub fn run() -> anyhow::Result<bool> {
    let steps: [(&str, &[&str]); 3] = [
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
    ];
    if std::env::var_os("AUTH_TEST_POSTGRES_URL").is_none() {
        eprintln!(
            "note: AUTH_TEST_POSTGRES_URL is not set, so the Postgres half of the suite is skipped \
             (.ci/run sets it)"
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
    eprintln!("== all checks passed");
    Ok(true)
}
