//! Mail (issue 13): the settings of the email flows, and delivery of the core's mail queue,
//! to an SMTP server ([`SmtpMailer`]) or, without one, to `.eml` files in a directory
//! ([`FileOutbox`]).

mod message;
mod outbox;
mod smtp;
mod templates;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth_core::config::{Limit, MailSettings};
use auth_core::mail::Mailer;
use clap::Args;
use lettre::message::Mailbox;

pub use outbox::FileOutbox;
pub use smtp::SmtpMailer;

use auth_toolkit::kek::Secret;

/// The outbox's directory name beside a SQLite database (and in the working directory
/// otherwise).
pub(crate) const OUTBOX_DIR_NAME: &str = "mail-outbox";

/// How mail is sent and what the email flows do (`serve`).
#[derive(Debug, Clone, Args)]
pub struct MailArgs {
    /// Where mail goes: `smtp://host:port` (plain; `?tls=required` for STARTTLS,
    /// `?tls=opportunistic` for STARTTLS when offered) or `smtps://host:port` (implicit
    /// TLS), with `user:password@` (percent-encoded) to log in. It may hold a password:
    /// pass it by environment. Without it, mail is written to the outbox directory.
    #[arg(long, env = "AUTH_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,
    /// Without `--smtp-url`: the directory each message is written to as an `.eml` file
    /// (private to the server's user: the mails carry sign-in links). Default:
    /// `mail-outbox` beside a SQLite database file, else `./mail-outbox`.
    #[arg(
        long,
        env = "AUTH_MAIL_OUTBOX",
        hide_env_values = true,
        conflicts_with = "smtp_url"
    )]
    pub mail_outbox: Option<PathBuf>,
    /// The sender of every mail, e.g. `Example <no-reply@example.com>`.
    #[arg(long, env = "AUTH_MAIL_FROM", hide_env_values = true,
          default_value = "auth-server <no-reply@localhost>", value_parser = message::parse_from)]
    pub mail_from: Mailbox,
    /// A directory of templates replacing the built-in ones: for each kind
    /// (`verify_email`, `password_reset`, `magic_link`, `email_change`, `email_changed`,
    /// `password_changed`), optional files `<kind>.subject`, `<kind>.txt` and
    /// `<kind>.html`, each replacing that part only.
    #[arg(long, env = "AUTH_MAIL_TEMPLATES", hide_env_values = true)]
    pub mail_templates: Option<PathBuf>,
    /// The page that takes an email-verification token (the mail links to it with
    /// `token=...` added); without it the mail carries the bare token.
    #[arg(long, env = "AUTH_VERIFY_EMAIL_URL", hide_env_values = true, value_parser = parse_page_url)]
    pub verify_email_url: Option<String>,
    /// The page that takes a password-reset token (same rule).
    #[arg(long, env = "AUTH_RESET_PASSWORD_URL", hide_env_values = true, value_parser = parse_page_url)]
    pub reset_password_url: Option<String>,
    /// The page that takes a magic-link token (same rule).
    #[arg(long, env = "AUTH_MAGIC_LINK_URL", hide_env_values = true, value_parser = parse_page_url)]
    pub magic_link_url: Option<String>,
    /// Seconds a verification (or email-change) token works.
    #[arg(long, env = "AUTH_VERIFY_EMAIL_TTL", hide_env_values = true, default_value_t = 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub verify_email_ttl: u64,
    /// Seconds a password-reset token works.
    #[arg(long, env = "AUTH_RESET_PASSWORD_TTL", hide_env_values = true, default_value_t = 30 * 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub reset_password_ttl: u64,
    /// Seconds a magic-link token works.
    #[arg(long, env = "AUTH_MAGIC_LINK_TTL", hide_env_values = true, default_value_t = 15 * 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub magic_link_ttl: u64,
    /// Refuse logins until the account's address is verified (default off):
    /// `--require-verified-email` or `--require-verified-email true`
    /// (`AUTH_REQUIRE_VERIFIED_EMAIL=true`).
    #[arg(
        long,
        env = "AUTH_REQUIRE_VERIFIED_EMAIL",
        hide_env_values = true,
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub require_verified_email: bool,
    /// Mails of one kind to one address, `MAX/SECONDS` or `off`; past it requests answer as
    /// usual but nothing is sent.
    #[arg(long, env = "AUTH_RATE_MAIL_ADDRESS", hide_env_values = true, default_value = "5/3600", value_parser = Limit::parse)]
    pub rate_mail_address: Limit,
    /// Mail-sending requests per client IP; past it, 429.
    #[arg(long, env = "AUTH_RATE_MAIL_IP", hide_env_values = true, default_value = "30/3600", value_parser = Limit::parse)]
    pub rate_mail_ip: Limit,
    /// Messages the persisted mail queue holds at most; past it new mail is dropped with a
    /// warning (the requests still answer as usual).
    #[arg(
        long,
        env = "AUTH_MAIL_QUEUE_LIMIT",
        hide_env_values = true,
        default_value_t = 10_000
    )]
    pub mail_queue_limit: u64,
}

/// Parses a page URL of the mail links: absolute `http` or `https`, with a host, no
/// credentials and no fragment (the token goes in the query, which a fragment would
/// follow).
fn parse_page_url(text: &str) -> Result<String, String> {
    let url = url::Url::parse(text.trim())
        .map_err(|err| format!("`{text}` is not an absolute URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{text}` is not an http or https URL"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{text}` names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{text}` carries credentials; mail links must not"));
    }
    if url.fragment().is_some() {
        return Err(format!(
            "`{text}` has a fragment (`#...`): the token is added to the query, which \
             must come last"
        ));
    }
    Ok(text.trim().to_owned())
}

/// The mailer the settings choose, and what it is in words for the start-up log.
pub struct ChosenMailer {
    /// The mailer itself.
    pub mailer: Arc<dyn Mailer>,
    /// `SMTP smtp://host:port (…)` or `outbox DIR`: never a password.
    pub description: String,
}

impl std::fmt::Debug for ChosenMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChosenMailer")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

impl MailArgs {
    /// The core's mail settings: links, lifetimes, limits, and the templates (read from
    /// `--mail-templates`, so this touches the disk).
    pub fn settings(&self) -> anyhow::Result<MailSettings> {
        let defaults = MailSettings::default();
        let templates = match &self.mail_templates {
            Some(dir) => templates::load(dir)?,
            None => defaults.templates,
        };
        Ok(MailSettings {
            verify_email_url: self.verify_email_url.clone(),
            reset_password_url: self.reset_password_url.clone(),
            magic_link_url: self.magic_link_url.clone(),
            verify_email_ttl: Duration::from_secs(self.verify_email_ttl),
            reset_password_ttl: Duration::from_secs(self.reset_password_ttl),
            magic_link_ttl: Duration::from_secs(self.magic_link_ttl),
            require_verified_email: self.require_verified_email,
            per_address: self.rate_mail_address,
            per_ip: self.rate_mail_ip,
            queue_limit: self.mail_queue_limit,
            templates,
        })
    }

    /// The mailer: SMTP with `--smtp-url`, else the outbox (`--mail-outbox`, or its
    /// default for `database_url`). Builds it without sending anything; a bad URL is an
    /// error that does not repeat it. Blocking (TLS set-up reads the root certificates).
    pub fn mailer(&self, database_url: &str) -> anyhow::Result<ChosenMailer> {
        if let Some(url) = &self.smtp_url {
            let mailer = SmtpMailer::from_url(url.expose(), self.mail_from.clone())?;
            if mailer.credentials_in_clear() {
                tracing::warn!(
                    "--smtp-url sends its credentials without TLS to another host: add \
                     ?tls=required or use smtps://"
                );
            }
            let description = format!("SMTP {}", mailer.endpoint());
            return Ok(ChosenMailer {
                mailer: Arc::new(mailer),
                description,
            });
        }
        let dir = self
            .mail_outbox
            .clone()
            .unwrap_or_else(|| default_outbox(database_url));
        let outbox = FileOutbox::new(dir, self.mail_from.clone())?;
        let description = format!("outbox {}", outbox.dir().display());
        Ok(ChosenMailer {
            mailer: Arc::new(outbox),
            description,
        })
    }
}

/// The outbox when none is configured: `mail-outbox` beside a SQLite database file (where
/// its key file lives too), else in the working directory.
pub(crate) fn default_outbox(database_url: &str) -> PathBuf {
    match auth_diesel::sqlite_file(database_url) {
        Some(database) => outbox_beside(&database),
        None => PathBuf::from(OUTBOX_DIR_NAME),
    }
}

/// `mail-outbox` in the directory of `database`.
fn outbox_beside(database: &Path) -> PathBuf {
    database.with_file_name(OUTBOX_DIR_NAME)
}

#[cfg(test)]
mod tests;
