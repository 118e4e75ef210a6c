//! The refresh state of a session, kept on the session row: O(1) storage per session however
//! often it is refreshed. A refresh token names its session and a generation; the row keeps
//! the current generation's hash and the previous generation's hash, replay and time of use.
//! Anything older is known to be reuse without being stored.

use uuid::Uuid;

use super::TokenHash;

/// A session's refresh token to store (the hash of its secret part).
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    /// Hash of the token's secret part.
    pub hash: TokenHash,
    /// Session it refreshes.
    pub session_id: Uuid,
    /// Its generation within the session: 0 for the login's, one more on every rotation.
    pub generation: u64,
    /// Creation time.
    pub created_at: i64,
    /// Expiry (also the session's new expiry).
    pub expires_at: i64,
}

/// The generation a session's refresh token was exchanged from, kept for replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousRefresh {
    /// Hash of its secret part.
    pub hash: TokenHash,
    /// When it was exchanged (or superseded by a bearer-form refresh).
    pub used_at: i64,
    /// The answer it was exchanged for, encrypted with a key only the token holder can
    /// derive; `None` when superseded by a bearer-form refresh (no replay then).
    pub replay: Option<Vec<u8>>,
}

/// A session's refresh state, with what the core needs to judge a presented token.
#[derive(Debug, Clone)]
pub struct RefreshRecord {
    /// The session.
    pub session_id: Uuid,
    /// Owner of that session.
    pub user_id: Uuid,
    /// The current generation: the only one that can be exchanged.
    pub generation: u64,
    /// Hash of the current generation's secret part.
    pub current: TokenHash,
    /// Generation `generation - 1`, once there was a rotation.
    pub previous: Option<PreviousRefresh>,
    /// When the session (and its current refresh token) expires.
    pub session_expires_at: i64,
    /// What bounds the session's tokens.
    pub session_bounds: super::SessionBounds,
}

/// Everything a refresh-token exchange writes, in one transaction.
#[derive(Debug, Clone)]
pub struct RefreshRotation {
    /// Hash of the token being exchanged; the write only happens if it is still the
    /// session's current one, of generation `new.generation - 1`.
    pub old: TokenHash,
    /// The new refresh token (the session's next generation).
    pub new: NewRefreshToken,
    /// The session's new current access-token id.
    pub new_access_jti: String,
    /// The encrypted answer, kept as the previous generation's replay.
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
    /// Hash of the new refresh token's secret part; it becomes the next generation.
    pub new_refresh: TokenHash,
    /// Expiry of the new refresh token (and the session's new expiry).
    pub expires_at: i64,
    /// When.
    pub now: i64,
}
