//! Project tasks, run with `cargo xtask <task>` (aliased in `.cargo/config.toml`).
//!
//! - `conformance`: runs the black-box suite against the server binary, for every adapter on
//!   every database (or against a deployment given by `--base-url`), and prints a table.
//! - `bench`: the server in release mode under load, for every adapter and database: a table
//!   and `target/bench/latest.json` (see `docs/performance.md`).
//! - `chaos`: fault cases against real server processes: `kill -9` during a write storm,
//!   SIGTERM under load, a Postgres outage, pool exhaustion, three mixed instances, a soak.
//! - `browser`: the server driven by headless Chromium over the DevTools protocol, for
//!   every adapter and database: the bearer and cookie transports from an allowed origin, a
//!   blocked origin (`docs/browser-test.md`).
//! - `ci`: exactly what CI runs: format check, clippy, and the README's test command.
//!
//! `conformance`, `bench`, `chaos` and `browser` start servers through `server` (one
//! launcher, with the `Adapter` and `Database` choices); the configurations `conformance` checks are
//! `auth_conformance::matrix::MATRIX`, shared with the in-tree test.

mod bench;
mod browser;
mod chaos;
mod ci;
mod conformance;
mod server;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Run the conformance suite against every adapter and database, or a given deployment.
    Conformance(conformance::Args),
    /// Benchmark the server (release build) per adapter and database.
    Bench(bench::Args),
    /// Run the fault cases (crashes, shutdown, outage, pool, instances, soak) against real
    /// server processes and databases; a table of case x result.
    Chaos(chaos::Args),
    /// Drive the server from a page in headless Chromium (bearer and cookie transports,
    /// CORS), per adapter and database.
    Browser(browser::Args),
    /// Run what CI runs: fmt check, clippy, `cargo test --workspace`.
    Ci,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.task {
        Task::Conformance(args) => conformance::run(args),
        Task::Bench(args) => bench::run(args),
        Task::Chaos(args) => chaos::run(args),
        Task::Browser(args) => browser::run(args),
        Task::Ci => ci::run(),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(err) => {
            eprintln!("xtask: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// The workspace root (the parent of this crate's directory).
pub fn project_root() -> std::path::PathBuf {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The cargo that runs this task.
pub fn cargo() -> std::process::Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = std::process::Command::new(cargo);
    command.current_dir(project_root());
    command
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// clap's own consistency checks (unique ids and groups, flattened `auth-conformance`
    /// arguments included), which it otherwise runs only when a command is parsed.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
