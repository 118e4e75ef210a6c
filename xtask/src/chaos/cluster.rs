//! A Postgres cluster of the run's own: `initdb` into a scratch directory owned by the
//! `postgres` user, served by `pg_ctl` on a free port of 127.0.0.1 with trust authentication,
//! all run as `postgres` (through `runuser` when this is root). A case may stop and start it;
//! it is stopped and its directory removed when this goes. Never the developer's cluster.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};

/// A running (or stopped) cluster of this run.
pub struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    /// Creates and starts a cluster on a free port with the newest installed server version.
    pub fn create(tag: &str) -> anyhow::Result<Self> {
        let version = std::fs::read_dir("/usr/lib/postgresql")
            .context("no PostgreSQL server installed under /usr/lib/postgresql")?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .max_by_key(|v| v.parse::<u32>().unwrap_or(0))
            .context("no PostgreSQL version found")?;
        let bin = PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir =
            std::env::temp_dir().join(format!("{tag}-{:08x}", crate::server::rand_seed() as u32));
        let cluster = Self { bin, dir, port };
        // Made by `postgres` itself, so it owns the data directory inside.
        as_postgres("mkdir", &["-m", "700", &cluster.dir_str()])?;
        let data = cluster.data();
        as_postgres(
            &cluster.tool("initdb"),
            &["-D", &data, "-U", "postgres", "--auth=trust", "--no-sync"],
        )?;
        cluster.start()?;
        Ok(cluster)
    }

    fn dir_str(&self) -> String {
        self.dir.display().to_string()
    }

    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn tool(&self, name: &str) -> String {
        self.bin.join(name).display().to_string()
    }

    /// Its URL (the `postgres` database, as the `postgres` user).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it (fast: connections are cut at once, as when a database goes away).
    pub fn stop(&self) -> anyhow::Result<()> {
        as_postgres(
            &self.tool("pg_ctl"),
            &["-D", &self.data(), "-m", "fast", "-w", "stop"],
        )
    }

    /// Starts it; returns once it accepts connections.
    pub fn start(&self) -> anyhow::Result<()> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir_str()
        );
        let log = self.dir.join("server.log").display().to_string();
        as_postgres(
            &self.tool("pg_ctl"),
            &[
                "-D",
                &self.data(),
                "-o",
                &options,
                "-l",
                &log,
                "-w",
                "start",
            ],
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Stopped already, or stopped now; then the whole directory goes.
        let _ = as_postgres(
            &self.tool("pg_ctl"),
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
        if let Err(err) = as_postgres("rm", &["-rf", &self.dir_str()]) {
            eprintln!("chaos: cannot remove {}: {err:#}", self.dir.display());
        }
    }
}

/// Runs `program args` as the `postgres` user (through `runuser` when this is root).
pub(super) fn as_postgres(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let output = postgres_command(program, args)
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    if !output.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// `program args` to be run as the `postgres` user (through `runuser` when this is root),
/// in `/tmp`, with no input.
pub(super) fn postgres_command(program: &str, args: &[&str]) -> Command {
    let mut command = if rustix::process::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    };
    command
        .args(args)
        .current_dir("/tmp")
        .stdin(std::process::Stdio::null());
    command
}
