//! A pg_auto_failover formation of the run's own: a monitor, a primary and a secondary, each
//! a Postgres of its own on a free port of 127.0.0.1, set up with `pg_autoctl` as the
//! `postgres` user under a scratch directory (its configuration and state too, through the
//! XDG variables, so nothing lands in the `postgres` user's home). Replication is synchronous
//! (pg_auto_failover's default with one secondary in the quorum: `ANY 1 (...)`), so a commit
//! the primary acknowledged is on the secondary too. Everything is stopped and removed when
//! this goes. Needs Debian's `postgresql-<version>-auto-failover`.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::cluster::{as_postgres, postgres_command};

/// How long the formation may take to reach primary + secondary.
const SETUP_TIMEOUT: Duration = Duration::from_secs(90);
/// The database the server uses (created by `pg_autoctl` on the primary, replicated).
pub const DATABASE: &str = "auth_failover";

/// A running formation; see the module documentation.
pub struct Formation {
    bin: PathBuf,
    dir: PathBuf,
    monitor_port: u16,
    node_ports: [u16; 2],
    /// The `pg_autoctl run` processes: monitor first.
    services: Vec<Child>,
}

impl Formation {
    /// Sets up and starts the monitor and both nodes; returns once one node is primary and
    /// the other secondary.
    pub fn create() -> anyhow::Result<Self> {
        let bin = pg_bin_with_auto_failover()?;
        let dir = std::env::temp_dir().join(format!(
            "chaos-formation-{:08x}",
            crate::server::rand_seed() as u32
        ));
        as_postgres("mkdir", &["-m", "700", &dir.display().to_string()])?;
        let mut formation = Self {
            bin,
            dir,
            monitor_port: free_port()?,
            node_ports: [free_port()?, free_port()?],
            services: Vec::new(),
        };
        formation.start_monitor()?;
        for node in 0..2 {
            formation.start_node(node)?;
            if node == 0 {
                // The first node must be primary before the second joins as its secondary.
                formation.wait_for(&["wait_primary", "single", "primary"], 1)?;
            }
        }
        formation.wait_for(&["primary", "secondary"], 2)?;
        Ok(formation)
    }

    fn pgdata(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `pg_autoctl args` as `postgres`, with this formation's XDG directories.
    fn autoctl_args(&self, args: &[&str]) -> Vec<String> {
        let xdg = |var: &str, sub: &str| format!("{var}={}", self.dir.join(sub).display());
        let mut all = vec![
            xdg("XDG_CONFIG_HOME", "config"),
            xdg("XDG_DATA_HOME", "data"),
            xdg("XDG_RUNTIME_DIR", "run"),
            "pg_autoctl".to_owned(),
        ];
        all.extend(args.iter().map(|s| s.to_string()));
        all
    }

    fn autoctl(&self, args: &[&str]) -> anyhow::Result<()> {
        let all = self.autoctl_args(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        as_postgres("env", &refs)
    }

    /// Starts `pg_autoctl args` as a service of the formation, its output into `log`.
    fn spawn(&mut self, args: &[&str], log: &str) -> anyhow::Result<()> {
        let all = self.autoctl_args(args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let log = std::fs::File::create(self.dir.join(log))?;
        let child = postgres_command("env", &refs)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start pg_autoctl")?;
        self.services.push(child);
        Ok(())
    }

    fn pg_ctl(&self) -> String {
        self.bin.join("pg_ctl").display().to_string()
    }

    fn start_monitor(&mut self) -> anyhow::Result<()> {
        let (pgdata, port, pg_ctl) = (
            self.pgdata("monitor"),
            self.monitor_port.to_string(),
            self.pg_ctl(),
        );
        for sub in ["config", "data", "run"] {
            as_postgres(
                "mkdir",
                &["-m", "700", &self.dir.join(sub).display().to_string()],
            )?;
        }
        self.autoctl(&[
            "create",
            "monitor",
            "--pgctl",
            &pg_ctl,
            "--pgdata",
            &pgdata,
            "--pgport",
            &port,
            "--hostname",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
        ])?;
        // The monitor has no --listen; its listen address is a setting (default '*').
        self.autoctl(&[
            "config",
            "set",
            "--pgdata",
            &pgdata,
            "postgresql.listen_addresses",
            "127.0.0.1",
        ])?;
        self.spawn(&["run", "--pgdata", &pgdata], "monitor.log")
    }

    fn start_node(&mut self, node: usize) -> anyhow::Result<()> {
        let name = format!("node{}", node + 1);
        let (pgdata, port, pg_ctl) = (
            self.pgdata(&name),
            self.node_ports[node].to_string(),
            self.pg_ctl(),
        );
        let monitor = format!(
            "postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover?sslmode=disable",
            self.monitor_port
        );
        self.spawn(
            &[
                "create",
                "postgres",
                "--pgctl",
                &pg_ctl,
                "--pgdata",
                &pgdata,
                "--pgport",
                &port,
                "--listen",
                "127.0.0.1",
                "--hostname",
                "127.0.0.1",
                "--name",
                &name,
                "--dbname",
                DATABASE,
                "--auth",
                "trust",
                "--no-ssl",
                "--monitor",
                &monitor,
                "--run",
            ],
            &format!("{name}.log"),
        )
    }

    /// The nodes' reported states, as the monitor has them (empty until it answers).
    fn states(&self) -> Vec<String> {
        let all = self.autoctl_args(&[
            "show",
            "state",
            "--pgdata",
            &self.pgdata("monitor"),
            "--json",
        ]);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let Ok(output) = postgres_command("env", &refs)
            .stderr(Stdio::null())
            .output()
        else {
            return Vec::new();
        };
        let nodes: Vec<serde_json::Value> =
            serde_json::from_slice(&output.stdout).unwrap_or_default();
        nodes
            .iter()
            .filter_map(|n| {
                let reported = n.get("current_group_state")?.as_str()?;
                let assigned = n.get("assigned_group_state")?.as_str()?;
                // Settled: the node reports the state the monitor assigned.
                (reported == assigned).then(|| reported.to_owned())
            })
            .collect()
    }

    /// Waits until `count` nodes report settled states, each one of `wanted` and, when two,
    /// one primary and one secondary.
    fn wait_for(&self, wanted: &[&str], count: usize) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            let mut states = self.states();
            states.sort();
            let settled = states.len() == count
                && states.iter().all(|s| wanted.contains(&s.as_str()))
                && (count < 2 || states == ["primary", "secondary"]);
            if settled {
                return Ok(());
            }
            if count == 2 {
                // A joining secondary's base backup waits for a checkpoint, which Postgres
                // spreads over minutes; an explicit one makes it finish now.
                self.checkpoint_primaries();
            }
            if start.elapsed() > SETUP_TIMEOUT {
                bail!(
                    "the pg_auto_failover formation did not settle within {} s (states: {states:?}; \
                     logs under {})",
                    SETUP_TIMEOUT.as_secs(),
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Asks both nodes for a `CHECKPOINT` (a standby refuses it; errors are ignored).
    fn checkpoint_primaries(&self) {
        let psql = self.bin.join("psql").display().to_string();
        for port in self.node_ports {
            let port = port.to_string();
            let _ = postgres_command(
                &psql,
                &[
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port,
                    "-d",
                    "postgres",
                    "-qc",
                    "CHECKPOINT",
                ],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        }
    }

    /// The libpq multi-host URL of the formation's database that always reaches the
    /// primary: `postgres://postgres@h1:p1,h2:p2/db?target_session_attrs=read-write`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{DATABASE}?target_session_attrs=read-write",
            self.node_ports[0], self.node_ports[1]
        )
    }

    /// A planned failover (`pg_autoctl perform failover`): the primary is demoted and the
    /// secondary promoted; returns once the formation is primary + secondary again.
    pub fn perform_failover(&self) -> anyhow::Result<()> {
        self.autoctl(&["perform", "failover", "--pgdata", &self.pgdata("monitor")])?;
        self.wait_for(&["primary", "secondary"], 2)
    }
}

impl Drop for Formation {
    fn drop(&mut self) {
        // Nodes first, then the monitor; `pg_autoctl stop` ends each service and its Postgres.
        for name in ["node2", "node1", "monitor"] {
            let _ = self.autoctl(&["stop", "--pgdata", &self.pgdata(name), "--immediate"]);
        }
        for child in &mut self.services {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(err) = as_postgres("rm", &["-rf", &self.dir.display().to_string()]) {
            eprintln!("chaos: cannot remove {}: {err:#}", self.dir.display());
        }
    }
}

/// The `bin` directory of the newest Postgres that has the pg_auto_failover extension.
fn pg_bin_with_auto_failover() -> anyhow::Result<PathBuf> {
    let version = std::fs::read_dir("/usr/lib/postgresql")
        .context("no PostgreSQL server installed under /usr/lib/postgresql")?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|v| Path::new(&format!("/usr/lib/postgresql/{v}/lib/pgautofailover.so")).exists())
        .max_by_key(|v| v.parse::<u32>().unwrap_or(0));
    let autoctl = Path::new("/usr/bin/pg_autoctl").exists();
    match version {
        Some(v) if autoctl => Ok(PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"))),
        _ => bail!(
            "pg_auto_failover is not installed (apt-get install postgresql-<version>-auto-failover)"
        ),
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
