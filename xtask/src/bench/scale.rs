//! `cargo xtask bench --scale N`: does latency hold as the tables grow? For each database,
//! the `me` (principal cache off, so every request reads the session and the user), `login`
//! and `refresh` scenarios run on a fresh database with 1,000 users and live sessions
//! seeded, then on another with N (default 1,000,000); the report gives each scenario's
//! latency at both sizes and their ratio (target: p50 and p99 within 1.5×). On Postgres,
//! three instances (axum, actix, warp) on the large database then serve `me` together (the
//! principal cache on) while a client logs in and out against them in turn, so revocations
//! flow between them; the report says how the throughput divides (issue 11, item 5).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::load::{self, Plan};
use super::report::Row;
use super::scenarios::{self, API};
use super::seed;
use crate::server::{Adapter, Database, FreshDatabase, Launch, ServerProcess};

/// The size every large run is compared with.
const BASELINE_USERS: u64 = 1_000;
/// The scenarios a scale run measures.
const SCENARIOS: &[&str] = &["me", "login", "refresh"];
/// Largest latency ratio (large ÷ baseline) that holds.
const RATIO_BOUND: f64 = 1.5;

/// What a scale run needs.
pub struct Run<'a> {
    /// The release `auth-server`.
    pub binary: &'a Path,
    /// The `serve` arguments of the benchmark.
    pub serve_args: Vec<String>,
    /// Where logs go.
    pub scratch: &'a Path,
    /// The Postgres admin URL.
    pub postgres_url: &'a str,
    /// Databases to run on.
    pub databases: Vec<Database>,
    /// The adapter of the single-instance runs.
    pub adapter: Adapter,
    /// Users (and sessions) of the large run.
    pub users: u64,
    /// Warm-up and window per scenario.
    pub plan: Plan,
    /// Connections per load.
    pub connections: usize,
}

/// One scenario at both sizes.
struct Compared {
    database: String,
    scenario: String,
    small: Row,
    large: Row,
}

/// Runs the scale comparison; `Ok(false)` when a scenario errored or a ratio missed.
pub fn run(run: &Run<'_>, runtime: &tokio::runtime::Runtime) -> anyhow::Result<bool> {
    let mut compared = Vec::new();
    let mut splits = Vec::new();
    let mut errored = false;
    for &database in &run.databases {
        let mut by_size = Vec::new();
        for users in [BASELINE_USERS, run.users] {
            let fresh = FreshDatabase::new(database, run.postgres_url, "auth_scale")?;
            let key = crate::server::random_hex_32();
            let rows = runtime.block_on(single(run, database, &fresh, users, &key))?;
            errored |= rows.iter().any(|r| r.errors > 0);
            if database == Database::Postgres && users == run.users {
                let split = runtime.block_on(three_instances(run, &fresh, &key))?;
                splits.push(split);
            }
            by_size.push(rows);
        }
        let (large, small) = (
            by_size.pop().unwrap_or_default(),
            by_size.pop().unwrap_or_default(),
        );
        for scenario in SCENARIOS {
            let find = |rows: &[Row]| rows.iter().find(|r| r.scenario == *scenario).cloned();
            if let (Some(small), Some(large)) = (find(&small), find(&large)) {
                compared.push(Compared {
                    database: database.to_string(),
                    scenario: (*scenario).to_owned(),
                    small,
                    large,
                });
            }
        }
    }
    let (table, ratios_hold) = render(&compared, run.users);
    println!("{table}");
    for split in &splits {
        println!("{split}");
    }
    Ok(!errored && ratios_hold && !compared.is_empty())
}

fn launch<'a>(
    run: &'a Run<'_>,
    adapter: Adapter,
    url: &'a str,
    key: &str,
    cache_off: bool,
    log: &str,
) -> Launch<'a> {
    let mut args = run.serve_args.clone();
    if cache_off {
        args.extend(["--principal-cache-ms".to_owned(), "0".to_owned()]);
    }
    Launch {
        binary: run.binary,
        adapter,
        database_url: url,
        args,
        env: vec![("AUTH_KEY_ENCRYPTION_KEY", key.to_owned())],
        log_filter: "warn",
        log_path: run.scratch.join(format!("{log}.log")),
    }
}

/// One server on a fresh database with `users` seeded: the scale scenarios' rows.
async fn single(
    run: &Run<'_>,
    database: Database,
    fresh: &FreshDatabase,
    users: u64,
    key: &str,
) -> anyhow::Result<Vec<Row>> {
    let label = format!("scale-{database}-{users}");
    let launch = launch(run, run.adapter, fresh.url(), key, true, &label);
    let mut server = ServerProcess::start(&launch).await?;
    let url = fresh.url().to_owned();
    let took = tokio::task::spawn_blocking(move || seed::users_and_sessions(&url, users)).await??;
    eprintln!(
        "== {}/{database}: {users} users and sessions seeded in {took:.1} s",
        run.adapter
    );
    let adapter = run.adapter.to_string();
    let database_name = database.to_string();
    let selected: Vec<String> = SCENARIOS.iter().map(|s| (*s).to_owned()).collect();
    let results = scenarios::run(scenarios::Context {
        server: &mut server,
        adapter: &adapter,
        database: &database_name,
        plan: run.plan,
        connections: run.connections,
        argon2_time: Duration::from_secs(2),
        selected: &selected,
    })
    .await;
    Ok(results.rows)
}

/// Three instances on the large Postgres database serving `me` at once, a third of the
/// connections each, while a client logs in and out against them in turn.
async fn three_instances(
    run: &Run<'_>,
    fresh: &FreshDatabase,
    key: &str,
) -> anyhow::Result<String> {
    let adapters = [Adapter::Axum, Adapter::Actix, Adapter::Warp];
    let launches: Vec<_> = adapters
        .iter()
        .map(|&a| launch(run, a, fresh.url(), key, false, &format!("scale-three-{a}")))
        .collect();
    let mut servers = Vec::new();
    for launch in &launches {
        servers.push(ServerProcess::start(launch).await?);
    }
    let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.addr).collect();
    // The bench user exists already (the single-instance run registered it).
    let seed = scenarios::seed_sessions(addrs[0], run.connections).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let revocations = Arc::new(AtomicU64::new(0));
    let revoker = tokio::spawn(revoke_in_turn(
        addrs.clone(),
        Arc::clone(&stop),
        Arc::clone(&revocations),
    ));
    let per = (run.connections / addrs.len()).max(1);
    let loads = addrs.iter().enumerate().map(|(k, &addr)| {
        let flows = scenarios::fixed(per, |i| {
            scenarios::get(&format!("{API}/me"), Some(seed.jwt(k * per + i)))
        });
        load::run(addr, run.plan, flows)
    });
    let outcomes = futures_util::future::join_all(loads).await;
    stop.store(true, Ordering::Relaxed);
    revoker.await?;
    let mut parts = Vec::new();
    let mut total = 0.0;
    let mut errors = 0;
    for (adapter, outcome) in adapters.iter().zip(outcomes) {
        let outcome = outcome?;
        let rps = outcome.ok as f64 / outcome.window.as_secs_f64();
        total += rps;
        errors += outcome.errors;
        parts.push((
            adapter.to_string(),
            rps,
            outcome.latency.value_at_quantile(0.99) as f64 / 1000.0,
        ));
    }
    let shares: Vec<String> = parts
        .iter()
        .map(|(a, rps, p99)| {
            format!(
                "{a} {rps:.0}/s ({:.0} %, p99 {p99:.2} ms)",
                100.0 * rps / total.max(1.0)
            )
        })
        .collect();
    Ok(format!(
        "three instances on one Postgres ({} users), `me` with {per} connections each, {} \
         logins + logouts in turn across them: {total:.0}/s in all = {}; {errors} unexpected answers",
        run.users,
        revocations.load(Ordering::Relaxed),
        shares.join(", ")
    ))
}

/// Logs the bench user in on one instance and out on the next, until told to stop.
async fn revoke_in_turn(addrs: Vec<SocketAddr>, stop: Arc<AtomicBool>, done: Arc<AtomicU64>) {
    let mut turn = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let at = addrs[turn % addrs.len()];
        let next = addrs[(turn + 1) % addrs.len()];
        turn += 1;
        let Ok(answer) = scenarios::call(at, &scenarios::login_request(10_000 + turn), 200).await
        else {
            continue;
        };
        let Some(access) = answer
            .pointer("/token/access_token")
            .and_then(|v| v.as_str())
        else {
            continue;
        };
        let logout = load::request(
            "POST",
            &format!("{API}/logout"),
            &[("Authorization", &format!("Bearer {access}"))],
            None,
        );
        if scenarios::call_status(next, &logout).await == Some(204) {
            done.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The comparison table and whether every ratio holds.
fn render(compared: &[Compared], users: u64) -> (String, bool) {
    let mut out = format!(
        "| database | scenario | rps {BASELINE_USERS} | rps {users} | p50 ms {BASELINE_USERS} | p50 ms {users} | p50 ratio | p99 ms {BASELINE_USERS} | p99 ms {users} | p99 ratio |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    );
    let mut hold = true;
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) if a > 0.0 => Some(b / a),
        _ => None,
    };
    let show = |v: Option<f64>, d: usize| v.map_or("-".to_owned(), |v| format!("{v:.d$}"));
    for c in compared {
        let p50 = ratio(c.small.p50_ms, c.large.p50_ms);
        let p99 = ratio(c.small.p99_ms, c.large.p99_ms);
        hold &= p50.is_some_and(|r| r <= RATIO_BOUND) && p99.is_some_and(|r| r <= RATIO_BOUND);
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.database,
            c.scenario,
            show(c.small.rps, 0),
            show(c.large.rps, 0),
            show(c.small.p50_ms, 2),
            show(c.large.p50_ms, 2),
            show(p50, 2),
            show(c.small.p99_ms, 2),
            show(c.large.p99_ms, 2),
            show(p99, 2),
        ));
    }
    out.push_str(&format!(
        "\nlatency within {RATIO_BOUND}x at {users} users: {}\n",
        if hold { "holds" } else { "MISSED" }
    ));
    (out, hold)
}
