//! The storage contract: everything the core needs from a database, in focused parts.
//!
//! **The store stores; the core decides.** A store never reads the clock (every `now` comes
//! from the core), never decides what a change revokes (a [`Revocation`] says so), and never
//! purges on its own (a [`NewSession`] or a purge call says what and when). What a store does
//! own is atomicity: each method is one transaction, and conditional writes (`rotate_*`,
//! [`RateLimitStore::hit_rate_limit`]) have exactly one winner among concurrent callers, across
//! connections and instances.
//!
//! Every method blocks (Diesel, r2d2); the core only ever calls them on its own store
//! threads (a fixed number, `Config::store_threads`), never on an async executor thread.
//! Timestamps are Unix seconds (UTC). Ids are UUIDs. Secrets never reach a store
//! in plain text: refresh and personal tokens arrive as [`TokenHash`]es.
//!
//! The same contract is checked against every implementation by one suite
//! (`auth_core::testing::store_suite`, feature `test-support`).

mod audit;
mod mail;
mod mfa;
mod records;
mod refresh;

pub use audit::*;
pub use mail::*;
pub use mfa::*;
pub use records::*;
pub use refresh::*;

use uuid::Uuid;

/// What a store reports when an operation fails. Stores map every backend error to this.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint refused the write (e.g. the email is taken).
    #[error("conflict with an existing record")]
    Conflict,
    /// A guarded change to a user was refused, writing nothing: it would have left the
    /// protected role without an active holder (see [`UserStore::update_user`]).
    #[error("the change would leave the role without an active holder")]
    LastActiveHolder,
    /// The database could not be reached or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else. The message is for logs only and must not contain secrets.
    #[error("database error: {0}")]
    Other(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Users and their roles.
pub trait UserStore {
    /// Inserts a user (and its roles). `Conflict` when `email_key` is taken.
    fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord>;
    /// Looks a user up by normalized email.
    fn find_user_by_email(&self, email_key: &str) -> StoreResult<Option<UserRecord>>;
    /// Looks a user up by id.
    fn find_user(&self, id: Uuid) -> StoreResult<Option<UserRecord>>;
    /// Applies a patch (setting `updated_at = now`) and carries out `revoke`, in one
    /// transaction. `None`, writing nothing, for an unknown user. An unknown organization is
    /// `StoreError::Other` (callers check first).
    ///
    /// With `protect: Some(role)`, a patch that changes the roles or deactivates is refused
    /// with [`StoreError::LastActiveHolder`], writing nothing, when the user is an active
    /// holder of `role`, would not be one afterwards, and no other active user holds it. The
    /// check and the write are one transaction that excludes every other guarded change of
    /// `role` (across connections and instances), so concurrent guarded changes cannot
    /// together remove the last holder. Every change that may remove a holder must be
    /// guarded for that to hold.
    fn update_user(
        &self,
        id: Uuid,
        patch: &UserPatch,
        revoke: Revocation,
        now: i64,
        protect: Option<&str>,
    ) -> StoreResult<Option<UserRecord>>;
    /// Replaces the user's password hash with `new` (setting `updated_at = now`) only if the
    /// stored hash is still `expected`: a compare-and-set, so a hash upgrade never
    /// overwrites a password changed meanwhile. False, writing nothing, when the stored hash
    /// differs or the user is unknown. Revokes nothing.
    fn replace_password_hash(
        &self,
        id: Uuid,
        expected: &str,
        new: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// Deletes a user and everything of theirs (sessions, refresh and personal tokens, role
    /// assignments). False for an unknown user. With `protect: Some(role)`, refused with
    /// [`StoreError::LastActiveHolder`] as [`UserStore::update_user`] refuses a demotion.
    fn delete_user(&self, id: Uuid, protect: Option<&str>) -> StoreResult<bool>;
    /// A page of users ordered by creation time then id, and the total matching the filter.
    fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<UserRecord>, u64)>;
    /// The user's roles with ids and descriptions, sorted by name.
    fn user_roles(&self, user_id: Uuid) -> StoreResult<Vec<RoleRecord>>;
}

/// Organizations.
pub trait OrganizationStore {
    /// Inserts an organization.
    fn create_organization(&self, organization: &OrganizationRecord) -> StoreResult<()>;
    /// Looks an organization up.
    fn find_organization(&self, id: Uuid) -> StoreResult<Option<OrganizationRecord>>;
    /// Every organization, oldest first.
    fn list_organizations(&self) -> StoreResult<Vec<OrganizationRecord>>;
}

/// Sessions and their refresh tokens.
pub trait SessionStore {
    /// Opens a session: the optional purge, the session and its first refresh token, in one
    /// transaction.
    fn create_session(&self, session: &NewSession) -> StoreResult<()>;
    /// Loads a session unexpired at `seen.now` with its user, touching `last_used_at`.
    fn session_with_user(
        &self,
        session_id: Uuid,
        seen: Use,
    ) -> StoreResult<Option<(SessionRecord, UserRecord)>>;
    /// The user's sessions unexpired at `now`, oldest first.
    fn list_sessions(&self, user_id: Uuid, now: i64) -> StoreResult<Vec<SessionRecord>>;
    /// Deletes one of the user's sessions (and its refresh state). False when the user has
    /// no such session.
    fn delete_session(&self, user_id: Uuid, session_id: Uuid) -> StoreResult<bool>;
    /// The refresh state of a session, whatever its expiry (the core judges it).
    fn find_refresh_token(&self, session_id: Uuid) -> StoreResult<Option<RefreshRecord>>;
    /// Exchanges the session's current refresh token: it becomes the previous generation
    /// (used at `now`, with its replay), the new one the current, replacing the previous
    /// generation that was kept; sets the session's access jti, last_used_at and expires_at
    /// (= new token's expiry). Returns false, writing nothing, unless the session's current
    /// generation is `new.generation - 1` with hash `old` (a concurrent exchange won).
    fn rotate_refresh_token(&self, rotation: &RefreshRotation) -> StoreResult<bool>;
    /// Bearer-form refresh: sets the new jti and expiry; the current refresh token becomes
    /// the previous generation, used at `now` with no replay (so presenting it is reuse),
    /// and the new one the current. Returns the new generation, or `None`, writing nothing,
    /// when the session is gone, expired at `rotation.now`, or its access jti is no longer
    /// `old_access_jti`.
    fn rotate_access_token(&self, rotation: &AccessRotation) -> StoreResult<Option<u64>>;
    /// Deletes at most `limit` sessions that expired at or before `before` (housekeeping);
    /// how many went. Safe to run concurrently from several instances.
    fn purge_expired_sessions(&self, before: i64, limit: u32) -> StoreResult<u64>;
}

/// Personal access tokens.
pub trait PersonalTokenStore {
    /// Inserts a personal access token.
    fn create_personal_token(&self, token: &NewPersonalToken) -> StoreResult<PersonalTokenRecord>;
    /// Looks a personal token up by hash, with its user, touching `last_used_at`. Expiry is
    /// the caller's to judge.
    fn personal_token_with_user(
        &self,
        hash: &TokenHash,
        seen: Use,
    ) -> StoreResult<Option<(PersonalTokenRecord, UserRecord)>>;
    /// The user's personal tokens, oldest first.
    fn list_personal_tokens(&self, user_id: Uuid) -> StoreResult<Vec<PersonalTokenRecord>>;
    /// Deletes one of the user's personal tokens. False when the user has no such token.
    fn delete_personal_token(&self, user_id: Uuid, token_id: Uuid) -> StoreResult<bool>;
    /// Deletes at most `limit` personal tokens that expired at or before `before`
    /// (housekeeping); how many went. Safe to run concurrently from several instances.
    fn purge_expired_personal_tokens(&self, before: i64, limit: u32) -> StoreResult<u64>;
}

/// Counters behind the rate limits, shared by every instance on the database.
pub trait RateLimitStore {
    /// Counts failed logins in the three windows.
    fn count_login_failures(&self, query: &FailureQuery) -> StoreResult<FailureCounts>;
    /// The time of the `skip`-th oldest (0-based) failure of one series within its window;
    /// `Retry-After` is derived from it.
    fn nth_login_failure(
        &self,
        query: &FailureQuery,
        series: FailureSeries,
        skip: u64,
    ) -> StoreResult<Option<i64>>;
    /// Records one failed login.
    fn record_login_failure(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()>;
    /// Forgets every failure of this email (a successful login).
    fn clear_login_failures(&self, email_key: &str) -> StoreResult<()>;
    /// Checks an attempt against the failed-login limits and, when every limit that applies
    /// is below its `max`, records it as a failure at `attempt.now` (the reservation), in
    /// one transaction that excludes every other reservation for the same email or client:
    /// of any number of concurrent attempts, at most the limit are ever let through. For a
    /// known address only the email+IP series applies.
    fn reserve_login_attempt(&self, attempt: &LoginAttempt) -> StoreResult<Reservation>;
    /// Releases a reservation (the attempt turned out not to be a failure): deletes one
    /// failure of `email_key` from `ip` recorded at `at`, if there is one. Failures are
    /// indistinguishable beyond these, so any one of equal rows will do.
    fn release_login_attempt(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()>;
    /// Records that `email_key` logged in successfully from `ip` at `at`, which makes the
    /// address known (see [`LoginAttempt::known_since`]).
    fn remember_address(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()>;
    /// Forgets at most `limit` addresses last used for a successful login before `before`
    /// (housekeeping); how many went. Safe to run concurrently from several instances.
    fn purge_known_addresses(&self, before: i64, limit: u32) -> StoreResult<u64>;
    /// Counts hits of `bucket`/`key` since `since`, and records one more at `now` when the
    /// count is below `limit`, atomically. Returns the count before this hit, and the oldest
    /// hit in the window (for `Retry-After`).
    fn hit_rate_limit(
        &self,
        bucket: &str,
        key: &str,
        since: i64,
        limit: u64,
        now: i64,
    ) -> StoreResult<(u64, Option<i64>)>;
    /// Deletes failures and hits older than `before`, at most `limit` of each (housekeeping);
    /// how many went. Safe to run concurrently from several instances.
    fn purge_rate_limits(&self, before: i64, limit: u32) -> StoreResult<u64>;
}

/// Whether an attempt with failure `counts` is refused under `max` (0: off): at a known
/// address only the email+IP series applies. One rule for every store.
pub fn limit_reached(counts: &FailureCounts, max: &FailureCounts, known: bool) -> bool {
    let at = |count: u64, max: u64| max > 0 && count >= max;
    at(counts.email_ip, max.email_ip)
        || (!known && (at(counts.email, max.email) || at(counts.ip, max.ip)))
}

/// Signing keys and settings. Secrets among them arrive sealed (encrypted by the core under
/// the key-encryption key, which no store ever sees).
pub trait KeyStore {
    /// Returns the stored value for `key`, storing `value` first if there was none.
    /// Atomic: two instances racing on a fresh database agree on one value.
    fn get_or_init_setting(&self, key: &str, value: &str) -> StoreResult<String>;
    /// The stored value for `key`, if any.
    fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Deletes the setting `key`. False when there was none.
    fn delete_setting(&self, key: &str) -> StoreResult<bool>;
    /// Every signing key, newest first.
    fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Adds a key; when it is active, every other key becomes inactive in the same transaction.
    fn add_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// Deletes the signing key `kid` unless it is the active one. False, deleting nothing,
    /// when there is no inactive key `kid`.
    fn delete_signing_key(&self, kid: &str) -> StoreResult<bool>;
    /// Replaces every private key and setting listed in `reseal` by its new form, in one
    /// transaction, provided each still holds its old form and the stored signing keys are
    /// exactly those listed (serialized with [`KeyStore::add_signing_key`]). Returns false,
    /// writing nothing, otherwise: something changed since the caller read them.
    fn reseal(&self, reseal: &Reseal) -> StoreResult<bool>;
}

/// The storage a deployment runs on: every part, plus a health probe. Implementations must be
/// safe to share across threads; every method may block and is only called from blocking
/// threads.
pub trait Store:
    UserStore
    + OrganizationStore
    + SessionStore
    + PersonalTokenStore
    + RateLimitStore
    + KeyStore
    + OneTimeTokenStore
    + MailQueueStore
    + AuditStore
    + MfaStore
    + Send
    + Sync
    + 'static
{
    /// Cheap round trip proving the database answers.
    fn ping(&self) -> StoreResult<()>;
}
