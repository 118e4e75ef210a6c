//! The records stores keep and the instructions they carry out. Plain data: every rule
//! about them (who may see what, what expires when, what a change revokes) is the core's.

use serde_json::Value;

use super::refresh::NewRefreshToken;
use uuid::Uuid;

/// SHA-256 of a high-entropy token (refresh or personal). Only this is stored.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Lower-case hex, the form stores keep in a text column.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses [`TokenHash::to_hex`]'s form back (either case); `None` for anything else.
    pub fn from_hex(hex: &str) -> Option<Self> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let text = std::str::from_utf8(pair).ok()?;
            *byte = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Self(out))
    }

    /// Whether two hashes are equal, in time independent of where they differ.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl std::fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A user as stored, with the roles attached to it. `Debug` leaves the password hash out.
#[derive(Clone, PartialEq)]
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
    /// When the address was proven (a verification or email-change link followed); `None`:
    /// never, or not since it changed.
    pub email_verified_at: Option<i64>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("full_name", &self.full_name)
            .field("is_active", &self.is_active)
            .field("roles", &self.roles)
            .field("organization_id", &self.organization_id)
            .finish_non_exhaustive()
    }
}

/// A user to insert. `Debug` leaves the password hash out.
#[derive(Clone)]
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

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
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
    /// The profile whose login or registration opened it (its name, e.g. `rbac`).
    pub profile: String,
    /// What bounds every token minted for it.
    pub bounds: SessionBounds,
}

/// What bounds the tokens of a session, fixed when it is opened: no refresh, in either form
/// and through any profile, mints past them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionBounds {
    /// The login time, from which the absolute session lifetime counts.
    pub created_at: i64,
    /// The access-token lifetime (seconds) of the profile that opened the session; `None`
    /// for sessions stored before it was recorded (then only the refreshing profile's
    /// lifetime applies).
    pub access_ttl: Option<i64>,
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
#[derive(Clone, Default, PartialEq)]
pub struct UserPatch {
    /// New password hash (PHC string).
    pub password_hash: Option<String>,
    /// New display name.
    pub full_name: Option<Option<String>>,
    /// New phone number.
    pub phone: Option<Option<String>>,
    /// New active flag.
    pub is_active: Option<bool>,
    /// The complete new set of role names (unknown names are created).
    pub roles: Option<Vec<String>>,
    /// New organization (which must exist).
    pub organization_id: Option<Option<Uuid>>,
    /// New attributes object (replaces the old one).
    pub attributes: Option<Value>,
    /// New address: as given and normalized (unique across users: a taken one is
    /// [`super::StoreError::Conflict`], writing nothing).
    pub email: Option<NewEmail>,
    /// New verification time (`Some(None)` clears it).
    pub email_verified_at: Option<Option<i64>>,
}

/// A user's new address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEmail {
    /// The address as given (trimmed).
    pub email: String,
    /// The normalized (lower-cased) address.
    pub email_key: String,
}

impl UserPatch {
    /// Whether applying the patch could take a role away from the user or deactivate them,
    /// which is what a guard (see [`super::UserStore::update_user`]) has to check.
    pub fn may_demote(&self) -> bool {
        self.roles.is_some() || self.is_active == Some(false)
    }

    /// Whether the user, now `is_active` with roles `roles`, would be an active holder of
    /// `role` after the patch.
    pub fn keeps_active_holder(&self, is_active: bool, roles: &[String], role: &str) -> bool {
        let active = self.is_active.unwrap_or(is_active);
        let holds = match &self.roles {
            Some(new) => new.iter().any(|r| r == role),
            None => roles.iter().any(|r| r == role),
        };
        active && holds
    }
}

impl std::fmt::Debug for UserPatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPatch")
            .field("password_hash", &self.password_hash.as_ref().map(|_| ".."))
            .field("full_name", &self.full_name)
            .field("phone", &self.phone)
            .field("is_active", &self.is_active)
            .field("roles", &self.roles)
            .field("organization_id", &self.organization_id)
            .field("attributes", &self.attributes)
            .field("email", &self.email)
            .field("email_verified_at", &self.email_verified_at)
            .finish()
    }
}

/// What a change to a user revokes, in the same transaction. The core decides (see
/// `service`); a store carries it out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Revocation {
    /// Which of the user's sessions (and their refresh tokens) are deleted.
    pub sessions: SessionRevocation,
    /// Whether every personal token of the user is deleted.
    pub personal_tokens: bool,
}

impl Revocation {
    /// Revokes nothing.
    pub const NOTHING: Revocation = Revocation {
        sessions: SessionRevocation::None,
        personal_tokens: false,
    };
    /// Revokes every session and every personal token.
    pub const EVERYTHING: Revocation = Revocation {
        sessions: SessionRevocation::All,
        personal_tokens: true,
    };
}

/// Which sessions of a user a [`Revocation`] deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SessionRevocation {
    /// None.
    #[default]
    None,
    /// Every one.
    All,
    /// Every one but this (the caller's own session, kept through a password change).
    AllExcept(Uuid),
}

/// A session to open: the session, its first refresh token, and the housekeeping that goes
/// with it, in one transaction.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// The session.
    pub session: SessionRecord,
    /// Its first refresh token (of the same session).
    pub first_refresh: NewRefreshToken,
    /// When set, the user's sessions that expired at or before this time are deleted first.
    pub purge_expired_before: Option<i64>,
}

/// A credential being used at `now`: its `last_used_at` is set to `now` when it is older
/// than `touch_before` (so a busy credential is not written on every request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    /// The time of this use.
    pub now: i64,
    /// `last_used_at` values before this are refreshed.
    pub touch_before: i64,
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

/// A login attempt (or a step-up) to check against the failed-login limits and reserve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// The email, the client and the three windows.
    pub query: FailureQuery,
    /// The `max` of each series (0: that limit is off).
    pub max: FailureCounts,
    /// The client is a known address of the email when the email logged in successfully
    /// from it at or after this time; a known address is held only to the email+IP limit.
    /// `None`: no address counts as known.
    pub known_since: Option<i64>,
    /// The time of the attempt, recorded on the reservation.
    pub now: i64,
}

/// What [`crate::store::RateLimitStore::reserve_login_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The attempt may go ahead; it is recorded as a failure (of its email and client, at
    /// its time) until released.
    Reserved,
    /// A limit is reached; nothing was written.
    Refused {
        /// The counts before this attempt.
        counts: FailureCounts,
        /// Whether the client is a known address (so only the email+IP count applied).
        known: bool,
    },
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

/// Everything sealed under the key-encryption key, each with its new sealed form: what
/// [`KeyStore::reseal`](super::KeyStore::reseal) writes when that key changes. `Debug` shows
/// names only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Reseal {
    /// Every stored signing key (all of them: a key left out makes the write refused).
    pub signing_keys: Vec<ResealedKey>,
    /// The sealed settings.
    pub settings: Vec<ResealedSetting>,
}

impl std::fmt::Debug for Reseal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<&str> = self.signing_keys.iter().map(|k| k.kid.as_str()).collect();
        let settings: Vec<&str> = self.settings.iter().map(|s| s.key.as_str()).collect();
        f.debug_struct("Reseal")
            .field("signing_keys", &kids)
            .field("settings", &settings)
            .finish()
    }
}

/// One signing key's private part, sealed under the old key and under the new one.
#[derive(Clone, PartialEq, Eq)]
pub struct ResealedKey {
    /// Key id.
    pub kid: String,
    /// The stored private part it replaces.
    pub old_private_key: Vec<u8>,
    /// Its new sealed form.
    pub new_private_key: Vec<u8>,
}

/// One sealed setting, sealed under the old key and under the new one.
#[derive(Clone, PartialEq, Eq)]
pub struct ResealedSetting {
    /// The setting's name.
    pub key: String,
    /// The stored value it replaces.
    pub old_value: String,
    /// Its new sealed form.
    pub new_value: String,
}
