//! The server under test, for `conformance` and `bench` alike: which adapters and databases
//! a run covers, building the binary, a fresh database per run, and the process on a free
//! port with its log and memory.

use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use auth_diesel::TestDatabase;
use clap::ValueEnum;

/// Admin connection under which a fresh Postgres database is created, unless overridden.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// How long a server may take to answer `/healthz`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How much of a server's log an error shows.
const LOG_TAIL_LINES: usize = 20;

/// A web framework the server can serve with (`auth-server serve --adapter`). A fourth
/// adapter is one more variant: its name, the `All` expansion and the help text follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Adapter {
    /// auth-axum.
    Axum,
    /// auth-actix.
    Actix,
    /// auth-warp.
    Warp,
    /// Every adapter above, in turn.
    All,
}

/// A database the server can store in (`--database-url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Database {
    /// A file in a scratch directory of the run.
    Sqlite,
    /// A database of the run's own under the Postgres admin URL, dropped afterwards.
    Postgres,
    /// Both, in turn.
    All,
}

/// `choice` as the list of values it stands for: every value but `all` itself for `all`.
fn expand<T: ValueEnum + Copy + PartialEq>(choice: T, all: T) -> Vec<T> {
    if choice == all {
        T::value_variants()
            .iter()
            .copied()
            .filter(|value| *value != all)
            .collect()
    } else {
        vec![choice]
    }
}

/// Writes the value's command-line name, so names are spelled in one place (clap's).
fn write_name<T: ValueEnum>(value: &T, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match value.to_possible_value() {
        Some(possible) => f.write_str(possible.get_name()),
        None => Ok(()),
    }
}

impl Adapter {
    /// The adapters this choice covers.
    pub fn expand(self) -> Vec<Adapter> {
        expand(self, Adapter::All)
    }
}

impl fmt::Display for Adapter {
    /// The name `--adapter` takes, e.g. `axum`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_name(self, f)
    }
}

impl Database {
    /// The databases this choice covers.
    pub fn expand(self) -> Vec<Database> {
        expand(self, Database::All)
    }
}

impl fmt::Display for Database {
    /// The name `--database` takes, e.g. `sqlite`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_name(self, f)
    }
}

/// A random 64-bit number (std only: the xtask needs no `rand`).
pub fn rand_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// 32 random bytes as 64 hex characters: an HS256 secret or a key-encryption key.
pub fn random_hex_32() -> String {
    (0..4).map(|_| format!("{:016x}", rand_seed())).collect()
}

/// The Postgres admin URL of a run: `--postgres-url`, else `AUTH_TEST_POSTGRES_URL`, else
/// [`DEFAULT_POSTGRES_URL`].
pub fn postgres_admin_url(flag: Option<&str>) -> String {
    flag.map(str::to_owned)
        .or_else(TestDatabase::admin_url_from_env)
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned())
}

/// The target directory cargo builds into.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::project_root().join("target"))
}

/// A cargo build profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `dev`, in `target/debug`: quick to build, what the conformance suite needs.
    Debug,
    /// `release`, in `target/release`: what the benchmark measures.
    Release,
}

impl Profile {
    /// Where cargo puts this profile's binaries.
    pub fn dir(self) -> PathBuf {
        target_dir().join(match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        })
    }
}

/// Builds `packages` with `profile`; the directory holding the binaries.
pub fn build(profile: Profile, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let mut command = crate::cargo();
    command.arg("build");
    if profile == Profile::Release {
        command.arg("--release");
    }
    for package in packages {
        command.args(["--package", package]);
    }
    let status = command.status().context("cannot run cargo")?;
    if !status.success() {
        bail!("cargo build of {} failed", packages.join(", "));
    }
    Ok(profile.dir())
}

/// The binary `name` in `dir` (with the platform's suffix), which must exist.
pub fn executable(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        bail!("{} is missing after the build", path.display())
    }
}

/// A database of the run's own: a file in a scratch directory, or a Postgres database that
/// is dropped when this goes.
pub struct FreshDatabase {
    url: String,
    _postgres: Option<TestDatabase>,
    _scratch: tempfile::TempDir,
}

impl FreshDatabase {
    /// Creates one on `database` (SQLite or Postgres, then under `postgres_admin`, named
    /// `{prefix}_…` so a database left behind says which task made it).
    pub fn new(database: Database, postgres_admin: &str, prefix: &str) -> anyhow::Result<Self> {
        let scratch = tempfile::tempdir()?;
        let (url, postgres) = match database {
            Database::Sqlite => (
                format!("sqlite://{}", scratch.path().join("auth.db").display()),
                None,
            ),
            Database::Postgres => {
                let created = TestDatabase::create(postgres_admin, prefix).with_context(|| {
                    format!("cannot create a database through {postgres_admin}")
                })?;
                (created.url().to_owned(), Some(created))
            }
            Database::All => bail!("a fresh database is of one kind, not `all`"),
        };
        Ok(Self {
            url,
            _postgres: postgres,
            _scratch: scratch,
        })
    }

    /// Its URL, for `--database-url`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// How to start the server: `auth-server serve --adapter A --bind 127.0.0.1:PORT
/// --database-url U`, then the task's own arguments and environment.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The `auth-server` binary.
    pub binary: &'a Path,
    /// `--adapter` (not [`Adapter::All`]).
    pub adapter: Adapter,
    /// `--database-url`.
    pub database_url: &'a str,
    /// Further `serve` arguments.
    pub args: Vec<String>,
    /// Environment for the server, e.g. secrets, which stay off the command line.
    pub env: Vec<(&'static str, String)>,
    /// `AUTH_LOG` for the server.
    pub log_filter: &'a str,
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
    /// Starts the server as `launch` says and waits until `/healthz` answers; an error (with
    /// the end of the server's log) when it exits or does not answer in time.
    pub async fn start(launch: &Launch<'_>) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let log = std::fs::File::create(&launch.log_path)?;
        let mut command = Command::new(launch.binary);
        command
            .args(["serve", "--adapter", &launch.adapter.to_string(), "--bind"])
            .arg(addr.to_string())
            .args(["--database-url", launch.database_url])
            .args(&launch.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // The run's own settings only: nothing inherited from the caller's environment
        // (a stray AUTH_JWT_SECRET would change what the suite may assume).
        for (key, _) in std::env::vars_os() {
            if let Some(key) = key.to_str()
                && key.starts_with("AUTH_")
            {
                command.env_remove(key);
            }
        }
        command.env("AUTH_LOG", launch.log_filter);
        // Mail the run's servers send stays in the run's scratch directory (beside the log),
        // never in the working directory (the default on Postgres), unless the task sends
        // it to an SMTP sink.
        if !launch.args.iter().any(|arg| arg.starts_with("--smtp-url"))
            && let Some(scratch) = launch.log_path.parent()
        {
            command.env("AUTH_MAIL_OUTBOX", scratch.join("mail-outbox"));
        }
        command.envs(launch.env.iter().map(|(key, value)| (key, value)));
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", launch.binary.display()))?;
        let mut server = Self {
            child,
            addr,
            log_path: launch.log_path.clone(),
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", self.base_url());
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            self.check_alive()?;
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
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

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An error (with the end of the server's log) when the process has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("server exited ({status}){}", self.log_tail());
        }
        Ok(())
    }

    /// The last lines of the server's log, for error messages (empty when it logged nothing).
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
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

    /// Open file descriptors (Linux: the entries of `/proc/<pid>/fd`; `None` elsewhere).
    pub fn open_fds(&self) -> Option<u64> {
        let entries = std::fs::read_dir(format!("/proc/{}/fd", self.pid())).ok()?;
        Some(entries.count() as u64)
    }

    /// Sends `signal` to the process (SIGTERM to stop it, SIGKILL to crash it).
    pub fn signal(&self, signal: rustix::process::Signal) -> anyhow::Result<()> {
        let pid = i32::try_from(self.pid())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
            .context("the process id does not fit a pid")?;
        rustix::process::kill_process(pid, signal).context("cannot signal the server")?;
        Ok(())
    }

    /// Waits up to `limit` for the process to exit; its status, or `None` if still running.
    pub async fn wait_exit(&mut self, limit: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of `/proc/<pid>/status` in KiB.
pub fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_expands_to_every_other_value_and_names_come_from_clap() {
        let names = |adapters: Vec<Adapter>| -> Vec<String> {
            adapters.iter().map(Adapter::to_string).collect()
        };
        assert_eq!(names(Adapter::All.expand()), ["axum", "actix", "warp"]);
        assert_eq!(names(Adapter::Warp.expand()), ["warp"]);
        assert_eq!(
            Database::All.expand(),
            [Database::Sqlite, Database::Postgres]
        );
        assert_eq!(Database::Postgres.to_string(), "postgres");
        assert_eq!(Adapter::from_str("actix", false), Ok(Adapter::Actix));
    }

    #[test]
    fn the_flag_wins_over_the_default_admin_url() {
        assert_eq!(postgres_admin_url(Some("postgres://h/x")), "postgres://h/x");
    }

    #[test]
    fn a_fresh_database_is_of_one_kind() {
        let sqlite = FreshDatabase::new(Database::Sqlite, DEFAULT_POSTGRES_URL, "auth_xtask")
            .expect("sqlite");
        assert!(sqlite.url().starts_with("sqlite://"));
        assert!(FreshDatabase::new(Database::All, DEFAULT_POSTGRES_URL, "auth_xtask").is_err());
    }
}
