//! `cargo xtask bench`: the server in release mode under a load generator of its own, for
//! every adapter × database; a table on stdout and `target/bench/latest.json`.
//!
//! The xtask itself is built in debug mode by `cargo xtask`, too slow to generate load, so it
//! builds `auth-server` and `xtask` in release mode and hands over to the release binary.
//! See `docs/performance.md`.

mod hashing;
mod load;
mod report;
mod scenarios;
mod server;

use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail};

use report::{Machine, Ratios, Report, Settings};
use server::{FreshDatabase, ServerConfig, ServerProcess};

/// Set on the release binary the debug one hands over to (the build is done then).
const HANDOVER_ENV: &str = "XTASK_BENCH_BUILT";

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// `axum`, `actix`, `warp` or `all`.
    #[arg(long, default_value = "all")]
    adapter: String,
    /// `sqlite`, `postgres` or `all` (`all` skips Postgres, with a note, when the server
    /// cannot be reached).
    #[arg(long, default_value = "all")]
    database: String,
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
    /// Postgres admin URL under which a fresh database is created per run
    /// (default: `AUTH_TEST_POSTGRES_URL`, else the local server).
    #[arg(long)]
    postgres_url: Option<String>,
}

/// Runs the benchmark; `Ok(false)` when a scenario errored.
pub fn run(args: Args) -> anyhow::Result<bool> {
    let adapters = pick(&args.adapter, &["axum", "actix", "warp"])?;
    let databases = pick(&args.database, &["sqlite", "postgres"])?;
    let selected = selected_scenarios(&args.scenarios)?;
    let handed_over = std::env::var_os(HANDOVER_ENV).is_some();
    if cfg!(debug_assertions) && !handed_over {
        let release = server::build_release(&["auth-server", "xtask"])?;
        let xtask = release.join(format!("xtask{}", std::env::consts::EXE_SUFFIX));
        server::require_file(&xtask)?;
        let status = Command::new(&xtask)
            .args(std::env::args_os().skip(1))
            .env(HANDOVER_ENV, "1")
            .status()
            .with_context(|| format!("cannot run {}", xtask.display()))?;
        return Ok(status.success());
    }
    let release = if handed_over {
        server::target_dir().join("release")
    } else {
        server::build_release(&["auth-server"])?
    };
    let binary = release.join(format!("auth-server{}", std::env::consts::EXE_SUFFIX));
    server::require_file(&binary)?;

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
    let postgres_url = args
        .postgres_url
        .clone()
        .or_else(|| std::env::var("AUTH_TEST_POSTGRES_URL").ok())
        .unwrap_or_else(|| server::DEFAULT_POSTGRES_URL.to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads)
        .enable_all()
        .build()?;

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
    for database in &databases {
        for adapter in &adapters {
            let fresh = match FreshDatabase::new(database, &postgres_url) {
                Ok(fresh) => fresh,
                Err(err) if *database == "postgres" && args.database == "all" => {
                    eprintln!("== skipping postgres: {err:#}");
                    break;
                }
                Err(err) => return Err(err),
            };
            eprintln!("== {adapter}/{database}");
            let config = ServerConfig {
                binary: binary.clone(),
                adapter: (*adapter).to_owned(),
                database_url: fresh.url.clone(),
                hashing_slots: args.hashing_slots,
                extra_args: args.server_args.clone(),
                log_filter: args.server_log.clone(),
                log_path: scratch.path().join(format!("{adapter}-{database}.log")),
            };
            let results = runtime.block_on(async {
                let mut server = match ServerProcess::start(&config).await {
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
            report.ratios.push(Ratios::derive(
                &report.results,
                adapter,
                database,
                results.argon2_limit,
                hashing_slots,
                hashing::MEMORY_KIB,
            ));
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
