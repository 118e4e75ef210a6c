//! `cargo xtask browser`: the auth server driven by a real headless Chromium, for every
//! adapter × database (issue 12, rule 4). See `docs/browser-test.md`.
//!
//! Per adapter × database: a fresh database, the server (debug build) with the page's
//! origin on its CORS allow-list, the test page served from that origin and from a second
//! one that is not on the list, and a fresh browser context (no cookie of an earlier run)
//! in one Chromium for the whole run. The page runs each flow with plain `fetch`; the test
//! reads the browser's own cookie jar between the cookie flow's phases. One line per step,
//! a summary line, and a non-zero exit on any failure.
//!
//! The parts, one job each: `chromium` (the browser process), `cdp` (the DevTools client),
//! `page` (the test page and its server), `tab` (one browser context and its page), `flows`
//! (the flows of one adapter × database, as steps), `jar` (the cookie-jar checks of the
//! cookie flow) and `passkey` (the passkey flow and Chromium's virtual authenticator); this module parses the arguments, launches the browser, runs every
//! adapter × database, prints the results and handles signals.

mod cdp;
mod chromium;
mod flows;
mod jar;
mod page;
mod passkey;
mod tab;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::server::{self, Adapter, Database, Profile};
use cdp::Cdp;
use chromium::Chromium;
use flows::{Check, Flow};

/// How long Chromium may take to print its DevTools URL.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// The default bound of one DevTools command.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Where the profile under test is mounted on the server.
const API_PATH: &str = "/api/v1/auth";

/// Arguments of `cargo xtask browser`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The adapters to check.
    #[arg(long, value_enum, default_value_t = Adapter::All)]
    adapter: Adapter,
    /// The databases to check on.
    #[arg(long, value_enum, default_value_t = Database::All)]
    database: Database,
    /// The flows to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',',
          default_values_t = [Flow::Bearer, Flow::Cookie, Flow::Blocked, Flow::Passkey])]
    flows: Vec<Flow>,
    /// Postgres admin URL under which a fresh database is created per run
    /// (default: `AUTH_TEST_POSTGRES_URL`, else the local server).
    #[arg(long)]
    postgres_url: Option<String>,
    /// The Chromium binary.
    #[arg(long, default_value = "chromium")]
    chromium: PathBuf,
    /// Seconds the whole run may take once the server is built; every step still running
    /// then fails.
    #[arg(long, default_value_t = 150)]
    timeout: u64,
}

/// Runs the flows on every selected adapter × database; `Ok(false)` when a step failed.
pub fn run(args: Args) -> anyhow::Result<bool> {
    let chromium_binary = find_chromium(&args.chromium)?;
    let binary = server::executable(
        &server::build(Profile::Debug, &["auth-server"])?,
        "auth-server",
    )?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout);
    let postgres_url = server::postgres_admin_url(args.postgres_url.as_deref());
    let runtime = tokio::runtime::Runtime::new()?;

    // Watching from before the launch, so that no signal leaves Chromium behind.
    let interrupted = Arc::new(AtomicBool::new(false));
    let browser_pid = Arc::new(AtomicU32::new(0));
    let watcher = runtime.spawn(on_signal(
        Arc::clone(&browser_pid),
        Arc::clone(&interrupted),
    ));
    let browser = Chromium::launch(&chromium_binary, LAUNCH_TIMEOUT)?;
    browser_pid.store(browser.pid(), Ordering::SeqCst);
    let mut cdp = Cdp::connect(browser.ws_url(), CALL_TIMEOUT)
        .with_context(|| format!("cannot drive Chromium{}", browser.stderr_tail()))?;
    cdp.set_deadline(deadline);
    let version = cdp.call("Browser.getVersion", json!({}))?;
    println!(
        "== browser: {} at {}",
        version["product"].as_str().unwrap_or("Chromium"),
        browser.ws_url()
    );

    let (mut passed, mut failed) = (0usize, 0usize);
    let mut failures = String::new();
    'runs: for database in args.database.expand() {
        for adapter in args.adapter.expand() {
            if interrupted.load(Ordering::SeqCst) {
                break 'runs;
            }
            let label = format!("{adapter}/{database}");
            let run_started = Instant::now();
            let check = Check {
                runtime: &runtime,
                binary: &binary,
                adapter,
                database,
                postgres_url: &postgres_url,
                deadline,
            };
            let steps = check.run(&mut cdp, &args.flows);
            let bad = steps.iter().filter(|(_, step)| !step.ok).count();
            println!(
                "== {label}: {} steps, {} ({:.1} s)",
                steps.len(),
                if bad == 0 {
                    "all passed".to_owned()
                } else {
                    format!("{bad} FAILED")
                },
                run_started.elapsed().as_secs_f64()
            );
            for (flow, step) in &steps {
                println!(
                    "{label:<16} {flow:<8} {:<52} {}",
                    step.name,
                    if step.ok { "ok" } else { "FAIL" }
                );
                if step.ok {
                    passed += 1;
                } else {
                    failed += 1;
                    let _ = writeln!(
                        failures,
                        "- {label} {flow} / {}\n    expected: {}\n    got:      {}",
                        step.name, step.expected, step.got
                    );
                }
            }
        }
    }
    drop(cdp);
    // No signal may kill a process group whose id the system has given to another.
    browser_pid.store(0, Ordering::SeqCst);
    watcher.abort();
    drop(browser);
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted ({passed} steps passed, {failed} failed before)");
    }
    if !failures.is_empty() {
        println!("\nFailures:\n{failures}");
    }
    println!(
        "browser: {passed} passed, {failed} failed ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(failed == 0)
}

/// On SIGINT, SIGTERM or SIGHUP: kills Chromium's process group (which the terminal's
/// Ctrl-C does not reach) and flags the run, whose remaining calls then fail at once, so it
/// ends through its guards (servers killed, databases dropped, directories removed). A
/// second signal exits at once.
async fn on_signal(browser: Arc<AtomicU32>, interrupted: Arc<AtomicBool>) {
    let kill_browser = || match browser.load(Ordering::SeqCst) {
        0 => {}
        pid => chromium::kill_group(pid),
    };
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
        }
        kill_browser();
        if interrupted.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("browser: interrupted; stopping Chromium, then the servers");
    }
}

/// `binary` as given when it is a path, else found on `PATH`.
fn find_chromium(binary: &Path) -> anyhow::Result<PathBuf> {
    if binary.components().count() > 1 {
        return Ok(binary.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "{} is not on PATH (Debian: `apt-get install -y chromium`)",
                binary.display()
            )
        })
}
