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

/// A role named at compile time, for the adapters' role guards (`RequireRole<R>` in axum and
/// actix-web): `struct Editor; impl RequiredRole for Editor { const NAME: &'static str =
/// "editor"; }`.
pub trait RequiredRole: Send + Sync + 'static {
    /// The role's name, as stored on users (`--role editor`).
    const NAME: &'static str;
}

/// The role `admin`, the one that may use the admin API.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl RequiredRole for Admin {
    const NAME: &'static str = ADMIN_ROLE;
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
    // The jti is what makes an access token current, and a token id is what its revocation
    // names: both stay out of logs. The session id is what an operator needs to find the
    // session, and cannot be used as a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Session { session_id, .. } => f
                .debug_struct("Session")
                .field("session_id", session_id)
                .finish_non_exhaustive(),
            Credential::PersonalToken { .. } => {
                f.debug_struct("PersonalToken").finish_non_exhaustive()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(credential: Credential) -> Principal {
        let user = UserRecord {
            id: Uuid::nil(),
            email: "debug@example.com".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
            full_name: None,
            phone: None,
            is_active: true,
            roles: vec!["editor".into()],
            organization_id: None,
            attributes: serde_json::json!({}),
            created_at: 0,
            updated_at: 0,
            email_verified_at: None,
        };
        Principal {
            user: Arc::new(user),
            credential,
        }
    }

    #[test]
    fn debug_shows_no_hash_token_or_token_id() {
        let token_id = Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_9abc_def0);
        let by_token = format!("{:?}", principal(Credential::PersonalToken { token_id }));
        let by_session = format!(
            "{:?}",
            principal(Credential::Session {
                session_id: Uuid::nil(),
                jti: "jti-secret-value".into(),
                bounds: SessionBounds {
                    created_at: 0,
                    access_ttl: None,
                },
            })
        );
        for shown in [&by_token, &by_session] {
            assert!(shown.contains("debug@example.com"), "{shown}");
            assert!(!shown.contains("argon2"), "{shown}");
            assert!(!shown.contains("aGFzaGhhc2g"), "{shown}");
        }
        assert!(!by_token.contains(&token_id.to_string()), "{by_token}");
        assert!(!by_session.contains("jti-secret-value"), "{by_session}");
    }

    #[test]
    fn roles_are_required_by_name() {
        let principal = principal(Credential::PersonalToken {
            token_id: Uuid::nil(),
        });
        assert!(principal.has_role("editor"));
        assert!(!principal.has_role(Admin::NAME));
    }
}
