//! SIGTERM under load: client tasks log in over fresh connections (logins hash, one at a
//! time, so requests are queued in the server) when the server gets SIGTERM. Every request
//! sent well before the signal must get its answer; new connections after it are refused; the
//! process exits 0 within its grace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::{Api, unique_email, unique_password};
use super::{Case, Env, NO_LIMITS, Outcome};
use crate::server::{Adapter, Database, FreshDatabase, ServerProcess};

/// The server's `--shutdown-grace`, in seconds.
const GRACE_SECS: u64 = 10;
/// How late past the grace the process may exit (a loaded machine).
const EXIT_SLACK: Duration = Duration::from_secs(5);
/// A request sent less than this before the signal may not have reached the server yet: it
/// may be refused like one sent after.
const IN_TRANSIT: Duration = Duration::from_millis(100);
/// Client tasks logging in at once.
const CLIENTS: usize = 8;

/// One login: when it was sent, when it ended, and its status (`None`: no answer).
struct Attempt {
    sent: Instant,
    ended: Instant,
    status: Option<u16>,
}

/// Runs the case with `adapter` (on SQLite: shutdown does not depend on the database).
pub async fn run(env: &Env<'_>, adapter: Adapter) -> Outcome {
    let on = format!("sqlite/{adapter}");
    match under_load(env, adapter).await {
        Ok((passed, figures)) => Outcome::new(Case::Sigterm, on, passed, figures),
        Err(err) => Outcome::error(Case::Sigterm, on, &err),
    }
}

async fn under_load(env: &Env<'_>, adapter: Adapter) -> anyhow::Result<(bool, String)> {
    let fresh = FreshDatabase::new(Database::Sqlite, env.postgres_admin, "auth_chaos")?;
    let grace = GRACE_SECS.to_string();
    let mut args: Vec<&str> = NO_LIMITS.to_vec();
    args.extend(["--shutdown-grace", &grace, "--hashing-slots", "1"]);
    // Costly enough that the eight clients' logins queue behind the one hashing slot for
    // well over `IN_TRANSIT` each: at two iterations a login took ~15 ms, so only one to three
    // were counted in flight at the signal, and a loaded CI machine once counted none.
    args.extend(["--argon2-memory-kib", "16384", "--argon2-iterations", "8"]);
    let launch = env.launch(adapter, fresh.url(), &args, &format!("sigterm-{adapter}"));
    let mut server = ServerProcess::start(&launch).await?;
    let base = Arc::new(server.base_url());
    let (email, password) = (unique_email("sigterm"), unique_password());
    let api = Api::new(Duration::from_secs(30), true);
    let registered = api.register(&base, &email, &password).await?;
    anyhow::ensure!(
        registered.status == 201,
        "registration: {}",
        registered.status
    );
    let credentials = Arc::new((email, password));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (api, base, credentials) =
                (api.clone(), Arc::clone(&base), Arc::clone(&credentials));
            tokio::spawn(async move {
                let mut attempts = Vec::new();
                let give_up = Instant::now() + Duration::from_secs(60);
                while Instant::now() < give_up {
                    let sent = Instant::now();
                    let status = api
                        .login(&base, &credentials.0, &credentials.1)
                        .await
                        .ok()
                        .map(|a| a.status);
                    attempts.push(Attempt {
                        sent,
                        ended: Instant::now(),
                        status,
                    });
                    // Refused: the server has stopped accepting; this client is done.
                    if status.is_none() {
                        break;
                    }
                }
                attempts
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(if env.short { 1500 } else { 3000 })).await;
    let signalled = Instant::now();
    server.signal(rustix::process::Signal::TERM)?;
    let exit = server
        .wait_exit(Duration::from_secs(GRACE_SECS) + EXIT_SLACK)
        .await?;
    let took = signalled.elapsed();
    let mut attempts = Vec::new();
    for client in clients {
        attempts.extend(client.await?);
    }
    let in_flight: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| a.sent + IN_TRANSIT < signalled && a.ended >= signalled)
        .collect();
    let cut = in_flight.iter().filter(|a| a.status != Some(200)).count();
    let refused = attempts
        .iter()
        .filter(|a| a.sent >= signalled && a.status.is_none())
        .count();
    let exit_ok = exit.is_some_and(|status| status.success());
    let passed = cut == 0 && exit_ok && !in_flight.is_empty() && refused > 0;
    let exit = exit.map_or("still running".to_owned(), |s| s.to_string());
    Ok((
        passed,
        format!(
            "{} requests in flight at SIGTERM, {} answered, {cut} cut; {refused} refused after; \
             {exit} after {:.2} s (grace {GRACE_SECS} s)",
            in_flight.len(),
            in_flight.len() - cut,
            took.as_secs_f64()
        ),
    ))
}
