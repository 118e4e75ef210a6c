//! The domain services: one per concern, over one shared [`Context`].
//!
//! - [`Accounts`]: registration, credentials (with hash upgrades), password change.
//! - [`Throttle`]: the database-backed rate limits.
//! - [`Sessions`]: login, authentication of bearer tokens, both refresh forms, logout, the
//!   caller's sessions.
//! - [`PersonalTokens`]: the caller's personal access tokens.
//! - [`Admin`]: account administration, reachable only through [`Auth::admin`] (a role
//!   check) or [`Auth::operator`] (trusted in-process callers such as the command line).
//!
//! Framework- and profile-neutral: profiles decode requests into these calls and encode what
//! they return. Every `now` comes from the configured [`Clock`]; every revocation goes
//! through [`Context::revoking`], which evicts the principal cache.

mod accounts;
mod admin;
mod audit;
mod audit_webhook;
mod context;
mod credentials;
mod email_flows;
mod keys;
mod mail_sender;
mod mfa;
mod mint;
mod passkeys;
mod personal_tokens;
mod purge;
mod refresh;
mod sessions;
mod throttle;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use accounts::Accounts;
pub use admin::Admin;
pub use credentials::is_safe_method;
pub use email_flows::{ANSWER_FLOOR, EmailFlows};
pub use mfa::{LoginOutcome, MFA_TOKEN_PREFIX, Mfa, MfaChallenge, SecondFactor, TotpSetup};
pub use passkeys::{PasskeyCeremony, Passkeys};
pub use personal_tokens::PersonalTokens;
pub use purge::Purged;
pub use sessions::{Sessions, bearer_token};
pub use throttle::{Throttle, ThrottledAction};

pub(crate) use context::Context;

use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::error::Error;
use crate::password::PasswordHasher;
use crate::principal::{ADMIN_ROLE, Principal};
use crate::store::{PersonalTokenRecord, Store, StoreError, UserRecord};
use crate::token::TokenSigner;

/// What a profile opens a session under: the profile's name, remembered by the session, and
/// its access-token lifetime, which no later refresh of the session may exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTerms {
    /// The profile's name (e.g. `native`).
    pub profile: &'static str,
    /// Its access-token lifetime.
    pub access_ttl: std::time::Duration,
}

/// An access token, with the refresh token that goes with it when the session has one.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPair {
    /// The signed JWT.
    pub access_token: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// The refresh token, shown once.
    pub refresh_token: String,
    /// Lifetime of the refresh token in seconds (what a refresh cookie's `Max-Age` says).
    /// Replays sealed before it existed read as 0.
    #[serde(default)]
    pub refresh_expires_in: u64,
}

impl TokenPair {
    /// The session the pair belongs to (its refresh token names it).
    pub fn session_id(&self) -> Option<Uuid> {
        mint::parse_refresh_token(&self.refresh_token).map(|(session_id, _, _)| session_id)
    }
}

impl std::fmt::Debug for TokenPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenPair")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// What a successful login or registration yields.
#[derive(Debug, Clone)]
pub struct SessionGrant {
    /// The user.
    pub user: UserRecord,
    /// Their new tokens.
    pub tokens: TokenPair,
}

/// An account to create (registration, administration, command line). `Debug` leaves the
/// password out.
#[derive(Clone, Default)]
pub struct NewAccount {
    /// Email address, checked and trimmed here.
    pub email: String,
    /// Password, checked here.
    pub password: String,
    /// An existing hash to import instead (argon2 PHC or bcrypt); `password` is then ignored.
    pub password_hash: Option<String>,
    /// Optional display name.
    pub full_name: Option<String>,
    /// Role names.
    pub roles: Vec<String>,
    /// Organization.
    pub organization_id: Option<Uuid>,
    /// Whether the account may sign in.
    pub is_active: bool,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount")
            .field("email", &self.email)
            .field("roles", &self.roles)
            .field("is_active", &self.is_active)
            .finish_non_exhaustive()
    }
}

/// A personal access token just created: the record and the secret, shown once.
#[derive(Clone)]
pub struct IssuedPersonalToken {
    /// The stored record.
    pub record: PersonalTokenRecord,
    /// The token itself.
    pub secret: String,
}

impl std::fmt::Debug for IssuedPersonalToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedPersonalToken")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

/// Who is calling: the client IP (after trusted-proxy resolution) and `User-Agent`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Client<'a> {
    /// Client IP; `None` when the adapter could not tell.
    pub ip: Option<IpAddr>,
    /// `User-Agent`.
    pub user_agent: Option<&'a str>,
}

impl Client<'_> {
    /// The client as the rate-limit key: an IPv4 address, or the IPv6 network of
    /// `ipv6_prefix_len` bits it belongs to (one customer gets a whole /64, so counting
    /// addresses would let them rotate through 2^64 of them).
    fn ip_key(&self, ipv6_prefix_len: u8) -> String {
        match self.ip.map(|ip| ip.to_canonical()) {
            None => "unknown".to_owned(),
            Some(IpAddr::V4(ip)) => ip.to_string(),
            Some(IpAddr::V6(ip)) => ipnet::Ipv6Net::new(ip, ipv6_prefix_len.min(128))
                .map_or_else(|_| ip.to_string(), |net| net.trunc().to_string()),
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The signing key is unusable.
    #[error(transparent)]
    Key(#[from] crate::token::KeyError),
    /// The hashing parameters are unusable.
    #[error("invalid argon2 parameters")]
    Hashing,
    /// The store failed while loading keys.
    #[error("cannot load the signing keys: {0}")]
    Store(StoreError),
    /// The store's worker threads could not be started.
    #[error("cannot start the store threads: {0}")]
    Threads(std::io::Error),
    /// The WebAuthn relying party is misconfigured (the message says how).
    #[error("invalid WebAuthn settings: {0}")]
    Webauthn(String),
}

/// The auth service: the entry to every domain service. Cheap to share behind an `Arc`;
/// every store call runs on one of `store_threads` dedicated threads, password hashing on
/// the bounded hashing pool.
pub struct Auth {
    ctx: Context,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("signer", &self.ctx.signer)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Builds the service on the system clock. Hashes one dummy password (one hash's time)
    /// and, with EdDSA, loads the signing keys from the store, creating the first one on a
    /// fresh database. Blocks: call it from a blocking thread.
    pub fn new(store: Arc<dyn Store>, config: Config) -> Result<Self, StartError> {
        Self::with_clock(store, config, Arc::new(SystemClock::new()))
    }

    /// [`Auth::new`] reading the time from `clock` (tests use a fixed one).
    pub fn with_clock(
        store: Arc<dyn Store>,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let signer = TokenSigner::new(&config, clock.clone())?;
        keys::load_at_start(store.as_ref(), &signer, &config, clock.now())?;
        let hasher = PasswordHasher::new(
            config.argon2,
            config.hashing_slots,
            config.hashing_queue,
            config.hashing_niceness,
        )
        .map_err(|_| StartError::Hashing)?;
        let passkeys = match &config.mfa.webauthn {
            Some(settings) => Some(
                crate::passkey::RelyingParty::new(
                    &settings.rp_id,
                    &settings.origins,
                    &config.issuer,
                )
                .map_err(StartError::Webauthn)?,
            ),
            None => None,
        };
        let totp_key = match &config.signing {
            crate::config::Signing::EdDsa { key_encryption_key } => {
                crate::token::totp::TotpSealKey::from_stored(crate::token::stored_totp_key(
                    store.as_ref(),
                    key_encryption_key,
                )?)
            }
            crate::config::Signing::Hs256 { .. } => {
                crate::token::totp::TotpSealKey::derive(&config.signing)
            }
        };
        let mut ctx =
            Context::new(store, hasher, signer, clock, config).map_err(StartError::Threads)?;
        ctx.passkeys = passkeys;
        ctx.totp_key = totp_key;
        Ok(Self { ctx })
    }

    /// Tells the other instances sharing the database what this one revokes, and evicts what
    /// they revoke as soon as it is heard, through `broadcast` (see [`crate::broadcast`]);
    /// without it an instance is [`crate::broadcast::Alone`] and a revocation elsewhere
    /// applies here within the principal cache's lifetime. Fails only when the listening
    /// cannot start (no thread).
    pub fn broadcasting(
        mut self,
        broadcast: Arc<dyn crate::broadcast::Broadcast>,
    ) -> Result<Self, StartError> {
        self.ctx
            .broadcast_on(broadcast)
            .map_err(StartError::Threads)?;
        Ok(self)
    }

    /// The service's Prometheus metrics (rendered by [`crate::metrics::Metrics::render`]).
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.ctx.metrics
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// The key of the cookie sessions' CSRF tokens (derived from the signing secret).
    pub fn csrf(&self) -> &crate::token::csrf::CsrfKey {
        &self.ctx.csrf
    }

    /// Registration, credentials, password change.
    pub fn accounts(&self) -> Accounts<'_> {
        Accounts(&self.ctx)
    }

    /// The rate limits.
    pub fn throttle(&self) -> Throttle<'_> {
        Throttle(&self.ctx)
    }

    /// The account lifecycle over email: verification, reset, magic links, email change.
    pub fn email_flows(&self) -> EmailFlows<'_> {
        EmailFlows(&self.ctx)
    }

    /// Login, authentication, refresh, logout, the caller's sessions.
    pub fn sessions(&self) -> Sessions<'_> {
        Sessions(&self.ctx)
    }

    /// Second factors: TOTP, recovery codes, a login's second step.
    pub fn mfa(&self) -> Mfa<'_> {
        Mfa(&self.ctx)
    }

    /// Passkeys: registration, sign-in, step-up (`NotFound` everywhere unless configured).
    pub fn passkeys(&self) -> Passkeys<'_> {
        Passkeys(&self.ctx)
    }

    /// The caller's personal access tokens.
    pub fn personal_tokens(&self) -> PersonalTokens<'_> {
        PersonalTokens(&self.ctx)
    }

    /// Account administration for `principal`; `Forbidden` unless it has the `admin` role.
    /// The only way a request reaches [`Admin`].
    pub fn admin(&self, principal: &Principal) -> Result<Admin<'_>, Error> {
        if principal.has_role(ADMIN_ROLE) {
            Ok(Admin::new(&self.ctx, Some(principal.user.id)))
        } else {
            Err(Error::Forbidden)
        }
    }

    /// Account administration for trusted in-process callers (the command line, tests),
    /// without a role check. Never called on behalf of a request (a tidy test checks that
    /// no profile names it).
    pub fn operator(&self) -> Admin<'_> {
        Admin::new(&self.ctx, None)
    }

    /// Whether tokens are signed with EdDSA keys whose public parts are published as a JWKS.
    pub fn publishes_jwks(&self) -> bool {
        self.ctx.signer.uses_stored_keys()
    }

    /// The JWKS document of the public signing keys; `None` unless EdDSA is configured.
    pub fn jwks(&self) -> Option<serde_json::Value> {
        self.ctx.signer.jwks()
    }

    /// [`Auth::jwks`] after reloading the keys when the last load is over a minute old, so
    /// keys rotated or retired elsewhere show (or go) within a minute.
    pub async fn current_jwks(&self) -> Option<serde_json::Value> {
        keys::reload(&self.ctx, false).await;
        self.jwks()
    }

    /// Whether the database answers.
    pub async fn healthy(&self) -> bool {
        self.ctx.store(|store| store.ping()).await.is_ok()
    }
}
