//! Three instances, one per adapter (axum, actix, warp), started at once on one fresh
//! Postgres database. Holds when they all come up, the login limit is one limit across them
//! (failures spread over the three instances are refused 429 past the limit), and a logout on
//! one instance is honoured by the other two within [`REVOCATION_BOUND`] (issue 11, item 2:
//! revocations pushed to every instance); the time that takes is measured.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::client::{Api, unique_email, unique_password};
use super::{Case, Env, Outcome};
use crate::server::{Adapter, Database, FreshDatabase, ServerProcess};

/// Failed logins allowed per email and address (the limit the case spreads over instances).
const LOGIN_LIMIT: usize = 5;
/// How soon the other instances must refuse a token logged out on one.
const REVOCATION_BOUND: Duration = Duration::from_millis(100);
/// How long the case waits for a revocation at most.
const REVOCATION_WAIT: Duration = Duration::from_secs(10);

/// Runs the case.
pub async fn run(env: &Env<'_>) -> Outcome {
    let on = "postgres/3 mixed";
    match three(env).await {
        Ok((passed, figures)) => Outcome::new(Case::Instances, on, passed, figures),
        Err(err) => Outcome::error(Case::Instances, on, &err),
    }
}

async fn three(env: &Env<'_>) -> anyhow::Result<(bool, String)> {
    let fresh = FreshDatabase::new(Database::Postgres, env.postgres_admin, "auth_chaos")?;
    let limit = format!("{LOGIN_LIMIT}/900");
    let args = ["--rate-login-email-ip", &limit, "--rate-register-ip", "off"];
    let adapters = [Adapter::Axum, Adapter::Actix, Adapter::Warp];
    let launches: Vec<_> = adapters
        .iter()
        .map(|&a| env.launch(a, fresh.url(), &args, &format!("instances-{a}")))
        .collect();
    // Concurrent start-up: all three migrate and seed the same database at once.
    let started = futures_util::future::join_all(launches.iter().map(ServerProcess::start)).await;
    let servers: Vec<ServerProcess> = started.into_iter().collect::<anyhow::Result<_>>()?;
    let bases: Vec<String> = servers.iter().map(ServerProcess::base_url).collect();
    let api = Api::new(Duration::from_secs(20), false);

    let (email, password) = (unique_email("instances"), unique_password());
    let registered = api.register(&bases[0], &email, &password).await?;
    anyhow::ensure!(
        registered.status == 201,
        "registration: {}",
        registered.status
    );
    let mut statuses = Vec::new();
    for attempt in 0..LOGIN_LIMIT + 4 {
        let base = &bases[attempt % bases.len()];
        statuses.push(api.login(base, &email, "not the password").await?.status);
    }
    let refused_at = statuses.iter().position(|&s| s == 429);
    let limits_hold = refused_at == Some(LOGIN_LIMIT)
        && statuses[LOGIN_LIMIT..].iter().all(|&s| s == 429)
        && statuses[..LOGIN_LIMIT].iter().all(|&s| s == 401);

    // A second account, so the limit above does not stand in the way.
    let (email, password) = (unique_email("instances"), unique_password());
    let registered = api.register(&bases[1], &email, &password).await?;
    let pair = registered.pair().context("no token pair")?;
    for base in &bases {
        let me = api.me(base, &pair.access).await?;
        anyhow::ensure!(me.status == 200, "/me before the logout: {}", me.status);
    }
    let logout = api.logout(&bases[0], &pair.access).await?;
    anyhow::ensure!(logout.status == 204, "logout: {}", logout.status);
    let logged_out = Instant::now();
    let mut honoured = Vec::new();
    for base in &bases[1..] {
        let seen = loop {
            if api.me(base, &pair.access).await?.status == 401 {
                break Some(logged_out.elapsed());
            }
            if logged_out.elapsed() > REVOCATION_WAIT {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        honoured.push(seen);
    }
    let slowest = honoured
        .iter()
        .copied()
        .collect::<Option<Vec<_>>>()
        .map(|all| all.into_iter().max().unwrap_or_default());
    let revocation_ok = slowest.is_some_and(|s| s <= REVOCATION_BOUND);
    let statuses: Vec<String> = statuses.iter().map(u16::to_string).collect();
    Ok((
        limits_hold && revocation_ok,
        format!(
            "3 started at once; login limit {LOGIN_LIMIT} across them: {} ({}); logout on axum \
             honoured by actix and warp after {} (bound {} ms)",
            if limits_hold { "held" } else { "NOT held" },
            statuses.join(","),
            slowest.map_or("never".to_owned(), |s| format!("{} ms", s.as_millis())),
            REVOCATION_BOUND.as_millis()
        ),
    ))
}
