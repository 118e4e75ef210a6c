//! `personal-token` (seed 001): login that mints a named personal access token.

use std::time::Duration;

use futures_util::FutureExt as _;
use serde::Serialize;
use serde_json::json;

use super::wording::{laravel_errors, laravel_summary};
use super::{Call, ErrorBody, Profile, Route, route, schema_of};
use crate::error::{Error, Rule};
use crate::http::{JSON, Response};

/// Longest `expiration` accepted: 10 years, in seconds.
pub const MAX_EXPIRATION: i64 = 10 * 366 * 24 * 3600;
/// Name of a token when neither `token_name` nor `User-Agent` is given.
pub const DEFAULT_TOKEN_NAME: &str = "API token";

/// The profile.
pub static PROFILE: Profile = Profile {
    name: "personal-token",
    default_prefix: "/api/v1/auth",
    default_access_ttl: None,
    routes: ROUTES,
    render_error,
    input_names: super::native_input_names,
    error_schema: schema_of::<PersonalTokenError>,
    cookie_sessions: false,
};

static ROUTES: &[Route] = &[route(
    "POST",
    "/login",
    false,
    "Log in and receive a personal access token",
    |c| login(c).boxed(),
)
.body(schema_of::<TokenLoginRequest>)
.answers(201, Some(schema_of::<TokenResponse>))
.errors(&[403, 422, 429])];

/// Every `personal-token` error body: `{error}` for credentials, `{message, errors}` for
/// validation, `{message}` otherwise.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct PersonalTokenError {
    /// Credential refusals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Every invalid field with its messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub errors: Option<serde_json::Value>,
}

/// The login body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenLoginRequest {
    /// Email address.
    #[schema(format = Email, example = "user@example.com")]
    pub email: String,
    /// Password.
    #[schema(format = Password, example = "securepassword")]
    pub password: String,
    /// Lifetime in seconds; the token never expires without it.
    #[schema(minimum = 1, example = 3600)]
    pub expiration: Option<i64>,
    /// Name of the token (default: the User-Agent).
    #[schema(max_length = 255, example = "MyAppToken")]
    pub token_name: Option<String>,
}

impl TokenLoginRequest {
    fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = call.fields()?;
        let email = fields.email("email");
        let password = fields.presented_password("password");
        let expiration = fields.optional_integer("expiration");
        if expiration.is_some_and(|secs| !(1..=MAX_EXPIRATION).contains(&secs)) {
            fields.reject("expiration", Rule::Between(1, MAX_EXPIRATION));
        }
        let token_name = fields.optional_name("token_name");
        fields.finish()?;
        Ok(Self {
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
            expiration,
            token_name,
        })
    }
}

/// A successful login.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// The personal access token, shown once.
    pub token: String,
}

async fn login(call: Call<'_>) -> Result<Response, Error> {
    let body = TokenLoginRequest::decode(&call)?;
    let user = call
        .auth
        .accounts()
        .check_credentials(&body.email, body.password, call.client())
        .await?;
    let name = body
        .token_name
        .filter(|name| !name.trim().is_empty())
        .or_else(|| call.user_agent().map(|ua| ua.chars().take(255).collect()))
        .unwrap_or_else(|| DEFAULT_TOKEN_NAME.to_owned());
    let ttl = body
        .expiration
        .map(|secs| Duration::from_secs(secs.unsigned_abs()))
        .or(call.access_ttl);
    let issued = call
        .auth
        .personal_tokens()
        .create_from(user.id, name, ttl, call.client())
        .await?;
    Ok(Response::json(
        201,
        &TokenResponse {
            token: issued.secret,
        },
    ))
}

/// Renders an error: 403 `{"error"}` for credentials, Laravel's 422, `{"message"}` otherwise.
pub fn render_error(err: &Error) -> ErrorBody {
    let refusal = |error| PersonalTokenError {
        error: Some(error),
        ..PersonalTokenError::default()
    };
    let message = |message: &str| PersonalTokenError {
        message: Some(message.to_owned()),
        ..PersonalTokenError::default()
    };
    let (status, body) = match err {
        Error::InvalidCredentials => (403, refusal("Invalid credentials")),
        Error::AccountInactive => (403, refusal("User account is not active")),
        Error::MfaRequired => (403, refusal(super::problem::MFA_REQUIRED)),
        Error::RateLimited(_) => (429, message("Too Many Attempts.")),
        Error::MalformedRequest => {
            let text = "The request body must be a JSON object.";
            let body = PersonalTokenError {
                errors: Some(json!({ "body": [text] })),
                ..message(text)
            };
            (422, body)
        }
        Error::Validation(errors) => {
            let body = PersonalTokenError {
                errors: Some(laravel_errors(errors)),
                ..message(&laravel_summary(errors))
            };
            (422, body)
        }
        other => (other.status(), message(other.reason())),
    };
    ErrorBody {
        status,
        content_type: JSON,
        body: serde_json::to_value(body).unwrap_or_default(),
    }
}
