//! `jwt-user` (seed 004): login answering the token with a Laravel-style user object.

use std::time::Duration;

use futures_util::FutureExt as _;
use serde::Serialize;
use uuid::Uuid;

use super::body::timestamp;
use super::wording::laravel;
use super::{Call, ErrorBody, LoginRequest, Profile, Route, route, schema_of, session_terms};
use crate::error::Error;
use crate::http::{JSON, Response};
use crate::store::UserRecord;

/// Default access-token lifetime: one hour.
pub const ACCESS_TTL: Duration = Duration::from_secs(3_600);

/// The profile.
pub static PROFILE: Profile = Profile {
    name: "jwt-user",
    default_prefix: "/api/v1/auth",
    default_access_ttl: Some(ACCESS_TTL),
    routes: ROUTES,
    render_error,
    input_names: super::native_input_names,
    error_schema: schema_of::<JwtUserError>,
    cookie_sessions: false,
};

static ROUTES: &[Route] = &[route(
    "POST",
    "/login",
    false,
    "Log in and receive a JWT with the user",
    |c| login(c).boxed(),
)
.body(schema_of::<LoginRequest>)
.answers(200, Some(schema_of::<LoginResponse>))
.errors(&[401, 403, 422, 429])];

/// Every `jwt-user` error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JwtUserError {
    /// Always false.
    pub success: bool,
    /// What went wrong.
    pub message: String,
}

/// The user object; fields the core does not keep are null.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JwtUser {
    id: Uuid,
    /// The full name.
    name: Option<String>,
    #[schema(format = Email)]
    email: String,
    #[schema(format = DateTime)]
    email_verified_at: Option<String>,
    #[schema(format = DateTime)]
    two_factor_confirmed_at: Option<String>,
    current_team_id: Option<Uuid>,
    profile_photo_path: Option<String>,
    source_id: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
    #[schema(format = DateTime)]
    last_renew_password_at: Option<String>,
    profile_photo_url: Option<String>,
}

impl JwtUser {
    fn new(user: UserRecord) -> Self {
        Self {
            id: user.id,
            name: user.full_name,
            email: user.email,
            email_verified_at: user.email_verified_at.map(timestamp),
            two_factor_confirmed_at: None,
            current_team_id: None,
            profile_photo_path: None,
            source_id: None,
            created_at: timestamp(user.created_at),
            updated_at: timestamp(user.updated_at),
            last_renew_password_at: None,
            profile_photo_url: None,
        }
    }
}

/// A successful login.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    access_token: String,
    /// Always `bearer`.
    token_type: &'static str,
    expires_in: u64,
    user: JwtUser,
}

async fn login(call: Call<'_>) -> Result<Response, Error> {
    let body = LoginRequest::decode(&call)?;
    let terms = session_terms(&call, ACCESS_TTL);
    let grant = call
        .auth
        .sessions()
        .login(&body.email, body.password, call.client(), terms)
        .await?;
    Ok(Response::json(
        200,
        &LoginResponse {
            access_token: grant.tokens.access_token,
            token_type: "bearer",
            expires_in: grant.tokens.expires_in,
            user: JwtUser::new(grant.user),
        },
    ))
}

/// Renders an error as `{"success": false, "message": ...}`.
pub fn render_error(err: &Error) -> ErrorBody {
    let (status, message) = match err {
        Error::InvalidCredentials => (401, "Invalid credentials".to_owned()),
        Error::AccountInactive => (403, "User account is not active".to_owned()),
        Error::MfaRequired => (403, super::problem::MFA_REQUIRED.to_owned()),
        Error::RateLimited(_) => (429, "Too many requests".to_owned()),
        Error::MalformedRequest => (422, "The request body must be a JSON object.".to_owned()),
        Error::Validation(errors) => (422, errors.first().map(laravel).unwrap_or_default()),
        other => (other.status(), other.reason().to_owned()),
    };
    ErrorBody {
        status,
        content_type: JSON,
        body: serde_json::to_value(JwtUserError {
            success: false,
            message,
        })
        .unwrap_or_default(),
    }
}
