//! Row types and their conversion to the core's records.

use auth_core::store::{
    ChallengePurpose, ChallengeRecord, OneTimeTokenRecord, OrganizationRecord, PasskeyRecord,
    PersonalTokenRecord, QueuedMail, RoleRecord, SessionBounds, SessionRecord, SigningKeyRecord,
    TokenHash, TokenPurpose, TotpRecord, UserRecord,
};
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

use crate::error::Fail;
use crate::schema::{
    login_failures, mail_queue, mfa_challenges, one_time_tokens, organizations, passkeys,
    personal_tokens, rate_limit_hits, recovery_codes, roles, sessions, signing_keys, totp_factors,
    user_roles, users,
};

/// Parses a UUID column.
pub(crate) fn parse_id(value: &str, column: &str) -> Result<Uuid, Fail> {
    Uuid::parse_str(value).map_err(|_| Fail::other(format!("invalid UUID in column {column}")))
}

/// Formats a UUID for a TEXT column (hyphenated, lower case).
pub(crate) fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users)]
pub(crate) struct UserRow {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub full_name: Option<String>,
    pub phone: Option<String>,
    pub is_active: bool,
    pub organization_id: Option<String>,
    pub attributes: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub email_verified_at: Option<i64>,
}

impl UserRow {
    /// Builds the record; `roles` must already be sorted.
    pub(crate) fn into_record(self, roles: Vec<String>) -> Result<UserRecord, Fail> {
        let attributes = match serde_json::from_str::<Value>(&self.attributes) {
            Ok(v @ Value::Object(_)) => v,
            _ => Value::Object(serde_json::Map::new()),
        };
        Ok(UserRecord {
            id: parse_id(&self.id, "users.id")?,
            email: self.email,
            password_hash: self.password_hash,
            full_name: self.full_name,
            phone: self.phone,
            is_active: self.is_active,
            roles,
            organization_id: self
                .organization_id
                .as_deref()
                .map(|o| parse_id(o, "users.organization_id"))
                .transpose()?,
            attributes,
            created_at: self.created_at,
            updated_at: self.updated_at,
            email_verified_at: self.email_verified_at,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub(crate) struct NewUserRow<'a> {
    pub id: String,
    pub email: &'a str,
    pub email_key: &'a str,
    pub password_hash: &'a str,
    pub full_name: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub is_active: bool,
    pub organization_id: Option<String>,
    pub attributes: &'a str,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The columns of `users` a patch may change. `None` leaves a column alone;
/// `Some(None)` sets a nullable one to NULL. `updated_at` is always written, so the
/// changeset is never empty.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = users)]
pub(crate) struct UserChanges<'a> {
    pub email: Option<&'a str>,
    pub email_key: Option<&'a str>,
    pub email_verified_at: Option<Option<i64>>,
    pub password_hash: Option<&'a str>,
    pub full_name: Option<Option<&'a str>>,
    pub phone: Option<Option<&'a str>>,
    pub is_active: Option<bool>,
    pub organization_id: Option<Option<String>>,
    pub attributes: Option<String>,
    pub updated_at: i64,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = roles)]
pub(crate) struct RoleRow {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
}

impl RoleRow {
    pub(crate) fn into_record(self) -> Result<RoleRecord, Fail> {
        Ok(RoleRecord {
            id: parse_id(&self.id, "roles.id")?,
            name: self.name,
            description: self.description,
        })
    }
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = organizations)]
pub(crate) struct OrganizationRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

impl OrganizationRow {
    pub(crate) fn from_record(o: &OrganizationRecord) -> Self {
        OrganizationRow {
            id: id_text(o.id),
            name: o.name.clone(),
            created_at: o.created_at,
        }
    }

    pub(crate) fn into_record(self) -> Result<OrganizationRecord, Fail> {
        Ok(OrganizationRecord {
            id: parse_id(&self.id, "organizations.id")?,
            name: self.name,
            created_at: self.created_at,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = roles)]
pub(crate) struct NewRoleRow<'a> {
    pub id: String,
    pub name: &'a str,
    pub description: Option<&'a str>,
    pub created_at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = user_roles)]
pub(crate) struct UserRoleRow {
    pub user_id: String,
    pub role_id: String,
}

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub access_jti: String,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub profile: String,
    pub access_ttl: Option<i64>,
}

impl SessionRow {
    pub(crate) fn from_record(s: &SessionRecord) -> Self {
        SessionRow {
            id: id_text(s.id),
            user_id: id_text(s.user_id),
            access_jti: s.access_jti.clone(),
            user_agent: s.user_agent.clone(),
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            expires_at: s.expires_at,
            profile: s.profile.clone(),
            access_ttl: s.bounds.access_ttl,
        }
    }

    pub(crate) fn into_record(self) -> Result<SessionRecord, Fail> {
        Ok(SessionRecord {
            id: parse_id(&self.id, "sessions.id")?,
            user_id: parse_id(&self.user_id, "sessions.user_id")?,
            access_jti: self.access_jti,
            user_agent: self.user_agent,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            expires_at: self.expires_at,
            profile: self.profile,
            bounds: SessionBounds {
                created_at: self.created_at,
                access_ttl: self.access_ttl,
            },
        })
    }
}

/// The refresh columns of a session row (see the `refresh_generations` migration).
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub(crate) struct RefreshRow {
    pub id: String,
    pub user_id: String,
    pub expires_at: i64,
    pub created_at: i64,
    pub access_ttl: Option<i64>,
    pub refresh_generation: i64,
    pub refresh_hash: String,
    pub previous_refresh_hash: Option<String>,
    pub previous_refresh_used_at: Option<i64>,
    pub previous_refresh_replay: Option<Vec<u8>>,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = personal_tokens)]
pub(crate) struct PersonalTokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl PersonalTokenRow {
    pub(crate) fn into_record(self) -> Result<PersonalTokenRecord, Fail> {
        Ok(PersonalTokenRecord {
            id: parse_id(&self.id, "personal_tokens.id")?,
            user_id: parse_id(&self.user_id, "personal_tokens.user_id")?,
            name: self.name,
            created_at: self.created_at,
            expires_at: self.expires_at,
            last_used_at: self.last_used_at,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = personal_tokens)]
pub(crate) struct NewPersonalTokenRow<'a> {
    pub id: String,
    pub user_id: String,
    pub name: &'a str,
    pub token_hash: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = login_failures)]
pub(crate) struct NewLoginFailureRow<'a> {
    pub email_key: &'a str,
    pub ip: &'a str,
    pub at: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = rate_limit_hits)]
pub(crate) struct NewRateLimitHitRow<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub at: i64,
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub(crate) struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    pub public_key: Vec<u8>,
    pub private_key: Vec<u8>,
    pub created_at: i64,
    pub active: bool,
}

impl SigningKeyRow {
    pub(crate) fn into_record(self) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: self.kid,
            algorithm: self.algorithm,
            public_key: self.public_key,
            private_key: self.private_key,
            created_at: self.created_at,
            active: self.active,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = signing_keys)]
pub(crate) struct NewSigningKeyRow<'a> {
    pub kid: &'a str,
    pub algorithm: &'a str,
    pub public_key: &'a [u8],
    pub private_key: &'a [u8],
    pub created_at: i64,
    pub active: bool,
}

impl<'a> NewSigningKeyRow<'a> {
    pub(crate) fn from_record(k: &'a SigningKeyRecord) -> Self {
        NewSigningKeyRow {
            kid: &k.kid,
            algorithm: &k.algorithm,
            public_key: &k.public_key,
            private_key: &k.private_key,
            created_at: k.created_at,
            active: k.active,
        }
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = one_time_tokens)]
pub(crate) struct OneTimeTokenRow {
    pub user_id: String,
    pub purpose: String,
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
}

impl OneTimeTokenRow {
    pub(crate) fn into_record(self) -> Result<OneTimeTokenRecord, Fail> {
        let purpose = TokenPurpose::parse(&self.purpose)
            .ok_or_else(|| Fail::other("unknown purpose in column one_time_tokens.purpose"))?;
        Ok(OneTimeTokenRecord {
            user_id: parse_id(&self.user_id, "one_time_tokens.user_id")?,
            purpose,
            email: self.email,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = one_time_tokens)]
pub(crate) struct NewOneTimeTokenRow<'a> {
    pub token_hash: String,
    pub user_id: String,
    pub purpose: &'a str,
    pub email: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
}

/// A `mail_queue` row; `Debug` leaves the (sealed) payload out.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = mail_queue)]
pub(crate) struct MailRow {
    pub id: String,
    pub payload: Vec<u8>,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub created_at: i64,
}

impl std::fmt::Debug for MailRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailRow")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .finish_non_exhaustive()
    }
}

/// An attempt count for the INTEGER column (saturating: a count that large is no less a
/// failure).
pub(crate) fn attempts_column(attempts: u32) -> i32 {
    i32::try_from(attempts).unwrap_or(i32::MAX)
}

impl MailRow {
    pub(crate) fn from_record(m: &QueuedMail) -> Self {
        MailRow {
            id: id_text(m.id),
            payload: m.payload.clone(),
            attempts: attempts_column(m.attempts),
            next_attempt_at: m.next_attempt_at,
            created_at: m.created_at,
        }
    }

    pub(crate) fn into_record(self) -> Result<QueuedMail, Fail> {
        Ok(QueuedMail {
            id: parse_id(&self.id, "mail_queue.id")?,
            payload: self.payload,
            attempts: u32::try_from(self.attempts)
                .map_err(|_| Fail::other("negative count in column mail_queue.attempts"))?,
            next_attempt_at: self.next_attempt_at,
            created_at: self.created_at,
        })
    }
}

/// A `totp_factors` row; `Debug` leaves the (sealed) secret out.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = totp_factors)]
pub(crate) struct TotpRow {
    pub user_id: String,
    pub secret_sealed: Vec<u8>,
    pub confirmed_at: Option<i64>,
    pub last_used_step: Option<i64>,
    pub created_at: i64,
}

impl std::fmt::Debug for TotpRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRow")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_used_step", &self.last_used_step)
            .finish_non_exhaustive()
    }
}

impl TotpRow {
    pub(crate) fn into_record(self) -> Result<TotpRecord, Fail> {
        Ok(TotpRecord {
            user_id: parse_id(&self.user_id, "totp_factors.user_id")?,
            secret_sealed: self.secret_sealed,
            confirmed_at: self.confirmed_at,
            last_used_step: self.last_used_step,
            created_at: self.created_at,
        })
    }
}

/// A `recovery_codes` row to insert: the hash of one code.
#[derive(Debug, Insertable)]
#[diesel(table_name = recovery_codes)]
pub(crate) struct NewRecoveryCodeRow<'a> {
    pub user_id: &'a str,
    pub code_hash: String,
    pub created_at: i64,
}

/// A `passkeys` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys)]
pub(crate) struct PasskeyRow {
    pub id: String,
    pub user_id: String,
    pub credential_id: String,
    pub name: String,
    pub data: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl PasskeyRow {
    pub(crate) fn from_record(p: &PasskeyRecord) -> Self {
        PasskeyRow {
            id: id_text(p.id),
            user_id: id_text(p.user_id),
            credential_id: p.credential_id.clone(),
            name: p.name.clone(),
            data: p.data.clone(),
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }

    pub(crate) fn into_record(self) -> Result<PasskeyRecord, Fail> {
        Ok(PasskeyRecord {
            id: parse_id(&self.id, "passkeys.id")?,
            user_id: parse_id(&self.user_id, "passkeys.user_id")?,
            credential_id: self.credential_id,
            name: self.name,
            data: self.data,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        })
    }
}

/// A `mfa_challenges` row; `Debug` leaves the hash and the ceremony state out.
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = mfa_challenges)]
pub(crate) struct ChallengeRow {
    pub hash: String,
    pub purpose: String,
    pub user_id: Option<String>,
    pub state: Option<String>,
    pub failures: i32,
    pub created_at: i64,
    pub expires_at: i64,
}

impl std::fmt::Debug for ChallengeRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeRow")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("failures", &self.failures)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl ChallengeRow {
    pub(crate) fn from_record(c: &ChallengeRecord) -> Self {
        ChallengeRow {
            hash: c.hash.to_hex(),
            purpose: c.purpose.as_str().to_owned(),
            user_id: c.user_id.map(id_text),
            state: c.state.clone(),
            failures: attempts_column(c.failures),
            created_at: c.created_at,
            expires_at: c.expires_at,
        }
    }

    pub(crate) fn into_record(self) -> Result<ChallengeRecord, Fail> {
        Ok(ChallengeRecord {
            hash: TokenHash::from_hex(&self.hash)
                .ok_or_else(|| Fail::other("invalid hash in column mfa_challenges.hash"))?,
            purpose: ChallengePurpose::parse(&self.purpose)
                .ok_or_else(|| Fail::other("unknown purpose in column mfa_challenges.purpose"))?,
            user_id: self
                .user_id
                .as_deref()
                .map(|u| parse_id(u, "mfa_challenges.user_id"))
                .transpose()?,
            state: self.state,
            failures: u32::try_from(self.failures)
                .map_err(|_| Fail::other("negative count in column mfa_challenges.failures"))?,
            created_at: self.created_at,
            expires_at: self.expires_at,
        })
    }
}
