//! `native`'s route table: every route with its handler and what OpenAPI says of it.

use futures_util::FutureExt as _;

use super::super::body::UserBody;
use super::super::transport::or_cookie_session;
use super::super::{Route, list_of, route, schema_of};
use super::email::{
    self, AcceptedBody, EmailChangeRequest, EmailRequest, MagicLinkVerifyRequest,
    ResetPasswordRequest, TokenRequest,
};
use super::mfa::{
    self, MfaStatusBody, MfaVerifyRequest, PasswordAndStepUp, RecoveryCodesBody, StepUpFields,
    TotpConfirmRequest, TotpSetupBody,
};
use super::passkeys::{
    self, CeremonyBody, LoginFinishRequest, LoginStartRequest, PasskeyBody, RegisterFinishRequest,
    RegisterStartRequest, StepUpBody,
};
use super::requests::{NativeLoginRequest, PasswordChangeRequest, RefreshRequest, RegisterRequest};
use super::tokens::{self, CreateTokenRequest, PersonalTokenBody, create_token, delete_token};
use super::{
    AuthResponse, SessionBody, TokenBody, delete_session, login, logout, me, password, refresh,
    register, sessions,
};

pub(super) static ROUTES: &[Route] = &[
    route("POST", "/register", false, "Register a new user", |c| {
        register(c).boxed()
    })
    .body(schema_of::<RegisterRequest>)
    .answers(201, Some(or_cookie_session::<AuthResponse<'static>>))
    .sets_cookies()
    .errors(&[400, 422]),
    route(
        "POST",
        "/login",
        false,
        "Log in with email and password",
        |c| login(c).boxed(),
    )
    .body(schema_of::<NativeLoginRequest>)
    .answers(200, Some(mfa::session_or_second_step))
    .sets_cookies()
    .errors(&[401, 403, 422, 429]),
    route("GET", "/me", true, "The authenticated user", |c| {
        me(c).boxed()
    })
    .answers(200, Some(schema_of::<UserBody<'static>>)),
    route(
        "POST",
        "/refresh",
        false,
        "Rotate the session's tokens",
        |c| refresh(c).boxed(),
    )
    .optional_body(schema_of::<RefreshRequest>)
    .answers(200, Some(or_cookie_session::<TokenBody<'static>>))
    .takes_refresh_cookie()
    .errors(&[401, 422]),
    route(
        "POST",
        "/logout",
        true,
        "Revoke this session or personal token",
        |c| logout(c).boxed(),
    )
    .answers(204, None)
    .sets_cookies(),
    route("GET", "/sessions", true, "The user's live sessions", |c| {
        sessions(c).boxed()
    })
    .answers(200, Some(list_of::<SessionBody>)),
    route("DELETE", "/sessions/{id}", true, "Revoke a session", |c| {
        delete_session(c).boxed()
    })
    .answers(204, None)
    .errors(&[404]),
    route("POST", "/password", true, "Change the password", |c| {
        password(c).boxed()
    })
    .body(schema_of::<PasswordChangeRequest>)
    .answers(204, None)
    .errors(&[403, 422, 429]),
    route("POST", "/verify-email", false, "Verify the address", |c| {
        email::verify_email(c).boxed()
    })
    .body(schema_of::<TokenRequest>)
    .answers(204, None)
    .errors(&[400]),
    route(
        "POST",
        "/verify-email/resend",
        true,
        "Send a new verification link",
        |c| email::resend_verification(c).boxed(),
    )
    .answers(202, Some(schema_of::<AcceptedBody>))
    .errors(&[429]),
    route(
        "POST",
        "/password/forgot",
        false,
        "Mail a password-reset link",
        |c| email::forgot_password(c).boxed(),
    )
    .body(schema_of::<EmailRequest>)
    .answers(202, Some(schema_of::<AcceptedBody>))
    .errors(&[429]),
    route(
        "POST",
        "/password/reset",
        false,
        "Set a new password from a reset link",
        |c| email::reset_password(c).boxed(),
    )
    .body(schema_of::<ResetPasswordRequest>)
    .answers(204, None)
    .errors(&[400]),
    route("POST", "/magic-link", false, "Mail a sign-in link", |c| {
        email::request_magic_link(c).boxed()
    })
    .body(schema_of::<EmailRequest>)
    .answers(202, Some(schema_of::<AcceptedBody>))
    .errors(&[429]),
    route(
        "POST",
        "/magic-link/verify",
        false,
        "Sign in with a sign-in link",
        |c| email::verify_magic_link(c).boxed(),
    )
    .body(schema_of::<MagicLinkVerifyRequest>)
    .answers(200, Some(mfa::session_or_second_step))
    .sets_cookies()
    .errors(&[400]),
    route(
        "POST",
        "/email",
        true,
        "Change the address (mails a confirmation link)",
        |c| email::request_email_change(c).boxed(),
    )
    .body(schema_of::<EmailChangeRequest>)
    .answers(202, Some(schema_of::<AcceptedBody>))
    .errors(&[403, 429]),
    route(
        "POST",
        "/email/confirm",
        false,
        "Confirm a new address",
        |c| email::confirm_email_change(c).boxed(),
    )
    .body(schema_of::<TokenRequest>)
    .answers(200, Some(schema_of::<UserBody<'static>>))
    .errors(&[400]),
    route(
        "POST",
        "/tokens",
        true,
        "Create a personal access token",
        |c| create_token(c).boxed(),
    )
    .body(schema_of::<CreateTokenRequest>)
    .answers(201, Some(schema_of::<PersonalTokenBody<'static>>))
    .errors(&[403, 422, 429]),
    route(
        "GET",
        "/tokens",
        true,
        "The user's personal access tokens",
        |c| tokens::tokens(c).boxed(),
    )
    .answers(200, Some(list_of::<PersonalTokenBody<'static>>)),
    route(
        "DELETE",
        "/tokens/{id}",
        true,
        "Revoke a personal access token",
        |c| delete_token(c).boxed(),
    )
    .answers(204, None)
    .errors(&[404]),
    route("GET", "/mfa", true, "The caller's second factors", |c| {
        mfa::status(c).boxed()
    })
    .answers(200, Some(schema_of::<MfaStatusBody>)),
    route(
        "POST",
        "/mfa/totp/setup",
        true,
        "Start setting up TOTP (enabled once confirmed)",
        |c| mfa::totp_setup(c).boxed(),
    )
    .body(schema_of::<PasswordAndStepUp>)
    .answers(200, Some(schema_of::<TotpSetupBody>))
    .errors(&[403, 409, 422, 429]),
    route(
        "POST",
        "/mfa/totp/confirm",
        true,
        "Confirm TOTP with a first code; returns the recovery codes",
        |c| mfa::totp_confirm(c).boxed(),
    )
    .body(schema_of::<TotpConfirmRequest>)
    .answers(200, Some(schema_of::<RecoveryCodesBody>))
    .errors(&[403, 404, 409, 422]),
    route("DELETE", "/mfa/totp", true, "Disable TOTP", |c| {
        mfa::totp_disable(c).boxed()
    })
    .body(schema_of::<PasswordAndStepUp>)
    .answers(204, None)
    .errors(&[403, 404, 422, 429]),
    route(
        "POST",
        "/mfa/recovery-codes",
        true,
        "Replace the recovery codes",
        |c| mfa::recovery_codes(c).boxed(),
    )
    .body(schema_of::<PasswordAndStepUp>)
    .answers(200, Some(schema_of::<RecoveryCodesBody>))
    .errors(&[403, 404, 422, 429]),
    route(
        "POST",
        "/mfa/verify",
        false,
        "The second step of a login",
        |c| mfa::verify(c).boxed(),
    )
    .body(schema_of::<MfaVerifyRequest>)
    .answers(200, Some(or_cookie_session::<AuthResponse<'static>>))
    .sets_cookies()
    .errors(&[400, 401, 403, 422, 429]),
    route(
        "POST",
        "/passkeys/register/start",
        true,
        "Begin registering a passkey",
        |c| passkeys::register_start(c).boxed(),
    )
    .body(schema_of::<RegisterStartRequest>)
    .answers(200, Some(schema_of::<CeremonyBody<'static>>))
    .errors(&[403, 404, 422, 429]),
    route(
        "POST",
        "/passkeys/register/finish",
        true,
        "Finish registering a passkey",
        |c| passkeys::register_finish(c).boxed(),
    )
    .body(schema_of::<RegisterFinishRequest>)
    .answers(201, Some(schema_of::<PasskeyBody<'static>>))
    .errors(&[400, 404, 422]),
    route("GET", "/passkeys", true, "The caller's passkeys", |c| {
        passkeys::list(c).boxed()
    })
    .answers(200, Some(list_of::<PasskeyBody<'static>>))
    .errors(&[404]),
    route("DELETE", "/passkeys/{id}", true, "Remove a passkey", |c| {
        passkeys::delete(c).boxed()
    })
    .optional_body(schema_of::<StepUpFields>)
    .answers(204, None)
    .errors(&[403, 404, 422, 429]),
    route(
        "POST",
        "/passkeys/login/start",
        false,
        "Begin a passkey sign-in",
        |c| passkeys::login_start(c).boxed(),
    )
    .optional_body(schema_of::<LoginStartRequest>)
    .answers(200, Some(schema_of::<CeremonyBody<'static>>))
    .errors(&[404, 422, 429]),
    route(
        "POST",
        "/passkeys/login/finish",
        false,
        "Sign in with a passkey",
        |c| passkeys::login_finish(c).boxed(),
    )
    .body(schema_of::<LoginFinishRequest>)
    .answers(200, Some(or_cookie_session::<AuthResponse<'static>>))
    .sets_cookies()
    .errors(&[400, 401, 403, 404, 422]),
    route(
        "POST",
        "/passkeys/step-up/start",
        true,
        "Begin a step-up with a passkey",
        |c| passkeys::step_up_start(c).boxed(),
    )
    .answers(200, Some(schema_of::<StepUpBody<'static>>))
    .errors(&[404, 429]),
];
