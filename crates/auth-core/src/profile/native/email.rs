//! `native`'s routes of the account lifecycle over email (issue 13): verification, forgotten
//! passwords, magic links and email change. The rules are `service::EmailFlows`'; this
//! decodes and answers.

use serde::Serialize;

use super::super::Call;
use super::super::body::UserBody;
use super::super::transport::Transport;
use super::ACCESS_TTL;
use crate::error::{Error, Rule};
use crate::http::Response;
use crate::profile::session_terms;
use crate::validate::Fields;

/// Longest token accepted in a body (every token the server mails is 43 characters).
const MAX_TOKEN_CHARS: usize = 512;

/// The one body of every 202: the same whether or not a mail went out.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AcceptedBody {
    /// Always the same sentence.
    #[schema(example = "If the address can receive it, a mail is on its way")]
    message: &'static str,
}

const ACCEPTED: AcceptedBody = AcceptedBody {
    message: "If the address can receive it, a mail is on its way",
};

fn accepted() -> Response {
    Response::json(202, &ACCEPTED)
}

/// A required `token` field (non-empty, at most 512 characters).
fn token(fields: &mut Fields) -> String {
    let token = fields.string("token");
    match &token {
        Some(t) if t.trim().is_empty() => fields.reject("token", Rule::NotEmpty),
        Some(t) if t.chars().count() > MAX_TOKEN_CHARS => {
            fields.reject("token", Rule::MaxChars(MAX_TOKEN_CHARS))
        }
        _ => {}
    }
    token.unwrap_or_default()
}

/// `{token}`: `POST /verify-email`, `POST /email/confirm`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenRequest {
    /// The token of the mail's link.
    pub token: String,
}

impl TokenRequest {
    fn decode(call: &Call<'_>) -> Result<String, Error> {
        let mut fields = call.fields()?;
        let token = token(&mut fields);
        fields.finish()?;
        Ok(token)
    }
}

/// `{email}`: `POST /password/forgot`, `POST /magic-link`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct EmailRequest {
    /// The account's address.
    #[schema(format = Email, example = "user@example.com")]
    pub email: String,
}

impl EmailRequest {
    fn decode(call: &Call<'_>) -> Result<String, Error> {
        let mut fields = call.fields()?;
        let email = fields.email("email");
        fields.finish()?;
        Ok(email.unwrap_or_default())
    }
}

/// `POST /password/reset` (no `Debug`: it holds the password).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ResetPasswordRequest {
    /// The token of the reset mail's link.
    pub token: String,
    /// The new password, 8 to 1024 characters.
    #[schema(format = Password, min_length = 8, max_length = 1024)]
    pub new_password: String,
}

/// `POST /magic-link/verify`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MagicLinkVerifyRequest {
    /// The token of the sign-in mail's link.
    pub token: String,
    /// Where the session's tokens go, as for `/login`.
    pub transport: Option<Transport>,
}

/// `POST /email` (no `Debug`: it holds the password).
#[derive(Serialize, utoipa::ToSchema)]
pub struct EmailChangeRequest {
    /// The new address; it replaces the old one once confirmed from a link sent to it.
    #[schema(format = Email)]
    pub new_email: String,
    /// The caller's current password.
    #[schema(format = Password)]
    pub current_password: String,
    /// The step-up, for accounts with a second factor.
    #[serde(flatten)]
    pub step_up: super::mfa::StepUpFields,
}

/// `POST /verify-email`.
pub(super) async fn verify_email(call: Call<'_>) -> Result<Response, Error> {
    let token = TokenRequest::decode(&call)?;
    call.auth.email_flows().verify_email(&token).await?;
    Ok(Response::empty(204))
}

/// `POST /verify-email/resend`.
pub(super) async fn resend_verification(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    call.auth
        .email_flows()
        .resend_verification(&principal, call.client())
        .await?;
    Ok(accepted())
}

/// `POST /password/forgot`.
pub(super) async fn forgot_password(call: Call<'_>) -> Result<Response, Error> {
    let email = EmailRequest::decode(&call)?;
    call.auth
        .email_flows()
        .forgot_password(&email, call.client())
        .await?;
    Ok(accepted())
}

/// `POST /password/reset`.
pub(super) async fn reset_password(call: Call<'_>) -> Result<Response, Error> {
    let mut fields = call.fields()?;
    let token = token(&mut fields);
    let new_password = fields.new_password("new_password");
    fields.finish()?;
    call.auth
        .email_flows()
        .reset_password(&token, new_password.unwrap_or_default(), call.client())
        .await?;
    Ok(Response::empty(204))
}

/// `POST /magic-link`.
pub(super) async fn request_magic_link(call: Call<'_>) -> Result<Response, Error> {
    let email = EmailRequest::decode(&call)?;
    call.auth
        .email_flows()
        .request_magic_link(&email, call.client())
        .await?;
    Ok(accepted())
}

/// `POST /magic-link/verify`: the answer of `/login`.
pub(super) async fn verify_magic_link(call: Call<'_>) -> Result<Response, Error> {
    let mut fields = call.fields()?;
    let token = token(&mut fields);
    let transport = Transport::decode(&mut fields);
    fields.finish()?;
    let outcome = call
        .auth
        .email_flows()
        .magic_link_login(&token, call.client(), session_terms(&call, ACCESS_TTL))
        .await?;
    super::mfa::login_answer(&call, &outcome, transport)
}

/// `POST /email`.
pub(super) async fn request_email_change(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let mut fields = call.fields()?;
    let new_email = fields.email("new_email");
    let current = fields.presented_password("current_password");
    let proof = super::mfa::second_factor(&mut fields);
    fields.finish()?;
    call.auth
        .email_flows()
        .request_email_change(
            &principal,
            &new_email.unwrap_or_default(),
            current.unwrap_or_default(),
            &proof,
            call.client(),
        )
        .await?;
    Ok(accepted())
}

/// `POST /email/confirm`.
pub(super) async fn confirm_email_change(call: Call<'_>) -> Result<Response, Error> {
    let token = TokenRequest::decode(&call)?;
    let user = call.auth.email_flows().confirm_email_change(&token).await?;
    Ok(Response::json(200, &UserBody::new(&user)))
}
