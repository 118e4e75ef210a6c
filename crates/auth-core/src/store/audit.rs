//! What the audit log needs stored (issue 14): security events (logins, rate-limit trips,
//! password and credential changes, admin actions), appended by the core, read by admins
//! page by page, and purged after the configured retention.

use uuid::Uuid;

use super::StoreResult;

/// Longest `User-Agent` an audit event keeps (longer ones are cut by the core).
pub const MAX_AUDIT_USER_AGENT_LEN: usize = 512;

/// Largest page of [`AuditStore::list_audit`].
pub const MAX_AUDIT_PAGE: u32 = 100;

/// What happened. Stored as [`AuditKind::as_str`] (e.g. `login.failed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuditKind {
    /// A login succeeded.
    LoginSucceeded,
    /// A login was refused (detail: `reason`).
    LoginFailed,
    /// A rate limit refused a request (detail: `bucket`).
    RateLimitTripped,
    /// A user changed their password.
    PasswordChanged,
    /// A password was set through a reset mail.
    PasswordReset,
    /// A personal access token was created.
    TokenCreated,
    /// A personal access token was revoked.
    TokenRevoked,
    /// One session was revoked (or logged out).
    SessionRevoked,
    /// Every (other) session of a user was revoked, e.g. by a password change or reset
    /// (detail: `via`).
    SessionsRevokedAll,
    /// An admin created a user.
    AdminUserCreated,
    /// An admin changed a user (detail: the changed fields' names).
    AdminUserUpdated,
    /// An admin deleted a user.
    AdminUserDeleted,
    /// An admin revoked every session and token of a user.
    AdminSessionsRevoked,
    /// An admin created an organization.
    AdminOrganizationCreated,
    /// A second factor was added (detail: `factor`, `totp` or `passkey`, and a passkey's id).
    MfaFactorAdded,
    /// A second factor was removed (detail: `factor`, and a passkey's id).
    MfaFactorRemoved,
    /// A new set of recovery codes replaced the old one.
    MfaRecoveryCodesRegenerated,
    /// A recovery code was used (detail: how many are left).
    MfaRecoveryCodeUsed,
    /// An admin removed every second factor of a user.
    AdminMfaReset,
}

impl AuditKind {
    /// Every kind.
    pub const ALL: [AuditKind; 19] = [
        AuditKind::LoginSucceeded,
        AuditKind::LoginFailed,
        AuditKind::RateLimitTripped,
        AuditKind::PasswordChanged,
        AuditKind::PasswordReset,
        AuditKind::TokenCreated,
        AuditKind::TokenRevoked,
        AuditKind::SessionRevoked,
        AuditKind::SessionsRevokedAll,
        AuditKind::AdminUserCreated,
        AuditKind::AdminUserUpdated,
        AuditKind::AdminUserDeleted,
        AuditKind::AdminSessionsRevoked,
        AuditKind::AdminOrganizationCreated,
        AuditKind::MfaFactorAdded,
        AuditKind::MfaFactorRemoved,
        AuditKind::MfaRecoveryCodesRegenerated,
        AuditKind::MfaRecoveryCodeUsed,
        AuditKind::AdminMfaReset,
    ];

    /// Every kind's stored name, in the order of [`AuditKind::ALL`].
    pub const NAMES: [&'static str; 19] = [
        "login.succeeded",
        "login.failed",
        "rate_limit.tripped",
        "password.changed",
        "password.reset",
        "token.created",
        "token.revoked",
        "session.revoked",
        "sessions.revoked_all",
        "admin.user_created",
        "admin.user_updated",
        "admin.user_deleted",
        "admin.sessions_revoked",
        "admin.organization_created",
        "mfa.factor_added",
        "mfa.factor_removed",
        "mfa.recovery_codes_regenerated",
        "mfa.recovery_code_used",
        "admin.mfa_reset",
    ];

    /// The stored name, e.g. `login.succeeded`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::LoginSucceeded => "login.succeeded",
            AuditKind::LoginFailed => "login.failed",
            AuditKind::RateLimitTripped => "rate_limit.tripped",
            AuditKind::PasswordChanged => "password.changed",
            AuditKind::PasswordReset => "password.reset",
            AuditKind::TokenCreated => "token.created",
            AuditKind::TokenRevoked => "token.revoked",
            AuditKind::SessionRevoked => "session.revoked",
            AuditKind::SessionsRevokedAll => "sessions.revoked_all",
            AuditKind::AdminUserCreated => "admin.user_created",
            AuditKind::AdminUserUpdated => "admin.user_updated",
            AuditKind::AdminUserDeleted => "admin.user_deleted",
            AuditKind::AdminSessionsRevoked => "admin.sessions_revoked",
            AuditKind::AdminOrganizationCreated => "admin.organization_created",
            AuditKind::MfaFactorAdded => "mfa.factor_added",
            AuditKind::MfaFactorRemoved => "mfa.factor_removed",
            AuditKind::MfaRecoveryCodesRegenerated => "mfa.recovery_codes_regenerated",
            AuditKind::MfaRecoveryCodeUsed => "mfa.recovery_code_used",
            AuditKind::AdminMfaReset => "admin.mfa_reset",
        }
    }

    /// The kind a stored name names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// An event to append. Never carries a password, token, hash or other secret: `detail`
/// holds reason codes, bucket names and field names only.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEvent {
    /// Primary key, chosen by the core.
    pub id: Uuid,
    /// When it happened.
    pub at: i64,
    /// What happened (an [`AuditKind::as_str`]).
    pub kind: String,
    /// Who did it (the signed-in user or admin), when known.
    pub actor_id: Option<Uuid>,
    /// Whom it concerns, when a user.
    pub target_id: Option<Uuid>,
    /// The client IP, as the core resolved it.
    pub ip: Option<String>,
    /// The client's `User-Agent`, at most [`MAX_AUDIT_USER_AGENT_LEN`] characters.
    pub user_agent: Option<String>,
    /// Non-secret particulars (a JSON object).
    pub detail: Option<serde_json::Value>,
}

/// A stored event: what was appended.
pub type AuditEventRecord = NewAuditEvent;

/// Which events [`AuditStore::list_audit`] returns: every filter that is `Some` applies;
/// `since` and `until` are inclusive bounds on `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only this actor.
    pub actor_id: Option<Uuid>,
    /// Only this target.
    pub target_id: Option<Uuid>,
    /// Only events at or after this time.
    pub since: Option<i64>,
    /// Only events at or before this time.
    pub until: Option<i64>,
    /// Page size, 1 to [`MAX_AUDIT_PAGE`] (stores clamp to that range).
    pub limit: u32,
    /// Events skipped before the page.
    pub offset: u64,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            kind: None,
            actor_id: None,
            target_id: None,
            since: None,
            until: None,
            limit: 50,
            offset: 0,
        }
    }
}

impl AuditQuery {
    /// The page size clamped to 1 to [`MAX_AUDIT_PAGE`].
    pub fn page_size(&self) -> u32 {
        self.limit.clamp(1, MAX_AUDIT_PAGE)
    }
}

/// The audit log. Events are only ever appended and purged, never changed; they outlive the
/// users they name (ids are kept, no foreign keys).
pub trait AuditStore {
    /// Appends one event. `Conflict` when its id is taken.
    fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()>;
    /// A page of the events matching `query`, newest first (by `at`, then id descending),
    /// and the total matching.
    fn list_audit(&self, query: &AuditQuery) -> StoreResult<(Vec<AuditEventRecord>, u64)>;
    /// Deletes every event with `at < older_than`; how many went. Safe to run concurrently
    /// from several instances.
    fn purge_audit(&self, older_than: i64) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::AuditKind;

    #[test]
    fn kind_names_round_trip() {
        for (kind, name) in AuditKind::ALL.into_iter().zip(AuditKind::NAMES) {
            assert_eq!(kind.as_str(), name);
            assert_eq!(AuditKind::parse(name), Some(kind));
        }
        assert_eq!(AuditKind::parse("login"), None);
    }
}
