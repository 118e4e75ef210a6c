//! Failover on an existing HA engine: the server on a pg_auto_failover formation of the run's
//! own (monitor, primary, secondary; see [`super::formation`]), reached through the libpq
//! multi-host URL with `target_session_attrs=read-write`, under a registration load; a planned
//! failover (`pg_autoctl perform failover`) moves the primary to the other node mid-load.
//!
//! Measured: the server's write gap (the longest time without an acknowledged registration
//! around the failover), the database's own gap (a direct client inserting a row every few
//! milliseconds over the same multi-host URL, reconnecting at once after each error), the
//! answers that were not 201 and the slowest answer. Holds when every acknowledged
//! registration logs in afterwards (none lost), writes resume without a restart, no answer
//! takes longer than [`ANSWER_BOUND`], and the server's gap exceeds the database's own by at
//! most [`GAP_SLACK`] (issue 11, item 7: the breaker must not make the gap longer).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use diesel::{Connection as _, PgConnection, RunQueryDsl as _};

use super::client::{Api, unique_email, unique_password};
use super::formation::{self, Formation};
use super::{Case, Env, NO_LIMITS, Outcome};
use crate::server::{Adapter, ServerProcess};

/// Client tasks registering at once.
const WRITERS: usize = 6;
/// Slowest answer allowed at any time, failover included.
const ANSWER_BOUND: Duration = Duration::from_secs(2);
/// How much longer than the database's own write gap the server's may be: its breaker probes
/// every 50 ms, a pool connection is made on demand, and registrations take a few ms each.
const GAP_SLACK: Duration = Duration::from_millis(500);

/// Runs the case with `adapter`.
pub async fn run(env: &Env<'_>, adapter: Adapter) -> Outcome {
    let on = format!("pg_auto_failover/{adapter}");
    match failover(env, adapter).await {
        Ok((passed, figures)) => Outcome::new(Case::Failover, on, passed, figures),
        Err(err) => Outcome::error(Case::Failover, on, &err),
    }
}

/// What the writers saw.
#[derive(Default)]
struct Seen {
    /// Acknowledged registrations: email, password, when the answer came.
    acknowledged: Vec<(String, String, Instant)>,
    /// Answers other than 201, by status (0: no answer).
    refused: Vec<u16>,
    slowest: Duration,
}

async fn failover(env: &Env<'_>, adapter: Adapter) -> anyhow::Result<(bool, String)> {
    let formation = Arc::new(tokio::task::spawn_blocking(Formation::create).await??);
    let url = formation.url();
    let server = ServerProcess::start(&env.launch(adapter, &url, NO_LIMITS, "failover")).await?;
    let base = Arc::new(server.base_url());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let (base, seen, stop) = (Arc::clone(&base), Arc::clone(&seen), Arc::clone(&stop));
            tokio::spawn(async move { register_until(&base, &seen, &stop).await })
        })
        .collect();
    let direct_url = url.replace(&format!("/{}?", formation::DATABASE), "/postgres?");
    let direct = {
        let stop = Arc::clone(&stop);
        tokio::task::spawn_blocking(move || direct_writes(&direct_url, &stop))
    };
    let steady = Duration::from_secs(if env.short { 2 } else { 5 });
    tokio::time::sleep(steady).await;
    let switching = Arc::clone(&formation);
    let began = Instant::now();
    tokio::task::spawn_blocking(move || switching.perform_failover()).await??;
    let switch_took = began.elapsed();
    tokio::time::sleep(steady).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await?;
    }
    let direct = direct.await?;
    let seen = std::mem::take(&mut *seen.lock().unwrap_or_else(PoisonError::into_inner));
    let window = began - steady / 2;
    let acks: Vec<Instant> = seen.acknowledged.iter().map(|a| a.2).collect();
    let server_gap = longest_gap(&acks, window);
    let direct_gap = longest_gap(&direct, window);
    let resumed = acks.iter().any(|&at| at > began + switch_took);
    let lost = lost_registrations(&base, &seen.acknowledged).await?;
    let passed = lost == 0
        && !seen.acknowledged.is_empty()
        && resumed
        && seen.slowest <= ANSWER_BOUND
        && server_gap <= direct_gap.saturating_add(GAP_SLACK);
    let mut refused = seen.refused.clone();
    refused.sort_unstable();
    refused.dedup();
    let statuses: Vec<String> = refused
        .iter()
        .map(|s| {
            let n = seen.refused.iter().filter(|r| *r == s).count();
            format!(
                "{n}×{}",
                if *s == 0 {
                    "no answer".to_owned()
                } else {
                    s.to_string()
                }
            )
        })
        .collect();
    drop(server);
    Ok((
        passed,
        format!(
            "failover took {:.1} s; write gap {} ms (the database's own {} ms); acknowledged {}, \
             lost {lost}; not 201: {}; slowest answer {} ms",
            switch_took.as_secs_f64(),
            server_gap.as_millis(),
            direct_gap.as_millis(),
            seen.acknowledged.len(),
            if statuses.is_empty() {
                "none".to_owned()
            } else {
                statuses.join(", ")
            },
            seen.slowest.as_millis()
        ),
    ))
}

/// Registers new users until told to stop, recording what was answered.
async fn register_until(base: &str, seen: &Mutex<Seen>, stop: &AtomicBool) {
    let api = Api::new(Duration::from_secs(10), false);
    while !stop.load(Ordering::Relaxed) {
        let (email, password) = (unique_email("failover"), unique_password());
        let sent = Instant::now();
        let answer = api.register(base, &email, &password).await;
        let took = sent.elapsed();
        let acknowledged = matches!(&answer, Ok(a) if a.status == 201);
        {
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            seen.slowest = seen.slowest.max(took);
            match answer {
                Ok(_) if acknowledged => seen.acknowledged.push((email, password, Instant::now())),
                Ok(a) => seen.refused.push(a.status),
                Err(_) => seen.refused.push(0),
            }
        }
        if !acknowledged {
            // A refusal (503 during the switch): a short pause, not a busy loop.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The database's own write availability: one row inserted after another over `url` (a
/// new connection at once after an error), until told to stop; when each commit returned.
fn direct_writes(url: &str, stop: &AtomicBool) -> Vec<Instant> {
    let url = format!("{url}&connect_timeout=1");
    let mut commits = Vec::new();
    let mut conn: Option<PgConnection> = None;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = conn.as_mut() else {
            conn = PgConnection::establish(&url).ok();
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(5));
            } else if let Some(c) = conn.as_mut() {
                let _ = diesel::sql_query("CREATE TABLE IF NOT EXISTS chaos_probe (at bigint)")
                    .execute(c);
            }
            continue;
        };
        match diesel::sql_query("INSERT INTO chaos_probe VALUES (1)").execute(c) {
            Ok(_) => commits.push(Instant::now()),
            Err(_) => conn = None,
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    commits
}

/// The longest time between consecutive instants (sorted) from `from` on.
fn longest_gap(instants: &[Instant], from: Instant) -> Duration {
    let mut sorted: Vec<Instant> = instants.iter().copied().filter(|&i| i >= from).collect();
    sorted.sort_unstable();
    sorted
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or(Duration::MAX)
}

/// How many acknowledged registrations cannot log in now.
async fn lost_registrations(
    base: &str,
    acknowledged: &[(String, String, Instant)],
) -> anyhow::Result<usize> {
    let api = Api::new(Duration::from_secs(30), false);
    let mut lost = 0;
    for (email, password, _) in acknowledged {
        lost += usize::from(api.login(base, email, password).await?.status != 200);
    }
    Ok(lost)
}
