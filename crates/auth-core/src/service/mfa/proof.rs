//! Checking a second factor a request presents: a TOTP code (each step once), a recovery code
//! (each once), or a passkey assertion; and the step-up of sensitive operations.

use serde_json::Value;

use super::super::audit::Event;
use super::super::{Client, Context, Throttle, passkeys};
use crate::error::{Error, Rule};
use crate::principal::Principal;
use crate::store::{AuditKind, ChallengePurpose, UserRecord};
use crate::token::hash_token;
use crate::token::totp::recovery_code_hash;
use crate::validate::email_key;

/// A second factor a request presents (no `Debug` of the values): a current TOTP code, a
/// recovery code, or a passkey assertion (`passkey`, the JSON of the browser's credential)
/// answering a challenge: in a login's second step the `mfa_token`'s, elsewhere the one
/// `step_up_token` names.
#[derive(Clone, Default)]
pub struct SecondFactor {
    /// A six-digit TOTP code.
    pub code: Option<String>,
    /// A recovery code.
    pub recovery_code: Option<String>,
    /// The token of a step-up challenge (`POST /passkeys/step-up/start`).
    pub step_up_token: Option<String>,
    /// A passkey assertion.
    pub passkey: Option<Value>,
}

impl std::fmt::Debug for SecondFactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactor")
            .field("code", &self.code.is_some())
            .field("recovery_code", &self.recovery_code.is_some())
            .field("passkey", &self.passkey.is_some())
            .finish_non_exhaustive()
    }
}

impl SecondFactor {
    /// Whether nothing is presented.
    pub fn is_empty(&self) -> bool {
        self.code.is_none() && self.recovery_code.is_none() && self.passkey.is_none()
    }
}

/// What checking a presented factor found.
pub(super) enum Checked {
    /// Accepted, by this method (`totp`, `recovery_code`, `passkey`).
    Accepted(&'static str),
    /// Wrong, used, or not one of the user's: counts as a failed login.
    Refused,
}

/// Checks `factor` for `user`. A passkey answers the login challenge's ceremony
/// (`login_state`) when there is one, else the step-up challenge its token names. An
/// accepted code or recovery code is used up. `Validation` when nothing is presented.
pub(super) async fn check(
    ctx: &Context,
    user: &UserRecord,
    factor: &SecondFactor,
    login_state: Option<String>,
) -> Result<Checked, Error> {
    let user_id = user.id;
    if let Some(code) = factor.code.clone() {
        let Some(totp) = ctx.store(move |store| store.totp(user_id)).await? else {
            return Ok(Checked::Refused);
        };
        if totp.confirmed_at.is_none() {
            return Ok(Checked::Refused);
        }
        let Some(secret) = ctx.totp_key.open(user_id, &totp.secret_sealed) else {
            tracing::warn!(user = %user_id, "a TOTP secret does not open: was the signing secret changed?");
            return Ok(Checked::Refused);
        };
        let Some(step) = secret.matching_step(&code, ctx.now()) else {
            return Ok(Checked::Refused);
        };
        let fresh = ctx
            .store(move |store| store.use_totp_step(user_id, step))
            .await?;
        return Ok(if fresh {
            Checked::Accepted("totp")
        } else {
            Checked::Refused
        });
    }
    if let Some(typed) = &factor.recovery_code {
        let Some(hash) = recovery_code_hash(typed) else {
            return Ok(Checked::Refused);
        };
        let used = ctx
            .store(move |store| store.use_recovery_code(user_id, &hash))
            .await?;
        if !used {
            return Ok(Checked::Refused);
        }
        Event::new(AuditKind::MfaRecoveryCodeUsed)
            .user(user_id)
            .record(ctx)
            .await;
        return Ok(Checked::Accepted("recovery_code"));
    }
    let Some(credential) = &factor.passkey else {
        return Err(Error::field("code", Rule::Required));
    };
    let state = match login_state {
        Some(state) => state,
        None => step_up_state(ctx, user_id, factor.step_up_token.as_deref()).await?,
    };
    Ok(
        if passkeys::assertion_accepted(ctx, user_id, &state, credential).await? {
            Checked::Accepted("passkey")
        } else {
            Checked::Refused
        },
    )
}

/// The ceremony state of the caller's step-up challenge, used up. `InvalidChallenge` when
/// the token is missing, unknown, used, expired, or another user's.
async fn step_up_state(
    ctx: &Context,
    user_id: uuid::Uuid,
    token: Option<&str>,
) -> Result<String, Error> {
    let token = token.ok_or(Error::field("step_up_token", Rule::Required))?;
    let hash = hash_token(token.trim());
    let now = ctx.now();
    let challenge = ctx
        .store(move |store| store.take_challenge(&hash, ChallengePurpose::StepUp, now))
        .await?
        .ok_or(Error::InvalidChallenge)?;
    match (challenge.user_id, challenge.state) {
        (Some(owner), Some(state)) if owner == user_id => Ok(state),
        _ => Err(Error::InvalidChallenge),
    }
}

/// The step-up of a sensitive operation: nothing for a user without a second factor;
/// otherwise `factor` must be accepted (`MfaRequired` when none is presented,
/// `WrongMfaCode` when it is refused). Throttled as a login of the account from this
/// client: a refused factor counts as a failed login, and past the limit the attempt is
/// `RateLimited` before any check.
pub(crate) async fn step_up(
    ctx: &Context,
    principal: &Principal,
    factor: &SecondFactor,
    client: Client<'_>,
) -> Result<(), Error> {
    let user_id = principal.user.id;
    if !ctx
        .store(move |store| store.mfa_factors(user_id))
        .await?
        .any()
    {
        return Ok(());
    }
    if factor.is_empty() {
        return Err(Error::MfaRequired);
    }
    let throttle = Throttle(ctx);
    let now = ctx.now();
    let query = throttle.failure_query(&email_key(&principal.user.email), client, now);
    let admitted = throttle.admit(&query, now, client).await?;
    match check(ctx, &principal.user, factor, None).await {
        Ok(Checked::Accepted(_)) => {
            throttle.release(admitted).await;
            Ok(())
        }
        Ok(Checked::Refused) => {
            throttle.failed(admitted, now).await;
            Event::new(AuditKind::LoginFailed)
                .user(user_id)
                .from(client)
                .reason("wrong_second_factor")
                .record(ctx)
                .await;
            Err(Error::WrongMfaCode)
        }
        Err(err) => {
            throttle.release(admitted).await;
            Err(err)
        }
    }
}
