//! Outage and recovery: the server on a Postgres cluster of the run's own, under a light load
//! of `/me` (principal cache off, so each asks the database) and logins; the cluster is
//! stopped for a while and started again. Holds when every answer during the outage is a 503
//! with `Retry-After` within 1 s, and requests succeed again within 3 s of the database being
//! back, without a restart (issue 11, item 1).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{Answer, Api, unique_email, unique_password};
use super::cluster::Cluster;
use super::{Case, Env, NO_LIMITS, Outcome};
use crate::server::{Adapter, ServerProcess};

/// Slowest answer allowed during the outage.
const ANSWER_BOUND: Duration = Duration::from_secs(1);
/// Longest recovery allowed once the database is back.
const RECOVERY_BOUND: Duration = Duration::from_secs(3);
/// Client tasks probing at once.
const PROBES: usize = 4;

/// Runs the case with `adapter`.
pub async fn run(env: &Env<'_>, adapter: Adapter) -> Outcome {
    let on = format!("postgres/{adapter}");
    match outage(env, adapter).await {
        Ok((passed, figures)) => Outcome::new(Case::Outage, on, passed, figures),
        Err(err) => Outcome::error(Case::Outage, on, &err),
    }
}

async fn outage(env: &Env<'_>, adapter: Adapter) -> anyhow::Result<(bool, String)> {
    let cluster = Arc::new(tokio::task::spawn_blocking(|| Cluster::create("chaos")).await??);
    let url = cluster.url();
    let mut args: Vec<&str> = NO_LIMITS.to_vec();
    args.extend(["--principal-cache-ms", "0"]);
    let server = ServerProcess::start(&env.launch(adapter, &url, &args, "outage")).await?;
    let base = Arc::new(server.base_url());
    let api = Api::new(Duration::from_secs(20), false);
    let (email, password) = (unique_email("outage"), unique_password());
    let registered = api.register(&base, &email, &password).await?;
    let pair = registered
        .pair()
        .ok_or_else(|| anyhow::anyhow!("no pair"))?;
    let stopping = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || stopping.stop()).await??;
    let outage_for = Duration::from_secs(if env.short { 3 } else { 10 });
    let until = Instant::now() + outage_for;
    let probes: Vec<_> = (0..PROBES)
        .map(|i| {
            let (api, base, pair, credentials) = (
                api.clone(),
                Arc::clone(&base),
                pair.clone(),
                (email.clone(), password.clone()),
            );
            tokio::spawn(async move {
                let mut answers: Vec<Result<Answer, ()>> = Vec::new();
                while Instant::now() < until {
                    let answer = if i.is_multiple_of(2) {
                        api.me(&base, &pair.access).await
                    } else {
                        api.login(&base, &credentials.0, &credentials.1).await
                    };
                    answers.push(answer.map_err(|_| ()));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for probe in probes {
        answers.extend(probe.await?);
    }
    let starting = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || starting.start()).await??;
    let back = Instant::now();
    let recovered = loop {
        if let Ok(answer) = api.me(&base, &pair.access).await
            && answer.status == 200
        {
            break Some(back.elapsed());
        }
        if back.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let slowest = answers
        .iter()
        .filter_map(|a| a.as_ref().ok().map(|a| a.took))
        .max()
        .unwrap_or_default();
    let fast_503 = answers
        .iter()
        .filter(
            |a| matches!(a, Ok(a) if a.status == 503 && a.retry_after && a.took <= ANSWER_BOUND),
        )
        .count();
    let passed = fast_503 == answers.len()
        && !answers.is_empty()
        && recovered.is_some_and(|r| r <= RECOVERY_BOUND);
    drop(server);
    Ok((
        passed,
        format!(
            "outage {:.0} s: {} answers, {fast_503} were 503+Retry-After within {} ms; slowest \
             {:.2} s; recovery {} after the database was back",
            outage_for.as_secs_f64(),
            answers.len(),
            ANSWER_BOUND.as_millis(),
            slowest.as_secs_f64(),
            recovered.map_or("none within 30 s".to_owned(), |r| format!(
                "{:.2} s",
                r.as_secs_f64()
            ))
        ),
    ))
}
