//! `cargo xtask bench`: the server in release mode under a load generator of its own, for
//! every adapter × database; a table on stdout and `target/bench/latest.json`.
//!
//! The xtask itself is built in debug mode by `cargo xtask`, too slow to generate load, so it
//! builds `auth-server` and `xtask` in release mode and hands over to the release binary.
//! See `docs/performance.md`.

mod hashing;
mod load;
mod memory;
mod report;
mod scale;
mod scenarios;
mod seed;

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use crate::server::{self, Adapter, Database, FreshDatabase, Launch, Profile, ServerProcess};
use report::{Machine, Ratios, Report, Settings};

/// Set on the release binary the debug one hands over to (the build is done then).
const HANDOVER_ENV: &str = "XTASK_BENCH_BUILT";

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The adapters to measure.
    #[arg(long, value_enum, default_value_t = Adapter::All)]
    adapter: Adapter,
    /// The databases to measure on (`all` skips Postgres, with a note, when the server
    /// cannot be reached).
    #[arg(long, value_enum, default_value_t = Database::All)]
    database: Database,
    /// Measuring window per scenario in seconds (default 10, or 2 with `--quick`).
    #[arg(long)]
    duration: Option<f64>,
    /// A few seconds per scenario: a smoke test that fails only when a scenario errors.
    #[arg(long)]
    quick: bool,
    /// Concurrent keep-alive connections per load.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Only these scenarios (comma-separated; `idle` always runs). Known: hello, me, me-pat,
    /// login, me-under-login-flood, login-flood-memory, register, refresh.
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// `--hashing-slots` for the server (default: the server's own, one per core).
    #[arg(long)]
    hashing_slots: Option<usize>,
    /// Extra arguments for `auth-server serve`, repeatable, e.g.
    /// `--server-arg=--principal-cache-ms=0` to measure without the principal cache.
    #[arg(long = "server-arg", allow_hyphen_values = true)]
    server_args: Vec<String>,
    /// The server's log filter (`AUTH_LOG`); `info` logs one line per request.
    #[arg(long, default_value = "warn")]
    server_log: String,
    /// Worker threads of the load generator (default: one per core).
    #[arg(long)]
    client_threads: Option<usize>,
    /// Scale run instead of the scenarios: `me` (principal cache off), `login` and `refresh`
    /// with 1,000 and with USERS users and live sessions seeded, their latency ratios, and on
    /// Postgres three instances serving `me` with revocations flowing (docs/performance.md).
    #[arg(long, value_name = "USERS", num_args = 0..=1, default_missing_value = "1000000")]
    scale: Option<u64>,
    /// Postgres admin URL under which a fresh database is created per run
    /// (default: `AUTH_TEST_POSTGRES_URL`, else the local server).
    #[arg(long)]
    postgres_url: Option<String>,
}

/// Runs the benchmark; `Ok(false)` when a scenario errored.
pub fn run(args: Args) -> anyhow::Result<bool> {
    let adapters = args.adapter.expand();
    let databases = args.database.expand();
    let selected = selected_scenarios(&args.scenarios)?;
    let handed_over = std::env::var_os(HANDOVER_ENV).is_some();
    if cfg!(debug_assertions) && !handed_over {
        let release = server::build(Profile::Release, &["auth-server", "xtask"])?;
        let xtask = server::executable(&release, "xtask")?;
        let status = Command::new(&xtask)
            .args(std::env::args_os().skip(1))
            .env(HANDOVER_ENV, "1")
            .status()
            .with_context(|| format!("cannot run {}", xtask.display()))?;
        return Ok(status.success());
    }
    let release = if handed_over {
        Profile::Release.dir()
    } else {
        server::build(Profile::Release, &["auth-server"])?
    };
    let binary = server::executable(&release, "auth-server")?;

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let measure = args.duration.unwrap_or(if args.quick { 2.0 } else { 10.0 });
    if !(measure > 0.0 && measure <= 3600.0) {
        bail!("--duration must be between 0 and 3600 seconds");
    }
    let plan = load::Plan {
        warmup: Duration::from_secs_f64(if args.quick { 0.5 } else { 2.0 }),
        measure: Duration::from_secs_f64(measure),
    };
    let client_threads = args.client_threads.unwrap_or(cores).max(1);
    let hashing_slots = args.hashing_slots.unwrap_or(cores);
    let postgres_url = server::postgres_admin_url(args.postgres_url.as_deref());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads)
        .enable_all()
        .build()?;

    if let Some(users) = args.scale {
        let scratch = tempfile::tempdir()?;
        let run = scale::Run {
            binary: &binary,
            serve_args: serve_args(&args),
            scratch: scratch.path(),
            postgres_url: &postgres_url,
            databases,
            adapter: adapters[0],
            users,
            plan,
            connections: args.connections.max(1),
        };
        return scale::run(&run, &runtime);
    }
    let mut report = Report {
        machine: Machine::probe(),
        settings: Settings {
            connections: args.connections,
            warmup_s: plan.warmup.as_secs_f64(),
            duration_s: measure,
            quick: args.quick,
            argon2: [
                hashing::MEMORY_KIB,
                hashing::ITERATIONS,
                hashing::PARALLELISM,
            ],
            server_log: args.server_log.clone(),
            server_args: args.server_args.clone(),
            client_threads,
        },
        results: Vec::new(),
        ratios: Vec::new(),
    };
    eprintln!(
        "bench: {} x {}, load {}; {} connections, {:.1} s per scenario after {:.1} s warm-up",
        report.machine.nproc,
        report.machine.cpu_model,
        report.machine.loadavg_before,
        args.connections,
        measure,
        plan.warmup.as_secs_f64()
    );
    let scratch = tempfile::tempdir()?;
    for &database in &databases {
        for &adapter in &adapters {
            let fresh = match FreshDatabase::new(database, &postgres_url, "auth_bench") {
                Ok(fresh) => fresh,
                Err(err) if database == Database::Postgres && args.database == Database::All => {
                    eprintln!("== skipping postgres: {err:#}");
                    break;
                }
                Err(err) => return Err(err),
            };
            eprintln!("== {adapter}/{database}");
            let launch = Launch {
                binary: &binary,
                adapter,
                database_url: fresh.url(),
                args: serve_args(&args),
                // The generated HS256 secret is kept sealed under the key-encryption key,
                // which PostgreSQL deployments must be given (by environment).
                env: vec![("AUTH_KEY_ENCRYPTION_KEY", server::random_hex_32())],
                log_filter: &args.server_log,
                log_path: scratch.path().join(format!("{adapter}-{database}.log")),
            };
            let (adapter, database) = (adapter.to_string(), database.to_string());
            let (adapter, database) = (adapter.as_str(), database.as_str());
            let results = runtime.block_on(async {
                let mut server = match ServerProcess::start(&launch).await {
                    Ok(server) => server,
                    Err(err) => {
                        let row =
                            report::Row::failed(adapter, database, "start", format!("{err:#}"));
                        return scenarios::Results {
                            rows: vec![row],
                            argon2_limit: None,
                        };
                    }
                };
                scenarios::run(scenarios::Context {
                    server: &mut server,
                    adapter,
                    database,
                    plan,
                    connections: args.connections.max(1),
                    argon2_time: Duration::from_secs_f64(if args.quick { 2.0 } else { 5.0 }),
                    selected: &selected,
                })
                .await
            });
            report.results.extend(results.rows);
            let write_limit = if selected.iter().any(|s| s == "refresh") {
                measure_write_limit(fresh.url(), plan.measure)
            } else {
                None
            };
            let ratios = Ratios::derive(
                &report.results,
                adapter,
                database,
                results.argon2_limit,
                hashing_slots,
                hashing::MEMORY_KIB,
            )
            .with_write_limit(&report.results, write_limit);
            report.ratios.push(ratios);
            drop(fresh);
        }
    }
    report.machine.loadavg_after = report::loadavg();
    println!("{}", report.render());
    let path = server::target_dir().join("bench").join("latest.json");
    report.write_json(&path)?;
    eprintln!("bench: wrote {}", path.display());
    let errored: Vec<String> = report
        .results
        .iter()
        .filter(|row| row.errors > 0)
        .map(|row| {
            format!(
                "{}/{} {}: {}",
                row.adapter,
                row.database,
                row.scenario,
                row.error_samples.join(" | ")
            )
        })
        .collect();
    for line in &errored {
        eprintln!("bench: error in {line}");
    }
    Ok(errored.is_empty())
}

/// Connections of the server's store pool (`--db-pool-size`'s default): the write-limit
/// measurement runs as many writers on a pool of that size.
const SERVER_POOL_SIZE: u32 = 8;

/// The database's own write limit on `url` (see `auth_diesel::WriteLimit`), measured for
/// `window` with the server idle; `None`, with a note, when it cannot be measured.
fn measure_write_limit(url: &str, window: Duration) -> Option<f64> {
    let measured = auth_diesel::DieselStore::connect(url, SERVER_POOL_SIZE)
        .and_then(|store| store.measure_write_limit(SERVER_POOL_SIZE as usize, window));
    match measured {
        Ok(limit) => {
            eprintln!(
                "   write limit: {:.0} transactions/s ({} writers)",
                limit.per_second, limit.writers
            );
            Some(limit.per_second)
        }
        Err(err) => {
            eprintln!("   write limit not measured: {err}");
            None
        }
    }
}

/// The benchmark's `serve` arguments: `--profiles native`, the default argon2 parameters and
/// rate limits, the loopback as a trusted proxy, and the benchmark's `GET /bench/hello`.
fn serve_args(args: &Args) -> Vec<String> {
    let mut serve: Vec<String> = ["--profiles", "native", "--bench-hello"]
        .into_iter()
        // The load generator stands in for a proxy in front of many clients: it names a
        // client per request in `X-Forwarded-For`, so the per-IP rate limits work as they
        // would in production without tripping.
        .chain(["--trusted-proxies", "127.0.0.1"])
        // The login floods send hundreds of concurrent logins for one account; since each
        // attempt is reserved as a failure until its hash is checked (issue 10, rule 3),
        // they would meet the per-email limit, which is not what they measure.
        .chain(["--rate-login-email", "off"])
        .map(str::to_owned)
        .collect();
    if let Some(slots) = args.hashing_slots {
        serve.extend(["--hashing-slots".to_owned(), slots.to_string()]);
    }
    serve.extend(args.server_args.iter().cloned());
    serve
}

fn selected_scenarios(requested: &[String]) -> anyhow::Result<Vec<String>> {
    if requested.is_empty() {
        return Ok(scenarios::ALL.iter().map(|s| (*s).to_owned()).collect());
    }
    for name in requested {
        if !scenarios::ALL.contains(&name.as_str()) {
            bail!(
                "unknown scenario `{name}`; known: {}",
                scenarios::ALL.join(", ")
            );
        }
    }
    Ok(requested.to_vec())
}
