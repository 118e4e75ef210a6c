//! The soak: a mixed workload (login, `/me`, refresh, a wrong password now and then, logout)
//! by a fixed set of users for N minutes, with short lifetimes and rate-limit windows so that
//! what the workload writes also expires within the run. After a warm-up (a quarter of the
//! run, at least the longest lifetime) and at the end, with the load paused, it samples the
//! server's RSS (`/proc/PID/status` VmRSS), its open file descriptors (`/proc/PID/fd`) and the
//! row counts of the main tables (over a direct connection). Holds when each grows less than
//! 10 % from the first sample to the second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::{Connection as _, RunQueryDsl as _};

use super::client::{Api, unique_email, unique_password};
use super::{Case, Env, Outcome};
use crate::server::{Adapter, Database, FreshDatabase, ServerProcess};

/// Users of the workload, registered before the warm-up.
const USERS: usize = 16;
/// Growth allowed from the warm-up sample to the end, in percent (the bound, for the
/// soak of N minutes).
const MAX_GROWTH_PERCENT: f64 = 10.0;
/// The same for RSS in a `--short` soak (CI's smoke run), whose 22 s warm-up is too short for
/// the allocator to reach its working size on PostgreSQL (+3.9 % to +9.6 % seen in 45 s runs
/// whose 10-minute counterpart grew +0.9 %): it catches a gross leak; the 10 % bound is the
/// long soak's.
const MAX_SHORT_RSS_GROWTH_PERCENT: f64 = 25.0;
/// The tables whose rows are counted.
const TABLES: &[&str] = &[
    "users",
    // Refresh tokens live in their session's row since issue 11, item 3.
    "sessions",
    "personal_tokens",
    "login_failures",
    "known_addresses",
    "rate_limit_hits",
];
/// Lifetimes and windows short enough to expire within a soak, in seconds.
const LIFETIME_SECS: u64 = 5;

/// Runs the soak on `database` with `adapter` for `length`.
pub async fn run(env: &Env<'_>, database: Database, adapter: Adapter, length: Duration) -> Outcome {
    let on = format!("{database}/{adapter}");
    match soak(env, database, adapter, length).await {
        Ok((passed, figures)) => Outcome::new(Case::Soak, on, passed, figures),
        Err(err) => Outcome::error(Case::Soak, on, &err),
    }
}

/// One sample: RSS KiB, open fds, rows per table.
#[derive(Debug)]
struct Sample {
    rss_kib: u64,
    fds: u64,
    rows: Vec<u64>,
}

async fn soak(
    env: &Env<'_>,
    database: Database,
    adapter: Adapter,
    length: Duration,
) -> anyhow::Result<(bool, String)> {
    let fresh = FreshDatabase::new(database, env.postgres_admin, "auth_chaos")?;
    let (life, window) = (LIFETIME_SECS.to_string(), format!("1000/{LIFETIME_SECS}"));
    let args = [
        "--refresh-ttl",
        &life,
        "--session-lifetime",
        &life,
        "--known-address-window",
        &life,
        "--rate-login-email-ip",
        &window,
        "--rate-login-email",
        &window,
        "--rate-login-ip",
        &window,
        "--rate-register-ip",
        "off",
        "--rate-refresh-ip",
        "off",
    ];
    let server = ServerProcess::start(&env.launch(adapter, fresh.url(), &args, "soak")).await?;
    let base = Arc::new(server.base_url());
    let api = Api::new(Duration::from_secs(20), false);
    let mut users = Vec::new();
    for _ in 0..USERS {
        let (email, password) = (unique_email("soak"), unique_password());
        let answer = api.register(&base, &email, &password).await?;
        anyhow::ensure!(answer.status == 201, "registration: {}", answer.status);
        users.push((email, password));
    }
    // The allocator grows to its working size over the first minute or two: a quarter of a
    // long run, half of a short one (a 30 s warm-up still saw +11 % RSS on SQLite by 45 s).
    let share = if env.short { 2 } else { 4 };
    let warm_up = (length / share).max(Duration::from_secs(2 * LIFETIME_SECS));
    let paused = Arc::new(Pause::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (requests, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let workers: Vec<_> = users
        .into_iter()
        .map(|user| {
            let (api, base) = (api.clone(), Arc::clone(&base));
            let (paused, stop) = (Arc::clone(&paused), Arc::clone(&stop));
            let (requests, errors) = (Arc::clone(&requests), Arc::clone(&errors));
            tokio::spawn(async move {
                let mut round = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Counted as busy before looking at the pause, so a sampler that saw no
                    // one busy after pausing knows no round can start.
                    paused.busy.fetch_add(1, Ordering::SeqCst);
                    if paused.on.load(Ordering::SeqCst) {
                        paused.busy.fetch_sub(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    round += 1;
                    let ok = cycle(&api, &base, &user.0, &user.1, round, &requests).await;
                    paused.busy.fetch_sub(1, Ordering::SeqCst);
                    if !ok {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    tokio::time::sleep(warm_up).await;
    let first = sample(&server, fresh.url(), &paused).await?;
    paused.on.store(false, Ordering::SeqCst);
    tokio::time::sleep(length.saturating_sub(started.elapsed())).await;
    let last = sample(&server, fresh.url(), &paused).await?;
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    let rss_bound = if env.short {
        MAX_SHORT_RSS_GROWTH_PERCENT
    } else {
        MAX_GROWTH_PERCENT
    };
    let mut figures = vec![
        growth("RSS KiB", first.rss_kib, last.rss_kib, rss_bound),
        growth("fds", first.fds, last.fds, MAX_GROWTH_PERCENT),
    ];
    for (i, table) in TABLES.iter().enumerate() {
        figures.push(growth(
            table,
            first.rows[i],
            last.rows[i],
            MAX_GROWTH_PERCENT,
        ));
    }
    let passed = figures.iter().all(|(_, ok)| *ok) && errors.load(Ordering::Relaxed) == 0;
    let text: Vec<String> = figures.into_iter().map(|(t, _)| t).collect();
    Ok((
        passed,
        format!(
            "{:.1} min, {} requests, {} failed cycles; after warm-up {:.0} s -> end: {}",
            length.as_secs_f64() / 60.0,
            requests.load(Ordering::Relaxed),
            errors.load(Ordering::Relaxed),
            warm_up.as_secs_f64(),
            text.join(", ")
        ),
    ))
}

/// One round of a user: login, three `/me`, two refreshes, every fifth round a wrong
/// password, logout. `false` when an answer was not the expected one.
async fn cycle(
    api: &Api,
    base: &str,
    email: &str,
    pw: &str,
    round: u64,
    count: &AtomicU64,
) -> bool {
    let mut ok = true;
    let mut step = |good: bool| {
        count.fetch_add(1, Ordering::Relaxed);
        ok &= good;
    };
    if round.is_multiple_of(5) {
        let wrong = api.login(base, email, "wrong password").await;
        step(matches!(wrong, Ok(a) if a.status == 401));
    }
    let Ok(login) = api.login(base, email, pw).await else {
        step(false);
        return false;
    };
    step(login.status == 200);
    let Some(mut pair) = login.pair() else {
        return false;
    };
    for _ in 0..3 {
        let me = api.me(base, &pair.access).await;
        step(matches!(me, Ok(a) if a.status == 200));
    }
    for _ in 0..2 {
        match api.refresh(base, &pair.refresh).await {
            Ok(a) if a.status == 200 => match a.pair() {
                Some(next) => {
                    step(true);
                    pair = next;
                }
                None => step(false),
            },
            _ => step(false),
        }
    }
    let logout = api.logout(base, &pair.access).await;
    step(matches!(logout, Ok(a) if a.status == 204));
    ok
}

/// The workload's pause: set by the sampler; `busy` counts the rounds under way.
#[derive(Debug, Default)]
struct Pause {
    on: AtomicBool,
    busy: AtomicUsize,
}

/// Pauses the load, waits until every round under way has ended (at most 30 s), samples, and
/// leaves it paused.
async fn sample(server: &ServerProcess, url: &str, paused: &Pause) -> anyhow::Result<Sample> {
    paused.on.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while paused.busy.load(Ordering::SeqCst) > 0 {
        anyhow::ensure!(Instant::now() < deadline, "the workload does not pause");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // What the server does after the last answer (its log, a connection closing) settles.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = url.to_owned();
    let rows = tokio::task::spawn_blocking(move || count_rows(&url)).await??;
    Ok(Sample {
        rss_kib: server.rss_kib().unwrap_or(0),
        fds: server.open_fds().unwrap_or(0),
        rows,
    })
}

/// `(figure text, within `bound` percent)` for a value that went from `before` to `after`.
fn growth(name: &str, before: u64, after: u64, bound: f64) -> (String, bool) {
    let percent = 100.0 * (after as f64 - before as f64) / (before.max(1) as f64);
    (
        format!("{name} {before}->{after} ({percent:+.1} %)"),
        percent < bound,
    )
}

/// Rows of each of [`TABLES`] in the database at `url`.
fn count_rows(url: &str) -> anyhow::Result<Vec<u64>> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let query = |table: &str| format!("SELECT COUNT(*) AS n FROM {table}");
    let mut counts = Vec::new();
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut conn = diesel::SqliteConnection::establish(path)?;
        for table in TABLES {
            let rows: Vec<Count> = diesel::sql_query(query(table)).load(&mut conn)?;
            counts.push(rows.first().map_or(0, |c| c.n.max(0) as u64));
        }
    } else {
        let mut conn = diesel::PgConnection::establish(url)?;
        for table in TABLES {
            let rows: Vec<Count> = diesel::sql_query(query(table)).load(&mut conn)?;
            counts.push(rows.first().map_or(0, |c| c.n.max(0) as u64));
        }
    }
    Ok(counts)
}
