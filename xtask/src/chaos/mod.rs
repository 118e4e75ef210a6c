//! `cargo xtask chaos`: fault cases against real server processes (the debug build of
//! `auth-server`, one process per instance, each on a free port) and real databases: a
//! crash (`kill -9`) during a write storm, SIGTERM under load, a Postgres outage and its
//! recovery (on a cluster of the run's own, never the developer's), pool exhaustion, three
//! instances of mixed adapters on one Postgres database, a soak, and a failover on a
//! pg_auto_failover formation of the run's own. Prints a table of case ×
//! result with the measured figures; fails when a case does. See docs/operations.md,
//! "Shutdown, crashes and chaos testing".

mod client;
mod cluster;
mod failover;
mod formation;
mod instances;
mod kill9;
mod outage;
mod pool;
mod sigterm;
mod soak;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ValueEnum;

use crate::server::{self, Adapter, Database, Launch, Profile};

/// Arguments of `cargo xtask chaos`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The databases to run the database-neutral cases on.
    #[arg(long, value_enum, default_value_t = Database::All)]
    database: Database,
    /// The adapters the single-instance cases use (the crash case rotates through them
    /// across restarts).
    #[arg(long, value_enum, default_value_t = Adapter::All)]
    adapter: Adapter,
    /// Only these cases (comma-separated; default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    cases: Vec<Case>,
    /// Each case bounded to a few seconds, for CI.
    #[arg(long)]
    short: bool,
    /// Minutes of the soak (default 10, or 0.75 with `--short`).
    #[arg(long)]
    soak_minutes: Option<f64>,
    /// Postgres admin URL under which fresh databases are created (default:
    /// `AUTH_TEST_POSTGRES_URL`, else the local server). The outage case never stops this
    /// server: it makes a cluster of its own.
    #[arg(long)]
    postgres_url: Option<String>,
}

/// A chaos case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Case {
    /// `kill -9` at random moments of a write storm; every acknowledged write checked after.
    Kill9,
    /// SIGTERM under load: requests in flight answered, exit 0 within the grace.
    Sigterm,
    /// Postgres stopped and started again (its own cluster): answer time and recovery.
    Outage,
    /// The pool held: 503 with Retry-After, never a hang (Postgres).
    Pool,
    /// Three instances (axum, actix, warp) on one Postgres database.
    Instances,
    /// A mixed workload for N minutes: RSS, open fds and row counts stay flat.
    Soak,
    /// A pg_auto_failover failover under a registration load: write gap, lost writes.
    Failover,
}

/// What one run of a case found.
#[derive(Debug)]
pub struct Outcome {
    /// The case.
    pub case: Case,
    /// Where it ran, e.g. `sqlite` or `postgres/axum`.
    pub on: String,
    /// Whether it held.
    pub passed: bool,
    /// The measured figures, or what went wrong.
    pub figures: String,
}

/// What a case needs to start servers.
pub struct Env<'a> {
    /// The `auth-server` binary.
    pub binary: &'a Path,
    /// The Postgres admin URL for fresh databases.
    pub postgres_admin: &'a str,
    /// Scratch space (logs, SQLite files).
    pub scratch: &'a Path,
    /// Short (CI) bounds.
    pub short: bool,
}

impl Env<'_> {
    /// A launch of `adapter` on `database_url` with `args` and the chaos defaults: cheap
    /// hashing unless `args` set it (the cases measure faults, not argon2), one HS256 secret
    /// for every instance and restart.
    pub fn launch<'b>(
        &'b self,
        adapter: Adapter,
        database_url: &'b str,
        args: &[&str],
        log_name: &str,
    ) -> Launch<'b> {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        if !args.contains(&"--argon2-memory-kib") {
            all.extend(
                ["--argon2-memory-kib", "1024", "--argon2-iterations", "1"].map(String::from),
            );
        }
        Launch {
            binary: self.binary,
            adapter,
            database_url,
            args: all,
            env: vec![("AUTH_JWT_SECRET", shared_secret().to_owned())],
            log_filter: "warn",
            log_path: self.log_path(log_name),
        }
    }

    /// Where the log named `name` goes.
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.scratch.join(format!("{name}.log"))
    }
}

/// The HS256 secret of the run: the same for every instance and every restart, so tokens
/// issued by one process are read by the next.
fn shared_secret() -> &'static str {
    static SECRET: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SECRET.get_or_init(server::random_hex_32)
}

/// Rate limits out of the way, for the cases that are not about them.
pub const NO_LIMITS: &[&str] = &[
    "--rate-register-ip",
    "off",
    "--rate-refresh-ip",
    "off",
    "--rate-login-ip",
    "off",
    "--rate-login-email-ip",
    "off",
    "--rate-login-email",
    "off",
];

/// Runs the chosen cases; `Ok(false)` when one failed.
pub fn run(args: Args) -> anyhow::Result<bool> {
    let dir = server::build(Profile::Debug, &["auth-server"])?;
    let binary = server::executable(&dir, "auth-server")?;
    let scratch = tempfile::tempdir()?;
    let postgres_admin = server::postgres_admin_url(args.postgres_url.as_deref());
    let env = Env {
        binary: &binary,
        postgres_admin: &postgres_admin,
        scratch: scratch.path(),
        short: args.short,
    };
    let cases = if args.cases.is_empty() {
        Case::value_variants().to_vec()
    } else {
        args.cases.clone()
    };
    let databases = args.database.expand();
    let adapters = args.adapter.expand();
    let soak = Duration::from_secs_f64(
        60.0 * args
            .soak_minutes
            .unwrap_or(if args.short { 0.75 } else { 10.0 }),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut outcomes = Vec::new();
    for case in cases {
        let found: Vec<Outcome> = runtime.block_on(async {
            match case {
                Case::Kill9 => {
                    let mut all = Vec::new();
                    for &database in &databases {
                        all.push(kill9::run(&env, database, &adapters).await);
                    }
                    all
                }
                Case::Sigterm => {
                    let mut all = Vec::new();
                    for &adapter in &adapters {
                        all.push(sigterm::run(&env, adapter).await);
                    }
                    all
                }
                Case::Outage => vec![outage::run(&env, adapters[0]).await],
                Case::Pool => vec![pool::run(&env, adapters[0]).await],
                Case::Instances => vec![instances::run(&env).await],
                Case::Failover => {
                    let mut all = Vec::new();
                    for &adapter in &adapters {
                        all.push(failover::run(&env, adapter).await);
                    }
                    all
                }
                Case::Soak => {
                    let mut all = Vec::new();
                    for &database in &databases {
                        all.push(soak::run(&env, database, adapters[0], soak).await);
                    }
                    all
                }
            }
        });
        for outcome in &found {
            eprintln!("{}", row(outcome));
        }
        outcomes.extend(found);
    }
    println!("{}", table(&outcomes));
    Ok(outcomes.iter().all(|o| o.passed))
}

impl Outcome {
    /// An outcome of `case` on `on`, passed or not, with its figures.
    pub fn new(case: Case, on: impl Into<String>, passed: bool, figures: String) -> Self {
        Self {
            case,
            on: on.into(),
            passed,
            figures,
        }
    }

    /// A case that could not run to the end: a failure naming why.
    pub fn error(case: Case, on: impl Into<String>, err: &anyhow::Error) -> Self {
        Self::new(case, on, false, format!("error: {err:#}"))
    }
}

fn case_name(case: Case) -> String {
    case.to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

fn row(outcome: &Outcome) -> String {
    format!(
        "| {:<9} | {:<16} | {:<4} | {} |",
        case_name(outcome.case),
        outcome.on,
        if outcome.passed { "ok" } else { "FAIL" },
        outcome.figures.replace('\n', " ")
    )
}

/// The case × result table.
fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| case      | on               | ok   | figures |");
    let _ = writeln!(out, "|-----------|------------------|------|---------|");
    for outcome in outcomes {
        let _ = writeln!(out, "{}", row(outcome));
    }
    out
}

/// A small random number below `n` (std only).
pub fn random_below(n: u64) -> u64 {
    server::rand_seed() % n.max(1)
}
