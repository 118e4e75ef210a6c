//! Who made an authenticated request, and with what credential. A leaf: the cache, the
//! services, the profiles and the adapters all speak of principals.

use std::sync::Arc;

use uuid::Uuid;

use crate::store::{SessionBounds, UserRecord};

/// The role that may use the admin API.
pub const ADMIN_ROLE: &str = "admin";

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

    /// Whether the user has the role `name`.
    pub fn has_role(&self, name: &str) -> bool {
        self.user.roles.iter().any(|role| role == name)
    }
}

/// The credential behind a [`Principal`].
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// An access token of a live session.
    Session {
        /// The session.
        session_id: Uuid,
        /// The access token's id.
        jti: String,
        /// What bounds the session's tokens (for a bearer-form refresh).
        bounds: SessionBounds,
    },
    /// A personal access token.
    PersonalToken {
        /// The token's id.
        token_id: Uuid,
    },
}

impl std::fmt::Debug for Credential {
    // The jti is what makes an access token current; it stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Session { session_id, .. } => f
                .debug_struct("Session")
                .field("session_id", session_id)
                .finish_non_exhaustive(),
            Credential::PersonalToken { token_id } => f
                .debug_struct("PersonalToken")
                .field("token_id", token_id)
                .finish(),
        }
    }
}
