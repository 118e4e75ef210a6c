//! `cargo xtask conformance`: the black-box suite against real server processes (or, with
//! `--base-url`, the `auth-conformance` binary against a running deployment).
//!
//! Without `--base-url`, every adapter on every database is checked with the configurations
//! of the conformance matrix (`auth_conformance::matrix::MATRIX`, which the in-tree test
//! `crates/auth-server/tests/conformance.rs` runs too), each on its own server and
//! database: the default profile set `native,envelope,rbac` signing with HS256, the same
//! signing with EdDSA, and `personal-token` and `jwt-user` alone (HS256), which claim
//! `native`'s `POST /api/v1/auth/login`. `--profiles` checks one set instead, `--signing`
//! picks the algorithms. Every server applies the contract's rate limits and trusts
//! 127.0.0.1 as a proxy, so each case comes from a client IP of its own
//! (`X-Forwarded-For`). The output is one table per configuration, with the reason of every
//! skip; on the matrix's own configurations a skip it does not expect
//! (`auth_conformance::matrix::EXPECTED_SKIPS`) fails the run like a failed case.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use auth_conformance::mailbox::SmtpSink;
use auth_conformance::matrix::{MATRIX, MATRIX_LIMITS, ServerConfig, Signing, unexpected_skips};
use auth_conformance::{
    Credentials, Failure, Hooks, Mount, Report, SUITE_REUSE_INTERVAL, Target, render_skips,
    render_table, run_selected,
};
use futures_util::future::BoxFuture;

use crate::server::{
    self, Adapter, Database, FreshDatabase, Launch, Profile, ServerProcess, rand_seed,
    random_hex_32,
};

/// Arguments of `cargo xtask conformance`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The adapters to check.
    #[arg(long, value_enum, default_value_t = Adapter::All)]
    adapter: Adapter,
    /// The databases to check on.
    #[arg(long, value_enum, default_value_t = Database::All)]
    database: Database,
    /// Postgres admin URL under which a fresh database is created per run
    /// (default: `AUTH_TEST_POSTGRES_URL`, else the local server).
    #[arg(long)]
    postgres_url: Option<String>,
    /// Signing algorithms to start servers with (comma-separated); default: HS256 for
    /// every profile set and EdDSA too for `native,envelope,rbac` (with `--profiles`: HS256
    /// only).
    #[arg(long, value_enum, value_delimiter = ',')]
    signing: Vec<Signing>,
    /// What to check and how (`auth-conformance`'s own flags). With `--base-url`, the run is
    /// handed whole to the `auth-conformance` binary: `cargo xtask conformance --base-url U
    /// ...` is `auth-conformance --base-url U ...`. Without it, `--profiles` (default: the
    /// sets `native,envelope,rbac`, `personal-token`, `jwt-user` in turn), `--group` and
    /// `--filter` select the matrix's configurations and cases.
    #[command(flatten)]
    suite: auth_conformance::cli::Args,
}

/// One configuration's reports, and whether the matrix's expected skips apply to it.
struct Section {
    label: String,
    reports: Vec<Report>,
    matrix: Option<ServerConfig<'static>>,
}

/// Runs the suite; `Ok(false)` when a case failed (or, on the matrix, was skipped
/// unexpectedly).
pub fn run(args: Args) -> anyhow::Result<bool> {
    if args.suite.base_url.is_some() {
        return run_binary();
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let sections = run_matrix(&runtime, &args)?;
    let (summary, failed) = summarize(&sections);
    print!("{summary}");
    Ok(failed == 0)
}

/// Runs the `auth-conformance` binary (built first) with this command's own arguments, so a
/// deployment checked with `cargo xtask` is checked exactly as an integrator's CI checks it;
/// `Ok(false)` when it exits with anything but 0.
fn run_binary() -> anyhow::Result<bool> {
    let binary = server::executable(
        &server::build(Profile::Debug, &["auth-conformance"])?,
        "auth-conformance",
    )?;
    let passed: Vec<String> = std::env::args()
        .skip_while(|arg| arg != "conformance")
        .skip(1)
        .collect();
    let status = std::process::Command::new(&binary)
        .args(&passed)
        .status()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    Ok(status.success())
}

/// The printed summary of `sections` (per configuration: the table, the skip reasons and
/// any skip the matrix does not expect) and the number of problems: failed cases plus, on
/// the matrix's own configurations, unexpected skips.
fn summarize(sections: &[Section]) -> (String, usize) {
    use std::fmt::Write as _;
    let (mut out, mut problems) = (String::new(), 0);
    for section in sections {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "== profiles: {}\n{}\n{}",
            section.label,
            render_table(&section.reports),
            render_skips(&section.reports)
        );
        problems += section.reports.iter().map(Report::failed).sum::<usize>();
        if let Some(config) = &section.matrix {
            let unexpected: Vec<_> = section
                .reports
                .iter()
                .flat_map(|report| unexpected_skips(config, report))
                .collect();
            if !unexpected.is_empty() {
                out.push_str(
                    "Skips the matrix does not expect (auth_conformance::matrix::EXPECTED_SKIPS):\n",
                );
                for skip in &unexpected {
                    let _ = writeln!(out, "- {skip}");
                }
                out.push('\n');
            }
            problems += unexpected.len();
        }
    }
    (out, problems)
}

/// The configurations `--profiles` and `--signing` select: without `--profiles`, those of
/// [`MATRIX`] with a selected algorithm (all by default); with it, that set with each
/// selected algorithm (HS256 by default).
fn configs<'a>(profiles: Option<&'a str>, signing: &[Signing]) -> Vec<ServerConfig<'a>> {
    let config = |profiles, signing| ServerConfig { profiles, signing };
    match (profiles, signing) {
        (Some(profiles), []) => vec![config(profiles, Signing::Hs256)],
        (Some(profiles), signing) => signing.iter().map(|s| config(profiles, *s)).collect(),
        (None, []) => MATRIX.to_vec(),
        (None, signing) => MATRIX
            .iter()
            .filter(|c| signing.contains(&c.signing))
            .copied()
            .collect(),
    }
}

/// Runs the suite for each configuration, database and adapter; returns the reports
/// grouped by configuration.
fn run_matrix(runtime: &tokio::runtime::Runtime, args: &Args) -> anyhow::Result<Vec<Section>> {
    let adapters = args.adapter.expand();
    let databases = args.database.expand();
    args.suite.check_groups().map_err(anyhow::Error::msg)?;
    let configs = configs(args.suite.profiles.as_deref(), &args.signing);
    for config in &configs {
        Mount::parse_list(config.profiles)?;
    }
    let binary = server::executable(
        &server::build(Profile::Debug, &["auth-server"])?,
        "auth-server",
    )?;
    let postgres_url = server::postgres_admin_url(args.postgres_url.as_deref());
    let mut sections = Vec::new();
    for config in configs {
        let mut reports = Vec::new();
        for &database in &databases {
            for &adapter in &adapters {
                eprintln!("== {adapter}/{database} with {config}");
                let run = Run {
                    binary: &binary,
                    adapter,
                    database,
                    postgres_url: &postgres_url,
                    config,
                    suite: &args.suite,
                };
                reports.push(run.report(runtime)?);
            }
        }
        sections.push(Section {
            label: config.label(),
            reports,
            matrix: MATRIX.iter().find(|m| **m == config).copied(),
        });
    }
    Ok(sections)
}

/// One server process checked once.
struct Run<'a> {
    binary: &'a Path,
    adapter: Adapter,
    database: Database,
    postgres_url: &'a str,
    config: ServerConfig<'a>,
    suite: &'a auth_conformance::cli::Args,
}

impl Run<'_> {
    /// Starts the server on a fresh database, creates an admin user, runs the suite. A server
    /// that does not come up fails every case, with its log, so the other runs still report;
    /// only a failure to prepare the run at all is an error.
    fn report(&self, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Report> {
        let label = format!("{}/{}", self.adapter, self.database);
        let scratch = tempfile::tempdir()?;
        let fresh = FreshDatabase::new(self.database, self.postgres_url, "auth_conformance")?;
        let jwt_secret = (self.config.signing == Signing::Hs256).then(random_hex_32);
        // One sink per server, so no case reads another server's mail.
        let sink = Arc::new(SmtpSink::start().context("cannot start the SMTP sink")?);
        let launch = Launch {
            binary: self.binary,
            adapter: self.adapter,
            database_url: fresh.url(),
            args: serve_args(&self.config, &sink.url()),
            env: secrets(self.config.signing, jwt_secret.as_deref()),
            log_filter: "warn",
            log_path: scratch.path().join("server.log"),
        };
        let hooks = Arc::new(CliHooks {
            binary: self.binary.to_path_buf(),
            database_url: fresh.url().to_owned(),
        });
        let admin = Credentials {
            email: format!("admin-{:016x}@example.com", rand_seed()),
            password: format!("pw-{:016x}{:016x}", rand_seed(), rand_seed()),
        };
        let report = runtime.block_on(async {
            let server = match ServerProcess::start(&launch).await {
                Ok(server) => server,
                Err(err) => {
                    let failure = Failure::new(
                        format!("the server starts for {}", self.config),
                        format!("{err:#}"),
                    );
                    return Report::unavailable(
                        label.clone(),
                        self.suite.filter.as_deref(),
                        failure,
                    );
                }
            };
            let created = hooks
                .create_user(&admin.email, &admin.password, None, &["admin".to_owned()])
                .await;
            if let Err(err) = created {
                let failure = Failure::new("the admin user is created", err);
                return Report::unavailable(label.clone(), self.suite.filter.as_deref(), failure);
            }
            let target = Target {
                base_url: server.base_url(),
                label: label.clone(),
                hooks: Some(hooks),
                reuse_interval: Some(SUITE_REUSE_INTERVAL),
                // Checked by `run_matrix` before any server started.
                profiles: Mount::parse_list(self.config.profiles).unwrap_or_default(),
                admin: Some(admin),
                forwarded_for: true,
                another_proxy: Some(auth_conformance::matrix::ANOTHER_PROXY),
                limits: Some(MATRIX_LIMITS),
                jwt_secret: jwt_secret.map(String::into_bytes),
                cors_origin: Some(auth_conformance::matrix::CORS_ORIGIN.to_owned()),
                mailbox: Some(sink),
            };
            let report = run_selected(&target, |group, name| self.suite.selects(group, name)).await;
            drop(server);
            report
        });
        Ok(report)
    }
}

/// The `serve` arguments of a matrix server for `config`: its profiles, the matrix's rate
/// limits and reuse interval, the suite's address as a trusted proxy, its mail sent to the
/// SMTP sink at `smtp_url`.
fn serve_args(config: &ServerConfig<'_>, smtp_url: &str) -> Vec<String> {
    let limits = MATRIX_LIMITS;
    let mut args: Vec<String> = vec![
        "--profiles".to_owned(),
        config.profiles.to_owned(),
        // Each case sends a client IP of its own, so the limits apply per case.
        "--trusted-proxies".to_owned(),
        auth_conformance::matrix::TRUSTED_PROXIES.to_owned(),
        "--cors-allowed-origins".to_owned(),
        auth_conformance::matrix::CORS_ORIGIN.to_owned(),
        "--webauthn-rp-id".to_owned(),
        auth_conformance::matrix::WEBAUTHN_RP_ID.to_owned(),
        "--webauthn-rp-origin".to_owned(),
        auth_conformance::matrix::WEBAUTHN_ORIGIN.to_owned(),
        format!("--rate-login-email-ip={}", limits.login_email_ip),
        format!("--rate-login-email={}", limits.login_email),
        format!("--rate-login-ip={}", limits.login_ip),
        format!("--rate-register-ip={}", limits.register_ip),
        format!("--rate-refresh-ip={}", limits.refresh_ip),
        format!("--rate-passkey-ip={}", limits.passkey_ip),
        "--refresh-reuse-interval".to_owned(),
        SUITE_REUSE_INTERVAL.as_secs().to_string(),
        "--smtp-url".to_owned(),
        smtp_url.to_owned(),
    ];
    if config.signing == Signing::Eddsa {
        args.extend(["--signing-algorithm".to_owned(), "eddsa".to_owned()]);
    }
    args
}

/// The secrets a server signing with `signing` gets, through its environment rather than
/// its command line: the HS256 secret the suite knows, or a fresh key-encryption key for
/// EdDSA keys in the database.
fn secrets(signing: Signing, jwt_secret: Option<&str>) -> Vec<(&'static str, String)> {
    match (signing, jwt_secret) {
        (Signing::Hs256, Some(secret)) => vec![("AUTH_JWT_SECRET", secret.to_owned())],
        // The generated secret is kept sealed under the key-encryption key, which PostgreSQL
        // deployments must be given.
        (Signing::Hs256, None) => vec![("AUTH_KEY_ENCRYPTION_KEY", random_hex_32())],
        (Signing::Eddsa, _) => vec![("AUTH_KEY_ENCRYPTION_KEY", random_hex_32())],
    }
}

/// Runs `auth-server user --database-url URL <args>`, with `env`.
fn user_command(
    binary: &Path,
    database_url: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> BoxFuture<'static, Result<(), String>> {
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["user", "--database-url", database_url])
        .args(args)
        .env("AUTH_LOG", "warn")
        .envs(env.iter().copied());
    Box::pin(async move {
        let output = command.output().await.map_err(|err| err.to_string())?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    })
}

/// Out-of-band operations through the server's own command line.
struct CliHooks {
    binary: PathBuf,
    database_url: String,
}

impl Hooks for CliHooks {
    fn set_active(&self, email: &str, active: bool) -> BoxFuture<'static, Result<(), String>> {
        let action = if active { "activate" } else { "deactivate" };
        user_command(&self.binary, &self.database_url, &[action, email], &[])
    }

    /// `user create --email E [--full-name N] [--role R]...`, the password passed in
    /// `AUTH_USER_PASSWORD` rather than on the command line.
    fn create_user(
        &self,
        email: &str,
        password: &str,
        full_name: Option<&str>,
        roles: &[String],
    ) -> BoxFuture<'static, Result<(), String>> {
        let mut args = vec!["create", "--email", email];
        if let Some(name) = full_name {
            args.extend(["--full-name", name]);
        }
        for role in roles {
            args.extend(["--role", role.as_str()]);
        }
        user_command(
            &self.binary,
            &self.database_url,
            &args,
            &[("AUTH_USER_PASSWORD", password)],
        )
    }

    /// `user create --email E --password-hash H`.
    fn import_user(
        &self,
        email: &str,
        password_hash: &str,
    ) -> BoxFuture<'static, Result<(), String>> {
        let args = ["create", "--email", email, "--password-hash", password_hash];
        user_command(&self.binary, &self.database_url, &args, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(configs: &[ServerConfig<'_>]) -> Vec<String> {
        configs.iter().map(ServerConfig::label).collect()
    }

    #[test]
    fn the_matrix_adds_eddsa_for_the_default_set() {
        assert_eq!(
            labels(&configs(None, &[])),
            [
                "native,envelope,rbac",
                "personal-token",
                "jwt-user",
                "native,envelope,rbac (eddsa)"
            ]
        );
        assert_eq!(
            labels(&configs(None, &[Signing::Eddsa])),
            ["native,envelope,rbac (eddsa)"]
        );
        assert_eq!(labels(&configs(None, &[Signing::Hs256])).len(), 3);
        assert_eq!(labels(&configs(Some("rbac"), &[])), ["rbac"]);
        assert_eq!(
            labels(&configs(Some("rbac"), &[Signing::Hs256, Signing::Eddsa])),
            ["rbac", "rbac (eddsa)"]
        );
    }

    #[test]
    fn unexpected_skips_count_only_on_the_matrix() {
        use auth_conformance::{CaseOutcome, Outcome};
        let report = Report {
            label: "axum/sqlite".to_owned(),
            cases: vec![CaseOutcome {
                group: "login",
                name: "works",
                outcome: Outcome::Skipped("the target gave no rate limits".to_owned()),
            }],
        };
        let section = |matrix| Section {
            label: MATRIX[0].label(),
            reports: vec![report.clone()],
            matrix,
        };
        let (text, problems) = summarize(&[section(Some(MATRIX[0]))]);
        assert_eq!(problems, 1);
        assert!(
            text.contains("- the target gave no rate limits\n    axum/sqlite: login/works\n"),
            "{text}"
        );
        assert!(
            text.contains("- axum/sqlite: login/works skipped: the target gave no rate limits"),
            "{text}"
        );
        let (text, problems) = summarize(&[section(None)]);
        assert_eq!(problems, 0);
        assert!(!text.contains("does not expect"), "{text}");
    }

    #[test]
    fn secrets_are_64_hex_characters() {
        let (a, b) = (random_hex_32(), random_hex_32());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
