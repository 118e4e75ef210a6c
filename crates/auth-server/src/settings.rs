//! Settings from the command line and the environment, and building the app from them.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use auth_core::Signing;
use auth_core::config::{Limit, RateLimits};
use auth_core::{App, Argon2Params, Auth, Config, MountSpec};
use auth_diesel::{ConnectOptions, DieselStore};
use clap::{Args, Subcommand};

use crate::limits::ConnectionLimits;
use crate::mail::MailArgs;
use crate::serve::Adapter;
use auth_toolkit::kek::{
    Kek, Secret, WhenMissing, configured_kek, default_kek, parse_kek, read_key_file,
};

/// The longest connection timeout the settings take, in seconds.
const MAX_TIMEOUT_SECS: u64 = ConnectionLimits::MAX_TIMEOUT.as_secs();

/// Where the data lives. `Debug` leaves a PostgreSQL URL out (it may carry a password).
#[derive(Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://path` (or a plain path) or `postgres://...`.
    #[arg(
        long,
        global = true,
        env = "AUTH_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://auth.db"
    )]
    pub database_url: String,
    /// Connections in the pool.
    #[arg(
        long,
        global = true,
        env = "AUTH_DB_POOL_SIZE",
        hide_env_values = true,
        default_value_t = 8
    )]
    pub db_pool_size: u32,
    /// PostgreSQL only: where the connection that hears other instances' revocations
    /// (`LISTEN`) goes, when the database URL points at a transaction-mode pooler
    /// (PgBouncer), which cannot keep a `LISTEN`. Defaults to the database URL.
    #[arg(
        long,
        global = true,
        env = "AUTH_DATABASE_LISTEN_URL",
        hide_env_values = true
    )]
    pub database_listen_url: Option<String>,
    /// Milliseconds a request waits for a database connection (or, while every database
    /// thread is stuck, for one) before it gets 503 with `Retry-After` (10 to 5000). Short, so
    /// that neither an outage nor an exhausted pool keeps a request waiting: after a failed
    /// connection the database breaker answers at once until its probe reaches the database.
    #[arg(long, global = true, env = "AUTH_DB_CONNECT_TIMEOUT_MS", hide_env_values = true,
          default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=5000))]
    pub db_connect_timeout_ms: u64,
}

impl DatabaseArgs {
    /// The wait of `--db-connect-timeout-ms`.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.db_connect_timeout_ms)
    }
}

impl std::fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = if auth_diesel::sqlite_file(&self.database_url).is_some() {
            self.database_url.as_str()
        } else {
            "<redacted>"
        };
        f.debug_struct("DatabaseArgs")
            .field("database_url", &url)
            .field("db_pool_size", &self.db_pool_size)
            .field(
                "database_listen_url",
                &self.database_listen_url.as_ref().map(|_| "<redacted>"),
            )
            .field("db_connect_timeout_ms", &self.db_connect_timeout_ms)
            .finish()
    }
}

/// `auth-server serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// HTTP framework to serve with.
    #[arg(long, env = "AUTH_ADAPTER", hide_env_values = true, value_enum, default_value_t = Adapter::Axum)]
    pub adapter: Adapter,
    /// Address to listen on.
    #[arg(
        long,
        env = "AUTH_BIND",
        hide_env_values = true,
        default_value = "127.0.0.1:8080"
    )]
    pub bind: String,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Profiles to mount: `name` or `name=/prefix`, comma-separated.
    #[arg(
        long,
        env = "AUTH_PROFILES",
        hide_env_values = true,
        default_value = "native,envelope,rbac"
    )]
    pub profiles: String,
    /// Access-token lifetimes per profile in seconds, e.g. `native=3600`, comma-separated.
    #[arg(
        long,
        env = "AUTH_ACCESS_TTL",
        hide_env_values = true,
        default_value = ""
    )]
    pub access_ttl: String,
    /// HS256 secret (at least 32 bytes); pass it by environment, not on the command line.
    /// Without it one is generated once and kept in the database, encrypted under the
    /// key-encryption key.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,
    /// `iss` claim of access tokens.
    #[arg(
        long,
        env = "AUTH_ISSUER",
        hide_env_values = true,
        default_value = "auth-server"
    )]
    pub issuer: String,
    /// Leeway in seconds for `exp`/`nbf` (at most 30).
    #[arg(
        long,
        env = "AUTH_JWT_LEEWAY",
        hide_env_values = true,
        default_value_t = 5
    )]
    pub jwt_leeway: u64,
    /// argon2id memory in KiB.
    #[arg(
        long,
        env = "AUTH_ARGON2_MEMORY_KIB",
        hide_env_values = true,
        default_value_t = 19_456
    )]
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    #[arg(
        long,
        env = "AUTH_ARGON2_ITERATIONS",
        hide_env_values = true,
        default_value_t = 2
    )]
    pub argon2_iterations: u32,
    /// argon2id parallelism.
    #[arg(
        long,
        env = "AUTH_ARGON2_PARALLELISM",
        hide_env_values = true,
        default_value_t = 1
    )]
    pub argon2_parallelism: u32,
    /// Hashes that may run at once (default: one per core).
    #[arg(long, env = "AUTH_HASHING_SLOTS", hide_env_values = true)]
    pub hashing_slots: Option<usize>,
    /// Hash requests that may wait for a slot before new ones get 503.
    #[arg(
        long,
        env = "AUTH_HASHING_QUEUE",
        hide_env_values = true,
        default_value_t = 256
    )]
    pub hashing_queue: usize,
    /// Database calls that may wait for a connection (or run) at once; past it a request gets
    /// 503 with `Retry-After` at once, like the hashing queue.
    #[arg(long, env = "AUTH_STORE_QUEUE", hide_env_values = true, default_value_t = 1024,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub store_queue: u64,
    /// Niceness the hashing threads add to the server's own (0 to 19; at most 19 in all). Logins
    /// still use every idle cycle, but other requests win a core when they need one (Linux).
    #[arg(long, env = "AUTH_HASHING_NICENESS", hide_env_values = true, default_value_t = 10,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub hashing_niceness: i32,
    /// Refresh-token (and session) lifetime in seconds.
    #[arg(long, env = "AUTH_REFRESH_TTL", hide_env_values = true, default_value_t = 30 * 24 * 3600)]
    pub refresh_ttl: u64,
    /// Absolute lifetime of a session in seconds, counted from its login: no refresh extends
    /// it, and no access or refresh token outlives it.
    #[arg(long, env = "AUTH_SESSION_LIFETIME", hide_env_values = true, default_value_t = 90 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub session_lifetime: u64,
    /// Seconds during which a used refresh token may be replayed for the same answer.
    #[arg(
        long,
        env = "AUTH_REFRESH_REUSE_INTERVAL",
        hide_env_values = true,
        default_value_t = 10
    )]
    pub refresh_reuse_interval: u64,
    /// Also mount `GET /bench/hello` (a plain-text route served by the framework itself, the
    /// baseline of `cargo xtask bench`). Hidden: not for production.
    #[arg(long, env = "AUTH_BENCH_HELLO", hide_env_values = true, hide = true)]
    pub bench_hello: bool,
    /// Milliseconds an authenticated session or personal token is trusted without asking the
    /// database again (revocations on other instances apply within this; 0 disables).
    #[arg(
        long,
        env = "AUTH_PRINCIPAL_CACHE_MS",
        hide_env_values = true,
        default_value_t = 1000
    )]
    pub principal_cache_ms: u64,
    /// How access tokens are signed: `hs256` (a shared secret) or `eddsa` (Ed25519 keys kept
    /// in the database, published at `/.well-known/jwks.json`, rotated with `keys rotate`).
    #[arg(long, env = "AUTH_SIGNING_ALGORITHM", hide_env_values = true, value_enum, default_value_t = SigningAlgorithm::Hs256)]
    pub signing_algorithm: SigningAlgorithm,
    /// The key that encrypts private signing keys and the generated HS256 secret at rest.
    #[command(flatten)]
    pub key_encryption: KeyEncryptionArgs,
    /// Failed logins allowed per email and client IP, `MAX/SECONDS` or `off`.
    #[arg(long, env = "AUTH_RATE_LOGIN_EMAIL_IP", hide_env_values = true, default_value = "10/900", value_parser = Limit::parse)]
    pub rate_login_email_ip: Limit,
    /// Failed logins allowed per email from anywhere.
    #[arg(long, env = "AUTH_RATE_LOGIN_EMAIL", hide_env_values = true, default_value = "100/3600", value_parser = Limit::parse)]
    pub rate_login_email: Limit,
    /// Failed logins allowed per client IP.
    #[arg(long, env = "AUTH_RATE_LOGIN_IP", hide_env_values = true, default_value = "100/900", value_parser = Limit::parse)]
    pub rate_login_ip: Limit,
    /// Seconds during which an address an account logged in from stays known: a known
    /// address is held only to the email+IP login limit, so a distributed guessing run
    /// cannot lock the owner out (0: no address is known).
    #[arg(long, env = "AUTH_KNOWN_ADDRESS_WINDOW", hide_env_values = true, default_value_t = 30 * 24 * 3600)]
    pub known_address_window: u64,
    /// Seconds between rounds of the background purger, which deletes expired sessions,
    /// personal tokens past expiry, rate-limit counters out of every window and stale known
    /// addresses, in batches of 1,000 rows (0: no purger; rate-limit counters are then
    /// purged now and then by requests).
    #[arg(
        long,
        env = "AUTH_PURGE_INTERVAL",
        hide_env_values = true,
        default_value_t = 300
    )]
    pub purge_interval: u64,
    /// Seconds audit-log events are kept; the background purger deletes older ones (0: kept
    /// forever).
    #[arg(
        long,
        env = "AUTH_AUDIT_RETENTION",
        hide_env_values = true,
        default_value_t = 90 * 24 * 3600
    )]
    pub audit_retention: u64,
    /// POST every audit event, as JSON, to this URL (`https://…` or `http://…`), signed in
    /// `X-Audit-Signature: sha256=<hex HMAC-SHA256 of the body>` with
    /// `--audit-webhook-secret`; retried with backoff, best effort (the log is the record).
    #[arg(
        long,
        env = "AUTH_AUDIT_WEBHOOK_URL",
        hide_env_values = true,
        requires = "audit_webhook_secret"
    )]
    pub audit_webhook_url: Option<String>,
    /// The webhook's signing secret (16 characters or more); pass it by environment.
    #[arg(long, env = "AUTH_AUDIT_WEBHOOK_SECRET", hide_env_values = true)]
    pub audit_webhook_secret: Option<Secret>,
    /// Registrations allowed per client IP.
    #[arg(long, env = "AUTH_RATE_REGISTER_IP", hide_env_values = true, default_value = "30/3600", value_parser = Limit::parse)]
    pub rate_register_ip: Limit,
    /// Refreshes allowed per client IP.
    #[arg(long, env = "AUTH_RATE_REFRESH_IP", hide_env_values = true, default_value = "300/900", value_parser = Limit::parse)]
    pub rate_refresh_ip: Limit,
    /// Passkey ceremonies (sign-ins, registrations, step-ups) started per client IP; each
    /// start keeps a challenge in the database until it is used or expires.
    #[arg(long, env = "AUTH_RATE_PASSKEY_IP", hide_env_values = true, default_value = "60/600", value_parser = Limit::parse)]
    pub rate_passkey_ip: Limit,
    /// Proxies whose `X-Forwarded-For` is believed, comma-separated addresses or CIDR ranges
    /// (`10.0.0.1,10.8.0.0/16,fd00::/8`).
    #[arg(long, env = "AUTH_TRUSTED_PROXIES", hide_env_values = true, value_delimiter = ',',
          value_parser = auth_core::http::parse_trusted_proxy)]
    pub trusted_proxies: Vec<auth_core::http::TrustedProxy>,
    /// Browser origins allowed to call the API with credentials (CORS), exact and
    /// comma-separated (`https://app.example.com,http://127.0.0.1:5173`); `*` is refused.
    /// Default: none, so no CORS headers are sent (docs/browser.md).
    #[arg(long, env = "AUTH_CORS_ALLOWED_ORIGINS", hide_env_values = true, value_delimiter = ',',
          value_parser = auth_core::config::parse_allowed_origin)]
    pub cors_allowed_origins: Vec<String>,
    /// Whether the cookie transport's cookies are `Secure` (default on). Off only for
    /// plain-HTTP development: `--cookie-secure false`; the cookies are then named
    /// `auth_access` and `auth_refresh` instead of `__Host-auth_access` and
    /// `__Secure-auth_refresh`.
    #[arg(
        long,
        env = "AUTH_COOKIE_SECURE",
        hide_env_values = true,
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub cookie_secure: bool,
    /// `SameSite` of the cookie transport's cookies: `lax` (default), `strict`, or `none`
    /// (an API on another site than its pages; needs `Secure`).
    #[arg(long, env = "AUTH_COOKIE_SAME_SITE", hide_env_values = true, default_value = "lax",
          value_parser = auth_core::config::SameSite::parse)]
    pub cookie_same_site: auth_core::config::SameSite,
    /// Mail: where it goes (SMTP or the outbox), its sender and templates, and the email
    /// flows' links, lifetimes and limits.
    #[command(flatten)]
    pub mail: MailArgs,
    /// Second factors and passkeys: the WebAuthn relying party, the TOTP issuer, the seed
    /// profiles' password-only opt-in.
    #[command(flatten)]
    pub mfa: crate::mfa_args::MfaArgs,
    /// IPv6 clients are counted per network of this many leading bits (64: one customer's
    /// network; 48: a whole site), for every per-IP limit.
    #[arg(long, env = "AUTH_IPV6_PREFIX_LEN", hide_env_values = true, default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(32..=128))]
    pub ipv6_prefix_len: u8,
    /// Refuse the 10,000 most common passwords wherever a password is set (default on).
    /// Off only when said so: `--refuse-common-passwords false`
    /// (`AUTH_REFUSE_COMMON_PASSWORDS=false`); the bare flag means on.
    #[arg(
        long,
        env = "AUTH_REFUSE_COMMON_PASSWORDS",
        hide_env_values = true,
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub refuse_common_passwords: bool,
    /// Seconds a client has to send a request's headers (from the accept, or from the first
    /// byte of a next request on a kept-alive connection); then the connection is closed.
    #[arg(long, env = "AUTH_HEADER_TIMEOUT", hide_env_values = true, default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body after its headers; then 408 and close.
    #[arg(long, env = "AUTH_BODY_TIMEOUT", hide_env_values = true, default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub body_timeout: u64,
    /// Seconds a kept-alive connection may sit with no request before it is closed.
    #[arg(long, env = "AUTH_IDLE_TIMEOUT", hide_env_values = true, default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub idle_timeout: u64,
    /// Connections open at once; at the limit the server stops accepting until one closes.
    #[arg(long, env = "AUTH_MAX_CONNECTIONS", hide_env_values = true, default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
    /// Seconds requests in flight get to finish after SIGTERM or Ctrl-C (new connections are
    /// refused at once); the ones still running then are cut, and the process exits 0.
    #[arg(long, env = "AUTH_SHUTDOWN_GRACE", hide_env_values = true, default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(0..=MAX_TIMEOUT_SECS))]
    pub shutdown_grace: u64,
    /// Serve Prometheus metrics (`GET /metrics`, OpenMetrics text) on this address, apart
    /// from the API (e.g. `127.0.0.1:9090`). Off unless given.
    #[arg(
        long,
        env = "AUTH_METRICS_BIND",
        hide_env_values = true,
        value_name = "ADDR"
    )]
    pub metrics_bind: Option<String>,
}

impl ServeArgs {
    /// The settings as if no flag was given (environment variables still apply), for tests
    /// and embedding.
    pub fn defaults() -> anyhow::Result<Self> {
        Self::configured(None)
    }

    /// The settings from the environment and, when given, the configuration file (as
    /// `serve --config FILE` would read them, no flags), for the commands that hash like the
    /// server does.
    pub fn configured(config: Option<&std::path::Path>) -> anyhow::Result<Self> {
        use clap::{CommandFactory as _, FromArgMatches as _};
        #[derive(clap::Parser)]
        struct Only {
            #[arg(long)]
            config: Option<PathBuf>,
            #[command(flatten)]
            args: ServeArgs,
        }
        let mut argv = vec![std::ffi::OsString::from("auth-server")];
        if let Some(path) = config {
            argv.push("--config".into());
            argv.push(path.into());
        }
        let command = Only::command();
        let first = command.clone().try_get_matches_from(&argv)?;
        let layered = crate::config_file::layer(&command, &first, argv)?;
        let matches = command.try_get_matches_from(&layered.argv)?;
        Ok(Only::from_arg_matches(&matches)?.args)
    }

    /// The connection bounds these settings give, for [`crate::serve`].
    pub fn connection_limits(&self) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(self.header_timeout),
            body_timeout: Duration::from_secs(self.body_timeout),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            // Beyond `usize` (32-bit targets) the limit could never be reached anyway.
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }

    /// How long requests in flight get to finish once shutdown begins (`--shutdown-grace`).
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace)
    }

    fn core_config(
        &self,
        signing: Signing,
        mail: auth_core::config::MailSettings,
        mfa: auth_core::config::MfaSettings,
    ) -> Config {
        let defaults = Config::default();
        Config {
            signing,
            mail,
            mfa,
            issuer: self.issuer.clone(),
            leeway: Duration::from_secs(self.jwt_leeway),
            argon2: Argon2Params {
                memory_kib: self.argon2_memory_kib,
                iterations: self.argon2_iterations,
                parallelism: self.argon2_parallelism,
            },
            hashing_slots: self.hashing_slots.unwrap_or(defaults.hashing_slots),
            hashing_queue: self.hashing_queue,
            hashing_niceness: self.hashing_niceness,
            // One store thread per pooled connection: more would only wait for a connection.
            store_threads: self.database.db_pool_size.max(1) as usize,
            store_queue: usize::try_from(self.store_queue).unwrap_or(usize::MAX),
            store_wait: self.database.connect_timeout(),
            refresh_ttl: Duration::from_secs(self.refresh_ttl),
            refresh_reuse_interval: Duration::from_secs(self.refresh_reuse_interval),
            session_lifetime: Duration::from_secs(self.session_lifetime),
            rate_limits: RateLimits {
                login_email_ip: self.rate_login_email_ip,
                login_email: self.rate_login_email,
                login_ip: self.rate_login_ip,
                register_ip: self.rate_register_ip,
                refresh_ip: self.rate_refresh_ip,
                passkey_ip: self.rate_passkey_ip,
            },
            trusted_proxies: self.trusted_proxies.clone(),
            cors_allowed_origins: self.cors_allowed_origins.clone(),
            cookie_secure: self.cookie_secure,
            cookie_same_site: self.cookie_same_site,
            ipv6_prefix_len: self.ipv6_prefix_len,
            known_address_window: Duration::from_secs(self.known_address_window),
            purge_interval: Duration::from_secs(self.purge_interval),
            audit_retention: Duration::from_secs(self.audit_retention),
            refuse_common_passwords: self.refuse_common_passwords,
            principal_cache_ttl: Duration::from_millis(self.principal_cache_ms),
            ..defaults
        }
    }

    fn mounts(&self) -> anyhow::Result<Vec<MountSpec>> {
        let mut mounts = MountSpec::parse_list(&self.profiles)?;
        for item in self
            .access_ttl
            .split(',')
            .map(str::trim)
            .filter(|i| !i.is_empty())
        {
            let Some((name, secs)) = item.split_once('=') else {
                bail!("access TTL `{item}` must look like `profile=seconds`");
            };
            let secs: u64 = secs
                .trim()
                .parse()
                .with_context(|| format!("access TTL of `{name}` is not a number of seconds"))?;
            let Some(mount) = mounts.iter_mut().find(|m| m.profile == name.trim()) else {
                bail!("access TTL given for `{name}`, which is not mounted");
            };
            mount.access_ttl = Some(Duration::from_secs(secs));
        }
        Ok(mounts)
    }
}

/// The signing algorithm of access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SigningAlgorithm {
    /// HMAC-SHA256 with one secret.
    Hs256,
    /// Ed25519 keys from the database.
    Eddsa,
}

/// The key-encryption key (KEK): it seals the private signing keys and the generated HS256
/// secret in the database, so a copy of the database alone opens neither. Without one, a
/// SQLite database keeps it in a key file beside itself (`<database>.key`, mode 0600);
/// PostgreSQL deployments must configure it, the same on every instance.
#[derive(Debug, Clone, Args)]
pub struct KeyEncryptionArgs {
    /// 32 bytes as 64 hex characters; pass it by environment, not on the command line.
    #[arg(
        long,
        global = true,
        env = "AUTH_KEY_ENCRYPTION_KEY",
        hide_env_values = true
    )]
    pub key_encryption_key: Option<Secret>,
    /// A file holding the key (64 hex characters, readable by its owner only).
    #[arg(
        long,
        global = true,
        env = "AUTH_KEY_ENCRYPTION_KEY_FILE",
        hide_env_values = true,
        conflicts_with = "key_encryption_key"
    )]
    pub key_encryption_key_file: Option<PathBuf>,
}

impl KeyEncryptionArgs {
    /// The configured key (given, or read from the given file); `None` when neither is.
    pub(crate) fn configured(&self) -> anyhow::Result<Option<Kek>> {
        configured_kek(
            self.key_encryption_key.as_ref(),
            self.key_encryption_key_file.as_deref(),
        )
    }

    /// The key for `database`: the configured one, else the default of [`default_kek`]
    /// (the key file beside a SQLite database, created per `missing`). `need` says what it
    /// is for, in the error when there is none.
    pub(crate) fn resolve(
        &self,
        database: &DatabaseArgs,
        backend: &str,
        missing: WhenMissing,
        need: &str,
    ) -> anyhow::Result<Kek> {
        match self.configured()? {
            Some(kek) => Ok(kek),
            None => default_kek(&database.database_url, backend, missing, need),
        }
    }
}

/// The new key-encryption key of `keys rewrap`.
#[derive(Debug, Clone, Args)]
pub struct NewKeyEncryptionArgs {
    /// 64 hex characters; pass it by environment, not on the command line.
    #[arg(long, env = "AUTH_NEW_KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub new_key_encryption_key: Option<Secret>,
    /// A file holding the new key (64 hex characters, readable by its owner only).
    #[arg(
        long,
        env = "AUTH_NEW_KEY_ENCRYPTION_KEY_FILE",
        hide_env_values = true,
        conflicts_with = "new_key_encryption_key"
    )]
    pub new_key_encryption_key_file: Option<PathBuf>,
}

impl NewKeyEncryptionArgs {
    /// The new key, given or read from the given file.
    pub fn key(&self) -> anyhow::Result<[u8; 32]> {
        if let Some(key) = &self.new_key_encryption_key {
            return parse_kek(key.expose()).context("AUTH_NEW_KEY_ENCRYPTION_KEY");
        }
        match &self.new_key_encryption_key_file {
            Some(path) => read_key_file(path),
            None => bail!(
                "the new key-encryption key is missing: set AUTH_NEW_KEY_ENCRYPTION_KEY or \
                 AUTH_NEW_KEY_ENCRYPTION_KEY_FILE"
            ),
        }
    }
}

/// `auth-server keys ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Add a new active Ed25519 key; older keys keep verifying the tokens they signed.
    Rotate,
    /// List the signing keys (public information only).
    List,
    /// Retire an older signing key: running servers stop accepting the tokens it signed and
    /// stop publishing it within a minute. The active key cannot be retired: rotate first.
    Retire {
        /// The key's `kid` (see `keys list`).
        kid: String,
    },
    /// Re-seal every private signing key and the generated HS256 secret under a new
    /// key-encryption key, in one transaction; then start every instance with the new key.
    Rewrap {
        /// The new key-encryption key.
        #[command(flatten)]
        new: NewKeyEncryptionArgs,
    },
}

/// `auth-server user ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Create a user.
    Create {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Password; pass it by environment (AUTH_USER_PASSWORD), not on the command line.
        /// A common one is refused unless AUTH_REFUSE_COMMON_PASSWORDS=false.
        #[arg(
            long,
            env = "AUTH_USER_PASSWORD",
            hide_env_values = true,
            required_unless_present = "password_hash"
        )]
        password: Option<Secret>,
        /// An existing hash to import instead of a password: argon2 PHC or bcrypt (`$2b$...`);
        /// bcrypt hashes are upgraded to argon2id at the user's next login.
        #[arg(long, conflicts_with = "password")]
        password_hash: Option<String>,
        /// Display name.
        #[arg(long)]
        full_name: Option<String>,
        /// Role, repeatable (`--role admin`).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Create the account deactivated.
        #[arg(long)]
        inactive: bool,
    },
    /// List every user: email, id, active or not, roles, created (tab-separated), then the
    /// count.
    List,
    /// Deactivate a user: they can no longer log in; every session and token is revoked.
    /// Refused for the last active admin.
    Deactivate {
        /// Email address.
        email: String,
    },
    /// Reactivate a user.
    Activate {
        /// Email address.
        email: String,
    },
}

/// Connects to the database (running migrations).
pub fn connect(database: &DatabaseArgs) -> anyhow::Result<Arc<DieselStore>> {
    let options = ConnectOptions {
        pool_size: database.db_pool_size,
        checkout_timeout: database.connect_timeout(),
    };
    let store = DieselStore::connect_with(&database.database_url, options)
        .context("cannot open the database")?;
    Ok(Arc::new(store))
}

/// Builds the core service. HS256 signs with the configured secret, or with the one
/// generated once and kept in the database sealed under the key-encryption key (so restarts
/// keep tokens valid, and a copy of the database alone cannot mint one); EdDSA with the
/// stored keys, opened with the key-encryption key.
pub async fn open_auth(args: &ServeArgs, store: Arc<DieselStore>) -> anyhow::Result<Arc<Auth>> {
    if !auth_core::cookie::accepted_by_browsers(args.cookie_same_site, args.cookie_secure) {
        bail!("--cookie-same-site none needs Secure cookies: browsers drop the others");
    }
    let signing = signing(args, store.clone()).await?;
    // Reads the templates directory: off the executor.
    let mail = {
        let mail = args.mail.clone();
        tokio::task::spawn_blocking(move || mail.settings()).await??
    };
    let mfa = args.mfa.settings(&args.issuer)?;
    let config = args.core_config(signing, mail, mfa);
    let listen_url = args
        .database
        .database_listen_url
        .clone()
        .unwrap_or_else(|| args.database.database_url.clone());
    // Building the hasher computes one dummy hash, and the revocation listener connects
    // once: keep both off the executor.
    let auth = tokio::task::spawn_blocking(move || {
        let broadcast = store.broadcast(&listen_url);
        Auth::new(store, config)?.broadcasting(broadcast)
    })
    .await??;
    Ok(Arc::new(auth))
}

/// How tokens are signed, with the keys resolved (and the stored secret loaded).
async fn signing(args: &ServeArgs, store: Arc<DieselStore>) -> anyhow::Result<Signing> {
    let configured = args.key_encryption.configured()?;
    let url = args.database.database_url.clone();
    let secret = args.jwt_secret.clone();
    let eddsa = args.signing_algorithm == SigningAlgorithm::Eddsa;
    tokio::task::spawn_blocking(move || {
        auth_toolkit::kek::resolve_signing(&store, &url, secret.as_ref(), eddsa, configured)
    })
    .await?
}

/// Builds the app: mailer, database, core, mounted profiles; starts the purger and the
/// delivery of the mail queue.
pub async fn build_app(args: &ServeArgs) -> anyhow::Result<App> {
    // First, so that a bad SMTP URL fails the start before the database is touched; TLS
    // set-up reads the root certificates, off the executor.
    let chosen = {
        let (mail, url) = (args.mail.clone(), args.database.database_url.clone());
        tokio::task::spawn_blocking(move || mail.mailer(&url)).await??
    };
    let database = args.database.clone();
    let store = tokio::task::spawn_blocking(move || connect(&database)).await??;
    let pool = Arc::clone(&store);
    let auth = open_auth(args, store).await?;
    auth.metrics().probe_pool(move || pool.pool_use());
    // Detached: the tasks end by themselves once the app (and so the service) is dropped.
    drop(auth.start_purger());
    if let Some(url) = &args.audit_webhook_url {
        let secret = args
            .audit_webhook_secret
            .as_ref()
            .map(|s| s.expose().as_bytes().to_vec())
            .unwrap_or_default();
        if secret.len() < 16 {
            bail!("--audit-webhook-secret must be 16 characters or more");
        }
        let webhook = crate::audit_webhook::HttpWebhook::new(url)?;
        drop(auth.start_audit_webhook(Arc::new(webhook), secret));
        tracing::info!("audit events go to the webhook too");
    }
    drop(auth.start_mail_sender(chosen.mailer));
    tracing::info!(mail = %chosen.description, "mail delivery");
    Ok(App::new(auth, &args.mounts()?)?)
}

#[cfg(test)]
mod tests {
    use clap::{Args as _, Parser as _, Subcommand as _};

    use super::*;

    /// `ServeArgs` from `flags` as `auth-server serve` parses them (no configuration file).
    pub(super) fn parse(flags: &[&str]) -> Result<ServeArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        let argv = std::iter::once("auth-server").chain(flags.iter().copied());
        Only::try_parse_from(argv).map(|only| only.args)
    }

    /// The names of arguments of `command` (and its subcommands) that read the environment
    /// but would show its value in `--help`.
    fn showing_env_values(command: &clap::Command) -> Vec<String> {
        let mut names: Vec<String> = command
            .get_arguments()
            .filter(|arg| arg.get_env().is_some() && !arg.is_hide_env_values_set())
            .map(|arg| format!("{} {}", command.get_name(), arg.get_id()))
            .collect();
        for sub in command.get_subcommands() {
            names.extend(showing_env_values(sub));
        }
        names
    }

    #[test]
    fn no_argument_shows_its_environment_value_in_help() {
        let commands = [
            ServeArgs::augment_args(clap::Command::new("serve")),
            DatabaseArgs::augment_args(clap::Command::new("database")),
            KeyEncryptionArgs::augment_args(clap::Command::new("key-encryption")),
            AdminCommand::augment_subcommands(clap::Command::new("user")),
            KeysCommand::augment_subcommands(clap::Command::new("keys")),
            MailArgs::augment_args(clap::Command::new("mail")),
        ];
        for command in &commands {
            assert_eq!(showing_env_values(command), Vec::<String>::new());
        }
    }

    /// Every rate limit has its flag, and each flag reaches the core's configuration.
    #[test]
    fn rate_limit_flags_reach_the_core() {
        let args = parse(&[
            "--rate-login-email-ip=1/10",
            "--rate-login-email=2/20",
            "--rate-login-ip=3/30",
            "--rate-register-ip=4/40",
            "--rate-refresh-ip=5/50",
            "--rate-passkey-ip=6/60",
        ])
        .expect("flags");
        let config = args.core_config(
            Signing::Hs256 {
                secret: vec![1; 32],
            },
            auth_core::config::MailSettings::default(),
            auth_core::config::MfaSettings::default(),
        );
        assert_eq!(
            config.rate_limits,
            RateLimits {
                login_email_ip: Limit::per(1, 10),
                login_email: Limit::per(2, 20),
                login_ip: Limit::per(3, 30),
                register_ip: Limit::per(4, 40),
                refresh_ip: Limit::per(5, 50),
                passkey_ip: Limit::per(6, 60),
            }
        );
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let mut args = ServeArgs::defaults().expect("defaults");
        args.database.database_url = "postgres://u:s3cretpw@db/auth".to_owned();
        args.jwt_secret = Some(Secret::from("jwt-secret-value-0123456789abcdef"));
        args.key_encryption.key_encryption_key = Some(Secret::from("ab".repeat(32)));
        args.mail.smtp_url = Some(Secret::from("smtps://u:smtp-pw-9@mail.example"));
        let shown = format!("{args:?}");
        for secret in [
            "s3cretpw",
            "jwt-secret-value",
            &"ab".repeat(32),
            "smtp-pw-9",
        ] {
            assert!(!shown.contains(secret), "{shown}");
        }
        args.database.database_url = "sqlite://data/auth.db".to_owned();
        assert!(format!("{:?}", args.database).contains("data/auth.db"));
    }
}

#[cfg(test)]
mod common_password_flag {
    fn refuses(flags: &[&str]) -> Result<bool, clap::Error> {
        super::tests::parse(flags).map(|args| args.refuse_common_passwords)
    }

    #[test]
    fn common_passwords_are_refused_unless_turned_off_explicitly() {
        // The environment is not the tests' to change; without the variable set:
        if std::env::var_os("AUTH_REFUSE_COMMON_PASSWORDS").is_none() {
            assert!(refuses(&[]).unwrap());
        }
        assert!(refuses(&["--refuse-common-passwords"]).unwrap());
        assert!(refuses(&["--refuse-common-passwords", "true"]).unwrap());
        assert!(!refuses(&["--refuse-common-passwords", "false"]).unwrap());
        assert!(!refuses(&["--refuse-common-passwords=off"]).unwrap());
        assert!(refuses(&["--refuse-common-passwords", "maybe"]).is_err());
    }
}
