//! Second factors (issue 15): TOTP (set up, confirmed with a first code, disabled), recovery
//! codes, the second step of a login ([`login`]), and the step-up that sensitive operations
//! ask of users with a second factor ([`proof`]).
//!
//! A user "has a second factor" with a confirmed TOTP factor or at least one passkey. A
//! pending TOTP setup changes nothing until it is confirmed.

mod login;
mod proof;

pub(super) use login::{FirstFactor, Gate, Next, after_first_factor};
pub use login::{LoginOutcome, MFA_TOKEN_PREFIX, MfaChallenge};
pub use proof::SecondFactor;
pub(super) use proof::step_up;

use super::audit::Event;
use super::{Accounts, Client, Context, EmailFlows};
use crate::error::Error;
use crate::principal::Principal;
use crate::store::{AuditKind, MfaFactors, TokenHash, UserRecord};
use crate::token::totp::{TotpSecret, generate_recovery_codes, recovery_code_hash};

/// How notices and the audit log name a TOTP factor.
const TOTP_FACTOR: &str = "an authenticator app (TOTP)";

/// The second-factor service.
#[derive(Clone, Copy)]
pub struct Mfa<'a>(pub(super) &'a Context);

/// A TOTP factor just set up: the secret for the authenticator app, shown once (no `Debug`
/// of it).
pub struct TotpSetup {
    /// The secret, base32 without padding.
    pub secret: String,
    /// The `otpauth://` URI (Key Uri Format) with the secret, for a QR code.
    pub otpauth_uri: String,
}

impl std::fmt::Debug for TotpSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSetup(<redacted>)")
    }
}

impl Mfa<'_> {
    /// Which second factors the caller has.
    pub async fn factors(&self, principal: &Principal) -> Result<MfaFactors, Error> {
        let user_id = principal.user.id;
        self.0.store(move |store| store.mfa_factors(user_id)).await
    }

    /// Starts a TOTP setup after the current password (a wrong one counts as a failed
    /// login), and a step-up when the caller already has a passkey: a new pending factor
    /// replaces an earlier pending one. `MfaAlreadyEnabled` when TOTP is on.
    pub async fn setup_totp(
        &self,
        principal: &Principal,
        current_password: String,
        proof: &SecondFactor,
        client: Client<'_>,
    ) -> Result<TotpSetup, Error> {
        Accounts(self.0)
            .verify_current_password(principal, current_password, client)
            .await?;
        if self.factors(principal).await?.totp {
            return Err(Error::MfaAlreadyEnabled);
        }
        step_up(self.0, principal, proof, client).await?;
        let user_id = principal.user.id;
        let secret = TotpSecret::generate();
        let sealed = self.0.totp_key.seal(user_id, &secret)?;
        let now = self.0.now();
        let began = self
            .0
            .store(move |store| store.begin_totp(user_id, &sealed, now))
            .await?;
        if !began {
            return Err(Error::MfaAlreadyEnabled);
        }
        let issuer = self
            .0
            .config
            .mfa
            .totp_issuer
            .as_deref()
            .unwrap_or(&self.0.config.issuer);
        Ok(TotpSetup {
            secret: secret.base32(),
            otpauth_uri: secret.otpauth_uri(issuer, &principal.user.email),
        })
    }

    /// Confirms the pending TOTP setup with a current code, enabling it, and returns the
    /// first recovery codes (shown once). `WrongMfaCode` for a wrong code; `NotFound` without
    /// a pending setup (or when another setup replaced it meanwhile).
    pub async fn confirm_totp(
        &self,
        principal: &Principal,
        code: &str,
        client: Client<'_>,
    ) -> Result<Vec<String>, Error> {
        let user_id = principal.user.id;
        let pending = match self.0.store(move |store| store.totp(user_id)).await? {
            Some(totp) if totp.confirmed_at.is_none() => totp,
            Some(_) => return Err(Error::MfaAlreadyEnabled),
            None => return Err(Error::NotFound),
        };
        let secret = self
            .0
            .totp_key
            .open(user_id, &pending.secret_sealed)
            .ok_or(Error::NotFound)?;
        let now = self.0.now();
        let step = secret.matching_step(code, now).ok_or(Error::WrongMfaCode)?;
        let (codes, hashes) = new_recovery_codes();
        let sealed = pending.secret_sealed;
        let confirmed = self
            .0
            .store(move |store| store.confirm_totp(user_id, &sealed, step, &hashes, now))
            .await?;
        if !confirmed {
            return Err(Error::NotFound);
        }
        factor_changed(self.0, &principal.user, true, client).await;
        Ok(codes)
    }

    /// Disables TOTP (and voids the recovery codes) after the current password and a
    /// step-up. `NotFound` when TOTP is not on (a pending setup is dropped all the same).
    pub async fn disable_totp(
        &self,
        principal: &Principal,
        current_password: String,
        proof: &SecondFactor,
        client: Client<'_>,
    ) -> Result<(), Error> {
        Accounts(self.0)
            .verify_current_password(principal, current_password, client)
            .await?;
        let user_id = principal.user.id;
        if !self.factors(principal).await?.totp {
            self.0
                .store(move |store| store.delete_totp(user_id))
                .await?;
            return Err(Error::NotFound);
        }
        step_up(self.0, principal, proof, client).await?;
        if self
            .0
            .store(move |store| store.delete_totp(user_id))
            .await?
        {
            factor_changed(self.0, &principal.user, false, client).await;
        }
        Ok(())
    }

    /// Issues a new set of recovery codes after the current password and a step-up, voiding
    /// the old set. `NotFound` when TOTP is not on.
    pub async fn regenerate_recovery_codes(
        &self,
        principal: &Principal,
        current_password: String,
        proof: &SecondFactor,
        client: Client<'_>,
    ) -> Result<Vec<String>, Error> {
        Accounts(self.0)
            .verify_current_password(principal, current_password, client)
            .await?;
        if !self.factors(principal).await?.totp {
            return Err(Error::NotFound);
        }
        step_up(self.0, principal, proof, client).await?;
        let (codes, hashes) = new_recovery_codes();
        let (user_id, now) = (principal.user.id, self.0.now());
        self.0
            .store(move |store| store.replace_recovery_codes(user_id, &hashes, now))
            .await?;
        Event::new(AuditKind::MfaRecoveryCodesRegenerated)
            .user(user_id)
            .from(client)
            .record(self.0)
            .await;
        Ok(codes)
    }
}

/// A fresh set of recovery codes and their hashes.
fn new_recovery_codes() -> (Vec<String>, Vec<TokenHash>) {
    let codes = generate_recovery_codes();
    let hashes = codes.iter().filter_map(|c| recovery_code_hash(c)).collect();
    (codes, hashes)
}

/// Records that the user's TOTP factor was added or removed and mails the notice (a notice
/// that cannot be queued is logged: the change is made).
async fn factor_changed(ctx: &Context, user: &UserRecord, added: bool, client: Client<'_>) {
    let kind = if added {
        AuditKind::MfaFactorAdded
    } else {
        AuditKind::MfaFactorRemoved
    };
    Event::new(kind)
        .user(user.id)
        .from(client)
        .detail(serde_json::json!({ "factor": "totp" }))
        .record(ctx)
        .await;
    if let Err(err) = EmailFlows(ctx)
        .notify_factor(user, added, TOTP_FACTOR)
        .await
    {
        tracing::warn!(error = %err, "second-factor notice not queued");
    }
}
