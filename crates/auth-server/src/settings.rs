//! Settings from the command line and the environment, and building the app from them.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use auth_core::Signing;
use auth_core::config::{Limit, RateLimits};
use auth_core::store::KeyStore;
use auth_core::{App, Argon2Params, Auth, Config, MountSpec};
use auth_diesel::DieselStore;
use clap::{Args, Subcommand};

use crate::limits::ConnectionLimits;
use crate::serve::Adapter;

/// The longest connection timeout the settings take, in seconds.
const MAX_TIMEOUT_SECS: u64 = ConnectionLimits::MAX_TIMEOUT.as_secs();

/// Name of the setting that keeps the generated JWT secret.
const JWT_SECRET_SETTING: &str = "jwt_secret";

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://path` (or a plain path) or `postgres://...`.
    #[arg(long, env = "AUTH_DATABASE_URL", default_value = "sqlite://auth.db")]
    pub database_url: String,
    /// Connections in the pool.
    #[arg(long, env = "AUTH_DB_POOL_SIZE", default_value_t = 8)]
    pub db_pool_size: u32,
}

/// `auth-server serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// HTTP framework to serve with.
    #[arg(long, env = "AUTH_ADAPTER", value_enum, default_value_t = Adapter::Axum)]
    pub adapter: Adapter,
    /// Address to listen on.
    #[arg(long, env = "AUTH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Profiles to mount: `name` or `name=/prefix`, comma-separated.
    #[arg(long, env = "AUTH_PROFILES", default_value = "native,envelope,rbac")]
    pub profiles: String,
    /// Access-token lifetimes per profile in seconds, e.g. `native=3600`, comma-separated.
    #[arg(long, env = "AUTH_ACCESS_TTL", default_value = "")]
    pub access_ttl: String,
    /// HS256 secret (at least 32 bytes). Generated once and kept in the database when absent.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// `iss` claim of access tokens.
    #[arg(long, env = "AUTH_ISSUER", default_value = "auth-server")]
    pub issuer: String,
    /// Leeway in seconds for `exp`/`nbf` (at most 30).
    #[arg(long, env = "AUTH_JWT_LEEWAY", default_value_t = 5)]
    pub jwt_leeway: u64,
    /// argon2id memory in KiB.
    #[arg(long, env = "AUTH_ARGON2_MEMORY_KIB", default_value_t = 19_456)]
    pub argon2_memory_kib: u32,
    /// argon2id iterations.
    #[arg(long, env = "AUTH_ARGON2_ITERATIONS", default_value_t = 2)]
    pub argon2_iterations: u32,
    /// argon2id parallelism.
    #[arg(long, env = "AUTH_ARGON2_PARALLELISM", default_value_t = 1)]
    pub argon2_parallelism: u32,
    /// Hashes that may run at once (default: one per core).
    #[arg(long, env = "AUTH_HASHING_SLOTS")]
    pub hashing_slots: Option<usize>,
    /// Hash requests that may wait for a slot before new ones get 503.
    #[arg(long, env = "AUTH_HASHING_QUEUE", default_value_t = 256)]
    pub hashing_queue: usize,
    /// Niceness the hashing threads add to the server's own (0 to 19; at most 19 in all). Logins
    /// still use every idle cycle, but other requests win a core when they need one (Linux).
    #[arg(long, env = "AUTH_HASHING_NICENESS", default_value_t = 10,
          value_parser = clap::value_parser!(i32).range(0..=19))]
    pub hashing_niceness: i32,
    /// Refresh-token (and session) lifetime in seconds.
    #[arg(long, env = "AUTH_REFRESH_TTL", default_value_t = 30 * 24 * 3600)]
    pub refresh_ttl: u64,
    /// Absolute lifetime of a session in seconds, counted from its login: no refresh extends
    /// it, and no access or refresh token outlives it.
    #[arg(long, env = "AUTH_SESSION_LIFETIME", default_value_t = 90 * 24 * 3600,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub session_lifetime: u64,
    /// Seconds during which a used refresh token may be replayed for the same answer.
    #[arg(long, env = "AUTH_REFRESH_REUSE_INTERVAL", default_value_t = 10)]
    pub refresh_reuse_interval: u64,
    /// Also mount `GET /bench/hello` (a plain-text route served by the framework itself, the
    /// baseline of `cargo xtask bench`). Hidden: not for production.
    #[arg(long, env = "AUTH_BENCH_HELLO", hide = true)]
    pub bench_hello: bool,
    /// Milliseconds an authenticated session or personal token is trusted without asking the
    /// database again (revocations on other instances apply within this; 0 disables).
    #[arg(long, env = "AUTH_PRINCIPAL_CACHE_MS", default_value_t = 1000)]
    pub principal_cache_ms: u64,
    /// How access tokens are signed: `hs256` (a shared secret) or `eddsa` (Ed25519 keys kept
    /// in the database, published at `/.well-known/jwks.json`, rotated with `keys rotate`).
    #[arg(long, env = "AUTH_SIGNING_ALGORITHM", value_enum, default_value_t = SigningAlgorithm::Hs256)]
    pub signing_algorithm: SigningAlgorithm,
    /// The key that encrypts private signing keys at rest (EdDSA only).
    #[command(flatten)]
    pub key_encryption: KeyEncryptionArgs,
    /// Failed logins allowed per email and client IP, `MAX/SECONDS` or `off`.
    #[arg(long, env = "AUTH_RATE_LOGIN_EMAIL_IP", default_value = "10/900", value_parser = Limit::parse)]
    pub rate_login_email_ip: Limit,
    /// Failed logins allowed per email from anywhere.
    #[arg(long, env = "AUTH_RATE_LOGIN_EMAIL", default_value = "100/3600", value_parser = Limit::parse)]
    pub rate_login_email: Limit,
    /// Failed logins allowed per client IP.
    #[arg(long, env = "AUTH_RATE_LOGIN_IP", default_value = "100/900", value_parser = Limit::parse)]
    pub rate_login_ip: Limit,
    /// Seconds during which an address an account logged in from stays known: a known
    /// address is held only to the email+IP login limit, so a distributed guessing run
    /// cannot lock the owner out (0: no address is known).
    #[arg(long, env = "AUTH_KNOWN_ADDRESS_WINDOW", default_value_t = 30 * 24 * 3600)]
    pub known_address_window: u64,
    /// Registrations allowed per client IP.
    #[arg(long, env = "AUTH_RATE_REGISTER_IP", default_value = "30/3600", value_parser = Limit::parse)]
    pub rate_register_ip: Limit,
    /// Refreshes allowed per client IP.
    #[arg(long, env = "AUTH_RATE_REFRESH_IP", default_value = "300/900", value_parser = Limit::parse)]
    pub rate_refresh_ip: Limit,
    /// Proxies whose `X-Forwarded-For` is believed, comma-separated addresses or CIDR ranges
    /// (`10.0.0.1,10.8.0.0/16,fd00::/8`).
    #[arg(long, env = "AUTH_TRUSTED_PROXIES", value_delimiter = ',',
          value_parser = auth_core::http::parse_trusted_proxy)]
    pub trusted_proxies: Vec<auth_core::http::TrustedProxy>,
    /// IPv6 clients are counted per network of this many leading bits (64: one customer's
    /// network; 48: a whole site), for every per-IP limit.
    #[arg(long, env = "AUTH_IPV6_PREFIX_LEN", default_value_t = 64,
          value_parser = clap::value_parser!(u8).range(32..=128))]
    pub ipv6_prefix_len: u8,
    /// Refuse the 10,000 most common passwords wherever a password is set (default on).
    /// Off only when said so: `--refuse-common-passwords false`
    /// (`AUTH_REFUSE_COMMON_PASSWORDS=false`); the bare flag means on.
    #[arg(
        long,
        env = "AUTH_REFUSE_COMMON_PASSWORDS",
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub refuse_common_passwords: bool,
    /// Seconds a client has to send a request's headers (from the accept, or from the first
    /// byte of a next request on a kept-alive connection); then the connection is closed.
    #[arg(long, env = "AUTH_HEADER_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub header_timeout: u64,
    /// Seconds a client has to send a request's body after its headers; then 408 and close.
    #[arg(long, env = "AUTH_BODY_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub body_timeout: u64,
    /// Seconds a kept-alive connection may sit with no request before it is closed.
    #[arg(long, env = "AUTH_IDLE_TIMEOUT", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECS))]
    pub idle_timeout: u64,
    /// Connections open at once; at the limit the server stops accepting until one closes.
    #[arg(long, env = "AUTH_MAX_CONNECTIONS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_connections: u64,
}

impl ServeArgs {
    /// The settings as if no flag was given (environment variables still apply), for tests
    /// and embedding.
    pub fn defaults() -> anyhow::Result<Self> {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            args: ServeArgs,
        }
        Ok(Only::try_parse_from(["auth-server"])?.args)
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

    /// How tokens are signed; `hs256_secret` is only read for HS256.
    fn signing(&self, hs256_secret: Vec<u8>) -> anyhow::Result<Signing> {
        Ok(match self.signing_algorithm {
            SigningAlgorithm::Hs256 => Signing::Hs256 {
                secret: hs256_secret,
            },
            SigningAlgorithm::Eddsa => Signing::EdDsa {
                key_encryption_key: self.key_encryption.key()?,
            },
        })
    }

    fn core_config(&self, jwt_secret: Vec<u8>) -> anyhow::Result<Config> {
        let defaults = Config::default();
        Ok(Config {
            signing: self.signing(jwt_secret)?,
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
            refresh_ttl: Duration::from_secs(self.refresh_ttl),
            refresh_reuse_interval: Duration::from_secs(self.refresh_reuse_interval),
            session_lifetime: Duration::from_secs(self.session_lifetime),
            rate_limits: RateLimits {
                login_email_ip: self.rate_login_email_ip,
                login_email: self.rate_login_email,
                login_ip: self.rate_login_ip,
                register_ip: self.rate_register_ip,
                refresh_ip: self.rate_refresh_ip,
            },
            trusted_proxies: self.trusted_proxies.clone(),
            ipv6_prefix_len: self.ipv6_prefix_len,
            known_address_window: Duration::from_secs(self.known_address_window),
            refuse_common_passwords: self.refuse_common_passwords,
            principal_cache_ttl: Duration::from_millis(self.principal_cache_ms),
            ..defaults
        })
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

/// The key that encrypts private signing keys at rest.
#[derive(Debug, Clone, Args)]
pub struct KeyEncryptionArgs {
    /// 32 bytes as 64 hex characters; required with `--signing-algorithm eddsa`.
    #[arg(long, env = "AUTH_KEY_ENCRYPTION_KEY", hide_env_values = true)]
    pub key_encryption_key: Option<String>,
}

impl KeyEncryptionArgs {
    /// The key, parsed.
    pub fn key(&self) -> anyhow::Result<[u8; 32]> {
        let Some(text) = &self.key_encryption_key else {
            bail!("EdDSA signing needs AUTH_KEY_ENCRYPTION_KEY (64 hex characters)");
        };
        let text = text.trim();
        if text.len() != 64 || !text.is_ascii() {
            bail!("the key-encryption key must be 64 hex characters");
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .context("the key-encryption key must be 64 hex characters")?;
        }
        Ok(key)
    }
}

/// `auth-server keys ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Add a new active Ed25519 key; older keys keep verifying the tokens they signed.
    Rotate,
    /// List the signing keys (public information only).
    List,
}

/// `auth-server user ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum AdminCommand {
    /// Create a user.
    Create {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Password (or set AUTH_USER_PASSWORD); a common one is refused unless
        /// AUTH_REFUSE_COMMON_PASSWORDS=false.
        #[arg(
            long,
            env = "AUTH_USER_PASSWORD",
            hide_env_values = true,
            required_unless_present = "password_hash"
        )]
        password: Option<String>,
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
    let store = DieselStore::connect(&database.database_url, database.db_pool_size)
        .context("cannot open the database")?;
    Ok(Arc::new(store))
}

/// Builds the core service: the configured secret, or the one kept in the database
/// (generated on first start, so restarts keep tokens valid).
pub async fn open_auth(args: &ServeArgs, store: Arc<DieselStore>) -> anyhow::Result<Arc<Auth>> {
    let secret = match &args.jwt_secret {
        Some(secret) => secret.clone().into_bytes(),
        // EdDSA keys live in the database; no shared secret to keep.
        None if args.signing_algorithm == SigningAlgorithm::Eddsa => Vec::new(),
        None => {
            let candidate = random_secret();
            let store = store.clone();
            tokio::task::spawn_blocking(move || {
                store.get_or_init_setting(JWT_SECRET_SETTING, &candidate)
            })
            .await?
            .context("cannot read the JWT secret from the database")?
            .into_bytes()
        }
    };
    let config = args.core_config(secret)?;
    // Building the hasher computes one dummy hash: keep it off the executor.
    let auth = tokio::task::spawn_blocking(move || Auth::new(store, config)).await??;
    Ok(Arc::new(auth))
}

/// Builds the app: database, core, mounted profiles.
pub async fn build_app(args: &ServeArgs) -> anyhow::Result<App> {
    let database = args.database.clone();
    let store = tokio::task::spawn_blocking(move || connect(&database)).await??;
    let auth = open_auth(args, store).await?;
    Ok(App::new(auth, &args.mounts()?)?)
}

fn random_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[derive(clap::Parser)]
    struct Only {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn refuses(flags: &[&str]) -> Result<bool, clap::Error> {
        let argv = std::iter::once("auth-server").chain(flags.iter().copied());
        Only::try_parse_from(argv).map(|only| only.args.refuse_common_passwords)
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
