//! The second step of a login (issue 15, rule 2). After the first factor (a password or a
//! magic link), a user with a second factor gets an `mfa_token` instead of a session: it
//! lives five minutes, works once, and dies after five wrong answers; the answer to it, a
//! TOTP code, a recovery code or a passkey assertion, opens the session. Wrong answers count
//! as failed logins of the account, under the same limits, and the account's failures are
//! forgotten only once the second factor passed (a right password alone clears nothing, so
//! fresh `mfa_token`s give no fresh guesses). Profiles with no second step refuse such users
//! ([`Gate::Seed`]) unless the deployment opted into password-only there.

use serde_json::Value;

use super::super::accounts::{PasswordPassed, login_failed};
use super::super::audit::Event;
use super::super::{Client, Context, SessionGrant, SessionTerms, Sessions, Throttle, passkeys};
use super::Mfa;
use super::proof::{Checked, SecondFactor, check};
use crate::error::Error;
use crate::store::{AuditKind, ChallengePurpose, ChallengeRecord, MfaFactors, UserRecord};
use crate::token::{OpaqueToken, hash_token};
use crate::validate::email_key;

/// What an `mfa_token` starts with.
pub const MFA_TOKEN_PREFIX: &str = "authmfa_";
/// Lifetime of an `mfa_token` (seconds).
const MFA_TOKEN_TTL_SECS: i64 = 300;
/// Wrong answers an `mfa_token` survives, less one: the fifth kills it.
const MAX_WRONG_ANSWERS: u32 = 5;

/// What a native login yields: a session, or the second step.
#[derive(Debug)]
pub enum LoginOutcome {
    /// No second factor: the session.
    Session(SessionGrant),
    /// The account has a second factor: answer this challenge at `POST /mfa/verify`.
    SecondFactor(MfaChallenge),
}

/// The second step of a login (no `Debug` of the token).
pub struct MfaChallenge {
    /// The token naming the attempt, shown once.
    pub mfa_token: String,
    /// What may answer: `totp`, `recovery_code`, `passkey`.
    pub methods: Vec<&'static str>,
    /// WebAuthn request options for the user's passkeys, when `passkey` is a method.
    pub passkey_options: Option<Value>,
    /// Seconds the token works.
    pub expires_in: u64,
}

impl std::fmt::Debug for MfaChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MfaChallenge")
            .field("methods", &self.methods)
            .finish_non_exhaustive()
    }
}

/// How the first factor was shown.
pub(in crate::service) enum FirstFactor {
    /// The password, its throttle bookkeeping waiting for the outcome.
    Password(PasswordPassed),
    /// A magic link that reached the address.
    MagicLink,
}

impl FirstFactor {
    fn method(&self) -> &'static str {
        match self {
            FirstFactor::Password(_) => "password",
            FirstFactor::MagicLink => "magic_link",
        }
    }
}

/// Whether the profile that takes the login has a second step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::service) enum Gate {
    /// `native`: users with a second factor get an `mfa_token`.
    Native,
    /// A seed profile: they are refused (`MfaRequired`) unless password-only is allowed.
    Seed,
}

/// Where a login goes after its first factor.
pub(in crate::service) enum Next {
    /// Open the session (recorded as a successful login).
    Open(UserRecord),
    /// Answer the challenge first.
    SecondStep(MfaChallenge),
}

/// Decides what follows a first factor of `user`: the session for a user without a second
/// factor (the login succeeded: failures forgotten, recorded), else the second step, or for a
/// seed profile `MfaRequired` (recorded as a refused login, not counted as a failure).
pub(in crate::service) async fn after_first_factor(
    ctx: &Context,
    user: UserRecord,
    first: FirstFactor,
    client: Client<'_>,
    gate: Gate,
) -> Result<Next, Error> {
    let user_id = user.id;
    let factors = ctx.store(move |store| store.mfa_factors(user_id)).await?;
    let password_only = gate == Gate::Seed && ctx.config.mfa.seed_profiles_password_only;
    let method = first.method();
    if !factors.any() || password_only {
        if let FirstFactor::Password(passed) = first {
            passed.succeeded(ctx).await?;
        }
        login_recorded(ctx, &user, client, Some(method), None).await;
        return Ok(Next::Open(user));
    }
    if let FirstFactor::Password(passed) = first {
        passed.held(ctx).await;
    }
    if gate == Gate::Seed {
        login_failed(ctx, Some(user.id), "mfa_required", client).await;
        return Err(Error::MfaRequired);
    }
    Ok(Next::SecondStep(issue(ctx, &user, factors).await?))
}

/// Records a successful login, with how it was made.
async fn login_recorded(
    ctx: &Context,
    user: &UserRecord,
    client: Client<'_>,
    method: Option<&'static str>,
    second_factor: Option<&'static str>,
) {
    let mut detail = serde_json::Map::new();
    if let Some(method) = method.filter(|m| *m != "password") {
        detail.insert("method".into(), method.into());
    }
    if let Some(second) = second_factor {
        detail.insert("second_factor".into(), second.into());
    }
    let event = Event::new(AuditKind::LoginSucceeded)
        .user(user.id)
        .from(client);
    let event = if detail.is_empty() {
        event
    } else {
        event.detail(Value::Object(detail))
    };
    event.record(ctx).await;
}

/// Makes and stores the challenge of a second step.
async fn issue(
    ctx: &Context,
    user: &UserRecord,
    factors: MfaFactors,
) -> Result<MfaChallenge, Error> {
    let mut methods = Vec::new();
    if factors.totp {
        methods.extend(["totp", "recovery_code"]);
    }
    let ceremony = if factors.passkeys > 0 {
        passkeys::login_options(ctx, user.id).await?
    } else {
        None
    };
    let (passkey_options, state) = match ceremony {
        Some((options, state)) => {
            methods.push("passkey");
            (Some(options), Some(state))
        }
        None => (None, None),
    };
    let token = OpaqueToken::generate(MFA_TOKEN_PREFIX);
    let now = ctx.now();
    let record = ChallengeRecord {
        hash: token.hash,
        purpose: ChallengePurpose::MfaLogin,
        user_id: Some(user.id),
        state,
        failures: 0,
        created_at: now,
        expires_at: now + MFA_TOKEN_TTL_SECS,
    };
    ctx.store(move |store| store.create_challenge(&record))
        .await?;
    Ok(MfaChallenge {
        mfa_token: token.secret,
        methods,
        passkey_options,
        expires_in: MFA_TOKEN_TTL_SECS.unsigned_abs(),
    })
}

impl Mfa<'_> {
    /// The second step: `factor` answers the challenge `mfa_token` names, and the session
    /// opens (the normal login answer). `InvalidMfaToken` for a token unknown, used,
    /// expired or killed; `SecondFactorFailed` for a wrong answer (counted against the
    /// token and as a failed login of the account); `RateLimited` past the login limits.
    pub async fn verify(
        &self,
        mfa_token: &str,
        factor: &SecondFactor,
        client: Client<'_>,
        terms: SessionTerms,
    ) -> Result<SessionGrant, Error> {
        let ctx = self.0;
        let mfa_token = mfa_token.trim();
        if !mfa_token.starts_with(MFA_TOKEN_PREFIX) || mfa_token.len() > 256 {
            return Err(Error::InvalidMfaToken);
        }
        let hash = hash_token(mfa_token);
        let now = ctx.now();
        let challenge = ctx
            .store(move |store| store.find_challenge(&hash, ChallengePurpose::MfaLogin, now))
            .await?
            .ok_or(Error::InvalidMfaToken)?;
        let user_id = challenge.user_id.ok_or(Error::InvalidMfaToken)?;
        let user = ctx
            .store(move |store| store.find_user(user_id))
            .await?
            .filter(|user| user.is_active)
            .ok_or(Error::InvalidMfaToken)?;
        if factor.is_empty() {
            return Err(Error::field("code", crate::error::Rule::Required));
        }
        let throttle = Throttle(ctx);
        let query = throttle.failure_query(&email_key(&user.email), client, now);
        let admitted = throttle.admit(&query, now, client).await?;
        let method = match check(ctx, &user, factor, challenge.state.clone()).await {
            Ok(Checked::Accepted(method)) => method,
            Ok(Checked::Refused) => {
                throttle.failed(admitted, now).await;
                ctx.store(move |store| store.fail_challenge(&hash, MAX_WRONG_ANSWERS))
                    .await?;
                login_failed(ctx, Some(user.id), "wrong_second_factor", client).await;
                return Err(Error::SecondFactorFailed);
            }
            Err(err) => {
                throttle.release(admitted).await;
                return Err(err);
            }
        };
        let taken = ctx
            .store(move |store| store.take_challenge(&hash, ChallengePurpose::MfaLogin, now))
            .await?;
        if taken.is_none() {
            // Another request answered it first.
            throttle.release(admitted).await;
            return Err(Error::InvalidMfaToken);
        }
        throttle.succeeded(admitted, &query, now).await?;
        login_recorded(ctx, &user, client, None, Some(method)).await;
        Sessions(ctx).open(user, client.user_agent, terms).await
    }
}
