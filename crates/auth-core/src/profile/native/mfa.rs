//! `native`'s second factors (issue 15): the TOTP factor, recovery codes, the second step of
//! a login, and the step-up fields every sensitive operation takes.

use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::{OneOfBuilder, RefOr, Schema};

use super::super::transport::{CookieSessionBody, Transport};
use super::super::{Call, schema_of, session_terms};
use super::{ACCESS_TTL, AuthResponse, grant_answer};
use crate::error::{Error, Rule};
use crate::http::Response;
use crate::service::{LoginOutcome, MfaChallenge, SecondFactor};
use crate::validate::Fields;

/// The step-up of a sensitive operation, for accounts with a second factor: one of a current
/// TOTP `code`, a `recovery_code`, or a `passkey` assertion answering the challenge of
/// `step_up_token` (from `POST /passkeys/step-up/start`). Accounts without one send none.
#[derive(Default, Serialize, utoipa::ToSchema)]
pub struct StepUpFields {
    /// A current six-digit TOTP code.
    #[schema(example = "123456")]
    pub code: Option<String>,
    /// One of the account's recovery codes (each works once).
    pub recovery_code: Option<String>,
    /// The token of a step-up challenge, with `passkey`.
    pub step_up_token: Option<String>,
    /// The assertion (`PublicKeyCredential.toJSON()`) answering that challenge.
    pub passkey: Option<serde_json::Map<String, Value>>,
}

/// Reads the step-up fields of a body.
pub(super) fn second_factor(fields: &mut Fields) -> SecondFactor {
    SecondFactor {
        code: fields.optional_string("code"),
        recovery_code: fields.optional_string("recovery_code"),
        step_up_token: fields.optional_string("step_up_token"),
        passkey: fields.optional_object("passkey"),
    }
}

/// `POST /mfa/totp/setup`, `DELETE /mfa/totp`, `POST /mfa/recovery-codes` (no `Debug`: it
/// holds the password): the current password and, where the account has a second factor,
/// the step-up.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasswordAndStepUp {
    /// The current password.
    #[schema(format = Password)]
    pub current_password: String,
    /// The step-up.
    #[serde(flatten)]
    pub step_up: StepUpFields,
}

fn password_and_step_up(call: &Call<'_>) -> Result<(String, SecondFactor), Error> {
    let mut fields = call.fields()?;
    let current = fields.presented_password("current_password");
    let proof = second_factor(&mut fields);
    fields.finish()?;
    Ok((current.unwrap_or_default(), proof))
}

/// `POST /mfa/totp/confirm`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpConfirmRequest {
    /// A current code from the authenticator app.
    #[schema(example = "123456")]
    pub code: String,
}

/// The secret of a new TOTP factor (no `Debug`: it is the secret).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TotpSetupBody {
    /// The shared secret, base32 without padding, to type into an authenticator app.
    pub secret: String,
    /// The same as an `otpauth://totp/` URI (Key Uri Format), for a QR code.
    pub otpauth_uri: String,
}

/// A new set of recovery codes, shown once (no `Debug`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RecoveryCodesBody {
    /// Ten codes; each works once, in place of a TOTP code.
    pub recovery_codes: Vec<String>,
}

/// `GET /mfa`: the caller's second factors.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MfaStatusBody {
    /// Whether TOTP is on.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u64,
    /// Registered passkeys.
    pub passkeys: u64,
}

/// The first answer of a login for an account with a second factor: no tokens yet (no
/// `Debug`: it holds the token).
#[derive(Serialize, utoipa::ToSchema)]
pub struct MfaRequiredBody<'a> {
    /// Always true.
    pub mfa_required: bool,
    /// Names this attempt at `POST /mfa/verify`: five minutes, once, five wrong answers.
    pub mfa_token: &'a str,
    /// What may answer: `totp`, `recovery_code`, `passkey`.
    pub methods: &'a [&'static str],
    /// WebAuthn request options for the account's passkeys (`passkey` among the methods).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passkey_options: Option<&'a Value>,
    /// Seconds `mfa_token` works.
    pub expires_in: u64,
}

impl<'a> MfaRequiredBody<'a> {
    fn new(challenge: &'a MfaChallenge) -> Self {
        Self {
            mfa_required: true,
            mfa_token: &challenge.mfa_token,
            methods: &challenge.methods,
            passkey_options: challenge.passkey_options.as_ref(),
            expires_in: challenge.expires_in,
        }
    }
}

/// `POST /mfa/verify`: the `mfa_token` and one answer (no `Debug`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct MfaVerifyRequest {
    /// From the login's answer.
    pub mfa_token: String,
    /// A current TOTP code.
    pub code: Option<String>,
    /// A recovery code.
    pub recovery_code: Option<String>,
    /// A passkey assertion answering the login answer's `passkey_options`.
    pub passkey: Option<serde_json::Map<String, Value>>,
    /// Where the session's tokens go, as for `/login`.
    pub transport: Option<Transport>,
}

/// The answer schema of `/login` and `/magic-link/verify`: the session (in the body or by
/// cookie), or the second step.
pub(super) fn session_or_second_step(
    components: &mut Vec<(String, RefOr<Schema>)>,
) -> RefOr<Schema> {
    let bearer = schema_of::<AuthResponse<'static>>(components);
    let cookie = schema_of::<CookieSessionBody<'static>>(components);
    let second = schema_of::<MfaRequiredBody<'static>>(components);
    OneOfBuilder::new()
        .item(bearer)
        .item(cookie)
        .item(second)
        .into()
}

/// The answer to a login: the session, or `{mfa_required, mfa_token, methods}`.
pub(super) fn login_answer(
    call: &Call<'_>,
    outcome: &LoginOutcome,
    transport: Option<Transport>,
) -> Result<Response, Error> {
    match outcome {
        LoginOutcome::Session(grant) => grant_answer(call, 200, grant, transport),
        LoginOutcome::SecondFactor(challenge) => {
            Ok(Response::json(200, &MfaRequiredBody::new(challenge)))
        }
    }
}

/// `GET /mfa`.
pub(super) async fn status(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let factors = call.auth.mfa().factors(&principal).await?;
    Ok(Response::json(
        200,
        &MfaStatusBody {
            totp: factors.totp,
            recovery_codes_left: factors.recovery_codes,
            passkeys: factors.passkeys,
        },
    ))
}

/// `POST /mfa/totp/setup`.
pub(super) async fn totp_setup(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let (current, proof) = password_and_step_up(&call)?;
    let setup = call
        .auth
        .mfa()
        .setup_totp(&principal, current, &proof, call.client())
        .await?;
    Ok(Response::json(
        200,
        &TotpSetupBody {
            secret: setup.secret.clone(),
            otpauth_uri: setup.otpauth_uri.clone(),
        },
    ))
}

/// `POST /mfa/totp/confirm`.
pub(super) async fn totp_confirm(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let mut fields = call.fields()?;
    let code = fields.string("code");
    fields.finish()?;
    let codes = call
        .auth
        .mfa()
        .confirm_totp(&principal, &code.unwrap_or_default(), call.client())
        .await?;
    Ok(Response::json(
        200,
        &RecoveryCodesBody {
            recovery_codes: codes,
        },
    ))
}

/// `DELETE /mfa/totp`.
pub(super) async fn totp_disable(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let (current, proof) = password_and_step_up(&call)?;
    call.auth
        .mfa()
        .disable_totp(&principal, current, &proof, call.client())
        .await?;
    Ok(Response::empty(204))
}

/// `POST /mfa/recovery-codes`.
pub(super) async fn recovery_codes(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let (current, proof) = password_and_step_up(&call)?;
    let codes = call
        .auth
        .mfa()
        .regenerate_recovery_codes(&principal, current, &proof, call.client())
        .await?;
    Ok(Response::json(
        200,
        &RecoveryCodesBody {
            recovery_codes: codes,
        },
    ))
}

/// `POST /mfa/verify`.
pub(super) async fn verify(call: Call<'_>) -> Result<Response, Error> {
    let mut fields = call.fields()?;
    let mfa_token = fields.string("mfa_token");
    let proof = SecondFactor {
        code: fields.optional_string("code"),
        recovery_code: fields.optional_string("recovery_code"),
        step_up_token: None,
        passkey: fields.optional_object("passkey"),
    };
    let transport = Transport::decode(&mut fields);
    if mfa_token.is_some() && proof.is_empty() {
        fields.reject("code", Rule::Required);
    }
    fields.finish()?;
    let grant = call
        .auth
        .mfa()
        .verify(
            &mfa_token.unwrap_or_default(),
            &proof,
            call.client(),
            session_terms(&call, ACCESS_TTL),
        )
        .await?;
    grant_answer(&call, 200, &grant, transport)
}
