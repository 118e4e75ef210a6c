//! Pool exhaustion: a small pool (`--db-pool-size 2`), the `users` and `sessions` tables
//! locked by a direct connection for a few seconds, and a burst of `/me` (principal cache
//! off). The requests that got a connection wait for the lock; every other one must be a 503
//! with `Retry-After` within 1 s, and none may hang past the lock (issue 11, item 1).

use std::time::Duration;

use anyhow::Context as _;
use diesel::{Connection as _, RunQueryDsl as _};

use super::client::{Api, unique_email, unique_password};
use super::{Case, Env, NO_LIMITS, Outcome};
use crate::server::{Adapter, Database, FreshDatabase, ServerProcess};

/// The server's pool.
const POOL: usize = 2;
/// Requests in the burst.
const BURST: usize = 16;
/// How fast a request that found no connection must be refused.
const REFUSE_BOUND: Duration = Duration::from_secs(1);

/// Runs the case with `adapter` on Postgres.
pub async fn run(env: &Env<'_>, adapter: Adapter) -> Outcome {
    let on = format!("postgres/{adapter}");
    match exhaust(env, adapter).await {
        Ok((passed, figures)) => Outcome::new(Case::Pool, on, passed, figures),
        Err(err) => Outcome::error(Case::Pool, on, &err),
    }
}

async fn exhaust(env: &Env<'_>, adapter: Adapter) -> anyhow::Result<(bool, String)> {
    let fresh = FreshDatabase::new(Database::Postgres, env.postgres_admin, "auth_chaos")?;
    let pool = POOL.to_string();
    let mut args: Vec<&str> = NO_LIMITS.to_vec();
    args.extend(["--principal-cache-ms", "0", "--db-pool-size", &pool]);
    let server = ServerProcess::start(&env.launch(adapter, fresh.url(), &args, "pool")).await?;
    let base = server.base_url();
    let api = Api::new(Duration::from_secs(30), true);
    let registered = api
        .register(&base, &unique_email("pool"), &unique_password())
        .await?;
    let pair = registered.pair().context("no token pair")?;
    let hold = Duration::from_secs(if env.short { 4 } else { 8 });
    let url = fresh.url().to_owned();
    let (locked_tx, locked) = tokio::sync::oneshot::channel();
    let holder = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut conn = diesel::PgConnection::establish(&url)?;
        conn.transaction(|conn| {
            diesel::sql_query("LOCK TABLE users, sessions IN ACCESS EXCLUSIVE MODE")
                .execute(conn)?;
            let _ = locked_tx.send(());
            std::thread::sleep(hold);
            diesel::QueryResult::Ok(())
        })?;
        Ok(())
    });
    locked.await.context("the lock was never taken")?;
    let burst: Vec<_> = (0..BURST)
        .map(|_| {
            let (api, base, access) = (api.clone(), base.clone(), pair.access.clone());
            tokio::spawn(async move { api.me(&base, &access).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in burst {
        answers.push(request.await?);
    }
    holder.await??;
    let answered: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
    let fast_503 = answered
        .iter()
        .filter(|a| a.status == 503 && a.retry_after && a.took <= REFUSE_BOUND)
        .count();
    let wrong = answered
        .iter()
        .filter(|a| a.status != 200 && !(a.status == 503 && a.retry_after))
        .count();
    let slowest = answered.iter().map(|a| a.took).max().unwrap_or_default();
    let unanswered = BURST - answered.len();
    let passed =
        unanswered == 0 && wrong == 0 && fast_503 >= BURST - POOL && slowest <= hold + REFUSE_BOUND;
    Ok((
        passed,
        format!(
            "pool {POOL}, {BURST} requests while locked {:.0} s: {fast_503} were 503+Retry-After \
             within {} ms, {wrong} other errors, {unanswered} unanswered; slowest {:.2} s",
            hold.as_secs_f64(),
            REFUSE_BOUND.as_millis(),
            slowest.as_secs_f64()
        ),
    ))
}
