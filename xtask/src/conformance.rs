//! `cargo xtask conformance`: the black-box suite against real server processes.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auth_conformance::{Hooks, Report, Target, render_table, run_suite};
use futures_util::future::BoxFuture;

/// Replays allowed within this window; short so the suite can wait past it.
const REUSE_INTERVAL: Duration = Duration::from_secs(2);
/// Admin connection used to create a fresh database per run, unless overridden.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

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
}

/// Runs the suite; `Ok(false)` when a case failed.
pub fn run(args: Args) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Runtime::new()?;
    let reports = match &args.base_url {
        Some(url) => {
            let target = Target {
                base_url: url.trim_end_matches('/').to_owned(),
                label: url.clone(),
                hooks: None,
                reuse_interval: None,
            };
            vec![runtime.block_on(run_suite(&target, args.filter.as_deref()))]
        }
        None => run_matrix(&runtime, &args)?,
    };
    println!("{}", render_table(&reports));
    let failed: usize = reports.iter().map(Report::failed).sum();
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

fn run_matrix(runtime: &tokio::runtime::Runtime, args: &Args) -> anyhow::Result<Vec<Report>> {
    let adapters = pick(&args.adapter, &["axum", "actix", "warp"])?;
    let databases = pick(&args.database, &["sqlite", "postgres"])?;
    let binary = build_server()?;
    let postgres_url = args
        .postgres_url
        .clone()
        .or_else(|| std::env::var("AUTH_TEST_POSTGRES_URL").ok())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned());
    let mut reports = Vec::new();
    for database in &databases {
        for adapter in &adapters {
            let scratch = tempfile::tempdir()?;
            let fresh = FreshDatabase::new(database, &postgres_url, scratch.path())?;
            eprintln!("== {adapter}/{database}");
            let server = ServerProcess::start(&binary, adapter, &fresh.url, scratch.path())?;
            let target = Target {
                base_url: server.base_url.clone(),
                label: format!("{adapter}/{database}"),
                hooks: Some(Arc::new(CliHooks {
                    binary: binary.clone(),
                    database_url: fresh.url.clone(),
                })),
                reuse_interval: Some(REUSE_INTERVAL),
            };
            let report = runtime.block_on(async {
                server.wait_ready().await?;
                Ok::<_, anyhow::Error>(run_suite(&target, args.filter.as_deref()).await)
            })?;
            drop(server);
            reports.push(report);
        }
    }
    Ok(reports)
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
}

impl ServerProcess {
    fn start(
        binary: &Path,
        adapter: &str,
        database_url: &str,
        scratch: &Path,
    ) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log = std::fs::File::create(scratch.join("server.log"))?;
        let child = Command::new(binary)
            .args(["serve", "--adapter", adapter, "--bind"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--database-url", database_url])
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
        })
    }

    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/healthz", self.base_url);
        while Instant::now() < deadline {
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
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Out-of-band operations through the server's own command line.
struct CliHooks {
    binary: PathBuf,
    database_url: String,
}

impl Hooks for CliHooks {
    fn set_active(&self, email: &str, active: bool) -> BoxFuture<'static, Result<(), String>> {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .args(["user", "--database-url", &self.database_url])
            .arg(if active { "activate" } else { "deactivate" })
            .arg(email)
            .env("AUTH_LOG", "warn");
        Box::pin(async move {
            let output = command.output().await.map_err(|err| err.to_string())?;
            if output.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&output.stderr).into_owned())
            }
        })
    }
}
