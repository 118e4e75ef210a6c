//! The auth server: settings, building the [`App`] from them, and serving it with any adapter.
//!
//! The binary (`auth-server`) is a thin command line over this library; tests start servers
//! in-process through [`start`].

/// The README's Rust programs, compiled by `cargo test --doc` so that what a team pastes from
/// it builds (its TOML and shell blocks are not Rust and are skipped).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

mod audit_webhook;
pub mod config_file;
mod keys;
mod limits;
mod mail;
mod mfa_args;
mod serve;
mod settings;

pub use auth_toolkit::kek::{KekSource, Secret, key_file_beside};
pub use keys::run_keys_command;
pub use limits::ConnectionLimits;
pub use mail::{ChosenMailer, FileOutbox, MailArgs, SmtpMailer};
pub use serve::{
    Adapter, DEFAULT_SHUTDOWN_GRACE, ServerHandle, serve, serve_metrics, start, start_with,
};
pub use settings::{
    AdminCommand, DatabaseArgs, KeyEncryptionArgs, KeysCommand, NewKeyEncryptionArgs, ServeArgs,
    SigningAlgorithm, build_app, connect, open_auth,
};
