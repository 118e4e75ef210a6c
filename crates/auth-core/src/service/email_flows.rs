//! The account lifecycle over email (issue 13): verification, forgotten passwords, magic
//! links, email change and the security notices. Every link carries a one-time token: 256
//! random bits, only its SHA-256 stored, single use, short-lived, and for reset and magic
//! link only the newest per user works. What a mail says is the core's templates; delivery
//! is the mail queue's (`mail_sender`), so no request waits on a mail server.
//!
//! Requests that name an address (forgot password, magic link) answer the same, in about the
//! same time, whether or not it belongs to an account: the work is padded to
//! [`ANSWER_FLOOR`]. Mails to one address are limited per kind; past the limit the request
//! still answers as usual and nothing is sent. Mail-sending requests are also limited per
//! client IP (429).

use std::time::Duration;

use super::accounts::check_password_policy;
use super::audit::Event;
use super::mfa::{
    FirstFactor, Gate, LoginOutcome, Next, SecondFactor, after_first_factor, step_up,
};
use super::{Accounts, Client, Context, SessionTerms, Sessions, Throttle, ThrottledAction};
use crate::cache::Stale;
use crate::clock::secs;
use crate::error::{Error, Input};
use crate::mail::{MailKind, Placeholders};
use crate::principal::Principal;
use crate::store::{
    AuditKind, NewEmail, NewOneTimeToken, OneTimeTokenRecord, Revocation, StoreError, TokenPurpose,
    UserPatch, UserRecord,
};
use crate::token::{OpaqueToken, hash_token};
use crate::validate::{check_email, email_key};

/// Shortest time an answer naming an address takes, so a known address cannot be told from
/// an unknown one by timing (the known one queues a mail).
pub const ANSWER_FLOOR: Duration = Duration::from_millis(250);

/// The email flows.
#[derive(Clone, Copy)]
pub struct EmailFlows<'a>(pub(super) &'a Context);

impl EmailFlows<'_> {
    /// Sends `user` a verification link (registration, resend); limited per address.
    pub async fn send_verification(&self, user: &UserRecord) -> Result<(), Error> {
        self.send_link(user, TokenPurpose::VerifyEmail, &user.email)
            .await
    }

    /// `POST /verify-email/resend`: a new verification link for the caller (202 even when
    /// already verified: then nothing is sent).
    pub async fn resend_verification(
        &self,
        principal: &Principal,
        client: Client<'_>,
    ) -> Result<(), Error> {
        Throttle(self.0).hit(ThrottledAction::Mail, client).await?;
        if principal.user.email_verified_at.is_some() {
            return Ok(());
        }
        self.send_verification(&principal.user).await
    }

    /// `POST /verify-email`: marks the address of the token's account verified.
    pub async fn verify_email(&self, token: &str) -> Result<(), Error> {
        let (user, _) = self.consume(token, TokenPurpose::VerifyEmail).await?;
        self.mark_verified(&user).await.map(|_| ())
    }

    /// `POST /password/forgot`: a reset link to an active account of that address; the same
    /// answer, in about the same time, for any other address.
    pub async fn forgot_password(&self, email: &str, client: Client<'_>) -> Result<(), Error> {
        self.padded(async {
            Throttle(self.0).hit(ThrottledAction::Mail, client).await?;
            if let Some(user) = self.active_user(email).await? {
                self.send_link(&user, TokenPurpose::PasswordReset, &user.email)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// `POST /password/reset`: sets a new password (the rules apply, checked before the token
    /// is used up), revokes every session and personal token of the user, clears the
    /// address's failed logins, marks the address verified (the mail reached its owner), and
    /// tells the user by mail.
    ///
    /// Recorded as `password.reset` of the account, from `client`.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: String,
        client: Client<'_>,
    ) -> Result<(), Error> {
        check_password_policy(self.0, Input::NewPassword, &new_password)?;
        let hash = self.0.hasher.hash(new_password).await?;
        let (user, _) = self.consume(token, TokenPurpose::PasswordReset).await?;
        let now = self.0.now();
        let patch = UserPatch {
            password_hash: Some(hash),
            email_verified_at: user.email_verified_at.is_none().then_some(Some(now)),
            ..UserPatch::default()
        };
        let user_id = user.id;
        let updated = self
            .0
            .revoking(Stale::User(user_id), move |store| {
                store.update_user(user_id, &patch, Revocation::EVERYTHING, now, None)
            })
            .await?
            .ok_or(Error::InvalidOneTimeToken)?;
        let key = email_key(&updated.email);
        self.0
            .store(move |store| {
                store.delete_one_time_tokens(user_id, TokenPurpose::MagicLink)?;
                store.clear_login_failures(&key)
            })
            .await?;
        Event::new(AuditKind::PasswordReset)
            .target(user_id)
            .from(client)
            .record(self.0)
            .await;
        // The reset revoked every session and personal token of the account.
        Event::new(AuditKind::SessionsRevokedAll)
            .target(user_id)
            .from(client)
            .detail(serde_json::json!({ "via": "password.reset" }))
            .record(self.0)
            .await;
        self.notify(&updated, MailKind::PasswordChanged, Placeholders::default())
            .await
    }

    /// `POST /magic-link`: a sign-in link to an active account of that address; the same
    /// answer, in about the same time, for any other.
    pub async fn request_magic_link(&self, email: &str, client: Client<'_>) -> Result<(), Error> {
        self.padded(async {
            Throttle(self.0).hit(ThrottledAction::Mail, client).await?;
            if let Some(user) = self.active_user(email).await? {
                self.send_link(&user, TokenPurpose::MagicLink, &user.email)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    /// `POST /magic-link/verify`: opens a session as a login would (the address counts as
    /// verified: the link reached it).
    pub async fn magic_link_login(
        &self,
        token: &str,
        client: Client<'_>,
        terms: SessionTerms,
    ) -> Result<LoginOutcome, Error> {
        let (user, _) = self.consume(token, TokenPurpose::MagicLink).await?;
        let user = self.mark_verified(&user).await?;
        // A link is a first factor: a user with a second factor still needs it.
        match after_first_factor(self.0, user, FirstFactor::MagicLink, client, Gate::Native).await?
        {
            Next::Open(user) => Ok(LoginOutcome::Session(
                Sessions(self.0)
                    .open(user, client.user_agent, terms)
                    .await?,
            )),
            Next::SecondStep(challenge) => Ok(LoginOutcome::SecondFactor(challenge)),
        }
    }

    /// `POST /email`: after the current password (a wrong one counts as a failed login),
    /// sends a confirmation link to the new address. A taken address gets no mail, and the
    /// same answer.
    pub async fn request_email_change(
        &self,
        principal: &Principal,
        new_email: &str,
        current_password: String,
        proof: &SecondFactor,
        client: Client<'_>,
    ) -> Result<(), Error> {
        let new_email = new_email.trim().to_owned();
        check_email(&new_email).map_err(|rule| Error::Invalid(Input::Email, rule))?;
        Accounts(self.0)
            .verify_current_password(principal, current_password, client)
            .await?;
        step_up(self.0, principal, proof, client).await?;
        Throttle(self.0).hit(ThrottledAction::Mail, client).await?;
        let key = email_key(&new_email);
        let taken = self
            .0
            .store(move |store| store.find_user_by_email(&key))
            .await?
            .is_some();
        if taken {
            return Ok(());
        }
        self.send_link(&principal.user, TokenPurpose::EmailChange, &new_email)
            .await
    }

    /// `POST /email/confirm`: the account's address becomes the confirmed one (verified), and
    /// the old address is told.
    pub async fn confirm_email_change(&self, token: &str) -> Result<UserRecord, Error> {
        // The token names the new address, so only the account's own checks apply.
        let (old, record) = self.take_token(token, TokenPurpose::EmailChange).await?;
        let (user_id, now) = (old.id, self.0.now());
        let patch = UserPatch {
            email: Some(NewEmail {
                email_key: email_key(&record.email),
                email: record.email.clone(),
            }),
            email_verified_at: Some(Some(now)),
            ..UserPatch::default()
        };
        // The address may have been taken since the link was sent: `EmailTaken`.
        let updated = self
            .0
            .revoking(Stale::User(user_id), move |store| {
                match store.update_user(user_id, &patch, Revocation::NOTHING, now, None) {
                    Err(StoreError::Conflict) => Ok(Err(Error::EmailTaken)),
                    other => other.map(|user| user.ok_or(Error::InvalidOneTimeToken)),
                }
            })
            .await??;
        let values = Placeholders {
            new_email: &updated.email,
            ..Placeholders::default()
        };
        self.notify(&old, MailKind::EmailChanged, values).await?;
        Ok(updated)
    }

    /// The security notice after a password change.
    pub async fn notify_password_changed(&self, user: &UserRecord) -> Result<(), Error> {
        self.notify(user, MailKind::PasswordChanged, Placeholders::default())
            .await
    }

    /// The security notice after a second factor was added (`added`) or removed; `factor`
    /// names it ("an authenticator app (TOTP)", "the passkey \"Laptop\"").
    pub async fn notify_factor(
        &self,
        user: &UserRecord,
        added: bool,
        factor: &str,
    ) -> Result<(), Error> {
        let kind = if added {
            MailKind::FactorAdded
        } else {
            MailKind::FactorRemoved
        };
        let values = Placeholders {
            factor,
            ..Placeholders::default()
        };
        self.notify(user, kind, values).await
    }

    /// Uses up a token of `purpose` sent to the account's own address: its active user, or
    /// `InvalidOneTimeToken` (see [`EmailFlows::take_token`], or for an address the account
    /// no longer has).
    async fn consume(
        &self,
        token: &str,
        purpose: TokenPurpose,
    ) -> Result<(UserRecord, String), Error> {
        let (user, record) = self.take_token(token, purpose).await?;
        if email_key(&user.email) != email_key(&record.email) {
            return Err(Error::InvalidOneTimeToken);
        }
        Ok((user, record.email))
    }

    /// Uses up a token of `purpose`: its active user and the token's record, or
    /// `InvalidOneTimeToken` (unknown, used, expired, of another purpose, or of an account
    /// that is gone or inactive).
    async fn take_token(
        &self,
        token: &str,
        purpose: TokenPurpose,
    ) -> Result<(UserRecord, OneTimeTokenRecord), Error> {
        let hash = hash_token(token.trim());
        let now = self.0.now();
        let record = self
            .0
            .store(move |store| store.consume_one_time_token(&hash, purpose, now))
            .await?
            .ok_or(Error::InvalidOneTimeToken)?;
        let user_id = record.user_id;
        let user = self
            .0
            .store(move |store| store.find_user(user_id))
            .await?
            .filter(|user| user.is_active)
            .ok_or(Error::InvalidOneTimeToken)?;
        Ok((user, record))
    }

    /// Sets `email_verified_at` when it is not set; the user as it is afterwards.
    async fn mark_verified(&self, user: &UserRecord) -> Result<UserRecord, Error> {
        if user.email_verified_at.is_some() {
            return Ok(user.clone());
        }
        let now = self.0.now();
        let patch = UserPatch {
            email_verified_at: Some(Some(now)),
            ..UserPatch::default()
        };
        let user_id = user.id;
        self.0
            .revoking(Stale::User(user_id), move |store| {
                store.update_user(user_id, &patch, Revocation::NOTHING, now, None)
            })
            .await?
            .ok_or(Error::InvalidOneTimeToken)
    }

    /// The active account of an address, if any.
    async fn active_user(&self, email: &str) -> Result<Option<UserRecord>, Error> {
        let key = email_key(email);
        Ok(self
            .0
            .store(move |store| store.find_user_by_email(&key))
            .await?
            .filter(|user| user.is_active))
    }

    /// Makes a token of `purpose` for `user`, sent to `to`, and queues its mail; nothing when
    /// `to` had its share of this kind of mail.
    async fn send_link(
        &self,
        user: &UserRecord,
        purpose: TokenPurpose,
        to: &str,
    ) -> Result<(), Error> {
        let settings = &self.0.config.mail;
        let (kind, ttl, url) = match purpose {
            TokenPurpose::VerifyEmail => (
                MailKind::VerifyEmail,
                settings.verify_email_ttl,
                &settings.verify_email_url,
            ),
            TokenPurpose::PasswordReset => (
                MailKind::PasswordReset,
                settings.reset_password_ttl,
                &settings.reset_password_url,
            ),
            TokenPurpose::MagicLink => (
                MailKind::MagicLink,
                settings.magic_link_ttl,
                &settings.magic_link_url,
            ),
            TokenPurpose::EmailChange => (
                MailKind::EmailChange,
                settings.verify_email_ttl,
                &settings.verify_email_url,
            ),
        };
        if !self.address_allows(kind, to).await? {
            return Ok(());
        }
        let token = OpaqueToken::generate("");
        let now = self.0.now();
        let new = NewOneTimeToken {
            hash: token.hash,
            user_id: user.id,
            purpose,
            email: to.to_owned(),
            created_at: now,
            expires_at: now + secs(ttl),
            replace_others: matches!(
                purpose,
                TokenPurpose::PasswordReset | TokenPurpose::MagicLink
            ),
        };
        self.0
            .store(move |store| store.create_one_time_token(&new))
            .await?;
        let link = link(url.as_deref(), &token.secret);
        let new_email = if purpose == TokenPurpose::EmailChange {
            to
        } else {
            ""
        };
        let mail = settings.templates.render(
            kind,
            to,
            Placeholders {
                link: &link,
                email: &user.email,
                new_email,
                expires_in: ttl,
                ..Placeholders::default()
            },
        );
        self.0.queue_mail(&mail).await
    }

    /// Queues a notice of `kind` to the user's address, `values` filling the template beside
    /// the address; limited per address like the links.
    async fn notify(
        &self,
        user: &UserRecord,
        kind: MailKind,
        values: Placeholders<'_>,
    ) -> Result<(), Error> {
        if !self.address_allows(kind, &user.email).await? {
            return Ok(());
        }
        let mail = self.0.config.mail.templates.render(
            kind,
            &user.email,
            Placeholders {
                email: &user.email,
                ..values
            },
        );
        self.0.queue_mail(&mail).await
    }

    /// Counts one mail of `kind` to `to`; false once the address had its share.
    async fn address_allows(&self, kind: MailKind, to: &str) -> Result<bool, Error> {
        let limit = self.0.config.mail.per_address;
        if !limit.enabled() {
            return Ok(true);
        }
        let now = self.0.now();
        let since = now - secs(limit.window);
        // One bucket per kind, named after its template.
        let bucket = format!("mail:{}", kind.name());
        let key = email_key(to);
        let (count, _) = self
            .0
            .store(move |store| store.hit_rate_limit(&bucket, &key, since, limit.max, now))
            .await?;
        if count >= limit.max {
            tracing::info!(
                kind = kind.name(),
                "mail limit of the address reached; not sent"
            );
        }
        Ok(count < limit.max)
    }

    /// Runs `work`, answering no sooner than [`ANSWER_FLOOR`] after the start.
    async fn padded<T>(&self, work: impl std::future::Future<Output = T>) -> T {
        let until = tokio::time::Instant::now() + ANSWER_FLOOR;
        let out = work.await;
        tokio::time::sleep_until(until).await;
        out
    }
}

/// `url` with `token=<token>` added to its query (before any fragment); the bare token
/// without a URL.
pub fn link(url: Option<&str>, token: &str) -> String {
    let Some(url) = url else {
        return token.to_owned();
    };
    let (base, fragment) = match url.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (url, None),
    };
    let separator = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    let mut out = format!("{base}{separator}token={token}");
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_add_the_token_to_the_query() {
        assert_eq!(link(None, "t"), "t");
        assert_eq!(link(Some("https://a/r"), "t"), "https://a/r?token=t");
        assert_eq!(
            link(Some("https://a/r?x=1"), "t"),
            "https://a/r?x=1&token=t"
        );
        assert_eq!(link(Some("https://a/r?"), "t"), "https://a/r?token=t");
        assert_eq!(
            link(Some("https://a/#/reset"), "t"),
            "https://a/?token=t#/reset"
        );
    }
}
