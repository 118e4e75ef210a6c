//! The scenarios, run in order against one server: seeding, then each load, each giving a
//! [`Row`].

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context as _, bail};

use super::hashing;
use super::load::{self, Connection, Flow, Outcome, Plan, Response, Verdict, request};
use super::memory::PeakRss;
use super::report::Row;
use crate::server::ServerProcess;

/// Every scenario, in the order they run. `idle` (the resident set before any load) always
/// runs; `refresh` comes last because it rotates the sessions the `me` scenarios use.
pub const ALL: &[&str] = &[
    "idle",
    "hello",
    "me",
    "me-pat",
    "login",
    "me-under-login-flood",
    "login-flood-memory",
    "register",
    "refresh",
];

/// Concurrent logins of `login-flood-memory`.
const FLOOD_LOGINS: usize = 500;
/// The API prefix of the `native` profile.
pub(super) const API: &str = "/api/v1/auth";
/// The seeded user.
const EMAIL: &str = "bench-user@example.com";
/// Its password (and every registered user's).
const PASSWORD: &str = "bench-password-1";

/// What the scenarios of one adapter and database share.
pub struct Context<'a> {
    /// The server under test.
    pub server: &'a mut ServerProcess,
    /// Its adapter.
    pub adapter: &'a str,
    /// Its database kind.
    pub database: &'a str,
    /// Warm-up and window of each load.
    pub plan: Plan,
    /// Connections per load.
    pub connections: usize,
    /// How long the argon2 limit is measured.
    pub argon2_time: Duration,
    /// Scenarios to run (besides `idle`).
    pub selected: &'a [String],
}

/// The outcome of one adapter and database: its rows, and the argon2 limit when measured.
#[derive(Debug, Default)]
pub struct Results {
    /// One row per scenario run.
    pub rows: Vec<Row>,
    /// argon2id hashes per second on all cores: the mean of the measurements just before
    /// and just after `login`.
    pub argon2_limit: Option<f64>,
}

/// Runs the selected scenarios in order. A scenario that cannot run ends the sequence with a
/// failed row (the server may be gone); unexpected answers are counted in their row.
pub async fn run(ctx: Context<'_>) -> Results {
    let (adapter, database) = (ctx.adapter.to_owned(), ctx.database.to_owned());
    let mut results = Results::default();
    if let Err((scenario, err)) = run_in_order(ctx, &mut results).await {
        results.rows.push(Row::failed(
            &adapter,
            &database,
            &scenario,
            format!("{err:#}"),
        ));
    }
    results
}

async fn run_in_order(
    mut ctx: Context<'_>,
    results: &mut Results,
) -> Result<(), (String, anyhow::Error)> {
    let (adapter, database) = (ctx.adapter.to_owned(), ctx.database.to_owned());
    // Idle: after start-up (which hashes one dummy password), before any request.
    tokio::time::sleep(Duration::from_millis(500)).await;
    results.rows.push(Row::memory_only(
        &adapter,
        &database,
        "idle",
        ctx.server.rss_kib(),
    ));
    let seed = seed(ctx.server.addr, ctx.connections)
        .await
        .map_err(|err| ("seed".to_owned(), err))?;
    for &scenario in &ALL[1..] {
        if !ctx.selected.iter().any(|s| s == scenario) {
            continue;
        }
        eprintln!("   {adapter}/{database} {scenario}");
        let row = run_one(&mut ctx, scenario, &seed, results)
            .await
            .map_err(|err| (scenario.to_owned(), err))?;
        if row.errors > 0 {
            eprintln!(
                "   {scenario}: {} unexpected answers, e.g. {}",
                row.errors,
                row.error_samples.join(" | ")
            );
        }
        results.rows.push(row);
        ctx.server
            .check_alive()
            .map_err(|err| (scenario.to_owned(), err))?;
    }
    Ok(())
}

async fn run_one(
    ctx: &mut Context<'_>,
    scenario: &str,
    seed: &Seed,
    results: &mut Results,
) -> anyhow::Result<Row> {
    let addr = ctx.server.addr;
    let n = ctx.connections;
    // The limit is measured with the server idle, just before and just after the logins it
    // bounds; their mean is what `login` is compared with (background load moves both).
    let limit_before = if scenario == "login" {
        Some(argon2_limit(ctx.argon2_time).await?)
    } else {
        None
    };
    let peak = PeakRss::start(ctx.server.pid());
    let outcome = match scenario {
        "hello" => load::run(addr, ctx.plan, fixed(n, |_| get("/bench/hello", None))).await?,
        "me" => {
            let flows = fixed(n, |i| get(&format!("{API}/me"), Some(seed.jwt(i))));
            load::run(addr, ctx.plan, flows).await?
        }
        "me-pat" => {
            let flows = fixed(n, |i| get(&format!("{API}/me"), Some(seed.pat(i))));
            load::run(addr, ctx.plan, flows).await?
        }
        "login" => load::run(addr, ctx.plan, logins(n)).await?,
        "me-under-login-flood" => {
            let me = fixed(n, |i| get(&format!("{API}/me"), Some(seed.jwt(i))));
            let (me, flood) = tokio::join!(
                load::run(addr, ctx.plan, me),
                load::run(addr, ctx.plan, logins(n))
            );
            let (mut me, flood) = (me?, flood?);
            // The flood's refusals and errors belong to this scenario too.
            me.rejected += flood.rejected;
            me.errors += flood.errors;
            me.samples.extend(flood.samples);
            me
        }
        "login-flood-memory" => load::burst(addr, logins(FLOOD_LOGINS)).await?,
        "register" => {
            let flows = (0..n).map(Register::new).collect();
            load::run(addr, ctx.plan, flows).await?
        }
        "refresh" => {
            let flows = (0..n)
                .map(|i| RefreshChain::new(i, &seed.refresh[i % seed.refresh.len()]))
                .collect();
            load::run(addr, ctx.plan, flows).await?
        }
        other => bail!("unknown scenario {other}"),
    };
    let peak = peak.finish();
    if let Some(before) = limit_before {
        let after = argon2_limit(ctx.argon2_time).await?;
        eprintln!(
            "   argon2 limit: {:.1} before, {:.1} after the logins (hashes/s, {} threads)",
            before.per_second, after.per_second, after.threads
        );
        results.argon2_limit = Some((before.per_second + after.per_second) / 2.0);
    }
    Ok(row(ctx, scenario, &outcome, peak))
}

async fn argon2_limit(time: Duration) -> anyhow::Result<hashing::Limit> {
    tokio::task::spawn_blocking(move || hashing::measure(time)).await?
}

fn row(ctx: &Context<'_>, scenario: &str, outcome: &Outcome, peak_kib: Option<u64>) -> Row {
    Row::from_outcome(ctx.adapter, ctx.database, scenario, outcome, peak_kib)
}

pub(super) fn get(path: &str, bearer: Option<&str>) -> Vec<u8> {
    match bearer {
        Some(token) => request(
            "GET",
            path,
            &[("Authorization", &format!("Bearer {token}"))],
            None,
        ),
        None => request("GET", path, &[], None),
    }
}

/// The client a request stands for, in `X-Forwarded-For` (the server trusts the loopback as
/// a proxy): connection `connection`'s `n`th client, so per-IP limits see many clients.
fn client(connection: usize, n: u64) -> String {
    format!("10.{}.{}.{}", connection % 256, (n / 256) % 256, n % 256)
}

pub(super) fn login_request(connection: usize) -> Vec<u8> {
    let body = serde_json::json!({"email": EMAIL, "password": PASSWORD}).to_string();
    let forwarded = client(connection, 0);
    request(
        "POST",
        &format!("{API}/login"),
        &[("X-Forwarded-For", &forwarded)],
        Some(&body),
    )
}

pub(super) fn fixed(n: usize, render: impl Fn(usize) -> Vec<u8>) -> Vec<Fixed> {
    (0..n)
        .map(|i| Fixed {
            request: render(i),
            expect: 200,
            allow_overload: false,
        })
        .collect()
}

fn logins(n: usize) -> Vec<Fixed> {
    (0..n)
        .map(|i| Fixed {
            request: login_request(i),
            expect: 200,
            allow_overload: true,
        })
        .collect()
}

/// Judges an answer: the expected status, an allowed 503 + `Retry-After`, or an error.
fn verdict(response: &Response, expect: u16, allow_overload: bool) -> Verdict {
    if response.status == expect {
        Verdict::Ok
    } else if allow_overload && response.status == 503 && response.retry_after {
        Verdict::Rejected
    } else {
        Verdict::Unexpected(response.describe())
    }
}

/// The same request over and over.
pub(super) struct Fixed {
    request: Vec<u8>,
    expect: u16,
    allow_overload: bool,
}

impl Flow for Fixed {
    fn request(&mut self) -> &[u8] {
        &self.request
    }

    fn check(&mut self, response: &Response) -> Verdict {
        verdict(response, self.expect, self.allow_overload)
    }
}

/// Registrations of new users, each with its own address.
struct Register {
    connection: usize,
    count: u64,
    request: Vec<u8>,
}

impl Register {
    fn new(connection: usize) -> Self {
        Self {
            connection,
            count: 0,
            request: Vec::new(),
        }
    }
}

impl Flow for Register {
    fn request(&mut self) -> &[u8] {
        self.count += 1;
        let body = serde_json::json!({
            "email": format!("bench-{}-{}@example.com", self.connection, self.count),
            "password": PASSWORD,
            "full_name": "Bench User",
        })
        .to_string();
        let forwarded = client(self.connection, self.count);
        self.request = request(
            "POST",
            &format!("{API}/register"),
            &[("X-Forwarded-For", &forwarded)],
            Some(&body),
        );
        &self.request
    }

    fn check(&mut self, response: &Response) -> Verdict {
        verdict(response, 201, true)
    }
}

/// One session's refresh-token chain: each answer's refresh token is the next request's.
struct RefreshChain {
    connection: usize,
    count: u64,
    request: Vec<u8>,
}

impl RefreshChain {
    fn new(connection: usize, token: &str) -> Self {
        let mut chain = Self {
            connection,
            count: 0,
            request: Vec::new(),
        };
        chain.render(token);
        chain
    }

    fn render(&mut self, token: &str) {
        self.count += 1;
        let body = serde_json::json!({ "refresh_token": token }).to_string();
        let forwarded = client(self.connection, self.count);
        self.request = request(
            "POST",
            &format!("{API}/refresh"),
            &[("X-Forwarded-For", &forwarded)],
            Some(&body),
        );
    }
}

impl Flow for RefreshChain {
    fn request(&mut self) -> &[u8] {
        &self.request
    }

    fn check(&mut self, response: &Response) -> Verdict {
        let verdict = verdict(response, 200, false);
        if verdict != Verdict::Ok {
            return verdict;
        }
        match response.json().ok().as_ref().and_then(refresh_token) {
            Some(next) => {
                self.render(next);
                Verdict::Ok
            }
            None => Verdict::Unexpected(format!("no refresh_token in {}", response.describe())),
        }
    }
}

/// The refresh token of a token object, at the top level or under `token`.
fn refresh_token(value: &serde_json::Value) -> Option<&str> {
    value
        .get("refresh_token")
        .or_else(|| value.pointer("/token/refresh_token"))
        .and_then(|v| v.as_str())
}

/// The credentials the scenarios use: one user with a session per connection (access and
/// refresh token) and a personal access token per connection.
pub(super) struct Seed {
    jwts: Vec<String>,
    refresh: Vec<String>,
    pats: Vec<String>,
}

impl Seed {
    pub(super) fn jwt(&self, i: usize) -> &str {
        &self.jwts[i % self.jwts.len()]
    }

    fn pat(&self, i: usize) -> &str {
        &self.pats[i % self.pats.len()]
    }
}

pub(super) async fn call(
    addr: SocketAddr,
    request: &[u8],
    expect: u16,
) -> anyhow::Result<serde_json::Value> {
    let response = Connection::new(addr).send(request).await?;
    if response.status != expect {
        bail!("expected {expect}, got {}", response.describe());
    }
    response.json()
}

/// Registers the user, logs in once per connection, and creates a personal token per session.
pub(super) async fn seed(addr: SocketAddr, connections: usize) -> anyhow::Result<Seed> {
    let body = serde_json::json!({"email": EMAIL, "password": PASSWORD, "full_name": "Bench"});
    call(
        addr,
        &request(
            "POST",
            &format!("{API}/register"),
            &[],
            Some(&body.to_string()),
        ),
        201,
    )
    .await
    .context("registering the bench user")?;
    seed_sessions(addr, connections).await
}

/// The status of `request`'s answer, or `None` when none came.
pub(super) async fn call_status(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    Connection::new(addr)
        .send(request)
        .await
        .ok()
        .map(|r| r.status)
}

/// Logs the (registered) bench user in once per connection and creates a personal token per
/// session.
pub(super) async fn seed_sessions(addr: SocketAddr, connections: usize) -> anyhow::Result<Seed> {
    let sessions = connections.max(1);
    let mut logins = Vec::with_capacity(sessions);
    for i in 0..sessions {
        logins.push(tokio::spawn(async move {
            call(addr, &login_request(i), 200).await
        }));
    }
    let (mut jwts, mut refresh, mut pats) = (Vec::new(), Vec::new(), Vec::new());
    for login in logins {
        let answer = login.await?.context("logging the bench user in")?;
        let access = answer
            .pointer("/token/access_token")
            .and_then(|v| v.as_str())
            .context("no access token in the login answer")?
            .to_owned();
        let next = refresh_token(&answer)
            .context("no refresh token in the login answer")?
            .to_owned();
        let created = call(
            addr,
            &request(
                "POST",
                &format!("{API}/tokens"),
                &[("Authorization", &format!("Bearer {access}"))],
                Some(
                    &serde_json::json!({
                        "name": format!("bench-{}", pats.len()),
                        // Minting a personal token is a step-up: it needs the password.
                        "current_password": PASSWORD,
                    })
                    .to_string(),
                ),
            ),
            201,
        )
        .await
        .context("creating a personal access token")?;
        pats.push(
            created
                .get("token")
                .and_then(|v| v.as_str())
                .context("no token in the personal token answer")?
                .to_owned(),
        );
        jwts.push(access);
        refresh.push(next);
    }
    Ok(Seed {
        jwts,
        refresh,
        pats,
    })
}
