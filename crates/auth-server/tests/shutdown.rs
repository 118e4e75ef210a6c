//! SIGTERM under load (docs/operations.md, "Shutdown, crashes and chaos testing"), against
//! the real binary on every adapter, each on SQLite in a temp dir and a free port: logins
//! (which hash, one at a time: `--hashing-slots 1`) are in flight when the signal comes.
//! Every one of them gets its answer, new connections are refused soon after the signal, and
//! the process exits 0 within the grace; with a grace shorter than the work queued, it exits
//! at the grace, logging how many requests it cut.
//!
//! Adapters run one after another (the hashing is CPU-bound and the timing matters); every
//! wait has a deadline, so a server that never stops fails the test instead of hanging it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADAPTERS: [&str; 3] = ["axum", "actix", "warp"];
/// Logins in flight when the signal comes.
const IN_FLIGHT: usize = 6;
/// How long a server may take to start answering `/healthz` (a loaded machine).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long after the signal new connections must be refused by.
const REFUSE_WITHIN: Duration = Duration::from_secs(5);
/// How late past its grace the process may exit (timers, a loaded machine).
const EXIT_SLACK: Duration = Duration::from_secs(5);
const PASSWORD: &str = "correct horse battery staple 7";

/// A server process, killed if a test ends without it having exited.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to `limit` for the process to exit.
    fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn terminate(&self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).expect("a pid");
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).expect("SIGTERM");
    }
}

/// Starts the binary with `adapter` on SQLite in `dir`, the grace given by environment (as an
/// operator's unit file would), slow hashing one at a time, and waits until it answers.
async fn start(adapter: &str, dir: &Path, grace_secs: u64) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let log = dir.join(format!("{adapter}.log"));
    let child = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .args(["serve", "--adapter", adapter, "--bind", &addr.to_string()])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.join("auth.db").display()))
        .args(["--hashing-slots", "1", "--argon2-memory-kib", "65536"])
        .args(["--argon2-iterations", "6"])
        .env("AUTH_SHUTDOWN_GRACE", grace_secs.to_string())
        .env("AUTH_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("the binary starts");
    let mut server = Server { child, addr, log };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("{adapter}: exited at start ({status}):\n{}", server.log());
        }
        if let Ok(resp) = client.get(server.url("/healthz")).send().await
            && resp.status().is_success()
        {
            return server;
        }
        assert!(Instant::now() < deadline, "{adapter}: never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Registers an account to log in with; its email.
async fn register(server: &Server, adapter: &str) -> String {
    let email = format!("shutdown-{adapter}@example.com");
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/auth/register"))
        .json(&json!({"email": email, "password": PASSWORD, "full_name": "Shut Down"}))
        .send()
        .await
        .expect("register answers");
    assert_eq!(resp.status(), 201, "{adapter}: registration");
    email
}

/// One login over a connection of its own: the status, or the transport error.
async fn login(url: String, email: String) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?;
    let resp = client
        .post(url)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let _: Value = resp.json().await.map_err(|e| format!("{e:?}"))?;
    Ok(status)
}

/// Starts `count` logins at once and gives them time to reach the server.
async fn logins_in_flight(
    server: &Server,
    email: &str,
    count: usize,
) -> Vec<tokio::task::JoinHandle<Result<u16, String>>> {
    let tasks = (0..count)
        .map(|_| tokio::spawn(login(server.url("/api/v1/auth/login"), email.to_owned())))
        .collect();
    // Connecting and sending take milliseconds; the hashing, one at a time, far longer.
    tokio::time::sleep(Duration::from_millis(500)).await;
    tasks
}

/// Waits until a new connection is refused; how long that took, or `None` past `limit`.
fn refused_within(addr: SocketAddr, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish_refuses_new_ones_and_exits_zero() {
    const GRACE: u64 = 60;
    for adapter in ADAPTERS {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = start(adapter, dir.path(), GRACE).await;
        let email = register(&server, adapter).await;
        let tasks = logins_in_flight(&server, &email, IN_FLIGHT).await;
        let signalled = Instant::now();
        server.terminate();
        let unfinished = tasks.iter().filter(|t| !t.is_finished()).count();
        assert!(
            unfinished > 0,
            "{adapter}: the logins were over before the signal; the test proves nothing"
        );
        let refused = refused_within(server.addr, REFUSE_WITHIN);
        assert!(
            refused.is_some(),
            "{adapter}: still accepting connections {REFUSE_WITHIN:?} after SIGTERM"
        );
        for task in tasks {
            let answer = task.await.expect("login task");
            assert_eq!(
                answer,
                Ok(200),
                "{adapter}: a login in flight at SIGTERM did not get its answer\n{}",
                server.log()
            );
        }
        let status = server.wait_exit(Duration::from_secs(GRACE) + EXIT_SLACK);
        let took = signalled.elapsed();
        let status = status.unwrap_or_else(|| {
            panic!(
                "{adapter}: still running {took:?} after SIGTERM\n{}",
                server.log()
            )
        });
        assert!(
            status.success(),
            "{adapter}: exit {status} after SIGTERM\n{}",
            server.log()
        );
        eprintln!(
            "{adapter}: {unfinished} logins in flight at SIGTERM all answered, refused after \
             {refused:?}, exit 0 after {took:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_still_running_at_the_end_of_the_grace_are_cut_and_counted() {
    const GRACE: u64 = 1;
    const CUT_LOGINS: usize = 8;
    for adapter in ADAPTERS {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = start(adapter, dir.path(), GRACE).await;
        let email = register(&server, adapter).await;
        let started = Instant::now();
        login(server.url("/api/v1/auth/login"), email.clone())
            .await
            .expect("a login");
        let one_login = started.elapsed();
        let tasks = logins_in_flight(&server, &email, CUT_LOGINS).await;
        let signalled = Instant::now();
        server.terminate();
        let status = server.wait_exit(Duration::from_secs(GRACE) + EXIT_SLACK);
        let took = signalled.elapsed();
        let status = status.unwrap_or_else(|| {
            panic!(
                "{adapter}: still running {took:?} after SIGTERM\n{}",
                server.log()
            )
        });
        assert!(
            status.success(),
            "{adapter}: exit {status}\n{}",
            server.log()
        );
        let answered = futures_util::future::join_all(tasks)
            .await
            .into_iter()
            .filter(|r| matches!(r, Ok(Ok(200))))
            .count();
        let log = server.log();
        // Eight logins one at a time outlast a 1 s grace unless hashing is very fast here.
        let queued = one_login * CUT_LOGINS as u32;
        if queued > Duration::from_secs(GRACE) * 2 {
            assert!(
                answered < CUT_LOGINS,
                "{adapter}: all logins answered though they needed {queued:?} in all"
            );
        }
        if answered < CUT_LOGINS {
            assert!(
                log.contains("requests still running were cut"),
                "{adapter}: requests were cut without a log line saying so\n{log}"
            );
        }
        eprintln!(
            "{adapter}: one login {one_login:?}; {answered}/{CUT_LOGINS} answered; exit 0 after \
             {took:?}"
        );
    }
}
