//! `cargo xtask conformance`: the black-box suite against real server processes.
//!
//! Without `--base-url`, every adapter on every database is checked with four server
//! configurations (each on its own server and database): the default profile set
//! `native,envelope,rbac` signing with HS256, the same signing with EdDSA, and
//! `personal-token` and `jwt-user` alone (HS256), which claim `native`'s
//! `POST /api/v1/auth/login`. `--profiles` checks one set instead, `--signing` picks the
//! algorithms. Every server applies the contract's rate limits and trusts 127.0.0.1 as a
//! proxy, so each case comes from a client IP of its own (`X-Forwarded-For`). The output is
//! one table per configuration.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auth_conformance::{
    Credentials, DEFAULT_PROFILES, Failure, Hooks, Limits, Mount, Report, SUITE_REUSE_INTERVAL,
    Target, render_table, run_suite,
};
use futures_util::future::BoxFuture;

/// Admin connection used to create a fresh database per run, unless overridden.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The configurations the matrix checks when neither `--profiles` nor `--signing` is given:
/// profile set and signing algorithm.
const CONFIGS: &[(&str, Signing)] = &[
    ("native,envelope,rbac", Signing::Hs256),
    ("personal-token", Signing::Hs256),
    ("jwt-user", Signing::Hs256),
    ("native,envelope,rbac", Signing::Eddsa),
];
/// The rate limits every server of the matrix applies.
const LIMITS: Limits = Limits::CONTRACT;
/// The address the suite connects from, which the servers trust as a proxy.
const SUITE_ADDRESS: &str = "127.0.0.1";

/// How a server signs access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Signing {
    /// HS256 with a random secret the suite knows.
    Hs256,
    /// EdDSA with keys in the database (encrypted under a random key-encryption key).
    Eddsa,
}

/// One server configuration of the matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    profiles: String,
    signing: Signing,
}

impl Config {
    /// The profile set, with `(eddsa)` when signing with EdDSA.
    fn label(&self) -> String {
        match self.signing {
            Signing::Hs256 => self.profiles.clone(),
            Signing::Eddsa => format!("{} (eddsa)", self.profiles),
        }
    }
}
/// How much of a server's log a start-up failure shows.
const LOG_TAIL_LINES: usize = 20;

/// Arguments of `cargo xtask conformance`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `axum`, `actix`, `warp` or `all`.
    #[arg(long, default_value = "all")]
    adapter: String,
    /// `sqlite`, `postgres` or `all`.
    #[arg(long, default_value = "all")]
    database: String,
    /// Check a running deployment instead of starting servers.
    #[arg(long)]
    base_url: Option<String>,
    /// Postgres admin URL under which a fresh database is created per run
    /// (default: `AUTH_TEST_POSTGRES_URL`, else the local server).
    #[arg(long)]
    postgres_url: Option<String>,
    /// Only cases whose `group/name` contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Profiles to mount (`name` or `name=/prefix`, comma-separated), passed to the server
    /// and the suite; default: the sets `native,envelope,rbac`, `personal-token`,
    /// `jwt-user` in turn (with `--base-url`: `native,envelope,rbac`).
    #[arg(long)]
    profiles: Option<String>,
    /// Signing algorithms to start servers with (comma-separated); default: HS256 for
    /// every profile set and EdDSA too for `native,envelope,rbac` (with `--profiles`: HS256
    /// only).
    #[arg(long, value_enum, value_delimiter = ',')]
    signing: Vec<Signing>,
    /// For `--base-url` runs: the deployment trusts this machine as a proxy, so the suite
    /// may give every case a client IP of its own in `X-Forwarded-For`.
    #[arg(long)]
    forwarded_for: bool,
    /// For `--base-url` runs: the deployment applies the contract's rate limits (login
    /// 10/900 per email and IP, 100/3600 per email, 100/900 per IP; registration 30/3600
    /// and refresh 300/900 per IP), which the rate-limit cases then exhaust.
    #[arg(long)]
    contract_limits: bool,
    /// For `--base-url` runs: the deployment's HS256 secret, for the cases that sign
    /// crafted tokens.
    #[arg(long, env = "AUTH_CONFORMANCE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Email of an existing user with the role `admin`, for `--base-url` runs (the matrix
    /// creates its own).
    #[arg(long, requires = "admin_password")]
    admin_email: Option<String>,
    /// That user's password (ignored without `--admin-email`).
    #[arg(long, env = "AUTH_CONFORMANCE_ADMIN_PASSWORD", hide_env_values = true)]
    admin_password: Option<String>,
}

/// Runs the suite; `Ok(false)` when a case failed.
pub fn run(args: Args) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Runtime::new()?;
    let sections = match &args.base_url {
        Some(url) => {
            let profiles = args
                .profiles
                .clone()
                .unwrap_or_else(|| DEFAULT_PROFILES.join(","));
            let admin = args
                .admin_email
                .clone()
                .zip(args.admin_password.clone())
                .map(|(email, password)| Credentials { email, password });
            let target = Target {
                base_url: url.trim_end_matches('/').to_owned(),
                label: url.clone(),
                hooks: None,
                reuse_interval: None,
                profiles: Mount::parse_list(&profiles)?,
                admin,
                forwarded_for: args.forwarded_for,
                limits: args.contract_limits.then_some(Limits::CONTRACT),
                jwt_secret: args.jwt_secret.clone().map(String::into_bytes),
            };
            let report = runtime.block_on(run_suite(&target, args.filter.as_deref()));
            vec![(profiles, vec![report])]
        }
        None => run_matrix(&runtime, &args)?,
    };
    let mut failed = 0;
    for (config, reports) in &sections {
        println!("== profiles: {config}\n{}", render_table(reports));
        failed += reports.iter().map(Report::failed).sum::<usize>();
    }
    Ok(failed == 0)
}

fn pick<'a>(choice: &str, all: &[&'a str]) -> anyhow::Result<Vec<&'a str>> {
    if choice == "all" {
        return Ok(all.to_vec());
    }
    match all.iter().find(|known| **known == choice) {
        Some(known) => Ok(vec![*known]),
        None => bail!(
            "unknown choice `{choice}`; expected one of {} or all",
            all.join(", ")
        ),
    }
}

/// The configurations `--profiles` and `--signing` select: without `--profiles`, those of
/// [`CONFIGS`] with a selected algorithm (all by default); with it, that set with each
/// selected algorithm (HS256 by default).
fn configs(profiles: Option<&str>, signing: &[Signing]) -> Vec<Config> {
    let config = |profiles: &str, signing| Config {
        profiles: profiles.to_owned(),
        signing,
    };
    match (profiles, signing) {
        (Some(profiles), []) => vec![config(profiles, Signing::Hs256)],
        (Some(profiles), signing) => signing.iter().map(|s| config(profiles, *s)).collect(),
        (None, []) => CONFIGS.iter().map(|(p, s)| config(p, *s)).collect(),
        (None, signing) => CONFIGS
            .iter()
            .filter(|(_, s)| signing.contains(s))
            .map(|(p, s)| config(p, *s))
            .collect(),
    }
}

/// Runs the suite for each configuration, database and adapter; returns the reports
/// grouped by configuration.
fn run_matrix(
    runtime: &tokio::runtime::Runtime,
    args: &Args,
) -> anyhow::Result<Vec<(String, Vec<Report>)>> {
    let adapters = pick(&args.adapter, &["axum", "actix", "warp"])?;
    let databases = pick(&args.database, &["sqlite", "postgres"])?;
    let configs = configs(args.profiles.as_deref(), &args.signing);
    for config in &configs {
        Mount::parse_list(&config.profiles)?;
    }
    let binary = build_server()?;
    let postgres_url = args
        .postgres_url
        .clone()
        .or_else(|| std::env::var("AUTH_TEST_POSTGRES_URL").ok())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    let mut sections = Vec::new();
    for config in configs {
        let mut reports = Vec::new();
        for database in &databases {
            for adapter in &adapters {
                eprintln!("== {adapter}/{database} with {}", config.label());
                let run = Run {
                    binary: &binary,
                    adapter,
                    database,
                    postgres_url: &postgres_url,
                    config: &config,
                    filter: args.filter.as_deref(),
                };
                reports.push(run.report(runtime)?);
            }
        }
        sections.push((config.label(), reports));
    }
    Ok(sections)
}

/// One server process checked once.
struct Run<'a> {
    binary: &'a Path,
    adapter: &'a str,
    database: &'a str,
    postgres_url: &'a str,
    config: &'a Config,
    filter: Option<&'a str>,
}

impl Run<'_> {
    /// Starts the server on a fresh database, creates an admin user, runs the suite. A server
    /// that does not come up fails every case, with its log, so the other runs still report;
    /// only a failure to prepare the run at all is an error.
    fn report(&self, runtime: &tokio::runtime::Runtime) -> anyhow::Result<Report> {
        let label = format!("{}/{}", self.adapter, self.database);
        let scratch = tempfile::tempdir()?;
        let fresh = FreshDatabase::new(self.database, self.postgres_url, scratch.path())?;
        let jwt_secret = (self.config.signing == Signing::Hs256).then(random_hex_32);
        let mut server = ServerProcess::start(
            self.binary,
            self.adapter,
            &fresh.url,
            self.config,
            jwt_secret.as_deref(),
            scratch.path(),
        )?;
        let hooks = Arc::new(CliHooks {
            binary: self.binary.to_path_buf(),
            database_url: fresh.url.clone(),
        });
        let admin = Credentials {
            email: format!("admin-{:016x}@example.com", rand_seed()),
            password: format!("pw-{:016x}{:016x}", rand_seed(), rand_seed()),
        };
        let report = runtime.block_on(async {
            if let Err(err) = server.wait_ready().await {
                let failure = Failure::new(
                    format!("the server starts for {}", self.config.label()),
                    format!("{err:#}\n{}", server.log_tail()),
                );
                return Report::unavailable(label.clone(), self.filter, failure);
            }
            let created = hooks
                .create_user(&admin.email, &admin.password, None, &["admin".to_owned()])
                .await;
            if let Err(err) = created {
                let failure = Failure::new("the admin user is created", err);
                return Report::unavailable(label.clone(), self.filter, failure);
            }
            let target = Target {
                base_url: server.base_url.clone(),
                label: label.clone(),
                hooks: Some(hooks),
                reuse_interval: Some(SUITE_REUSE_INTERVAL),
                // Checked by `run_matrix` before any server started.
                profiles: Mount::parse_list(&self.config.profiles).unwrap_or_default(),
                admin: Some(admin),
                forwarded_for: true,
                limits: Some(LIMITS),
                jwt_secret: jwt_secret.map(String::into_bytes),
            };
            run_suite(&target, self.filter).await
        });
        drop(server);
        Ok(report)
    }
}

fn build_server() -> anyhow::Result<PathBuf> {
    let status = crate::cargo()
        .args(["build", "--package", "auth-server", "--bin", "auth-server"])
        .status()?;
    if !status.success() {
        bail!("building auth-server failed");
    }
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"));
    Ok(target_dir.join("debug").join("auth-server"))
}

/// A database of the run's own: a file in the scratch directory, or a Postgres database that
/// is dropped when this goes.
struct FreshDatabase {
    url: String,
    postgres: Option<(String, String)>,
}

impl FreshDatabase {
    fn new(kind: &str, postgres_url: &str, scratch: &Path) -> anyhow::Result<Self> {
        if kind == "sqlite" {
            return Ok(Self {
                url: format!("sqlite://{}", scratch.join("auth.db").display()),
                postgres: None,
            });
        }
        let name = format!("auth_conformance_{}_{:x}", std::process::id(), rand_seed());
        let url = auth_diesel::create_postgres_database(postgres_url, &name)
            .with_context(|| format!("cannot create a database through {postgres_url}"))?;
        Ok(Self {
            url,
            postgres: Some((postgres_url.to_owned(), name)),
        })
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.postgres
            && let Err(err) = auth_diesel::drop_postgres_database(admin, name)
        {
            eprintln!("could not drop database {name}: {err}");
        }
    }
}

fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// 32 random bytes as 64 hex characters: an HS256 secret or a key-encryption key.
fn random_hex_32() -> String {
    (0..4).map(|_| format!("{:016x}", rand_seed())).collect()
}

/// A server process on a free port, killed when this goes.
struct ServerProcess {
    child: Child,
    base_url: String,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `binary` serving `config`, signing with `jwt_secret` (HS256) or with EdDSA
    /// keys under a fresh key-encryption key; secrets go through the environment, not the
    /// command line.
    fn start(
        binary: &Path,
        adapter: &str,
        database_url: &str,
        config: &Config,
        jwt_secret: Option<&str>,
        scratch: &Path,
    ) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log_path = scratch.join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let mut command = Command::new(binary);
        command
            .args(["serve", "--adapter", adapter, "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--database-url", database_url])
            .args(["--profiles", &config.profiles])
            // Each case sends a client IP of its own, so the limits apply per case.
            .args(["--trusted-proxies", SUITE_ADDRESS])
            .arg(format!("--rate-login-email-ip={}", LIMITS.login_email_ip))
            .arg(format!("--rate-login-email={}", LIMITS.login_email))
            .arg(format!("--rate-login-ip={}", LIMITS.login_ip))
            .arg(format!("--rate-register-ip={}", LIMITS.register_ip))
            .arg(format!("--rate-refresh-ip={}", LIMITS.refresh_ip))
            .args([
                "--refresh-reuse-interval",
                &SUITE_REUSE_INTERVAL.as_secs().to_string(),
            ])
            .env("AUTH_LOG", "warn")
            .env_remove("AUTH_JWT_SECRET")
            .env_remove("AUTH_KEY_ENCRYPTION_KEY");
        match (config.signing, jwt_secret) {
            (Signing::Hs256, Some(secret)) => {
                command.env("AUTH_JWT_SECRET", secret);
            }
            (Signing::Hs256, None) => {}
            (Signing::Eddsa, _) => {
                command
                    .args(["--signing-algorithm", "eddsa"])
                    .env("AUTH_KEY_ENCRYPTION_KEY", random_hex_32());
            }
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        Ok(Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log: log_path,
        })
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/healthz", self.base_url);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited at start-up ({status})");
            }
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!(
            "server at {} did not become healthy within 60 s",
            self.base_url
        )
    }

    /// The last lines the server logged.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(LOG_TAIL_LINES);
        format!("server log:\n{}", lines[start..].join("\n"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(configs: &[Config]) -> Vec<String> {
        configs.iter().map(Config::label).collect()
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
    fn secrets_are_64_hex_characters() {
        let (a, b) = (random_hex_32(), random_hex_32());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
