//! The server under test: building it, a fresh database for each run, the process on a free
//! port, and its memory as the kernel reports it.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::load::{Connection, request};

/// Admin connection under which a fresh Postgres database is created, unless overridden.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long a server may take to answer `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The target directory cargo builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"))
}

/// Builds `packages` in release mode; the release directory.
pub fn build_release(packages: &[&str]) -> anyhow::Result<PathBuf> {
    let mut command = crate::cargo();
    command.args(["build", "--release"]);
    for package in packages {
        command.args(["--package", package]);
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build --release of {} failed", packages.join(", "));
    }
    Ok(target_dir().join("release"))
}

/// A database of the run's own: a file in a scratch directory, or a Postgres database that
/// is dropped when this goes.
pub struct FreshDatabase {
    /// Its URL, for `--database-url`.
    pub url: String,
    postgres: Option<(String, String)>,
    _scratch: tempfile::TempDir,
}

impl FreshDatabase {
    /// Creates one: `kind` is `sqlite` or `postgres` (then under `postgres_admin`).
    pub fn new(kind: &str, postgres_admin: &str) -> anyhow::Result<Self> {
        let scratch = tempfile::tempdir()?;
        if kind == "sqlite" {
            return Ok(Self {
                url: format!("sqlite://{}", scratch.path().join("auth.db").display()),
                postgres: None,
                _scratch: scratch,
            });
        }
        let name = format!("auth_bench_{}_{:x}", std::process::id(), seed());
        let url = auth_diesel::create_postgres_database(postgres_admin, &name)
            .with_context(|| format!("cannot create a database through {postgres_admin}"))?;
        Ok(Self {
            url,
            postgres: Some((postgres_admin.to_owned(), name)),
            _scratch: scratch,
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

fn seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The `auth-server` binary.
    pub binary: PathBuf,
    /// `axum`, `actix` or `warp`.
    pub adapter: String,
    /// `--database-url`.
    pub database_url: String,
    /// `--hashing-slots`, when not the server's default.
    pub hashing_slots: Option<usize>,
    /// Further `serve` arguments.
    pub extra_args: Vec<String>,
    /// `AUTH_LOG` for the server.
    pub log_filter: String,
    /// Where the server's log goes.
    pub log_path: PathBuf,
}

/// A server process on a free port, killed when this goes.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    log_path: PathBuf,
}

impl ServerProcess {
    /// Starts the server with `--profiles native`, the default argon2 parameters and rate
    /// limits, the loopback as a trusted proxy, and the benchmark's `GET /bench/hello`; waits
    /// until `/healthz` answers.
    pub async fn start(config: &ServerConfig) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(&config.log_path)?;
        let mut command = Command::new(&config.binary);
        command
            .args(["serve", "--adapter", &config.adapter, "--bind"])
            .arg(addr.to_string())
            .args(["--database-url", &config.database_url])
            .args(["--profiles", "native", "--bench-hello"])
            // The load generator stands in for a proxy in front of many clients: it names a
            // client per request in `X-Forwarded-For`, so the per-IP rate limits work as
            // they would in production without tripping.
            .args(["--trusted-proxies", "127.0.0.1"])
            .env("AUTH_LOG", &config.log_filter)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // The run's own settings only: nothing inherited from the caller's environment.
        for (key, _) in std::env::vars_os() {
            if let Some(key) = key.to_str()
                && key.starts_with("AUTH_")
                && key != "AUTH_LOG"
            {
                command.env_remove(key);
            }
        }
        if let Some(slots) = config.hashing_slots {
            command.args(["--hashing-slots", &slots.to_string()]);
        }
        command.args(&config.extra_args);
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", config.binary.display()))?;
        let mut server = Self {
            child,
            addr,
            log_path: config.log_path.clone(),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let health = request("GET", "/healthz", &[], None);
        while Instant::now() < deadline {
            self.check_alive()?;
            let mut connection = Connection::new(self.addr);
            if let Ok(response) = connection.send(&health).await
                && response.status == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "server at {} did not become healthy within {} s{}",
            self.addr,
            READY_TIMEOUT.as_secs(),
            self.log_tail()
        )
    }

    /// An error (with the end of the server's log) when the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("server exited ({status}){}", self.log_tail());
        }
        Ok(())
    }

    /// The last lines of the server's log, for error messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        if tail.is_empty() {
            String::new()
        } else {
            format!("; server log ends with:\n{tail}")
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Current resident set size in KiB (Linux; `None` elsewhere).
    pub fn rss_kib(&self) -> Option<u64> {
        status_field(self.pid(), "VmRSS")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of `/proc/<pid>/status` in KiB.
fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Watches a process's peak resident set while something runs: polls `VmRSS` every few
/// milliseconds, and also resets and reads the kernel's own high-water mark (`VmHWM`, reset
/// through `/proc/<pid>/clear_refs`) so a short spike between polls is not missed.
pub struct PeakRss {
    pid: u32,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    poller: Option<std::thread::JoinHandle<()>>,
    hwm_reset: bool,
}

impl PeakRss {
    /// Starts watching `pid`.
    pub fn start(pid: u32) -> Self {
        let hwm_reset = std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok();
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(status_field(pid, "VmRSS").unwrap_or(0)));
        let poller = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = status_field(pid, "VmRSS") {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        Self {
            pid,
            stop,
            peak,
            poller: Some(poller),
            hwm_reset,
        }
    }

    /// Stops watching; the peak in KiB (`None` when nothing could be read).
    pub fn finish(mut self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
        let mut peak = self.peak.load(Ordering::Relaxed);
        if self.hwm_reset
            && let Some(hwm) = status_field(self.pid, "VmHWM")
        {
            peak = peak.max(hwm);
        }
        (peak > 0).then_some(peak)
    }
}

impl Drop for PeakRss {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Whether `path` exists as a file (the binaries after a build).
pub fn require_file(path: &Path) -> anyhow::Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        bail!("{} is missing after the build", path.display())
    }
}
