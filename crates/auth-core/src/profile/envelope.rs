//! `envelope` (seed 000): `POST /token` answering `{message, data}`, errors `{message, error: {code}}`.

use std::time::Duration;

use futures_util::FutureExt as _;
use serde::Serialize;

use super::{Call, ErrorBody, LoginRequest, Profile, Route, route, schema_of, session_terms};
use crate::error::Error;
use crate::http::{JSON, Response};

/// Default access-token lifetime: one day.
pub const ACCESS_TTL: Duration = Duration::from_secs(86_400);

/// The profile.
pub static PROFILE: Profile = Profile {
    name: "envelope",
    default_prefix: "/api/auth",
    default_access_ttl: Some(ACCESS_TTL),
    routes: ROUTES,
    render_error,
    input_names: super::native_input_names,
    error_schema: schema_of::<EnvelopeError>,
    cookie_sessions: false,
};

static ROUTES: &[Route] = &[route(
    "POST",
    "/token",
    false,
    "Exchange email and password for a JWT access token",
    |c| token(c).boxed(),
)
.body(schema_of::<LoginRequest>)
.answers(200, Some(schema_of::<TokenResponse>))
.errors(&[400, 401, 403, 429])];

/// The `error` member of an error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorCode {
    /// Stable machine-readable code, e.g. `INVALID_CREDENTIALS`.
    pub code: &'static str,
}

/// Every `envelope` error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnvelopeError {
    /// What went wrong.
    pub message: &'static str,
    /// The code.
    pub error: ErrorCode,
}

/// `data` of a successful answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenData {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Lifetime in seconds.
    pub expires_in: u64,
}

/// A successful answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// `API token issued successfully`.
    pub message: &'static str,
    /// The token.
    pub data: TokenData,
}

async fn token(call: Call<'_>) -> Result<Response, Error> {
    let body = LoginRequest::decode(&call)?;
    let terms = session_terms(&call, ACCESS_TTL);
    let grant = call
        .auth
        .sessions()
        .login(&body.email, body.password, call.client(), terms)
        .await?;
    Ok(Response::json(
        200,
        &TokenResponse {
            message: "API token issued successfully",
            data: TokenData {
                access_token: grant.tokens.access_token,
                token_type: "Bearer",
                expires_in: grant.tokens.expires_in,
            },
        },
    ))
}

/// Renders an error as `{message, error: {code}}`.
pub fn render_error(err: &Error) -> ErrorBody {
    let (status, message, code) = match err {
        Error::MalformedRequest | Error::Validation(_) => {
            (400, "Missing parameters", "INVALID_REQUEST")
        }
        Error::InvalidCredentials => (401, "Invalid credentials", "INVALID_CREDENTIALS"),
        Error::AccountInactive => (403, "User account is not active", "ACCOUNT_INACTIVE"),
        Error::MfaRequired => (403, super::problem::MFA_REQUIRED, "MFA_REQUIRED"),
        Error::RateLimited(_) => (429, "Too many requests", "RATE_LIMITED"),
        Error::Internal => (500, "Internal server error", "INTERNAL_SERVER_ERROR"),
        Error::Unavailable | Error::Overloaded(_) => {
            (503, "Internal server error", "INTERNAL_SERVER_ERROR")
        }
        other => (
            other.status(),
            other.reason(),
            super::problem::error_code(other),
        ),
    };
    ErrorBody {
        status,
        content_type: JSON,
        body: serde_json::to_value(EnvelopeError {
            message,
            error: ErrorCode { code },
        })
        .unwrap_or_default(),
    }
}
