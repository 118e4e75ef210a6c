//! A database outage fails fast and heals by itself (issue 11, item 1): with the servers
//! serving, their PostgreSQL stops; every route that needs the database answers 503 with
//! `Retry-After` within a second, `/livez` still answers 200; once the database is back,
//! requests succeed again within 3 s, without a restart. All three adapters, at once, on a
//! PostgreSQL cluster of the test's own (never the shared one), removed afterwards, also
//! when the test fails.
//!
//! Needs PostgreSQL 15's server binaries and root (the cluster runs as `postgres`); it is
//! ignored unless `AUTH_TEST_POSTGRES_URL` is set, like every PostgreSQL test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use auth_server::{Adapter, ServeArgs, ServerHandle};

/// Where Debian puts PostgreSQL 15's server programs.
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// Each answer during the outage must come within this.
const PROMPT: Duration = Duration::from_secs(1);
/// How long the outage is observed.
const OUTAGE: Duration = Duration::from_secs(3);
/// Requests must succeed again within this of the database accepting connections.
const RECOVERY: Duration = Duration::from_secs(3);
const PASSWORD: &str = "a long unusual password 4711";

/// A throwaway PostgreSQL cluster on a free port, run as `postgres`; stopped and removed
/// when dropped.
struct Cluster {
    dir: PathBuf,
    port: u16,
}

fn as_postgres(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{PG_BIN}/{program}")])
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Cluster {
    fn create() -> Result<Cluster, String> {
        let dir = std::env::temp_dir().join(format!("auth-outage-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let cluster = Cluster {
            dir,
            port: free_port(),
        };
        let status = Command::new("chown")
            .args(["postgres:postgres", &cluster.dir.display().to_string()])
            .status()
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("chown failed".to_owned());
        }
        as_postgres(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        )?;
        cluster.start()?;
        Ok(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log").display().to_string();
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "-t",
                "30",
                "start",
            ],
        )
    }

    /// Stops the server at once, closing every connection (as a crash or a failover would).
    fn stop(&self) -> Result<(), String> {
        as_postgres(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "stop",
            ],
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn args(database_url: &str) -> ServeArgs {
    let mut args = ServeArgs::defaults().expect("default settings");
    args.database.database_url = database_url.to_owned();
    // Mail goes to the OS temp directory, never into the source tree (on Postgres the
    // default outbox is the working directory, which is the crate's under `cargo test`).
    args.mail.mail_outbox = Some(std::env::temp_dir().join("auth-server-test-outbox"));
    args.database.db_pool_size = 2;
    // Every `/me` asks the database, so the outage shows on it at once.
    args.principal_cache_ms = 0;
    args.jwt_secret = Some(format!("{:064x}", rand::random::<u128>()).into());
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.argon2_parallelism = 1;
    args
}

/// One server under test and what it needs to call its database routes.
struct Served {
    adapter: Adapter,
    server: ServerHandle,
    email: String,
    token: String,
}

/// What one request answered.
#[derive(Debug)]
struct Answer {
    status: u16,
    retry_after: bool,
    took: Duration,
}

async fn send(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let started = Instant::now();
    let resp = request.send().await.map_err(|e| e.to_string())?;
    Ok(Answer {
        status: resp.status().as_u16(),
        retry_after: resp.headers().contains_key("retry-after"),
        took: started.elapsed(),
    })
}

fn login(client: &reqwest::Client, base: &str, email: &str) -> reqwest::RequestBuilder {
    client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
}

async fn serve(adapter: Adapter, admin: &str, client: &reqwest::Client) -> Result<Served, String> {
    let name = format!("auth_outage_{}", adapter.name());
    let url = auth_diesel::create_postgres_database(admin, &name).map_err(|e| e.to_string())?;
    let app = auth_server::build_app(&args(&url))
        .await
        .map_err(|e| format!("app: {e:#}"))?;
    let server = auth_server::start(adapter, app, "127.0.0.1:0")
        .await
        .map_err(|e| format!("start: {e:#}"))?;
    let base = server.base_url();
    let email = format!("outage-{}@example.com", adapter.name());
    let registered = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(&serde_json::json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if registered.status() != 201 {
        return Err(format!("register: {}", registered.status()));
    }
    let body: serde_json::Value = login(client, &base, &email)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| format!("login: {e}"))?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let token = body["token"]["access_token"]
        .as_str()
        .ok_or_else(|| format!("no access token in {body}"))?
        .to_owned();
    Ok(Served {
        adapter,
        server,
        email,
        token,
    })
}

/// The routes checked during the outage: (name, request, expected status).
fn routes<'a>(
    client: &'a reqwest::Client,
    served: &'a Served,
) -> Vec<(&'static str, reqwest::RequestBuilder, u16)> {
    let base = served.server.base_url();
    vec![
        ("login", login(client, &base, &served.email), 503),
        (
            "me",
            client
                .get(format!("{base}/api/v1/auth/me"))
                .bearer_auth(&served.token),
            503,
        ),
        ("readyz", client.get(format!("{base}/readyz")), 503),
        ("livez", client.get(format!("{base}/livez")), 200),
    ]
}

/// Sends every route to every server until `OUTAGE` has passed; returns the slowest answer
/// per adapter or the first wrong one.
async fn during_outage(client: &reqwest::Client, served: &[Served]) -> Result<Vec<String>, String> {
    let started = Instant::now();
    let mut worst = vec![Duration::ZERO; served.len()];
    let mut rounds = 0;
    while started.elapsed() < OUTAGE {
        rounds += 1;
        for (i, s) in served.iter().enumerate() {
            for (name, request, expected) in routes(client, s) {
                let answer = send(request).await?;
                let wanted_retry = expected == 503;
                if answer.status != expected
                    || answer.retry_after != wanted_retry
                    || answer.took >= PROMPT
                {
                    return Err(format!(
                        "{}: {name} during the outage answered {answer:?} (round {rounds}); \
                         expected {expected}{} within {PROMPT:?}",
                        s.adapter.name(),
                        if wanted_retry {
                            " with Retry-After"
                        } else {
                            ""
                        },
                    ));
                }
                if expected == 503 {
                    worst[i] = worst[i].max(answer.took);
                }
            }
        }
    }
    Ok(served
        .iter()
        .zip(worst)
        .map(|(s, w)| {
            format!(
                "{}: slowest 503 {w:?} over {rounds} rounds",
                s.adapter.name()
            )
        })
        .collect())
}

/// Polls a login on every server until it succeeds; the time each took from `back`.
async fn recovery(
    client: &reqwest::Client,
    served: &[Served],
    back: Instant,
) -> Result<Vec<String>, String> {
    let mut report = Vec::new();
    for s in served {
        let base = s.server.base_url();
        loop {
            let answer = send(login(client, &base, &s.email)).await?;
            if answer.status == 200 {
                report.push(format!(
                    "{}: login succeeds {:?} after the database accepted connections",
                    s.adapter.name(),
                    back.elapsed()
                ));
                break;
            }
            if back.elapsed() > RECOVERY {
                return Err(format!(
                    "{}: no recovery within {RECOVERY:?} of the database's return (last \
                     answer {answer:?})",
                    s.adapter.name()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ready = send(client.get(format!("{base}/readyz"))).await?;
        if ready.status != 200 {
            return Err(format!(
                "{}: /readyz after recovery: {ready:?}",
                s.adapter.name()
            ));
        }
    }
    Ok(report)
}

async fn outage_and_recovery(cluster: &Cluster) -> Result<Vec<String>, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| e.to_string())?;
    let mut served = Vec::new();
    for &adapter in Adapter::all() {
        served.push(serve(adapter, &cluster.admin_url(), &client).await?);
    }
    for s in &served {
        for (name, request, _) in routes(&client, s) {
            let answer = send(request).await?;
            if answer.status != 200 {
                return Err(format!(
                    "{}: {name} before the outage: {answer:?}",
                    s.adapter.name()
                ));
            }
        }
    }
    cluster.stop()?;
    let mut report = during_outage(&client, &served).await?;
    cluster.start()?;
    let back = Instant::now();
    report.extend(recovery(&client, &served, back).await?);
    for s in served {
        s.server.stop().await.map_err(|e| format!("stop: {e:#}"))?;
    }
    Ok(report)
}

#[cfg_attr(not(auth_test_postgres), ignore = "set AUTH_TEST_POSTGRES_URL to run")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_fails_fast_and_heals_by_itself() {
    assert!(Path::new(PG_BIN).join("initdb").exists(), "needs {PG_BIN}");
    let cluster = Cluster::create().expect("own cluster");
    // Bounded: a hang anywhere fails the test (and the cluster is still removed).
    let outcome = tokio::time::timeout(Duration::from_secs(120), outage_and_recovery(&cluster))
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()));
    drop(cluster);
    match outcome {
        Ok(report) => println!("{}", report.join("\n")),
        Err(err) => panic!("{err}"),
    }
}
