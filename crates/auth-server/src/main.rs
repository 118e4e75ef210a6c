//! `auth-server`: serve the API, or manage users.

use anyhow::Context;
use auth_core::service::NewAccount;
use auth_server::{
    AdminCommand, DatabaseArgs, KeyEncryptionArgs, KeysCommand, Secret, ServeArgs, SigningAlgorithm,
};
use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// The auth server.
#[derive(Debug, Parser)]
#[command(name = "auth-server", version, about)]
struct Cli {
    /// A TOML file of settings, keyed by the flags' long names (`database-url = "…"`). A flag
    /// beats the environment, which beats the file, which beats the default.
    #[arg(long, global = true, env = "AUTH_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API.
    Serve(Box<ServeArgs>),
    /// Manage users.
    User {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Show the effective configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage the EdDSA signing keys and the key-encryption key.
    Keys {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        key_encryption: KeyEncryptionArgs,
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the settings `serve` would run with (same flags, environment and file), as a
    /// TOML file with where each value came from; secrets and passwords in URLs masked.
    Show(Box<ServeArgs>),
}

/// Log lines that may wait for the log thread before logging waits too.
const LOG_QUEUE_LINES: usize = 16 * 1024;

/// How long the runtime waits, once `main` is done, for blocking work still running (a
/// database call cut at the end of the shutdown grace) before the process exits anyway.
const RUNTIME_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(1);

fn main() -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run());
    // Dropping the runtime would wait for every blocking task without bound, which could
    // hold the process past its shutdown grace.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
    code
}

async fn run() -> std::process::ExitCode {
    // Log lines are written by a background thread, so a request never waits for stderr.
    // The queue is bounded (a few MiB at most); when it is full, logging waits rather than
    // dropping lines. The guard flushes what is queued when `main` returns.
    let (log_writer, _log_flush) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .lossy(false)
        .thread_name("auth-log")
        .finish(std::io::stderr());
    let filter = EnvFilter::try_from_env("AUTH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    match std::env::var("AUTH_LOG_FORMAT").as_deref() {
        // One JSON object a line, for collectors: the event's fields flattened, and the
        // request's span (with its `request_id`) beside them.
        Ok("json") => tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_env_filter(filter)
            .with_target(false)
            .with_writer(log_writer)
            .init(),
        Ok("text") | Err(std::env::VarError::NotPresent) => tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            // Colour codes only for a terminal, not for files and collectors.
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(log_writer)
            .init(),
        Ok(other) => {
            eprintln!("error: AUTH_LOG_FORMAT must be `text` or `json`, not {other:?}");
            return std::process::ExitCode::FAILURE;
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            eprintln!("error: AUTH_LOG_FORMAT must be `text` or `json`");
            return std::process::ExitCode::FAILURE;
        }
    }
    let command = Cli::command();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // Parsed twice: the first parse says which settings neither a flag nor the environment
    // gave, the file supplies those, the second parse is the one used.
    let first = command
        .clone()
        .try_get_matches_from(&argv)
        .unwrap_or_else(|err| err.exit());
    let layered = match auth_server::config_file::layer(&command, &first, argv) {
        Ok(layered) => layered,
        Err(err) => {
            eprintln!("error: {err:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let matches = command
        .clone()
        .try_get_matches_from(&layered.argv)
        .unwrap_or_else(|err| err.exit());
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    let result = match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Config {
            command: ConfigCommand::Show(_),
        } => {
            let (leaf, leaf_matches) = auth_server::config_file::leaf(&command, &matches);
            print!(
                "{}",
                auth_server::config_file::show(leaf, leaf_matches, &layered)
            );
            Ok(())
        }
        Command::User { database, command } => user(database, command, cli.config).await,
        Command::Keys {
            database,
            key_encryption,
            command,
        } => auth_server::run_keys_command(database, key_encryption, command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let app = auth_server::build_app(&args).await?;
    let listener = std::net::TcpListener::bind(&args.bind)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let mounted: Vec<String> = app
        .mounts()
        .iter()
        .map(|m| format!("{}={}", m.profile.name, m.prefix))
        .collect();
    if let Some(bind) = &args.metrics_bind {
        let metrics = std::net::TcpListener::bind(bind)
            .with_context(|| format!("cannot listen on {bind} for metrics"))?;
        tracing::info!(addr = %metrics.local_addr()?, "metrics listening");
        // Ends with the process: scrapes need no grace.
        tokio::spawn(auth_server::serve_metrics(
            metrics,
            app.clone(),
            std::future::pending(),
        ));
    }
    tracing::info!(
        adapter = %args.adapter.name(),
        addr = %listener.local_addr()?,
        profiles = %mounted.join(","),
        "listening"
    );
    auth_server::serve(
        args.adapter,
        app,
        listener,
        args.bench_hello,
        args.connection_limits(),
        args.shutdown_grace(),
        shutdown_signal(),
    )
    .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}

async fn user(
    database: DatabaseArgs,
    command: AdminCommand,
    config: Option<std::path::PathBuf>,
) -> anyhow::Result<()> {
    let store = tokio::task::spawn_blocking(move || auth_server::connect(&database)).await??;
    let mut args = ServeArgs::configured(config.as_deref())?;
    // Admin commands hash with the configured cost like the server does, but sign no
    // token: a throwaway secret, so they never read (or create) the stored one and need no
    // key-encryption key.
    args.signing_algorithm = SigningAlgorithm::Hs256;
    let throwaway: [u8; 32] = rand::random();
    args.jwt_secret = Some(Secret::from(
        throwaway
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    ));
    let auth = auth_server::open_auth(&args, store).await?;
    match command {
        AdminCommand::Create {
            email,
            password,
            password_hash,
            full_name,
            roles,
            inactive,
        } => {
            let user = auth
                .operator()
                .create_user(NewAccount {
                    email,
                    password: password.map(|p| p.expose().to_owned()).unwrap_or_default(),
                    password_hash,
                    full_name,
                    roles,
                    organization_id: None,
                    is_active: !inactive,
                })
                .await
                .map_err(describe)?;
            println!("created {} ({})", user.email, user.id);
        }
        AdminCommand::List => {
            print!("{}", list_users(&auth).await?);
        }
        AdminCommand::Deactivate { email } => {
            let user = auth
                .operator()
                .set_active_by_email(&email, false)
                .await
                .map_err(describe)?;
            println!("deactivated {}", user.email);
        }
        AdminCommand::Activate { email } => {
            let user = auth
                .operator()
                .set_active_by_email(&email, true)
                .await
                .map_err(describe)?;
            println!("activated {}", user.email);
        }
    }
    Ok(())
}

/// Every user, a line each (email, id, active or not, roles, created), oldest first.
async fn list_users(auth: &auth_core::service::Auth) -> anyhow::Result<String> {
    const PAGE: u32 = 100;
    let mut out = String::new();
    let mut offset = 0u64;
    loop {
        let (users, total) = auth
            .operator()
            .users(None, PAGE, offset)
            .await
            .map_err(describe)?;
        for user in &users {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}\n",
                user.email,
                user.id,
                if user.is_active { "active" } else { "inactive" },
                if user.roles.is_empty() {
                    "-".to_owned()
                } else {
                    user.roles.join(",")
                },
                auth_core::profile::body::timestamp(user.created_at),
            ));
        }
        offset += users.len() as u64;
        if users.is_empty() || offset >= total {
            out.push_str(&format!("{total} users\n"));
            return Ok(out);
        }
    }
}

fn describe(err: auth_core::Error) -> anyhow::Error {
    // The command line names inputs as its flags do, which are native's field names.
    match err.naming(auth_core::profile::native_input_names) {
        auth_core::Error::Validation(fields) => {
            let reasons: Vec<String> = fields
                .iter()
                .map(|f| format!("{} {}", f.field, f.message()))
                .collect();
            anyhow::anyhow!("invalid input: {}", reasons.join("; "))
        }
        auth_core::Error::EmailTaken => anyhow::anyhow!("email already registered"),
        auth_core::Error::NotFound => anyhow::anyhow!("no user with that email"),
        auth_core::Error::LastAdmin => anyhow::anyhow!(
            "refused: this is the last active admin; make another user an admin first"
        ),
        other => anyhow::anyhow!("{other}"),
    }
}
