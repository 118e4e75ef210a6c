//! Sessions: login, authenticating bearer tokens (access and personal), logout, and the
//! caller's sessions. Both refresh forms are in `refresh.rs`.

use std::sync::Arc;

use uuid::Uuid;

use super::accounts::login_failed;
use super::audit::Event;
use super::mfa::{FirstFactor, Gate, LoginOutcome, Next, after_first_factor};
use super::mint::mint;
use super::{Accounts, Client, Context, SessionGrant, SessionTerms, keys};
use crate::cache::{CacheKey, Stale};
use crate::clock::secs;
use crate::error::Error;
use crate::principal::{Credential, Principal};
use crate::store::{AuditKind, NewSession, SessionBounds, SessionRecord, Use, UserRecord};
use crate::token::{PERSONAL_PREFIX, REFRESH_PREFIX, VerifyError, hash_token, secrets_equal};

/// Longest bearer token considered at all; longer ones are refused without parsing.
pub(super) const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest `User-Agent` kept with a session.
const MAX_USER_AGENT_LEN: usize = 512;
/// A credential's `last_used_at` is written at most this often (seconds), so a busy client
/// does not cost a write per request.
const TOUCH_INTERVAL_SECS: i64 = 60;

/// The `outcome` label of a password login's result, for the metrics.
fn login_outcome(result: &Result<LoginOutcome, Error>) -> &'static str {
    match result {
        Ok(LoginOutcome::Session(_)) => "success",
        Ok(LoginOutcome::SecondFactor(_)) => "second_factor_required",
        Err(Error::MfaRequired) => "mfa_required",
        Err(Error::InvalidCredentials) => "invalid_credentials",
        Err(Error::AccountInactive) => "inactive",
        Err(Error::RateLimited(_)) => "rate_limited",
        Err(Error::EmailNotVerified) => "email_not_verified",
        Err(Error::Unavailable | Error::Overloaded(_)) => "unavailable",
        Err(_) => "error",
    }
}

/// The session service.
#[derive(Clone, Copy)]
pub struct Sessions<'a>(pub(super) &'a Context);

impl Sessions<'_> {
    /// Logs in through a profile with no second step (the seed profiles): checks the
    /// credentials and opens a session. A user with a second factor is refused with
    /// `MfaRequired`, unless the deployment allows password-only logins there.
    pub async fn login(
        &self,
        email: &str,
        password: String,
        client: Client<'_>,
        terms: SessionTerms,
    ) -> Result<SessionGrant, Error> {
        match self
            .begin_login_through(email, password, client, terms, Gate::Seed)
            .await?
        {
            LoginOutcome::Session(grant) => Ok(grant),
            LoginOutcome::SecondFactor(_) => Err(Error::MfaRequired),
        }
    }

    /// Logs in through `native`: checks the credentials, then opens a session, or for a user
    /// with a second factor answers the second step ([`crate::service::Mfa::verify`]).
    pub async fn begin_login(
        &self,
        email: &str,
        password: String,
        client: Client<'_>,
        terms: SessionTerms,
    ) -> Result<LoginOutcome, Error> {
        self.begin_login_through(email, password, client, terms, Gate::Native)
            .await
    }

    async fn begin_login_through(
        &self,
        email: &str,
        password: String,
        client: Client<'_>,
        terms: SessionTerms,
        gate: Gate,
    ) -> Result<LoginOutcome, Error> {
        let outcome = self
            .password_login(email, password, client, terms, gate)
            .await;
        self.0.metrics.login(login_outcome(&outcome));
        outcome
    }

    async fn password_login(
        &self,
        email: &str,
        password: String,
        client: Client<'_>,
        terms: SessionTerms,
        gate: Gate,
    ) -> Result<LoginOutcome, Error> {
        let (user, passed) = Accounts(self.0)
            .check_password(email, password, client)
            .await?;
        // Told only after the right password, like an inactive account.
        if self.0.config.mail.require_verified_email && user.email_verified_at.is_none() {
            passed.held(self.0).await;
            login_failed(self.0, Some(user.id), "email_not_verified", client).await;
            return Err(Error::EmailNotVerified);
        }
        match after_first_factor(self.0, user, FirstFactor::Password(passed), client, gate).await? {
            Next::Open(user) => Ok(LoginOutcome::Session(
                self.open(user, client.user_agent, terms).await?,
            )),
            Next::SecondStep(challenge) => Ok(LoginOutcome::SecondFactor(challenge)),
        }
    }

    /// Opens a session for a user whose credentials were checked, remembering the profile
    /// that opens it and its lifetime. The user's sessions that have expired by now are
    /// purged in the same transaction (they are dead weight).
    pub(super) async fn open(
        &self,
        user: UserRecord,
        user_agent: Option<&str>,
        terms: SessionTerms,
    ) -> Result<SessionGrant, Error> {
        keys::reload(self.0, false).await;
        let now = self.0.now();
        let session_id = Uuid::new_v4();
        let bounds = SessionBounds {
            created_at: now,
            access_ttl: Some(secs(terms.access_ttl)),
        };
        let minted = mint(self.0, &user, session_id, bounds, now, terms.access_ttl)?;
        let new = NewSession {
            session: SessionRecord {
                id: session_id,
                user_id: user.id,
                access_jti: minted.jti.clone(),
                user_agent: user_agent.map(truncate_user_agent),
                created_at: now,
                last_used_at: now,
                expires_at: minted.refresh_expires_at,
                profile: terms.profile.to_owned(),
                bounds,
            },
            first_refresh: minted.refresh(0),
            purge_expired_before: Some(now),
        };
        self.0
            .store(move |store| store.create_session(&new))
            .await?;
        Ok(SessionGrant {
            user,
            tokens: minted.pair(0),
        })
    }

    /// Authenticates an `Authorization` header value: an access token of a live session, or a
    /// personal access token, of an active user. Refresh tokens are refused.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Error> {
        let token = bearer_token(authorization)?;
        if token.starts_with(PERSONAL_PREFIX) {
            return self.authenticate_personal_token(token).await;
        }
        if token.starts_with(REFRESH_PREFIX) {
            return Err(Error::InvalidToken);
        }
        self.authenticate_access_token(token).await
    }

    /// Authenticates the value of an access cookie (the cookie transport): a session's access
    /// token, as a bearer one would be. Nothing else can be in a cookie this server set, so a
    /// personal or refresh token there is refused.
    pub async fn authenticate_cookie(&self, token: &str) -> Result<Principal, Error> {
        if !is_token_text(token)
            || token.starts_with(PERSONAL_PREFIX)
            || token.starts_with(REFRESH_PREFIX)
        {
            return Err(Error::InvalidToken);
        }
        self.authenticate_access_token(token).await
    }

    /// Authenticates a JWT access token of a live session of an active user.
    async fn authenticate_access_token(&self, token: &str) -> Result<Principal, Error> {
        // Keys rotated or retired elsewhere apply within the reload interval, also on an
        // instance that only verifies (a no-op unless the last load is over a minute old).
        keys::reload(self.0, false).await;
        let claims = match self.0.signer.verify(token) {
            Ok(claims) => claims,
            Err(VerifyError::UnknownKid) => {
                // Perhaps another instance rotated the keys: look once more, then refuse.
                keys::reload(self.0, true).await;
                self.0
                    .signer
                    .verify(token)
                    .map_err(|_| Error::InvalidToken)?
            }
            Err(VerifyError::Invalid) => return Err(Error::InvalidToken),
        };
        let session_id = claims.session_id;
        let key = CacheKey::Session(session_id);
        let cached = self.0.cache.get(&key);
        self.0.metrics.cache_lookup(cached.is_some());
        if let Some((principal, _)) = cached {
            let current = matches!(
                &principal.credential,
                Credential::Session { jti, .. } if secrets_equal(jti, &claims.jti)
            );
            if current && principal.user.id == claims.user_id {
                return Ok(principal);
            }
            // A rotated session, or a stale or foreign token: ask the database.
        }
        let generation = self.0.cache.generation();
        let seen = seen_at(self.0.now());
        let (session, user) = self
            .0
            .store(move |store| store.session_with_user(session_id, seen))
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
                bounds: session.bounds,
            },
        };
        self.0.cache.put(key, principal.clone(), None, generation);
        Ok(principal)
    }

    async fn authenticate_personal_token(&self, token: &str) -> Result<Principal, Error> {
        let now = self.0.now();
        let hash = hash_token(token);
        let key = CacheKey::PersonalToken(hash);
        let cached = self.0.cache.get(&key);
        self.0.metrics.cache_lookup(cached.is_some());
        if let Some((principal, expires_at)) = cached {
            if expires_at.is_some_and(|expiry| expiry <= now) {
                return Err(Error::InvalidToken);
            }
            return Ok(principal);
        }
        let generation = self.0.cache.generation();
        let seen = seen_at(now);
        let (record, user) = self
            .0
            .store(move |store| store.personal_token_with_user(&hash, seen))
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
        self.0
            .cache
            .put(key, principal.clone(), record.expires_at, generation);
        Ok(principal)
    }

    /// Logs out: revokes the session, or the personal token, that authenticated the request
    /// (recorded as `session.revoked` or `token.revoked`, detail `{"via": "logout"}`).
    pub async fn logout(&self, principal: &Principal, client: Client<'_>) -> Result<(), Error> {
        let user_id = principal.user.id;
        let kind = match principal.credential {
            Credential::Session { session_id, .. } => {
                self.0
                    .revoking(Stale::Session(session_id), move |store| {
                        store.delete_session(user_id, session_id)
                    })
                    .await?;
                AuditKind::SessionRevoked
            }
            Credential::PersonalToken { token_id } => {
                self.0
                    .revoking(Stale::User(user_id), move |store| {
                        store.delete_personal_token(user_id, token_id)
                    })
                    .await?;
                AuditKind::TokenRevoked
            }
        };
        Event::new(kind)
            .user(user_id)
            .from(client)
            .detail(serde_json::json!({ "via": "logout" }))
            .record(self.0)
            .await;
        Ok(())
    }

    /// The caller's live sessions, oldest first.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<SessionRecord>, Error> {
        let (user_id, now) = (principal.user.id, self.0.now());
        self.0
            .store(move |store| store.list_sessions(user_id, now))
            .await
    }

    /// Revokes one of the caller's sessions (recorded as `session.revoked`). `NotFound` for
    /// anything else, including other users' sessions.
    pub async fn revoke(
        &self,
        principal: &Principal,
        session_id: Uuid,
        client: Client<'_>,
    ) -> Result<(), Error> {
        let user_id = principal.user.id;
        let deleted = self
            .0
            .revoking(Stale::Session(session_id), move |store| {
                store.delete_session(user_id, session_id)
            })
            .await?;
        if !deleted {
            return Err(Error::NotFound);
        }
        Event::new(AuditKind::SessionRevoked)
            .user(user_id)
            .from(client)
            .record(self.0)
            .await;
        Ok(())
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
    if !is_token_text(token) {
        return Err(Error::InvalidToken);
    }
    Ok(token)
}

/// Whether `text` can be a token this server issued: every one is printable ASCII, and none
/// is empty or longer than [`MAX_TOKEN_LEN`].
fn is_token_text(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_TOKEN_LEN && text.bytes().all(|b| b.is_ascii_graphic())
}

/// A credential used at `now`, its `last_used_at` refreshed when older than the interval.
fn seen_at(now: i64) -> Use {
    Use {
        now,
        touch_before: now.saturating_sub(TOUCH_INTERVAL_SECS),
    }
}

fn truncate_user_agent(user_agent: &str) -> String {
    user_agent.chars().take(MAX_USER_AGENT_LEN).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
