//! Passkeys (issue 15, rule 3): registration, listing, removal, passwordless sign-in, and
//! their part in a login's second step and in step-up. The WebAuthn ceremonies themselves are
//! [`crate::passkey`]'s (webauthn-rs); this service keeps each ceremony's state in the store
//! as a challenge (single use, five minutes), so any instance can finish what another began.
//!
//! A passkey is a second factor of its account (it alone proves possession and, with user
//! verification, the user): once a user has one, a password login asks for it, and a
//! passkey sign-in needs nothing more.

use serde_json::Value;
use uuid::Uuid;

use super::accounts::login_failed;
use super::audit::Event;
use super::mfa::{SecondFactor, step_up};
use super::{
    Client, Context, EmailFlows, SessionGrant, SessionTerms, Sessions, Throttle, ThrottledAction,
};
use crate::error::Error;
use crate::passkey::{PasskeyError, RelyingParty};
use crate::principal::Principal;
use crate::store::{AuditKind, ChallengePurpose, ChallengeRecord, PasskeyRecord, StoreError};
use crate::token::{OpaqueToken, hash_token};
use crate::validate::email_key;

/// What a ceremony's challenge token starts with.
pub const CHALLENGE_PREFIX: &str = "authpkc_";
/// Lifetime of a ceremony (seconds).
const CEREMONY_TTL_SECS: i64 = 300;
/// Longest passkey name kept.
const MAX_NAME_CHARS: usize = 100;

/// The passkey service.
#[derive(Clone, Copy)]
pub struct Passkeys<'a>(pub(super) &'a Context);

/// A ceremony begun: the options for the browser and the token naming it (no `Debug` of the
/// token).
pub struct PasskeyCeremony {
    /// Names the ceremony when it is finished; works once, for five minutes.
    pub token: String,
    /// The `publicKey` options for `navigator.credentials.create` / `get`.
    pub options: Value,
}

impl std::fmt::Debug for PasskeyCeremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasskeyCeremony(<redacted>)")
    }
}

fn relying_party(ctx: &Context) -> Result<&RelyingParty, Error> {
    ctx.passkeys.as_ref().ok_or(Error::NotFound)
}

/// A library failure that is ours, not the client's (a state or passkey we stored that does
/// not parse, say): logged, answered as an internal error.
fn internal(err: PasskeyError) -> Error {
    tracing::error!(error = %err, "passkey ceremony failed on the server's side");
    Error::Internal
}

/// Stores a ceremony's state under a fresh token.
async fn remember(
    ctx: &Context,
    purpose: ChallengePurpose,
    user_id: Option<Uuid>,
    (options, state): (Value, String),
) -> Result<PasskeyCeremony, Error> {
    let token = OpaqueToken::generate(CHALLENGE_PREFIX);
    let now = ctx.now();
    let record = ChallengeRecord {
        hash: token.hash,
        purpose,
        user_id,
        state: Some(state),
        failures: 0,
        created_at: now,
        expires_at: now + CEREMONY_TTL_SECS,
    };
    ctx.store(move |store| store.create_challenge(&record))
        .await?;
    Ok(PasskeyCeremony {
        token: token.secret,
        options,
    })
}

/// Uses up the ceremony `token` names: its owner and state. `InvalidChallenge` when it is
/// unknown, used, expired or of another purpose.
async fn take(
    ctx: &Context,
    purpose: ChallengePurpose,
    token: &str,
) -> Result<(Option<Uuid>, String), Error> {
    let token = token.trim();
    if !token.starts_with(CHALLENGE_PREFIX) || token.len() > 256 {
        return Err(Error::InvalidChallenge);
    }
    let hash = hash_token(token);
    let now = ctx.now();
    let challenge = ctx
        .store(move |store| store.take_challenge(&hash, purpose, now))
        .await?
        .ok_or(Error::InvalidChallenge)?;
    let state = challenge.state.ok_or(Error::InvalidChallenge)?;
    Ok((challenge.user_id, state))
}

/// The stored forms of the user's passkeys.
async fn passkey_data(ctx: &Context, user_id: Uuid) -> Result<Vec<PasskeyRecord>, Error> {
    ctx.store(move |store| store.list_passkeys(user_id)).await
}

/// Keeps what a sign-in changed of a passkey (its counter) and when it was used.
async fn touched(
    ctx: &Context,
    passkey: &PasskeyRecord,
    data: Option<String>,
) -> Result<(), Error> {
    let (id, now) = (passkey.id, ctx.now());
    let data = data.unwrap_or_else(|| passkey.data.clone());
    ctx.store(move |store| store.touch_passkey(id, &data, now))
        .await?;
    Ok(())
}

/// Request options for the user's passkeys and the ceremony state to keep, or `None` when
/// passkeys are not configured or the user has none.
pub(super) async fn login_options(
    ctx: &Context,
    user_id: Uuid,
) -> Result<Option<(Value, String)>, Error> {
    let Some(rp) = ctx.passkeys.as_ref() else {
        return Ok(None);
    };
    let passkeys = passkey_data(ctx, user_id).await?;
    if passkeys.is_empty() {
        return Ok(None);
    }
    let data: Vec<String> = passkeys.into_iter().map(|p| p.data).collect();
    rp.start_authentication(&data).map(Some).map_err(internal)
}

/// Whether `credential` is an assertion by one of the user's passkeys answering the
/// ceremony `state`; a passkey that signed has its counter updated.
pub(super) async fn assertion_accepted(
    ctx: &Context,
    user_id: Uuid,
    state: &str,
    credential: &Value,
) -> Result<bool, Error> {
    let Some(rp) = ctx.passkeys.as_ref() else {
        return Ok(false);
    };
    let passkeys = passkey_data(ctx, user_id).await?;
    let data: Vec<String> = passkeys.iter().map(|p| p.data.clone()).collect();
    match rp.finish_authentication(state, credential, &data) {
        Ok(used) => {
            if let Some(passkey) = passkeys
                .iter()
                .find(|p| p.credential_id == used.credential_id)
            {
                touched(ctx, passkey, used.data).await?;
            }
            Ok(true)
        }
        Err(PasskeyError::State) => Err(internal(PasskeyError::State)),
        Err(err) => {
            tracing::info!(error = %err, "passkey assertion refused");
            Ok(false)
        }
    }
}

impl Passkeys<'_> {
    /// Begins registering a passkey for the caller of a session, after the current password
    /// (a wrong one counts as a failed login) and, when the caller already has a second
    /// factor, a step-up: a stolen access token alone cannot add a credential that signs in
    /// without the password, and a personal token cannot add one at all (`Forbidden`). The
    /// options exclude the caller's passkeys, so an authenticator that holds one refuses to
    /// make another.
    pub async fn start_registration(
        &self,
        principal: &Principal,
        current_password: String,
        proof: &SecondFactor,
        client: Client<'_>,
    ) -> Result<PasskeyCeremony, Error> {
        let rp = relying_party(self.0)?;
        if principal.session_id().is_none() {
            return Err(Error::Forbidden);
        }
        Throttle(self.0)
            .hit(ThrottledAction::Passkey, client)
            .await?;
        super::Accounts(self.0)
            .verify_current_password(principal, current_password, client)
            .await?;
        step_up(self.0, principal, proof, client).await?;
        let user = &principal.user;
        let exclude: Vec<String> = passkey_data(self.0, user.id)
            .await?
            .into_iter()
            .map(|p| p.credential_id)
            .collect();
        let display = user.full_name.as_deref().unwrap_or(&user.email);
        let ceremony = rp
            .start_registration(user.id, &user.email, display, &exclude)
            .map_err(internal)?;
        remember(
            self.0,
            ChallengePurpose::PasskeyRegistration,
            Some(user.id),
            ceremony,
        )
        .await
    }

    /// Finishes a registration the caller began: the credential is checked against the
    /// ceremony and stored under `name` (default "Passkey"). `InvalidChallenge` for a token
    /// unknown, used, expired or another user's; `PasskeyRejected` for a credential the
    /// ceremony does not accept or one already registered.
    pub async fn finish_registration(
        &self,
        principal: &Principal,
        token: &str,
        credential: &Value,
        name: Option<String>,
        client: Client<'_>,
    ) -> Result<PasskeyRecord, Error> {
        let rp = relying_party(self.0)?;
        let (owner, state) = take(self.0, ChallengePurpose::PasskeyRegistration, token).await?;
        let user = &principal.user;
        if owner != Some(user.id) {
            return Err(Error::InvalidChallenge);
        }
        let registered = match rp.finish_registration(&state, credential) {
            Ok(registered) => registered,
            Err(PasskeyError::State) => return Err(internal(PasskeyError::State)),
            Err(err) => {
                tracing::info!(error = %err, "passkey registration refused");
                return Err(Error::PasskeyRejected);
            }
        };
        let name: String = name
            .map(|n| n.trim().chars().take(MAX_NAME_CHARS).collect::<String>())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "Passkey".to_owned());
        let record = PasskeyRecord {
            id: Uuid::new_v4(),
            user_id: user.id,
            credential_id: registered.credential_id,
            name,
            data: registered.data,
            created_at: self.0.now(),
            last_used_at: None,
        };
        let stored = record.clone();
        match self
            .0
            .store_raw(move |store| store.add_passkey(&stored))
            .await?
        {
            Ok(()) => {}
            Err(StoreError::Conflict) => return Err(Error::PasskeyRejected),
            Err(other) => return Err(other.into()),
        }
        changed(self.0, principal, &record, true, client).await;
        Ok(record)
    }

    /// The caller's passkeys, oldest first (`NotFound` unless passkeys are configured).
    pub async fn list(&self, principal: &Principal) -> Result<Vec<PasskeyRecord>, Error> {
        relying_party(self.0)?;
        passkey_data(self.0, principal.user.id).await
    }

    /// Removes one of the caller's passkeys after a step-up (the caller has a second factor:
    /// at least this passkey). `NotFound` for a passkey that is not the caller's.
    pub async fn delete(
        &self,
        principal: &Principal,
        id: Uuid,
        proof: &SecondFactor,
        client: Client<'_>,
    ) -> Result<(), Error> {
        relying_party(self.0)?;
        let user_id = principal.user.id;
        let record = passkey_data(self.0, user_id)
            .await?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or(Error::NotFound)?;
        step_up(self.0, principal, proof, client).await?;
        if !self
            .0
            .store(move |store| store.delete_passkey(user_id, id))
            .await?
        {
            return Err(Error::NotFound);
        }
        changed(self.0, principal, &record, false, client).await;
        Ok(())
    }

    /// Begins a passkey sign-in: for `email`'s passkeys when it names an account that has
    /// some, else for any passkey the authenticator holds (discoverable credentials).
    /// Limited per client IP.
    pub async fn start_login(
        &self,
        email: Option<&str>,
        client: Client<'_>,
    ) -> Result<PasskeyCeremony, Error> {
        let rp = relying_party(self.0)?;
        Throttle(self.0)
            .hit(ThrottledAction::Passkey, client)
            .await?;
        if let Some(email) = email {
            let key = email_key(email);
            let user = self
                .0
                .store(move |store| store.find_user_by_email(&key))
                .await?
                .filter(|u| u.is_active);
            if let Some(user) = user
                && let Some(ceremony) = login_options(self.0, user.id).await?
            {
                return remember(
                    self.0,
                    ChallengePurpose::PasskeyLogin,
                    Some(user.id),
                    ceremony,
                )
                .await;
            }
        }
        let ceremony = rp.start_discoverable().map_err(internal)?;
        remember(self.0, ChallengePurpose::PasskeyLogin, None, ceremony).await
    }

    /// Finishes a passkey sign-in: the assertion must answer the ceremony and come from a
    /// registered passkey (of the account the ceremony was for, if any). Opens the session as
    /// a login would; the passkey is both factors. `InvalidChallenge` for a token unknown,
    /// used or expired; `InvalidCredentials` for an assertion that is not accepted.
    pub async fn finish_login(
        &self,
        token: &str,
        credential: &Value,
        client: Client<'_>,
        terms: SessionTerms,
    ) -> Result<SessionGrant, Error> {
        let rp = relying_party(self.0)?;
        let (for_user, state) = take(self.0, ChallengePurpose::PasskeyLogin, token).await?;
        let refused = |reason: &'static str, target: Option<Uuid>| async move {
            login_failed(self.0, target, reason, client).await;
            self.0.metrics.login("invalid_credentials");
            Error::InvalidCredentials
        };
        let Ok(asserted) = RelyingParty::asserted_credential(credential) else {
            return Err(refused("passkey_malformed", None).await);
        };
        let id = asserted.credential_id.clone();
        let Some(passkey) = self.0.store(move |store| store.find_passkey(&id)).await? else {
            return Err(refused("passkey_unknown", None).await);
        };
        let owner = passkey.user_id;
        let verified = match for_user {
            Some(user_id) if user_id != owner => Err(PasskeyError::Malformed),
            Some(_) => {
                rp.finish_authentication(&state, credential, std::slice::from_ref(&passkey.data))
            }
            None if asserted.user_id() != Some(owner) => Err(PasskeyError::Malformed),
            None => rp.finish_discoverable(&state, credential, &passkey.data),
        };
        let used = match verified {
            Ok(used) => used,
            Err(PasskeyError::State) => return Err(internal(PasskeyError::State)),
            Err(err) => {
                tracing::info!(error = %err, "passkey sign-in refused");
                return Err(refused("passkey_rejected", Some(owner)).await);
            }
        };
        touched(self.0, &passkey, used.data).await?;
        let user = self
            .0
            .store(move |store| store.find_user(owner))
            .await?
            .ok_or(Error::InvalidCredentials)?;
        if !user.is_active {
            // Told only after a passkey that verified, like an inactive account's password.
            refused("account_inactive", Some(owner)).await;
            return Err(Error::AccountInactive);
        }
        if self.0.config.mail.require_verified_email && user.email_verified_at.is_none() {
            return Err(Error::EmailNotVerified);
        }
        Event::new(AuditKind::LoginSucceeded)
            .user(owner)
            .from(client)
            .detail(serde_json::json!({ "method": "passkey" }))
            .record(self.0)
            .await;
        self.0.metrics.login("success");
        Sessions(self.0).open(user, client.user_agent, terms).await
    }

    /// Begins a step-up by passkey for the caller: the options for their passkeys, and the
    /// token that a sensitive operation then carries with the assertion (`step_up_token`).
    /// `NotFound` when the caller has no passkey.
    pub async fn start_step_up(
        &self,
        principal: &Principal,
        client: Client<'_>,
    ) -> Result<PasskeyCeremony, Error> {
        relying_party(self.0)?;
        Throttle(self.0)
            .hit(ThrottledAction::Passkey, client)
            .await?;
        let user_id = principal.user.id;
        let ceremony = login_options(self.0, user_id)
            .await?
            .ok_or(Error::NotFound)?;
        remember(self.0, ChallengePurpose::StepUp, Some(user_id), ceremony).await
    }
}

/// Records that a passkey was added or removed and mails the notice (a notice that cannot be
/// queued is logged: the change is made).
async fn changed(
    ctx: &Context,
    principal: &Principal,
    passkey: &PasskeyRecord,
    added: bool,
    client: Client<'_>,
) {
    let kind = if added {
        AuditKind::MfaFactorAdded
    } else {
        AuditKind::MfaFactorRemoved
    };
    Event::new(kind)
        .user(principal.user.id)
        .from(client)
        .detail(serde_json::json!({ "factor": "passkey", "passkey_id": passkey.id }))
        .record(ctx)
        .await;
    let what = format!("the passkey \"{}\"", passkey.name);
    if let Err(err) = EmailFlows(ctx)
        .notify_factor(&principal.user, added, &what)
        .await
    {
        tracing::warn!(error = %err, "second-factor notice not queued");
    }
}
