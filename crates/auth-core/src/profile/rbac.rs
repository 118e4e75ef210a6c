//! `rbac` (seed 003): FastAPI-style login and `/me` with roles and organization.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::body::timestamp;
use super::wording::{FastApiIssue, fastapi, fastapi_malformed};
use super::{Call, ErrorBody, LoginRequest, Profile, Route, route, schema_of, session_terms};
use crate::error::Error;
use crate::http::{JSON, Response};
use crate::store::{RoleRecord, UserRecord};

/// Default access-token lifetime: 30 minutes.
pub const ACCESS_TTL: Duration = Duration::from_secs(1_800);

/// The profile.
pub static PROFILE: Profile = Profile {
    name: "rbac",
    default_prefix: "/api/v2/auth",
    default_access_ttl: Some(ACCESS_TTL),
    routes: ROUTES,
    render_error,
    input_names: super::native_input_names,
    error_schema: schema_of::<DetailError>,
    cookie_sessions: false,
};

static ROUTES: &[Route] = &[
    route("POST", "/login", false, "Log in and receive a JWT", |c| {
        login(c).boxed()
    })
    .body(schema_of::<LoginRequest>)
    .answers(200, Some(schema_of::<Token>))
    .errors(&[401, 403, 422, 429]),
    route(
        "GET",
        "/me",
        true,
        "The current user with roles and organization",
        |c| me(c).boxed(),
    )
    .answers(200, Some(schema_of::<CurrentUser>)),
];

/// `detail`: a message, or FastAPI's list of validation issues.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Detail {
    /// A message.
    Message(&'static str),
    /// Validation issues.
    Issues(Vec<FastApiIssue>),
}

/// Every `rbac` error body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DetailError {
    /// What went wrong.
    pub detail: Detail,
}

/// A successful login.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Token {
    /// The JWT.
    pub access_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
}

/// The user profile.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RbacUser {
    id: Uuid,
    #[schema(format = Email)]
    email: String,
    full_name: Option<String>,
    phone: Option<String>,
    organization_id: Option<Uuid>,
    /// `active` or `inactive`.
    status: &'static str,
    onboarding_completed: bool,
    onboarding_step: i64,
    onboarding_data: Option<Value>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    updated_at: String,
}

/// A role.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RbacRole {
    id: Uuid,
    name: String,
    description: Option<String>,
}

/// `GET /me`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CurrentUser {
    user: RbacUser,
    roles: Vec<RbacRole>,
    organization_id: Option<Uuid>,
}

impl CurrentUser {
    /// Renders a user and their roles.
    pub fn new(user: UserRecord, roles: Vec<RoleRecord>) -> Self {
        let attribute = |name: &str| user.attributes.get(name).cloned();
        let user_body = RbacUser {
            id: user.id,
            status: if user.is_active { "active" } else { "inactive" },
            onboarding_completed: attribute("onboarding_completed")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            onboarding_step: attribute("onboarding_step")
                .and_then(|v| v.as_i64())
                .unwrap_or(0),
            onboarding_data: attribute("onboarding_data").filter(|v| !v.is_null()),
            created_at: timestamp(user.created_at),
            updated_at: timestamp(user.updated_at),
            organization_id: user.organization_id,
            email: user.email,
            full_name: user.full_name,
            phone: user.phone,
        };
        Self {
            organization_id: user_body.organization_id,
            user: user_body,
            roles: roles
                .into_iter()
                .map(|r| RbacRole {
                    id: r.id,
                    name: r.name,
                    description: r.description,
                })
                .collect(),
        }
    }
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
        &Token {
            access_token: grant.tokens.access_token,
            token_type: "bearer",
        },
    ))
}

async fn me(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let roles = call.auth.accounts().roles(&principal).await?;
    Ok(Response::json(
        200,
        &CurrentUser::new(Arc::unwrap_or_clone(principal.user), roles),
    ))
}

/// Renders an error as `{"detail": ...}`.
pub fn render_error(err: &Error) -> ErrorBody {
    let (status, detail) = match err {
        Error::InvalidCredentials => (401, Detail::Message("Incorrect email or password")),
        Error::AccountInactive => (403, Detail::Message("User account is not active")),
        Error::MfaRequired => (403, Detail::Message(super::problem::MFA_REQUIRED)),
        Error::MissingToken | Error::InvalidToken => {
            (401, Detail::Message("Could not validate credentials"))
        }
        Error::RateLimited(_) => (429, Detail::Message("Too many requests")),
        Error::MalformedRequest => (422, Detail::Issues(fastapi_malformed())),
        Error::Validation(errors) => (422, Detail::Issues(errors.iter().map(fastapi).collect())),
        other => (other.status(), Detail::Message(other.reason())),
    };
    ErrorBody {
        status,
        content_type: JSON,
        body: serde_json::to_value(DetailError { detail }).unwrap_or_default(),
    }
}
