//! The storage trait: everything the core needs from a database.
//!
//! Every method blocks (Diesel, r2d2); the core only ever calls them on its own store
//! threads (a fixed number, `Config::store_threads`), never on an async executor thread.
//! Timestamps are Unix seconds (UTC). Ids are UUIDs. Secrets never reach a store
//! in plain text: refresh and personal tokens arrive as [`TokenHash`]es.

use serde_json::Value;
use uuid::Uuid;

/// What a store reports when an operation fails. Stores map every backend error to this.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint refused the write (e.g. the email is taken).
    #[error("conflict with an existing record")]
    Conflict,
    /// The database could not be reached or did not answer in time.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else. The message is for logs only and must not contain secrets.
    #[error("database error: {0}")]
    Other(String),
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// SHA-256 of a high-entropy token (refresh or personal). Only this is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lower-case hex, the form stores keep in a text column.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A user as stored, with the roles attached to it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// Primary key.
    pub id: Uuid,
    /// The address as the user gave it (trimmed, case preserved).
    pub email: String,
    /// argon2id (or imported) PHC string. Never logged, never rendered.
    pub password_hash: String,
    /// Optional display name.
    pub full_name: Option<String>,
    /// Optional phone number.
    pub phone: Option<String>,
    /// Whether the account may sign in.
    pub is_active: bool,
    /// Role names, sorted.
    pub roles: Vec<String>,
    /// The organization the user belongs to, if any.
    pub organization_id: Option<Uuid>,
    /// Free-form JSON object.
    pub attributes: Value,
    /// Creation time.
    pub created_at: i64,
    /// Last modification time.
    pub updated_at: i64,
}

/// A user to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Primary key, chosen by the core.
    pub id: Uuid,
    /// The address as given (trimmed).
    pub email: String,
    /// The normalized (lower-cased) address; unique across users.
    pub email_key: String,
    /// PHC string.
    pub password_hash: String,
    /// Optional display name.
    pub full_name: Option<String>,
    /// Whether the account may sign in.
    pub is_active: bool,
    /// Role names; unknown names are created on first use.
    pub roles: Vec<String>,
    /// Organization, which must exist.
    pub organization_id: Option<Uuid>,
    /// Creation time.
    pub now: i64,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// Primary key; the `sid` claim.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// `jti` of the one access token currently valid for this session.
    pub access_jti: String,
    /// The `User-Agent` of the login that created it.
    pub user_agent: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// Last time it authenticated a request or was refreshed (updated at most once a minute).
    pub last_used_at: i64,
    /// After this the session and its refresh tokens are dead.
    pub expires_at: i64,
}

/// A refresh token to insert (the hash of it).
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// Hash of the token.
    pub hash: TokenHash,
    /// Session it refreshes.
    pub session_id: Uuid,
    /// Creation time.
    pub created_at: i64,
    /// Expiry.
    pub expires_at: i64,
}

/// A refresh token as stored, with what the core needs to decide about it.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    /// Session it refreshes.
    pub session_id: Uuid,
    /// Owner of that session.
    pub user_id: Uuid,
    /// Expiry.
    pub expires_at: i64,
    /// When it was exchanged, if it was.
    pub used_at: Option<i64>,
    /// The answer it was exchanged for, encrypted with a key only the token holder can derive.
    pub replay: Option<Vec<u8>>,
    /// Whether the token minted in exchange for it has itself been used (or removed).
    pub successor_used: bool,
    /// Whether the session has been revoked (or has expired and been removed).
    pub session_revoked: bool,
}

/// Everything a refresh-token exchange writes, in one transaction.
#[derive(Debug, Clone)]
pub struct RefreshRotation {
    /// The token being exchanged; the write only happens if it is still unused.
    pub old: TokenHash,
    /// The new refresh token.
    pub new: NewRefreshToken,
    /// The session's new current access-token id.
    pub new_access_jti: String,
    /// The encrypted answer, kept on the old token for replays within the reuse interval.
    pub replay: Vec<u8>,
    /// When.
    pub now: i64,
}

/// Everything a bearer-form refresh writes, in one transaction.
#[derive(Debug, Clone)]
pub struct AccessRotation {
    /// Session to rotate.
    pub session_id: Uuid,
    /// The access-token id presented; the write only happens if it is still current.
    pub old_access_jti: String,
    /// The new current access-token id.
    pub new_access_jti: String,
    /// The session's new refresh token; every older unused one of the session is removed.
    pub new_refresh: NewRefreshToken,
    /// When.
    pub now: i64,
}

/// A personal access token as stored (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct PersonalTokenRecord {
    /// Primary key.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
    /// Expiry; `None` never expires.
    pub expires_at: Option<i64>,
    /// Last time it authenticated a request (updated at most once a minute).
    pub last_used_at: Option<i64>,
}

/// A personal access token to insert.
#[derive(Debug, Clone)]
pub struct NewPersonalToken {
    /// Primary key.
    pub id: Uuid,
    /// Owner.
    pub user_id: Uuid,
    /// Display name.
    pub name: String,
    /// Hash of the token.
    pub hash: TokenHash,
    /// Creation time.
    pub created_at: i64,
    /// Expiry; `None` never expires.
    pub expires_at: Option<i64>,
}

/// An organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationRecord {
    /// Primary key.
    pub id: Uuid,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created_at: i64,
}

/// A role, with its optional description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    /// Primary key.
    pub id: Uuid,
    /// Unique name.
    pub name: String,
    /// Optional description.
    pub description: Option<String>,
}

/// Changes to a user; `None` leaves a field as it is (`Some(None)` clears a nullable one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    /// New display name.
    pub full_name: Option<Option<String>>,
    /// New phone number.
    pub phone: Option<Option<String>>,
    /// New active flag; `false` also revokes every session and personal token.
    pub is_active: Option<bool>,
    /// The complete new set of role names (unknown names are created).
    pub roles: Option<Vec<String>>,
    /// New organization (which must exist).
    pub organization_id: Option<Option<Uuid>>,
    /// New attributes object (replaces the old one).
    pub attributes: Option<Value>,
}

/// A page of users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserQuery {
    /// Only the user with this normalized email.
    pub email_key: Option<String>,
    /// Page size.
    pub limit: u32,
    /// Users to skip.
    pub offset: u64,
}

/// Failed-login counts in the three windows of the contract's rate limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCounts {
    /// Failures for this email from this IP within the email+IP window.
    pub email_ip: u64,
    /// Failures for this email from anywhere within the email window.
    pub email: u64,
    /// Failures from this IP (any email) within the IP window.
    pub ip: u64,
}

/// Which failures a count or an expiry question is about: `since` is `now - window`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureQuery {
    /// Normalized email.
    pub email_key: String,
    /// Client IP, as text.
    pub ip: String,
    /// Start of the email+IP window.
    pub email_ip_since: i64,
    /// Start of the email window.
    pub email_since: i64,
    /// Start of the IP window.
    pub ip_since: i64,
}

/// One of the three failed-login series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureSeries {
    /// This email from this IP, since `email_ip_since`.
    EmailIp,
    /// This email from anywhere, since `email_since`.
    Email,
    /// This IP with any email, since `ip_since`.
    Ip,
}

/// A signing key as stored: the private part encrypted under the configured key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (`kid`).
    pub kid: String,
    /// JWS algorithm, e.g. `EdDSA`.
    pub algorithm: String,
    /// Public key bytes (raw Ed25519, 32 bytes).
    pub public_key: Vec<u8>,
    /// Encrypted private key (nonce + ciphertext).
    pub private_key: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
    /// Whether new tokens are signed with it (exactly one key is active).
    pub active: bool,
}

/// The storage a deployment runs on. Implementations must be safe to share across threads;
/// every method may block and is only called from blocking threads.
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip proving the database answers.
    fn ping(&self) -> StoreResult<()>;

    /// Returns the stored value for `key`, storing `value` first if there was none.
    /// Atomic: two instances racing on a fresh database agree on one value.
    fn get_or_init_setting(&self, key: &str, value: &str) -> StoreResult<String>;

    /// Inserts a user (and its roles). `Conflict` when `email_key` is taken.
    fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord>;
    /// Looks a user up by normalized email.
    fn find_user_by_email(&self, email_key: &str) -> StoreResult<Option<UserRecord>>;
    /// Looks a user up by id.
    fn find_user(&self, id: Uuid) -> StoreResult<Option<UserRecord>>;
    /// Sets `is_active`. Deactivating also deletes all of the user's sessions, refresh
    /// tokens and personal tokens, in the same transaction. Returns false for an unknown user.
    fn set_user_active(&self, id: Uuid, active: bool, now: i64) -> StoreResult<bool>;
    /// Replaces the password hash and, in the same transaction, deletes every session of
    /// the user except `keep_session` (personal tokens are kept).
    fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep_session: Option<Uuid>,
        now: i64,
    ) -> StoreResult<()>;

    /// Inserts a session with its first refresh token.
    fn create_session(&self, session: &SessionRecord, refresh: &NewRefreshToken)
    -> StoreResult<()>;
    /// Loads a live (unexpired at `now`) session with its user. When `last_used_at` is more than
    /// 60 s old it is set to `now`.
    fn session_with_user(
        &self,
        session_id: Uuid,
        now: i64,
    ) -> StoreResult<Option<(SessionRecord, UserRecord)>>;
    /// The user's live sessions, oldest first.
    fn list_sessions(&self, user_id: Uuid, now: i64) -> StoreResult<Vec<SessionRecord>>;
    /// Deletes one of the user's sessions (and its refresh tokens). False when the user has
    /// no such session.
    fn delete_session(&self, user_id: Uuid, session_id: Uuid) -> StoreResult<bool>;

    /// Looks a refresh token up by hash.
    fn find_refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshRecord>>;
    /// Exchanges an unused refresh token: marks it used with its replay, inserts the new
    /// token, sets the session's access jti, last_used_at and expires_at (= new token's expiry).
    /// Returns false, writing nothing, when the old token was already used (a concurrent exchange won).
    fn rotate_refresh_token(&self, rotation: &RefreshRotation) -> StoreResult<bool>;
    /// Bearer-form refresh. Returns false, writing nothing, when the session is gone or its
    /// access jti is no longer `old_access_jti`.
    fn rotate_access_token(&self, rotation: &AccessRotation) -> StoreResult<bool>;

    /// Inserts a personal access token.
    fn create_personal_token(&self, token: &NewPersonalToken) -> StoreResult<PersonalTokenRecord>;
    /// Looks a personal token up by hash, with its user. Expiry is the caller's to check.
    /// When `last_used_at` is unset or more than 60 s old it is set to `now`.
    fn personal_token_with_user(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<(PersonalTokenRecord, UserRecord)>>;
    /// The user's personal tokens, oldest first.
    fn list_personal_tokens(&self, user_id: Uuid) -> StoreResult<Vec<PersonalTokenRecord>>;
    /// Deletes one of the user's personal tokens. False when the user has no such token.
    fn delete_personal_token(&self, user_id: Uuid, token_id: Uuid) -> StoreResult<bool>;

    /// Replaces the password hash without touching sessions (hash upgrades on login).
    fn update_password_hash(&self, user_id: Uuid, password_hash: &str, now: i64)
    -> StoreResult<()>;
    /// Applies a patch in one transaction (setting `updated_at = now`); deactivation deletes
    /// the user's sessions and personal tokens in the same transaction. `None` for an unknown
    /// user. An unknown organization is `StoreError::Other` (callers check first).
    fn update_user(&self, id: Uuid, patch: &UserPatch, now: i64)
    -> StoreResult<Option<UserRecord>>;
    /// Deletes a user and, by cascade, everything of theirs. False for an unknown user.
    fn delete_user(&self, id: Uuid) -> StoreResult<bool>;
    /// A page of users ordered by creation time then id, and the total matching the filter.
    fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<UserRecord>, u64)>;
    /// The user's roles with ids and descriptions, sorted by name.
    fn user_roles(&self, user_id: Uuid) -> StoreResult<Vec<RoleRecord>>;

    /// Inserts an organization.
    fn create_organization(&self, organization: &OrganizationRecord) -> StoreResult<()>;
    /// Looks an organization up.
    fn find_organization(&self, id: Uuid) -> StoreResult<Option<OrganizationRecord>>;
    /// Every organization, oldest first.
    fn list_organizations(&self) -> StoreResult<Vec<OrganizationRecord>>;

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
    /// Deletes failures and hits older than `before` (housekeeping).
    fn purge_rate_limits(&self, before: i64) -> StoreResult<u64>;

    /// Every signing key, newest first.
    fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Adds a key; when it is active, every other key becomes inactive in the same transaction.
    fn add_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
}
