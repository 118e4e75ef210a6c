//! [`Builder`]: the auth app in one call, as `auth-server serve` builds it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use auth_core::mail::Mailer;
use auth_core::{App, Auth, Config, MountSpec};
use auth_diesel::{ConnectOptions, DieselStore};

use crate::kek::{Secret, configured_kek, resolve_signing};

/// Builds an [`App`] ready to hand to an adapter (`auth_axum::mount`, `auth_actix::mount`,
/// `auth_warp::mount`), with what the server does for you:
///
/// - the database opened and **migrated** (`sqlite://auth.db` unless told otherwise);
/// - the HS256 **secret generated once and kept** in the database, sealed under the
///   key-encryption key (on SQLite the key file `auth.db.key` beside the database, created
///   mode 0600 on first start; on PostgreSQL a configured key), unless a secret is given;
/// - the core's defaults (argon2id, token lifetimes, the contract's rate limits), which
///   [`Builder::config`] may change;
/// - the background purger of expired rows, and the mail sender when a mailer is given.
///
/// ```no_run
/// # async fn demo() -> anyhow::Result<()> {
/// let app = auth_toolkit::Builder::from_env() // AUTH_DATABASE_URL, AUTH_JWT_SECRET, ...
///     .profiles("native")
///     .build()
///     .await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct Builder {
    database_url: String,
    pool_size: u32,
    profiles: String,
    jwt_secret: Option<Secret>,
    eddsa: bool,
    key_encryption_key: Option<Secret>,
    key_encryption_key_file: Option<PathBuf>,
    config: Config,
    mailer: Option<Arc<dyn Mailer>>,
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: only the backend is shown.
        let backend = if auth_diesel::sqlite_file(&self.database_url).is_some() {
            "sqlite"
        } else {
            "other"
        };
        f.debug_struct("Builder")
            .field("database", &backend)
            .field("profiles", &self.profiles)
            .field("eddsa", &self.eddsa)
            .finish_non_exhaustive()
    }
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// The defaults: `sqlite://auth.db`, 8 connections, the `native` profile (and its admin
    /// routes), HS256 with a generated secret.
    pub fn new() -> Self {
        Self {
            database_url: "sqlite://auth.db".to_owned(),
            pool_size: 8,
            profiles: "native".to_owned(),
            jwt_secret: None,
            eddsa: false,
            key_encryption_key: None,
            key_encryption_key_file: None,
            config: Config::default(),
            mailer: None,
        }
    }

    /// [`Builder::new`] with what the environment sets, under the server's names:
    /// `AUTH_DATABASE_URL`, `AUTH_PROFILES`, `AUTH_JWT_SECRET`,
    /// `AUTH_KEY_ENCRYPTION_KEY`, `AUTH_KEY_ENCRYPTION_KEY_FILE`. Empty values count as
    /// unset.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut builder = Self::new();
        if let Some(url) = var("AUTH_DATABASE_URL") {
            builder.database_url = url;
        }
        if let Some(profiles) = var("AUTH_PROFILES") {
            builder.profiles = profiles;
        }
        builder.jwt_secret = var("AUTH_JWT_SECRET").map(Secret::from);
        builder.key_encryption_key = var("AUTH_KEY_ENCRYPTION_KEY").map(Secret::from);
        builder.key_encryption_key_file = var("AUTH_KEY_ENCRYPTION_KEY_FILE").map(PathBuf::from);
        builder
    }

    /// The database: `sqlite://path` (or a plain path) or `postgres://…`.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = url.into();
        self
    }

    /// The most connections the pool opens (default 8).
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size;
        self
    }

    /// The profiles to mount: `name` or `name=/prefix`, comma-separated (`native`,
    /// `envelope`, `rbac`, `personal-token`, `jwt-user`).
    pub fn profiles(mut self, profiles: impl Into<String>) -> Self {
        self.profiles = profiles.into();
        self
    }

    /// Signs with this HS256 secret (32 bytes or more) instead of a generated one: the same
    /// on every instance.
    pub fn jwt_secret(mut self, secret: impl Into<String>) -> Self {
        self.jwt_secret = Some(Secret::from(secret.into()));
        self
    }

    /// Signs with EdDSA keys the database keeps (sealed under the key-encryption key) and
    /// publishes them at `/.well-known/jwks.json`.
    pub fn eddsa(mut self) -> Self {
        self.eddsa = true;
        self
    }

    /// The key-encryption key, 64 hex characters (required on PostgreSQL unless a secret is
    /// given; on SQLite it defaults to the key file beside the database).
    pub fn key_encryption_key(mut self, hex: impl Into<String>) -> Self {
        self.key_encryption_key = Some(Secret::from(hex.into()));
        self
    }

    /// Reads the key-encryption key from this file (64 hex characters, mode 0600).
    pub fn key_encryption_key_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.key_encryption_key_file = Some(path.into());
        self
    }

    /// Changes the core's configuration (token lifetimes, rate limits, argon2 costs, CORS,
    /// cookies, mail settings). The signing is set by [`Builder::build`].
    pub fn config(mut self, change: impl FnOnce(&mut Config)) -> Self {
        change(&mut self.config);
        self
    }

    /// Sends the mail flows' messages (verification, reset, magic links, notices) with this
    /// mailer. Without one, each queued message is dropped (logged, without its link) and
    /// the routes that mail still answer.
    pub fn mailer(mut self, mailer: Arc<dyn Mailer>) -> Self {
        self.mailer = Some(mailer);
        self
    }

    /// Opens and migrates the database, settles the signing secret or keys, builds the core
    /// and mounts the profiles. The blocking parts run on blocking threads.
    pub async fn build(self) -> anyhow::Result<App> {
        let specs = MountSpec::parse_list(&self.profiles).context("profiles")?;
        let Builder {
            database_url,
            pool_size,
            jwt_secret,
            eddsa,
            key_encryption_key,
            key_encryption_key_file,
            mut config,
            mailer,
            ..
        } = self;
        let auth = tokio::task::spawn_blocking(move || -> anyhow::Result<Auth> {
            let store = Arc::new(
                DieselStore::connect_with(&database_url, ConnectOptions::new(pool_size))
                    .context("cannot open the database")?,
            );
            let configured = configured_kek(
                key_encryption_key.as_ref(),
                key_encryption_key_file.as_deref(),
            )?;
            config.signing = resolve_signing(
                &store,
                &database_url,
                jwt_secret.as_ref(),
                eddsa,
                configured,
            )?;
            let broadcast = store.broadcast(&database_url);
            Ok(Auth::new(store, config)?.broadcasting(broadcast)?)
        })
        .await
        .context("the start-up thread failed")??;
        let auth = Arc::new(auth);
        // Detached: both end by themselves once the app (and so the service) is dropped.
        drop(auth.start_purger());
        let mailer = mailer.unwrap_or_else(|| {
            tracing::warn!(
                "no mailer given: verification, reset and magic-link mails are dropped \
                 (give one with Builder::mailer)"
            );
            Arc::new(NoMailer)
        });
        drop(auth.start_mail_sender(mailer));
        Ok(App::new(auth, &specs)?)
    }
}

/// The mailer of an app built without one: every message fails for good, so the sender
/// drops it instead of keeping it queued.
struct NoMailer;

impl Mailer for NoMailer {
    fn send(&self, _mail: &auth_core::mail::Mail) -> Result<(), auth_core::mail::MailError> {
        Err(auth_core::mail::MailError::Permanent(
            "no mailer configured".to_owned(),
        ))
    }
}
