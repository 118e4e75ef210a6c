//! `kill -9` during a write storm: client tasks register, refresh and log out against the
//! server while it is killed with SIGKILL at random moments and restarted on the same
//! database (rotating through the adapters); every write the server acknowledged is then
//! checked against the restarted server. A registration acknowledged (201) must log in; an
//! acknowledged refresh's new token must work and its old one must be refused; an
//! acknowledged logout must stay: its tokens refused. A user whose last write got no answer
//! (the kill came mid-request) is checked only for what was acknowledged before, in a way
//! that holds whichever way the unanswered write went. SQLite's file must pass
//! `PRAGMA integrity_check` afterwards.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use diesel::{Connection as _, RunQueryDsl as _};

use super::client::{Api, Pair, unique_email, unique_password};
use super::{Case, Env, NO_LIMITS, Outcome, random_below};
use crate::server::{Adapter, Database, FreshDatabase, ServerProcess};

/// Kills per run.
const KILLS: usize = 3;
/// Client tasks writing at once.
const WRITERS: usize = 6;

/// What the server acknowledged for one user.
#[derive(Debug, Default)]
struct User {
    email: String,
    password: String,
    /// The pair of the last acknowledged register or refresh.
    current: Option<Pair>,
    /// Refresh tokens replaced by acknowledged refreshes: each must be refused.
    superseded: Vec<String>,
    /// The logout was acknowledged.
    logged_out: bool,
    /// A write after the last acknowledged one got no answer: its effect is unknown.
    uncertain: bool,
}

impl User {
    fn acknowledged(&self) -> usize {
        1 + self.superseded.len() + usize::from(self.logged_out)
    }
}

/// Runs the case on `database`.
pub async fn run(env: &Env<'_>, database: Database, adapters: &[Adapter]) -> Outcome {
    let on = database.to_string();
    match storm(env, database, adapters).await {
        Ok((passed, figures)) => Outcome::new(Case::Kill9, on, passed, figures),
        Err(err) => Outcome::error(Case::Kill9, on, &err),
    }
}

async fn storm(
    env: &Env<'_>,
    database: Database,
    adapters: &[Adapter],
) -> anyhow::Result<(bool, String)> {
    let fresh = FreshDatabase::new(database, env.postgres_admin, "auth_chaos")?;
    // No replay window: an old refresh token is then always refused, never answered again.
    let args: Vec<&str> = NO_LIMITS
        .iter()
        .copied()
        .chain(["--refresh-reuse-interval", "0"])
        .collect();
    let start = |round: usize| {
        let adapter = adapters[round % adapters.len()];
        let launch = env.launch(
            adapter,
            fresh.url(),
            &args,
            &format!("kill9-{database}-{round}"),
        );
        async move { ServerProcess::start(&launch).await }
    };
    let mut server = start(0).await?;
    let base = Arc::new(RwLock::new(server.base_url()));
    let users = Arc::new(Mutex::new(Vec::<User>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            tokio::spawn(writer(
                Arc::clone(&base),
                Arc::clone(&users),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let (min_ms, spread_ms) = if env.short { (500, 1500) } else { (1000, 4000) };
    for round in 1..=KILLS {
        tokio::time::sleep(Duration::from_millis(min_ms + random_below(spread_ms))).await;
        server.signal(rustix::process::Signal::KILL)?;
        server.wait_exit(Duration::from_secs(10)).await?;
        if round == KILLS {
            // The last kill lands mid-storm too; the writers stop only once it is dead.
            stop.store(true, Ordering::Relaxed);
            for writer in writers.drain(..) {
                writer.await.context("a writer task")?;
            }
        }
        drop(server);
        server = start(round).await?;
        *base.write().unwrap_or_else(PoisonError::into_inner) = server.base_url();
    }
    let users = std::mem::take(&mut *users.lock().unwrap_or_else(PoisonError::into_inner));
    let (acknowledged, verified, lost) = verify(&server.base_url(), &users).await?;
    let integrity = match database {
        Database::Sqlite => sqlite_integrity(fresh.url())?,
        _ => "n/a".to_owned(),
    };
    let uncertain = users.iter().filter(|u| u.uncertain).count();
    let passed = lost == 0 && verified == acknowledged && acknowledged > 0 && integrity != "bad";
    Ok((
        passed,
        format!(
            "{KILLS} kills; acknowledged {acknowledged}, verified {verified}, lost {lost}; \
             {} users ({uncertain} with an unanswered write); integrity {integrity}",
            users.len()
        ),
    ))
}

/// One client: a new user after another, each registered, refreshed twice and (every other
/// one) logged out, until told to stop. What is acknowledged goes into `users`.
async fn writer(base: Arc<RwLock<String>>, users: Arc<Mutex<Vec<User>>>, stop: Arc<AtomicBool>) {
    let api = Api::new(Duration::from_secs(5), false);
    while !stop.load(Ordering::Relaxed) {
        let base = base.read().unwrap_or_else(PoisonError::into_inner).clone();
        let mut user = User {
            email: unique_email("kill9"),
            password: unique_password(),
            ..User::default()
        };
        match api.register(&base, &user.email, &user.password).await {
            Ok(answer) if answer.status == 201 => user.current = answer.pair(),
            // Refused, or no answer (the server is down): nothing acknowledged; wait a bit.
            _ => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        }
        let log_out = random_below(2) == 0;
        for step in 0..3 {
            let Some(pair) = user.current.clone() else {
                break;
            };
            let answer = if step < 2 {
                api.refresh(&base, &pair.refresh).await
            } else if log_out {
                api.logout(&base, &pair.access).await
            } else {
                break;
            };
            match answer {
                Ok(answer) if step < 2 && answer.status == 200 => {
                    if let Some(next) = answer.pair() {
                        user.superseded.push(pair.refresh);
                        user.current = Some(next);
                    }
                }
                Ok(answer) if step == 2 && answer.status == 204 => user.logged_out = true,
                // A refusal changed nothing (the server says so); no answer may have.
                Ok(_) => break,
                Err(_) => {
                    user.uncertain = true;
                    break;
                }
            }
        }
        users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(user);
    }
}

/// Checks every acknowledged write; (acknowledged, verified, lost).
async fn verify(base: &str, users: &[User]) -> anyhow::Result<(usize, usize, usize)> {
    let api = Api::new(Duration::from_secs(30), false);
    let (mut acknowledged, mut verified) = (0, 0);
    for user in users {
        acknowledged += user.acknowledged();
        let login = api.login(base, &user.email, &user.password).await?;
        verified += usize::from(login.status == 200);
        let Some(current) = &user.current else {
            continue;
        };
        let mut refreshes_hold = true;
        // A logout is the last write, so a logged-out user is never uncertain.
        if !user.uncertain {
            // The newest token works unless logged out; with a logout, nothing works.
            let refreshed = api.refresh(base, &current.refresh).await?;
            if user.logged_out {
                let me = api.me(base, &current.access).await?;
                verified += usize::from(refreshed.status == 401 && me.status == 401);
            } else {
                refreshes_hold &= refreshed.status == 200;
            }
        }
        for old in &user.superseded {
            let answer = api.refresh(base, old).await?;
            refreshes_hold &= answer.status == 401;
        }
        if refreshes_hold {
            verified += user.superseded.len();
        }
    }
    Ok((
        acknowledged,
        verified,
        acknowledged - verified.min(acknowledged),
    ))
}

/// `PRAGMA integrity_check` on the SQLite file behind `url`: `ok`, or `bad`.
fn sqlite_integrity(url: &str) -> anyhow::Result<String> {
    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let path = url.trim_start_matches("sqlite://");
    let mut conn = diesel::SqliteConnection::establish(path)?;
    let rows: Vec<Check> = diesel::sql_query("PRAGMA integrity_check").load(&mut conn)?;
    let ok = rows.len() == 1 && rows[0].integrity_check == "ok";
    Ok(if ok { "ok" } else { "bad" }.to_owned())
}
