//! `auth-conformance`: checks a running deployment of the auth API by URL with the
//! black-box conformance suite (see `docs/conformance.md`, and `auth-conformance --help`).

use clap::Parser;

/// Checks that a running deployment speaks the auth API exactly: every case of the
/// conformance suite over HTTP, a table with each failure and the reason of each skip, the
/// users it created removed again. Exit status 0: no case failed; 1: some case failed; 2:
/// usage or connection error.
#[derive(Debug, Parser)]
#[command(name = "auth-conformance", version)]
struct Cli {
    #[command(flatten)]
    args: auth_conformance::cli::Args,
}

fn main() -> std::process::ExitCode {
    // Usage errors from clap exit with status 2 themselves.
    let cli = Cli::parse();
    std::process::ExitCode::from(auth_conformance::cli::run(&cli.args))
}
