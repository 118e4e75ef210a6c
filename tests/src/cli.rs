//! The command line for checking a deployment by URL: the `auth-conformance` binary, and
//! `cargo xtask conformance --base-url ...`, which flattens the same [`Args`] and calls the
//! same [`run`], so there is one implementation of it.
//!
//! A run: one connection check (exit 2 with one line when nothing answers), the admin login
//! when credentials are given (exit 2 when refused), the selected cases, the table and the
//! reason of every skip, the removal of the users the run created, and the JUnit / JSON
//! files. Exit 0 when no selected case failed (skips allowed), 1 when one did.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mailbox::{Mailbox, SmtpSink};
use crate::{
    Cleanup, Credentials, DEFAULT_PROFILES, Limits, Mount, Report, Target, check_reachable,
    group_names, remove_created_users, render_json, render_junit, render_skips, render_table,
    run_selected,
};

/// Exit status: every selected case passed (or was skipped).
pub const EXIT_PASSED: u8 = 0;
/// Exit status: some case failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status: the command line was wrong, the deployment could not be reached or refused
/// the admin credentials, or a report file could not be written.
pub const EXIT_USAGE: u8 = 2;

/// How to reach and what to expect of the deployment under test.
#[derive(Debug, Clone, Default, clap::Args)]
// A group id of its own: `cargo xtask conformance` flattens this into its own `Args`.
#[group(id = "suite")]
pub struct Args {
    /// The deployment's base URL, e.g. `https://auth.example.com` (no path: the profiles'
    /// prefixes are added to it).
    #[arg(long, env = "AUTH_CONFORMANCE_BASE_URL")]
    pub base_url: Option<String>,
    /// The profiles the deployment mounts (`name` or `name=/prefix`, comma-separated);
    /// cases of the others are skipped. Default: `native,envelope,rbac`.
    #[arg(long)]
    pub profiles: Option<String>,
    /// Only the cases of this group (repeatable, or comma-separated); `--group list` prints
    /// the groups.
    #[arg(long, value_delimiter = ',')]
    pub group: Vec<String>,
    /// Only cases whose `group/name` contains this.
    #[arg(long)]
    pub filter: Option<String>,
    /// Email of an existing user with the role `admin` (e.g. made with `auth-server user
    /// create --role admin`): the admin cases run, cases create their users through the
    /// admin API (so the registration limit is not spent), and the run deletes them at the
    /// end.
    #[arg(long, requires = "admin_password")]
    pub admin_email: Option<String>,
    /// That user's password; better passed as `AUTH_CONFORMANCE_ADMIN_PASSWORD`.
    #[arg(long, env = "AUTH_CONFORMANCE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// The deployment trusts this machine as a proxy (its `--trusted-proxies`), so every case
    /// gets a client IP of its own in `X-Forwarded-For`; the cases about client addresses
    /// then run too.
    #[arg(long)]
    pub forwarded_for: bool,
    /// The deployment applies the contract's rate limits (login 10/900 per email and IP,
    /// 100/3600 per email, 100/900 per IP; registration 30/3600 and refresh 300/900 per IP;
    /// passkey ceremonies started 60/600 per IP),
    /// which the rate-limit cases then exhaust. Needs `--forwarded-for`: exhausting a limit
    /// from one address would block the rest of the run.
    #[arg(long, requires = "forwarded_for")]
    pub contract_limits: bool,
    /// The deployment's HS256 secret, for the cases that sign crafted tokens; pass it as
    /// `AUTH_CONFORMANCE_JWT_SECRET`.
    #[arg(long, env = "AUTH_CONFORMANCE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// An origin on the deployment's CORS allow-list (`--cors-allowed-origins`), for the
    /// CORS cases.
    #[arg(long)]
    pub cors_origin: Option<String>,
    /// Start the suite's SMTP sink on this address (e.g. `127.0.0.1:2525`) for the
    /// deployment to send its mail to (its `--smtp-url smtp://127.0.0.1:2525`), so the cases
    /// that follow mailed links run.
    #[arg(long, value_name = "ADDR")]
    pub smtp_sink: Option<std::net::SocketAddr>,
    /// Write a JUnit XML report here (one testsuite per group, one testcase per case).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report here (every case's outcome, and what the clean-up did).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

impl Args {
    /// Whether the case `group/name` is selected by `--group` and `--filter`.
    pub fn selects(&self, group: &str, name: &str) -> bool {
        let mut groups = self
            .group
            .iter()
            .map(|g| g.trim())
            .filter(|g| !g.is_empty());
        let in_group = self.group.iter().all(|g| g.trim().is_empty()) || groups.any(|g| g == group);
        in_group
            && self
                .filter
                .as_deref()
                .is_none_or(|f| format!("{group}/{name}").contains(f))
    }

    /// Checks that every `--group` names a group of the suite.
    pub fn check_groups(&self) -> Result<(), String> {
        selected_groups(&self.group).map(drop)
    }
}

/// Runs the suite against `args.base_url` as described in the module documentation, printing
/// to stdout (report) and stderr (progress, errors); returns the exit status.
pub fn run(args: &Args) -> u8 {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("auth-conformance: cannot start the runtime: {err}");
            return EXIT_USAGE;
        }
    };
    match runtime.block_on(run_async(args)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("auth-conformance: {message}");
            EXIT_USAGE
        }
    }
}

/// [`run`] on a runtime; `Err` is a usage or connection error, printed as one line.
async fn run_async(args: &Args) -> Result<u8, String> {
    let Some(base_url) = args.base_url.as_deref() else {
        return Err("--base-url is required (the deployment to check, e.g. \
                    http://127.0.0.1:8080)"
            .to_owned());
    };
    if args.group.iter().any(|g| g == "list") {
        println!("{}", group_names().join("\n"));
        return Ok(EXIT_PASSED);
    }
    args.check_groups()?;
    let base_url = base_url.trim_end_matches('/').to_owned();
    let profiles = args
        .profiles
        .clone()
        .unwrap_or_else(|| DEFAULT_PROFILES.join(","));
    let profiles = Mount::parse_list(&profiles).map_err(|err| format!("--profiles: {err}"))?;
    check_reachable(&base_url).await?;
    let admin = args
        .admin_email
        .clone()
        .zip(args.admin_password.clone())
        .map(|(email, password)| Credentials { email, password });
    // Kept until the run ends: dropping it closes its port.
    let sink = args
        .smtp_sink
        .map(SmtpSink::start_on)
        .transpose()
        .map_err(|err| format!("cannot start the SMTP sink: {err}"))?
        .map(Arc::new);
    if let Some(sink) = &sink {
        eprintln!("SMTP sink listening at {}", sink.url());
    }
    let target = Target {
        base_url: base_url.clone(),
        label: base_url.clone(),
        hooks: None,
        reuse_interval: None,
        profiles,
        admin,
        forwarded_for: args.forwarded_for,
        another_proxy: None,
        limits: args.contract_limits.then_some(Limits::CONTRACT),
        jwt_secret: args.jwt_secret.clone().map(String::into_bytes),
        cors_origin: args.cors_origin.clone(),
        mailbox: sink.map(|sink| sink as Arc<dyn Mailbox>),
    };
    if let Some(admin) = &target.admin {
        crate::cleanup::check_admin(&target, admin).await?;
    }
    let started = Instant::now();
    let report = run_selected(&target, |group, name| args.selects(group, name)).await;
    let cleanup = remove_created_users(&target).await;
    let elapsed = started.elapsed();
    print!("{}", summary(&report, &cleanup, elapsed));
    write_files(args, &report, &cleanup, elapsed)?;
    Ok(if report.failed() == 0 {
        EXIT_PASSED
    } else {
        EXIT_FAILED
    })
}

/// The groups `--group` names, checked against the registry.
fn selected_groups(given: &[String]) -> Result<Vec<&'static str>, String> {
    let known = group_names();
    given
        .iter()
        .map(|name| name.trim())
        .filter(|name| !name.is_empty())
        .map(|name| {
            known.iter().copied().find(|g| *g == name).ok_or_else(|| {
                format!(
                    "--group: no group {name:?}; the groups: {}",
                    known.join(", ")
                )
            })
        })
        .collect()
}

/// What a run prints: the table with every failure, the skip reasons, the clean-up and a
/// one-line verdict.
fn summary(report: &Report, cleanup: &Cleanup, elapsed: Duration) -> String {
    use std::fmt::Write as _;
    let mut out = format!(
        "{}\n{}\n",
        render_table(std::slice::from_ref(report)),
        render_skips(std::slice::from_ref(report))
    );
    // Writing to a String cannot fail.
    if !cleanup.deleted.is_empty() {
        let _ = writeln!(
            out,
            "Removed the {} users this run created.",
            cleanup.deleted.len()
        );
    }
    if let Some(problem) = &cleanup.problem {
        let _ = writeln!(out, "Clean-up: {problem}.");
    }
    if cleanup.left.is_empty() {
        out.push_str("Left behind: nothing.\n");
    } else {
        let _ = writeln!(out, "Left behind ({} users):", cleanup.left.len());
        for email in &cleanup.left {
            let _ = writeln!(out, "- {email}");
        }
    }
    let _ = writeln!(
        out,
        "\n{} passed, {} failed, {} skipped of {} cases in {:.1} s",
        report.passed(),
        report.failed(),
        report.skipped(),
        report.cases.len(),
        elapsed.as_secs_f64()
    );
    out
}

/// Writes the `--junit` and `--json` files.
fn write_files(
    args: &Args,
    report: &Report,
    cleanup: &Cleanup,
    elapsed: Duration,
) -> Result<(), String> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|err| format!("cannot write {}: {err}", path.display()))
    };
    if let Some(path) = &args.junit {
        write(path, render_junit(report, elapsed))?;
    }
    if let Some(path) = &args.json {
        write(path, render_json(report, elapsed, Some(cleanup)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_checked_and_may_be_listed_with_commas() {
        assert_eq!(
            selected_groups(&["login".to_owned(), " refresh".to_owned()]),
            Ok(vec!["login", "refresh"])
        );
        let err = selected_groups(&["nope".to_owned()]).unwrap_err();
        assert!(
            err.contains("no group \"nope\"") && err.contains("login"),
            "{err}"
        );
    }

    #[test]
    fn the_summary_names_what_was_left() {
        let report = Report {
            label: "x".to_owned(),
            cases: Vec::new(),
        };
        let cleanup = Cleanup {
            deleted: Vec::new(),
            left: vec!["c-1@example.com".to_owned()],
            problem: Some("no admin credentials".to_owned()),
        };
        let text = summary(&report, &cleanup, Duration::from_secs(1));
        assert!(
            text.contains("Left behind (1 users):\n- c-1@example.com\n"),
            "{text}"
        );
        assert!(
            text.contains("0 passed, 0 failed, 0 skipped of 0 cases"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_missing_base_url_is_a_usage_error() {
        let err = run_async(&Args::default()).await.unwrap_err();
        assert!(err.contains("--base-url is required"), "{err}");
    }
}
