//! `cargo xtask conformance`: the black-box suite against real server processes.
//!
//! Without `--base-url`, every adapter on every database is checked with three profile sets
//! (each on its own server and database): the default `native,envelope,rbac`, and
//! `personal-token` and `jwt-user` alone, which claim `native`'s `POST /api/v1/auth/login`.
//! `--profiles` checks one set instead. The output is one table per profile set.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auth_conformance::{
    Credentials, DEFAULT_PROFILES, Failure, Hooks, Mount, Report, Target, render_table, run_suite,
};
use futures_util::future::BoxFuture;

/// Replays allowed within this window; short so the suite can wait past it.
const REUSE_INTERVAL: Duration = Duration::from_secs(2);
/// Admin connection used to create a fresh database per run, unless overridden.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The profile sets the matrix checks when `--profiles` is not given.
const PROFILE_SETS: &[&str] = &["native,envelope,rbac", "personal-token", "jwt-user"];
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
    /// and the suite; default: the three sets `native,envelope,rbac`, `personal-token`,
    /// `jwt-user` in turn (with `--base-url`: `native,envelope,rbac`).
    #[arg(long)]
    profiles: Option<String>,
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
            };
            let report = runtime.block_on(run_suite(&target, args.filter.as_deref()));
            vec![(profiles, vec![report])]
        }
        None => run_matrix(&runtime, &args)?,
    };
    let mut failed = 0;
    for (profiles, reports) in &sections {
        println!("== profiles: {profiles}\n{}", render_table(reports));
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

/// Runs the suite for each profile set, database and adapter; returns the reports grouped
/// by profile set.
fn run_matrix(
    runtime: &tokio::runtime::Runtime,
    args: &Args,
) -> anyhow::Result<Vec<(String, Vec<Report>)>> {
    let adapters = pick(&args.adapter, &["axum", "actix", "warp"])?;
    let databases = pick(&args.database, &["sqlite", "postgres"])?;
    let profile_sets: Vec<String> = match &args.profiles {
        Some(profiles) => vec![profiles.clone()],
        None => PROFILE_SETS.iter().map(|set| (*set).to_owned()).collect(),
    };
    for profiles in &profile_sets {
        Mount::parse_list(profiles)?;
    }
    let binary = build_server()?;
    let postgres_url = args
        .postgres_url
        .clone()
        .or_else(|| std::env::var("AUTH_TEST_POSTGRES_URL").ok())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    let mut sections = Vec::new();
    for profiles in profile_sets {
        let mut reports = Vec::new();
        for database in &databases {
            for adapter in &adapters {
                eprintln!("== {adapter}/{database} with {profiles}");
                let run = Run {
                    binary: &binary,
                    adapter,
                    database,
                    postgres_url: &postgres_url,
                    profiles: &profiles,
                    filter: args.filter.as_deref(),
                };
                reports.push(run.report(runtime)?);
            }
        }
        sections.push((profiles, reports));
    }
    Ok(sections)
}

/// One server process checked once.
struct Run<'a> {
    binary: &'a Path,
    adapter: &'a str,
    database: &'a str,
    postgres_url: &'a str,
    profiles: &'a str,
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
        let mut server = ServerProcess::start(
            self.binary,
            self.adapter,
            &fresh.url,
            self.profiles,
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
                    format!("the server starts with --profiles {}", self.profiles),
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
                reuse_interval: Some(REUSE_INTERVAL),
                // Checked by `run_matrix` before any server started.
                profiles: Mount::parse_list(self.profiles).unwrap_or_default(),
                admin: Some(admin),
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

/// A server process on a free port, killed when this goes.
struct ServerProcess {
    child: Child,
    base_url: String,
    log: PathBuf,
}

impl ServerProcess {
    fn start(
        binary: &Path,
        adapter: &str,
        database_url: &str,
        profiles: &str,
        scratch: &Path,
    ) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log_path = scratch.join("server.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(binary)
            .args(["serve", "--adapter", adapter, "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--database-url", database_url])
            .args(["--profiles", profiles])
            // The suite makes hundreds of users and logins from one address and does not
            // cover rate limiting.
            .args(["--rate-login-email-ip", "off", "--rate-login-email", "off"])
            .args(["--rate-login-ip", "off", "--rate-register-ip", "off"])
            .args(["--rate-refresh-ip", "off"])
            .args([
                "--refresh-reuse-interval",
                &REUSE_INTERVAL.as_secs().to_string(),
            ])
            .env("AUTH_LOG", "warn")
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
