//! The domain operations: register, log in, authenticate, refresh, sessions, password change,
//! personal tokens and account administration. Framework- and profile-neutral: profiles
//! decode requests into these calls and encode what they return.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::cache::{CacheKey, PrincipalCache};
use crate::config::Config;
use crate::config::Limit;
use crate::error::{Error, Rule};
use crate::password::{PasswordHasher, Verification, is_supported_hash};
use crate::store::{
    AccessRotation, FailureQuery, FailureSeries, NewPersonalToken, NewRefreshToken, NewUser,
    OrganizationRecord, PersonalTokenRecord, RefreshRotation, RoleRecord, SessionRecord, Store,
    StoreError, StoreResult, UserPatch, UserQuery, UserRecord,
};
use crate::token::{
    Claims, OpaqueToken, PERSONAL_PREFIX, REFRESH_PREFIX, Signing, TokenSigner, VerifyError,
    generate_signing_key, hash_token, new_jti, secrets_equal,
};
use crate::validate::{check_email, check_new_password, email_key, is_common_password};
use crate::workers::Workers;

/// The role that may use the admin API.
pub const ADMIN_ROLE: &str = "admin";

/// Longest bearer token considered at all; longer ones are refused without parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest `User-Agent` kept with a session.
const MAX_USER_AGENT_LEN: usize = 512;

/// The current time in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Who made an authenticated request, and with what.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// The user, as loaded for this request (shared with the principal cache, so a cache hit
    /// copies nothing).
    pub user: Arc<UserRecord>,
    /// The credential presented.
    pub credential: Credential,
}

impl Principal {
    /// The session this request belongs to, when it came with an access token.
    pub fn session_id(&self) -> Option<Uuid> {
        match &self.credential {
            Credential::Session { session_id, .. } => Some(*session_id),
            Credential::PersonalToken { .. } => None,
        }
    }
}

/// The credential behind a [`Principal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token of a live session.
    Session {
        /// The session.
        session_id: Uuid,
        /// The access token's id.
        jti: String,
    },
    /// A personal access token.
    PersonalToken {
        /// The token's id.
        token_id: Uuid,
    },
}

/// An access token, with the refresh token that goes with it when the session has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPair {
    /// The signed JWT.
    pub access_token: String,
    /// Lifetime of the access token in seconds.
    pub expires_in: u64,
    /// The refresh token, shown once.
    pub refresh_token: String,
}

/// What a successful login or registration yields.
#[derive(Debug, Clone)]
pub struct SessionGrant {
    /// The user.
    pub user: UserRecord,
    /// Their new tokens.
    pub tokens: TokenPair,
}

/// An account to create (registration, administration, command line).
#[derive(Debug, Clone, Default)]
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

/// A personal access token just created: the record and the secret, shown once.
#[derive(Debug, Clone)]
pub struct IssuedPersonalToken {
    /// The stored record.
    pub record: PersonalTokenRecord,
    /// The token itself.
    pub secret: String,
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
}

/// The auth service. Cheap to share behind an `Arc`; every store call runs on one of
/// `store_threads` dedicated threads, password hashing on the bounded hashing pool.
pub struct Auth {
    /// Runs the blocking store calls; each thread holds the store.
    store_threads: Workers<Arc<dyn Store>>,
    hasher: PasswordHasher,
    signer: TokenSigner,
    config: Config,
    /// When expired rate-limit counters were last purged (Unix seconds).
    last_purge: AtomicI64,
    /// When the signing keys were last loaded from the store (Unix seconds).
    keys_loaded_at: AtomicI64,
    /// Recently authenticated principals.
    cache: PrincipalCache,
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
    /// The IP as the rate-limit key.
    fn ip_key(&self) -> String {
        self.ip
            .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
    }
}

/// Per-IP limits on unauthenticated work other than login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// Registrations.
    Register,
    /// Refreshes.
    Refresh,
}

/// How often expired rate-limit counters are purged, at most.
const PURGE_EVERY_SECS: i64 = 600;

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("signer", &self.signer)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Builds the service. Hashes one dummy password (one hash's time) and, with EdDSA, loads
    /// the signing keys from the store, creating the first one on a fresh database. Blocks:
    /// call it from a blocking thread.
    pub fn new(store: Arc<dyn Store>, config: Config) -> Result<Self, StartError> {
        let signer = TokenSigner::new(&config)?;
        if let Signing::EdDsa { key_encryption_key } = &config.signing {
            let mut keys = store.signing_keys().map_err(StartError::Store)?;
            if keys.is_empty() {
                let first = generate_signing_key(key_encryption_key, now(), true)
                    .map_err(|_| StartError::Hashing)?;
                store.add_signing_key(&first).map_err(StartError::Store)?;
                // Another instance may have raced us; whatever is stored now is the truth.
                keys = store.signing_keys().map_err(StartError::Store)?;
            }
            signer.load_keys(&keys)?;
        }
        let hasher = PasswordHasher::new(
            config.argon2,
            config.hashing_slots,
            config.hashing_queue,
            config.hashing_niceness,
        )
        .map_err(|_| StartError::Hashing)?;
        let cache = PrincipalCache::new(config.principal_cache_ttl);
        let store_threads =
            Workers::start("auth-db", config.store_threads, 0, move || store.clone())
                .map_err(StartError::Threads)?;
        Ok(Self {
            store_threads,
            hasher,
            signer,
            config,
            last_purge: AtomicI64::new(0),
            keys_loaded_at: AtomicI64::new(now()),
            cache,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Runs a store call on a store thread, keeping the store's own error.
    async fn blocking_raw<T, F>(&self, call: F) -> Result<StoreResult<T>, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    {
        self.store_threads
            .run(move |store| call(store.as_ref()))
            .await
    }

    /// Runs a store call on a store thread.
    async fn blocking<T, F>(&self, call: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    {
        self.blocking_raw(call).await?.map_err(Error::from)
    }

    /// Whether tokens are signed with EdDSA keys whose public parts are published as a JWKS.
    pub fn publishes_jwks(&self) -> bool {
        self.signer.uses_stored_keys()
    }

    /// The JWKS document of the public signing keys; `None` unless EdDSA is configured.
    pub fn jwks(&self) -> Option<serde_json::Value> {
        self.signer.jwks()
    }

    /// Reloads the EdDSA keys from the store: when `forced` (an unknown `kid`), at most every
    /// 5 s; otherwise when the last load is over 60 s old, so a rotation by another instance
    /// or the command line is picked up within a minute. Failures are logged; the old keys stay.
    async fn reload_keys(&self, forced: bool) {
        if !self.signer.uses_stored_keys() {
            return;
        }
        let now = now();
        let last = self.keys_loaded_at.load(Ordering::Relaxed);
        let due = if forced {
            now - last >= 5
        } else {
            now - last >= 60
        };
        if !due
            || self
                .keys_loaded_at
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        match self.blocking(|store| store.signing_keys()).await {
            Ok(keys) => {
                if let Err(err) = self.signer.load_keys(&keys) {
                    tracing::error!(error = %err, "reloading signing keys failed");
                }
            }
            Err(err) => tracing::warn!(error = %err, "reloading signing keys failed"),
        }
    }

    /// Whether the database answers.
    pub async fn healthy(&self) -> bool {
        self.blocking(|store| store.ping()).await.is_ok()
    }

    /// Creates an account after checking email and password. `EmailTaken` when the address
    /// is in use in any letter case.
    pub async fn create_account(&self, account: NewAccount) -> Result<UserRecord, Error> {
        let email = account.email.trim().to_owned();
        if let Err(rule) = check_email(&email) {
            return Err(Error::field("email", rule));
        }
        if let Some(hash) = &account.password_hash {
            if !is_supported_hash(hash) {
                return Err(Error::field("password_hash", Rule::Format));
            }
        } else {
            self.check_password_policy("password", &account.password)?;
        }
        if let Some(organization_id) = account.organization_id {
            self.require_organization(organization_id).await?;
        }
        let password_hash = match account.password_hash {
            Some(hash) => hash,
            None => self.hasher.hash(account.password).await?,
        };
        let mut roles = account.roles;
        roles.sort();
        roles.dedup();
        let user = NewUser {
            id: Uuid::new_v4(),
            email_key: email_key(&email),
            email,
            password_hash,
            full_name: account.full_name,
            is_active: account.is_active,
            roles,
            organization_id: account.organization_id,
            now: now(),
        };
        match self
            .blocking_raw(move |store| store.create_user(&user))
            .await?
        {
            Ok(user) => Ok(user),
            Err(StoreError::Conflict) => Err(Error::EmailTaken),
            Err(other) => Err(other.into()),
        }
    }

    /// Checks a password being set: length, and (when configured) not a common one.
    pub fn check_password_policy(&self, field: &str, password: &str) -> Result<(), Error> {
        check_new_password(password).map_err(|rule| Error::field(field, rule))?;
        if self.config.refuse_common_passwords && is_common_password(password) {
            return Err(Error::field(field, Rule::NotCommon));
        }
        Ok(())
    }

    /// Registers an account and opens its first session (rate-limited per client IP).
    pub async fn register(
        &self,
        account: NewAccount,
        client: Client<'_>,
        access_ttl: Duration,
    ) -> Result<SessionGrant, Error> {
        self.throttle(Throttle::Register, client).await?;
        let user = self.create_account(account).await?;
        self.open_session(user, client.user_agent, access_ttl).await
    }

    /// Counts one unit of `kind` for the client's IP; `RateLimited` once over the limit.
    pub async fn throttle(&self, kind: Throttle, client: Client<'_>) -> Result<(), Error> {
        let (bucket, limit) = match kind {
            Throttle::Register => ("register", self.config.rate_limits.register_ip),
            Throttle::Refresh => ("refresh", self.config.rate_limits.refresh_ip),
        };
        if !limit.enabled() {
            return Ok(());
        }
        let now = now();
        let since = now - secs(limit.window);
        let key = client.ip_key();
        let (count, oldest) = self
            .blocking(move |store| store.hit_rate_limit(bucket, &key, since, limit.max, now))
            .await?;
        if count < limit.max {
            return Ok(());
        }
        let free_at = oldest.map_or(now + 1, |at| at + secs(limit.window));
        Err(Error::RateLimited(retry_after(free_at, now)))
    }

    /// Refuses a login attempt while any of the three failure counts is at its limit. Runs
    /// before the email is looked up, so the answer is the same for unknown emails.
    async fn throttle_login(&self, query: &FailureQuery, now: i64) -> Result<(), Error> {
        let limits = self.config.rate_limits;
        let series = [
            (FailureSeries::EmailIp, limits.login_email_ip),
            (FailureSeries::Email, limits.login_email),
            (FailureSeries::Ip, limits.login_ip),
        ];
        if series.iter().all(|(_, limit)| !limit.enabled()) {
            return Ok(());
        }
        let counts = {
            let query = query.clone();
            self.blocking(move |store| store.count_login_failures(&query))
                .await?
        };
        let mut free_at: Option<i64> = None;
        for (which, limit) in series {
            let count = match which {
                FailureSeries::EmailIp => counts.email_ip,
                FailureSeries::Email => counts.email,
                FailureSeries::Ip => counts.ip,
            };
            if !limit.enabled() || count < limit.max {
                continue;
            }
            // The window frees up when the failure that put the count at the limit leaves it.
            let skip = count - limit.max;
            let query = query.clone();
            let at = self
                .blocking(move |store| store.nth_login_failure(&query, which, skip))
                .await?
                .unwrap_or(now);
            let at = at + secs(limit.window);
            free_at = Some(free_at.map_or(at, |current| current.max(at)));
        }
        match free_at {
            Some(at) => Err(Error::RateLimited(retry_after(at, now))),
            None => Ok(()),
        }
    }

    fn failure_query(&self, key: &str, client: Client<'_>, now: i64) -> FailureQuery {
        let limits = self.config.rate_limits;
        let since = |limit: Limit| now - secs(limit.window);
        FailureQuery {
            email_key: key.to_owned(),
            ip: client.ip_key(),
            email_ip_since: since(limits.login_email_ip),
            email_since: since(limits.login_email),
            ip_since: since(limits.login_ip),
        }
    }

    /// Purges expired counters at most every ten minutes, on the back of a request.
    async fn purge_rate_limits_now_and_then(&self, now: i64) {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now - last < PURGE_EVERY_SECS
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let limits = self.config.rate_limits;
        let longest = [
            limits.login_email_ip,
            limits.login_email,
            limits.login_ip,
            limits.register_ip,
            limits.refresh_ip,
        ]
        .iter()
        .map(|limit| secs(limit.window))
        .max()
        .unwrap_or(0);
        let before = now - longest;
        match self
            .blocking(move |store| store.purge_rate_limits(before))
            .await
        {
            Ok(removed) => tracing::debug!(removed, "expired rate-limit counters purged"),
            Err(err) => tracing::warn!(error = %err, "purging rate-limit counters failed"),
        }
    }

    /// Checks an email and password. Unknown email and wrong password cost the same hash and
    /// give the same `InvalidCredentials`; only the right password reveals `AccountInactive`.
    /// Rate-limited per the contract: bad credentials count, a success clears the email's
    /// failures, and a limited attempt gets `RateLimited` before any lookup or hash.
    pub async fn check_credentials(
        &self,
        email: &str,
        password: String,
        client: Client<'_>,
    ) -> Result<UserRecord, Error> {
        let key = email_key(email);
        let now = now();
        let query = self.failure_query(&key, client, now);
        self.throttle_login(&query, now).await?;
        let user = {
            let key = key.clone();
            self.blocking(move |store| store.find_user_by_email(&key))
                .await?
        };
        let phc = user.as_ref().map(|u| u.password_hash.clone());
        let rehash_password = password.clone();
        let verification = self.hasher.verify(password, phc).await?;
        match (user, verification) {
            (Some(user), Verification::Match | Verification::MatchNeedsRehash)
                if !user.is_active =>
            {
                Err(Error::AccountInactive)
            }
            (Some(user), verification @ (Verification::Match | Verification::MatchNeedsRehash)) => {
                if verification == Verification::MatchNeedsRehash {
                    self.upgrade_hash(&user, rehash_password).await;
                }
                let key = key.clone();
                self.blocking(move |store| store.clear_login_failures(&key))
                    .await?;
                Ok(user)
            }
            _ => {
                let ip = query.ip.clone();
                self.blocking(move |store| store.record_login_failure(&key, &ip, now))
                    .await?;
                self.purge_rate_limits_now_and_then(now).await;
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// Re-hashes a verified password with the configured parameters. A failure is logged and
    /// the login goes on: the old hash still verifies.
    async fn upgrade_hash(&self, user: &UserRecord, password: String) {
        let hash = match self.hasher.hash(password).await {
            Ok(hash) => hash,
            Err(err) => {
                tracing::warn!(error = %err, "password hash upgrade skipped");
                return;
            }
        };
        let (user_id, now) = (user.id, now());
        let upgraded = self
            .blocking(move |store| store.update_password_hash(user_id, &hash, now))
            .await;
        match upgraded {
            Ok(()) => tracing::info!(user = %user_id, "password hash upgraded"),
            Err(err) => tracing::warn!(error = %err, "password hash upgrade not stored"),
        }
    }

    /// Logs in: checks the credentials and opens a session.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client: Client<'_>,
        access_ttl: Duration,
    ) -> Result<SessionGrant, Error> {
        let user = self.check_credentials(email, password, client).await?;
        self.open_session(user, client.user_agent, access_ttl).await
    }

    /// Opens a session for a user whose credentials were checked.
    async fn open_session(
        &self,
        user: UserRecord,
        user_agent: Option<&str>,
        access_ttl: Duration,
    ) -> Result<SessionGrant, Error> {
        self.reload_keys(false).await;
        let now = now();
        let jti = new_jti();
        let refresh = OpaqueToken::generate(REFRESH_PREFIX);
        let expires_at = now.saturating_add(secs(self.config.refresh_ttl));
        let session = SessionRecord {
            id: Uuid::new_v4(),
            user_id: user.id,
            access_jti: jti.clone(),
            user_agent: user_agent.map(truncate_user_agent),
            created_at: now,
            last_used_at: now,
            expires_at,
        };
        let access_token = self.sign_access(&user, session.id, jti, now, access_ttl)?;
        let first_refresh = NewRefreshToken {
            hash: refresh.hash,
            session_id: session.id,
            created_at: now,
            expires_at,
        };
        self.blocking(move |store| store.create_session(&session, &first_refresh))
            .await?;
        Ok(SessionGrant {
            user,
            tokens: TokenPair {
                access_token,
                expires_in: access_ttl.as_secs(),
                refresh_token: refresh.secret,
            },
        })
    }

    fn sign_access(
        &self,
        user: &UserRecord,
        session_id: Uuid,
        jti: String,
        now: i64,
        ttl: Duration,
    ) -> Result<String, Error> {
        self.signer.sign(&Claims {
            iss: self.signer.issuer().to_owned(),
            sub: user.id.to_string(),
            sid: session_id.to_string(),
            jti,
            iat: now,
            exp: now.saturating_add(secs(ttl)),
            nbf: None,
            email: user.email.clone(),
            roles: user.roles.clone(),
            org_id: user.organization_id,
        })
    }

    /// Authenticates an `Authorization` header value: an access token of a live session, or a
    /// personal access token, of an active user. Refresh tokens are refused.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Error> {
        let token = bearer_token(authorization)?;
        let now = now();
        if token.starts_with(PERSONAL_PREFIX) {
            let hash = hash_token(token);
            let key = CacheKey::PersonalToken(hash);
            if let Some((principal, expires_at)) = self.cache.get(&key) {
                if expires_at.is_some_and(|expiry| expiry <= now) {
                    return Err(Error::InvalidToken);
                }
                return Ok(principal);
            }
            let generation = self.cache.generation();
            let (record, user) = self
                .blocking(move |store| store.personal_token_with_user(&hash, now))
                .await?
                .ok_or(Error::InvalidToken)?;
            if record.expires_at.is_some_and(|expiry| expiry <= now) || !user.is_active {
                return Err(Error::InvalidToken);
            }
            let principal = Principal {
                user: Arc::new(user),
                credential: Credential::PersonalToken {
                    token_id: record.id,
                },
            };
            self.cache
                .put(key, principal.clone(), record.expires_at, generation);
            return Ok(principal);
        }
        if token.starts_with(REFRESH_PREFIX) {
            return Err(Error::InvalidToken);
        }
        let claims = match self.signer.verify(token) {
            Ok(claims) => claims,
            Err(VerifyError::UnknownKid) => {
                // Perhaps another instance rotated the keys: look once more, then refuse.
                self.reload_keys(true).await;
                self.signer.verify(token).map_err(|_| Error::InvalidToken)?
            }
            Err(VerifyError::Invalid) => return Err(Error::InvalidToken),
        };
        let session_id = claims.session_id;
        let key = CacheKey::Session(session_id);
        if let Some((principal, _)) = self.cache.get(&key) {
            let current = matches!(
                &principal.credential,
                Credential::Session { jti, .. } if secrets_equal(jti, &claims.jti)
            );
            if current && principal.user.id == claims.user_id {
                return Ok(principal);
            }
            // A rotated session, or a stale or foreign token: ask the database.
        }
        let generation = self.cache.generation();
        let (session, user) = self
            .blocking(move |store| store.session_with_user(session_id, now))
            .await?
            .ok_or(Error::InvalidToken)?;
        let current = session.user_id == claims.user_id
            && secrets_equal(&session.access_jti, &claims.jti)
            && user.is_active;
        if !current {
            return Err(Error::InvalidToken);
        }
        let principal = Principal {
            user: Arc::new(user),
            credential: Credential::Session {
                session_id,
                jti: claims.jti,
            },
        };
        self.cache.put(key, principal.clone(), None, generation);
        Ok(principal)
    }

    /// Exchanges a refresh token (body form). See the contract's refresh semantics: one use;
    /// replays within the reuse interval while the successor is unused get the same pair;
    /// any other reuse revokes the session.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        access_ttl: Duration,
    ) -> Result<TokenPair, Error> {
        if !refresh_token.starts_with(REFRESH_PREFIX) || refresh_token.len() > MAX_TOKEN_LEN {
            return Err(Error::InvalidToken);
        }
        let hash = hash_token(refresh_token);
        // Two rounds at most: if a concurrent exchange wins the first, the second replays it.
        for _ in 0..2 {
            let now = now();
            let record = self
                .blocking(move |store| store.find_refresh_token(&hash))
                .await?
                .ok_or(Error::InvalidToken)?;
            if record.session_revoked || record.expires_at <= now {
                return Err(Error::InvalidToken);
            }
            if let Some(used_at) = record.used_at {
                let in_window = in_reuse_window(now, used_at, self.config.refresh_reuse_interval);
                let replay = record
                    .replay
                    .as_deref()
                    .and_then(|blob| open_replay(refresh_token, blob));
                if let (true, false, Some(pair)) = (in_window, record.successor_used, replay) {
                    return Ok(pair);
                }
                tracing::warn!(session = %record.session_id, "refresh token reuse: revoking the session");
                let (user_id, session_id) = (record.user_id, record.session_id);
                self.blocking(move |store| store.delete_session(user_id, session_id))
                    .await?;
                self.cache.evict(&CacheKey::Session(session_id));
                return Err(Error::InvalidToken);
            }
            let session_id = record.session_id;
            let (_, user) = self
                .blocking(move |store| store.session_with_user(session_id, now))
                .await?
                .ok_or(Error::InvalidToken)?;
            if !user.is_active {
                return Err(Error::InvalidToken);
            }
            let jti = new_jti();
            let next = OpaqueToken::generate(REFRESH_PREFIX);
            let pair = TokenPair {
                access_token: self.sign_access(&user, session_id, jti.clone(), now, access_ttl)?,
                expires_in: access_ttl.as_secs(),
                refresh_token: next.secret,
            };
            let rotation = RefreshRotation {
                old: hash,
                new: NewRefreshToken {
                    hash: next.hash,
                    session_id,
                    created_at: now,
                    expires_at: now.saturating_add(secs(self.config.refresh_ttl)),
                },
                new_access_jti: jti,
                replay: seal_replay(refresh_token, &pair)?,
                now,
            };
            if self
                .blocking(move |store| store.rotate_refresh_token(&rotation))
                .await?
            {
                self.cache.evict(&CacheKey::Session(session_id));
                return Ok(pair);
            }
        }
        Err(Error::InvalidToken)
    }

    /// Bearer-form refresh: rotates the session of the access token presented. Personal
    /// tokens are refused. Of concurrent calls with one access token, one wins.
    pub async fn refresh_session(
        &self,
        principal: &Principal,
        access_ttl: Duration,
    ) -> Result<TokenPair, Error> {
        let Credential::Session { session_id, jti } = &principal.credential else {
            return Err(Error::InvalidToken);
        };
        let now = now();
        let new_jti = new_jti();
        let next = OpaqueToken::generate(REFRESH_PREFIX);
        let pair = TokenPair {
            access_token: self.sign_access(
                &principal.user,
                *session_id,
                new_jti.clone(),
                now,
                access_ttl,
            )?,
            expires_in: access_ttl.as_secs(),
            refresh_token: next.secret,
        };
        let rotation = AccessRotation {
            session_id: *session_id,
            old_access_jti: jti.clone(),
            new_access_jti: new_jti,
            new_refresh: NewRefreshToken {
                hash: next.hash,
                session_id: *session_id,
                created_at: now,
                expires_at: now.saturating_add(secs(self.config.refresh_ttl)),
            },
            now,
        };
        let rotated = self
            .blocking(move |store| store.rotate_access_token(&rotation))
            .await?;
        self.cache.evict(&CacheKey::Session(*session_id));
        if rotated {
            Ok(pair)
        } else {
            Err(Error::InvalidToken)
        }
    }

    /// Logs out: revokes the session, or the personal token, that authenticated the request.
    pub async fn logout(&self, principal: &Principal) -> Result<(), Error> {
        let user_id = principal.user.id;
        match principal.credential {
            Credential::Session { session_id, .. } => {
                self.blocking(move |store| store.delete_session(user_id, session_id))
                    .await?;
                self.cache.evict(&CacheKey::Session(session_id));
            }
            Credential::PersonalToken { token_id } => {
                self.blocking(move |store| store.delete_personal_token(user_id, token_id))
                    .await?;
                self.cache.evict_user(user_id);
            }
        }
        Ok(())
    }

    /// The caller's live sessions, oldest first.
    pub async fn sessions(&self, principal: &Principal) -> Result<Vec<SessionRecord>, Error> {
        let (user_id, now) = (principal.user.id, now());
        self.blocking(move |store| store.list_sessions(user_id, now))
            .await
    }

    /// Revokes one of the caller's sessions. `NotFound` for anything else, including ids
    /// that are not UUIDs and other users' sessions.
    pub async fn revoke_session(
        &self,
        principal: &Principal,
        session_id: &str,
    ) -> Result<(), Error> {
        let session_id = Uuid::parse_str(session_id).map_err(|_| Error::NotFound)?;
        let user_id = principal.user.id;
        let deleted = self
            .blocking(move |store| store.delete_session(user_id, session_id))
            .await?;
        self.cache.evict(&CacheKey::Session(session_id));
        if deleted {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// Changes the caller's password after checking the current one; every other session
    /// is revoked (personal tokens are kept).
    pub async fn change_password(
        &self,
        principal: &Principal,
        current_password: String,
        new_password: String,
    ) -> Result<(), Error> {
        let verification = self
            .hasher
            .verify(current_password, Some(principal.user.password_hash.clone()))
            .await?;
        if verification == Verification::Mismatch {
            return Err(Error::WrongCurrentPassword);
        }
        self.check_password_policy("new_password", &new_password)?;
        let hash = self.hasher.hash(new_password).await?;
        let (user_id, keep) = (principal.user.id, principal.session_id());
        let now = now();
        self.blocking(move |store| store.change_password(user_id, &hash, keep, now))
            .await?;
        self.cache.evict_user(user_id);
        Ok(())
    }

    /// Creates a personal access token for the caller's user.
    pub async fn create_personal_token(
        &self,
        user_id: Uuid,
        name: String,
        expires_in: Option<Duration>,
    ) -> Result<IssuedPersonalToken, Error> {
        let now = now();
        let token = OpaqueToken::generate(PERSONAL_PREFIX);
        let new = NewPersonalToken {
            id: Uuid::new_v4(),
            user_id,
            name,
            hash: token.hash,
            created_at: now,
            expires_at: expires_in.map(|ttl| now.saturating_add(secs(ttl))),
        };
        let record = self
            .blocking(move |store| store.create_personal_token(&new))
            .await?;
        Ok(IssuedPersonalToken {
            record,
            secret: token.secret,
        })
    }

    /// The caller's personal tokens, oldest first.
    pub async fn personal_tokens(
        &self,
        principal: &Principal,
    ) -> Result<Vec<PersonalTokenRecord>, Error> {
        let user_id = principal.user.id;
        self.blocking(move |store| store.list_personal_tokens(user_id))
            .await
    }

    /// Revokes one of the caller's personal tokens; `NotFound` for anything else.
    pub async fn revoke_personal_token(
        &self,
        principal: &Principal,
        token_id: &str,
    ) -> Result<(), Error> {
        let token_id = Uuid::parse_str(token_id).map_err(|_| Error::NotFound)?;
        let user_id = principal.user.id;
        let deleted = self
            .blocking(move |store| store.delete_personal_token(user_id, token_id))
            .await?;
        self.cache.evict_user(user_id);
        if deleted {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// `Forbidden` unless the caller has the `admin` role.
    pub fn require_admin(principal: &Principal) -> Result<(), Error> {
        if principal.user.roles.iter().any(|role| role == ADMIN_ROLE) {
            Ok(())
        } else {
            Err(Error::Forbidden)
        }
    }

    async fn require_organization(&self, id: Uuid) -> Result<(), Error> {
        match self
            .blocking(move |store| store.find_organization(id))
            .await?
        {
            Some(_) => Ok(()),
            None => Err(Error::field("organization_id", Rule::Exists)),
        }
    }

    /// A page of users and the total matching.
    pub async fn users(
        &self,
        email: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<UserRecord>, u64), Error> {
        let query = UserQuery {
            email_key: email.map(email_key),
            limit,
            offset,
        };
        self.blocking(move |store| store.list_users(&query)).await
    }

    /// One user by id; `NotFound` for an unknown id or one that is not a UUID.
    pub async fn user(&self, id: &str) -> Result<UserRecord, Error> {
        let id = Uuid::parse_str(id).map_err(|_| Error::NotFound)?;
        self.blocking(move |store| store.find_user(id))
            .await?
            .ok_or(Error::NotFound)
    }

    /// Applies a patch; deactivation revokes every session and token of the user.
    pub async fn update_user(&self, id: &str, mut patch: UserPatch) -> Result<UserRecord, Error> {
        let id = Uuid::parse_str(id).map_err(|_| Error::NotFound)?;
        if let Some(Some(organization_id)) = patch.organization_id {
            self.require_organization(organization_id).await?;
        }
        if let Some(roles) = patch.roles.as_mut() {
            roles.sort();
            roles.dedup();
        }
        let now = now();
        let updated = self
            .blocking(move |store| store.update_user(id, &patch, now))
            .await?;
        self.cache.evict_user(id);
        updated.ok_or(Error::NotFound)
    }

    /// Deletes a user and everything of theirs.
    pub async fn delete_user(&self, id: &str) -> Result<(), Error> {
        let id = Uuid::parse_str(id).map_err(|_| Error::NotFound)?;
        let deleted = self.blocking(move |store| store.delete_user(id)).await?;
        self.cache.evict_user(id);
        if deleted {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
    }

    /// The user's roles with ids and descriptions.
    pub async fn user_roles(&self, user_id: Uuid) -> Result<Vec<RoleRecord>, Error> {
        self.blocking(move |store| store.user_roles(user_id)).await
    }

    /// Creates an organization.
    pub async fn create_organization(&self, name: String) -> Result<OrganizationRecord, Error> {
        let organization = OrganizationRecord {
            id: Uuid::new_v4(),
            name,
            created_at: now(),
        };
        let stored = organization.clone();
        self.blocking(move |store| store.create_organization(&stored))
            .await?;
        Ok(organization)
    }

    /// Every organization, oldest first.
    pub async fn organizations(&self) -> Result<Vec<OrganizationRecord>, Error> {
        self.blocking(|store| store.list_organizations()).await
    }

    /// Activates or deactivates the account with this email. Deactivation revokes every
    /// session and personal token. `NotFound` for an unknown email.
    pub async fn set_active_by_email(
        &self,
        email: &str,
        active: bool,
    ) -> Result<UserRecord, Error> {
        let key = email_key(email);
        let user = self
            .blocking(move |store| store.find_user_by_email(&key))
            .await?
            .ok_or(Error::NotFound)?;
        let id = user.id;
        let now = now();
        let changed = self
            .blocking(move |store| store.set_user_active(id, active, now))
            .await?;
        self.cache.evict_user(id);
        if !changed {
            return Err(Error::NotFound);
        }
        Ok(UserRecord {
            is_active: active,
            ..user
        })
    }
}

/// Extracts the token of an `Authorization: Bearer` header. No header, or another scheme:
/// `MissingToken`; a `Bearer` header without a usable token: `InvalidToken`.
pub fn bearer_token(authorization: Option<&str>) -> Result<&str, Error> {
    let header = authorization.ok_or(Error::MissingToken)?.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Error::MissingToken);
    }
    let token = rest.trim();
    // Every token this server issues is printable ASCII; anything else cannot be one.
    if token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !token.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(Error::InvalidToken);
    }
    Ok(token)
}

/// Seconds from `now` until `free_at`, at least one.
fn retry_after(free_at: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(free_at - now).unwrap_or(0).max(1))
}

/// Whether a refresh token used at `used_at` may still be replayed at `now` (both whole Unix
/// seconds, truncated). Inclusive, so every replay less than `interval` after the use is
/// honoured as the contract promises, whatever the fractions of a second truncated away: the
/// window closes between `interval` and `interval` + 1 s after the use. An interval under one
/// second (0 in particular) allows no replay at all.
fn in_reuse_window(now: i64, used_at: i64, interval: Duration) -> bool {
    let interval = secs(interval);
    interval > 0 && now <= used_at.saturating_add(interval)
}

fn secs(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX)
}

fn truncate_user_agent(user_agent: &str) -> String {
    user_agent.chars().take(MAX_USER_AGENT_LEN).collect()
}

/// The key that protects a refresh token's replay: derived from the token, which the server
/// does not keep, so a database dump reveals nothing usable.
fn replay_cipher(refresh_token: &str) -> ChaCha20Poly1305 {
    let mut digest = Sha256::new();
    digest.update(b"auth-core/refresh-replay/v1\0");
    digest.update(refresh_token.as_bytes());
    let key: [u8; 32] = digest.finalize().into();
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

fn seal_replay(refresh_token: &str, pair: &TokenPair) -> Result<Vec<u8>, Error> {
    let plaintext = serde_json::to_vec(pair).map_err(|_| Error::Internal)?;
    let nonce: [u8; 12] = rand::random();
    let mut sealed = nonce.to_vec();
    let ciphertext = replay_cipher(refresh_token)
        .encrypt(Nonce::from_slice(&nonce), plaintext.as_slice())
        .map_err(|_| Error::Internal)?;
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

fn open_replay(refresh_token: &str, sealed: &[u8]) -> Option<TokenPair> {
    if sealed.len() < 12 {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(12);
    let plaintext = replay_cipher(refresh_token)
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .ok()?;
    serde_json::from_slice(&plaintext).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_within_the_reuse_interval_are_honoured_despite_whole_seconds() {
        let interval = Duration::from_secs(2);
        // Used at 100.9 s (stored as 100), replayed 1.2 s later at 102.1 s (102): inside.
        assert!(in_reuse_window(102, 100, interval));
        assert!(in_reuse_window(100, 100, interval));
        // 3 s or more after the use, whatever the fractions: outside.
        assert!(!in_reuse_window(103, 100, interval));
        assert!(!in_reuse_window(i64::MAX, 100, interval));
        // No interval, no replay, not even within the same second.
        assert!(!in_reuse_window(100, 100, Duration::ZERO));
        assert!(!in_reuse_window(100, 100, Duration::from_millis(900)));
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(None), Err(Error::MissingToken));
        assert_eq!(bearer_token(Some("Basic abc")), Err(Error::MissingToken));
        assert_eq!(bearer_token(Some("Bearer")), Err(Error::InvalidToken));
        assert_eq!(bearer_token(Some("Bearer   ")), Err(Error::InvalidToken));
        assert_eq!(bearer_token(Some("Bearer a b")), Err(Error::InvalidToken));
        assert_eq!(bearer_token(Some("bearer abc")), Ok("abc"));
        let huge = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(bearer_token(Some(&huge)), Err(Error::InvalidToken));
        assert_eq!(
            bearer_token(Some("Bearer a\u{a0}b")),
            Err(Error::InvalidToken)
        );
        assert_eq!(bearer_token(Some("Bearer tökén")), Err(Error::InvalidToken));
    }

    #[test]
    fn replay_round_trip_needs_the_token() {
        let pair = TokenPair {
            access_token: "a".into(),
            expires_in: 60,
            refresh_token: "r".into(),
        };
        let sealed = seal_replay("authrt_one", &pair).unwrap();
        assert_eq!(open_replay("authrt_one", &sealed), Some(pair));
        assert_eq!(open_replay("authrt_two", &sealed), None);
        assert_eq!(open_replay("authrt_one", &sealed[..5]), None);
    }
}
