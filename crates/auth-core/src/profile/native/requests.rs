//! The request bodies of `native`'s session routes: register, login, refresh, password
//! change. Each decodes and validates itself, collecting every field error.

use serde::Serialize;

use super::super::transport::Transport;
use super::super::{Call, LoginRequest};
use super::mfa::{StepUpFields, second_factor};
use crate::error::Error;
use crate::service::SecondFactor;

/// `POST /register`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RegisterRequest {
    /// Email address.
    #[schema(format = Email, example = "user@example.com")]
    pub email: String,
    /// Password, 8 to 1024 characters.
    #[schema(format = Password, min_length = 8, max_length = 1024, example = "securepassword")]
    pub password: String,
    /// Display name.
    #[schema(max_length = 255, example = "John Doe")]
    pub full_name: Option<String>,
    /// Where the session's tokens go: in the body (`bearer`, the default) or in `HttpOnly`
    /// cookies (`cookie`: the body is then a `CookieSessionBody`).
    pub transport: Option<Transport>,
}

impl RegisterRequest {
    pub(super) fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = call.fields()?;
        let email = fields.email("email");
        let password = fields.new_password("password");
        let full_name = fields.optional_name("full_name");
        let transport = Transport::decode(&mut fields);
        fields.finish()?;
        Ok(Self {
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
            full_name,
            transport,
        })
    }
}

/// `POST /login` of `native`: [`LoginRequest`] and the transport.
#[derive(Serialize, utoipa::ToSchema)]
pub struct NativeLoginRequest {
    /// Email address (trimmed, compared case-insensitively).
    #[schema(format = Email, example = "user@example.com")]
    pub email: String,
    /// Password, 1 to 1024 characters.
    #[schema(format = Password, example = "securepassword")]
    pub password: String,
    /// Where the session's tokens go: in the body (`bearer`, the default) or in `HttpOnly`
    /// cookies (`cookie`: the body is then a `CookieSessionBody`).
    pub transport: Option<Transport>,
}

impl NativeLoginRequest {
    pub(super) fn decode(call: &Call<'_>) -> Result<(LoginRequest, Option<Transport>), Error> {
        let mut fields = call.fields()?;
        let login = LoginRequest::read(&mut fields);
        let transport = Transport::decode(&mut fields);
        fields.finish()?;
        Ok((login, transport))
    }
}

/// `POST /refresh`. The refresh token comes from the body, else the bearer access token's
/// session is rotated, else the refresh cookie is exchanged.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    /// The refresh token to exchange.
    pub refresh_token: Option<String>,
    /// How to answer: `bearer` (a `TokenBody`) or `cookie` (a `CookieSessionBody` and the
    /// cookies). Default: `cookie` when the refresh cookie was exchanged, else `bearer`.
    pub transport: Option<Transport>,
}

impl RefreshRequest {
    pub(super) fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = crate::validate::Fields::parse_optional(call.body())?;
        let refresh_token = fields.optional_string("refresh_token");
        let transport = Transport::decode(&mut fields);
        fields.finish()?;
        Ok(Self {
            refresh_token,
            transport,
        })
    }
}

/// `POST /password` (no `Debug`: it holds passwords).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasswordChangeRequest {
    /// The current password.
    #[schema(format = Password)]
    pub current_password: String,
    /// The new password, 8 to 1024 characters.
    #[schema(format = Password, min_length = 8, max_length = 1024)]
    pub new_password: String,
    /// The step-up, for accounts with a second factor.
    #[serde(flatten)]
    pub step_up: StepUpFields,
    /// What the step-up fields held.
    #[serde(skip)]
    pub proof: SecondFactor,
}

impl PasswordChangeRequest {
    pub(super) fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = call.fields()?;
        let current = fields.presented_password("current_password");
        let new = fields.new_password("new_password");
        let proof = second_factor(&mut fields);
        fields.finish()?;
        Ok(Self {
            current_password: current.unwrap_or_default(),
            new_password: new.unwrap_or_default(),
            step_up: StepUpFields::default(),
            proof,
        })
    }
}
