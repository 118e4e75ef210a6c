//! `native` (seed 002, extended): register, login, me, refresh, logout, sessions, password
//! change and personal access tokens, with RFC 9457 problem documents for errors.

use std::time::Duration;

use futures_util::FutureExt as _;
use serde::Serialize;
use uuid::Uuid;

use super::body::{UserBody, timestamp};
use super::problem::{Problem, render_error};

use super::{
    Call, LoginRequest, Profile, Route, jwt_ttl, list_of, route, schema_of, session_terms,
};
use crate::error::{Error, Rule};
use crate::http::Response;
use crate::principal::Principal;
use crate::service::TokenPair;
use crate::store::{PersonalTokenRecord, SessionRecord};

/// Default access-token lifetime: 7 days.
pub const ACCESS_TTL: Duration = Duration::from_secs(604_800);

/// The profile.
pub static PROFILE: Profile = Profile {
    name: "native",
    default_prefix: "/api/v1/auth",
    default_access_ttl: Some(ACCESS_TTL),
    routes: ROUTES,
    render_error,
    input_names: super::native_input_names,
    error_schema: schema_of::<Problem>,
};

static ROUTES: &[Route] = &[
    route("POST", "/register", false, "Register a new user", |c| {
        register(c).boxed()
    })
    .body(schema_of::<RegisterRequest>)
    .answers(201, Some(schema_of::<AuthResponse<'static>>))
    .errors(&[400, 422]),
    route(
        "POST",
        "/login",
        false,
        "Log in with email and password",
        |c| login(c).boxed(),
    )
    .body(schema_of::<LoginRequest>)
    .answers(200, Some(schema_of::<AuthResponse<'static>>))
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
    .answers(200, Some(schema_of::<TokenBody<'static>>))
    .errors(&[401, 422]),
    route(
        "POST",
        "/logout",
        true,
        "Revoke this session or personal token",
        |c| logout(c).boxed(),
    )
    .answers(204, None),
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
    .errors(&[403, 422]),
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
        |c| tokens(c).boxed(),
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
];

/// The token object (no `Debug`: it holds the tokens).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenBody<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: u64,
    refresh_token: &'a str,
}

impl<'a> TokenBody<'a> {
    /// Renders a token pair.
    pub fn new(pair: &'a TokenPair) -> Self {
        Self {
            access_token: &pair.access_token,
            token_type: "bearer",
            expires_in: pair.expires_in,
            refresh_token: &pair.refresh_token,
        }
    }
}

/// A live session.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionBody {
    id: Uuid,
    created_at: String,
    last_used_at: String,
    user_agent: Option<String>,
    current: bool,
}

/// A personal access token (`token` only when just created).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PersonalTokenBody<'a> {
    id: Uuid,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    created_at: String,
    expires_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<Option<String>>,
}

impl<'a> PersonalTokenBody<'a> {
    fn new(record: &'a PersonalTokenRecord, token: Option<&'a str>) -> Self {
        Self {
            id: record.id,
            name: &record.name,
            token,
            created_at: timestamp(record.created_at),
            expires_at: record.expires_at.map(timestamp),
            // Listed tokens show when they were last used; a freshly created one shows its secret instead.
            last_used_at: token.is_none().then(|| record.last_used_at.map(timestamp)),
        }
    }
}

/// `{user, token}`, the answer to register and login (no `Debug`: it holds the tokens).
#[derive(Serialize, utoipa::ToSchema)]
pub struct AuthResponse<'a> {
    user: UserBody<'a>,
    token: TokenBody<'a>,
}

impl<'a> AuthResponse<'a> {
    fn new(grant: &'a crate::service::SessionGrant) -> Self {
        Self {
            user: UserBody::new(&grant.user),
            token: TokenBody::new(&grant.tokens),
        }
    }
}

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
}

impl RegisterRequest {
    fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = call.fields()?;
        let email = fields.email("email");
        let password = fields.new_password("password");
        let full_name = fields.optional_name("full_name");
        fields.finish()?;
        Ok(Self {
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
            full_name,
        })
    }
}

/// `POST /refresh`: the body form; without it, the bearer access token is rotated.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefreshRequest {
    /// The refresh token to exchange.
    pub refresh_token: Option<String>,
}

impl RefreshRequest {
    fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = crate::validate::Fields::parse_optional(call.body())?;
        let refresh_token = fields.optional_string("refresh_token");
        fields.finish()?;
        Ok(Self { refresh_token })
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
}

impl PasswordChangeRequest {
    fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = call.fields()?;
        let current = fields.presented_password("current_password");
        let new = fields.new_password("new_password");
        fields.finish()?;
        Ok(Self {
            current_password: current.unwrap_or_default(),
            new_password: new.unwrap_or_default(),
        })
    }
}

/// `POST /tokens` (no `Debug`: it holds the password).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreateTokenRequest {
    /// Display name, 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// The caller's current password: an access token alone cannot mint a long-lived
    /// credential.
    #[schema(format = Password)]
    pub current_password: String,
    /// Lifetime in seconds; never expires without it.
    #[schema(minimum = 1)]
    pub expires_in: Option<i64>,
}

impl CreateTokenRequest {
    fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = call.fields()?;
        let name = fields.optional_name("name");
        if !fields.has("name") {
            fields.reject("name", Rule::Required);
        } else if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            fields.reject("name", Rule::NotEmpty);
        }
        let current = fields.presented_password("current_password");
        let expires_in = fields.optional_integer("expires_in");
        if expires_in.is_some_and(|secs| !(1..=MAX_TOKEN_TTL_SECS).contains(&secs)) {
            fields.reject("expires_in", Rule::Between(1, MAX_TOKEN_TTL_SECS));
        }
        fields.finish()?;
        Ok(Self {
            name: name.unwrap_or_default(),
            current_password: current.unwrap_or_default(),
            expires_in,
        })
    }
}

fn ttl(call: &Call<'_>) -> Duration {
    jwt_ttl(call, ACCESS_TTL)
}

async fn register(call: Call<'_>) -> Result<Response, Error> {
    let body = RegisterRequest::decode(&call)?;
    let grant = call
        .auth
        .accounts()
        .register(
            body.email,
            body.password,
            body.full_name,
            call.client(),
            session_terms(&call, ACCESS_TTL),
        )
        .await?;
    Ok(Response::json(201, &AuthResponse::new(&grant)))
}

async fn login(call: Call<'_>) -> Result<Response, Error> {
    let body = LoginRequest::decode(&call)?;
    let grant = call
        .auth
        .sessions()
        .login(
            &body.email,
            body.password,
            call.client(),
            session_terms(&call, ACCESS_TTL),
        )
        .await?;
    Ok(Response::json(200, &AuthResponse::new(&grant)))
}

async fn me(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    Ok(Response::json(200, &UserBody::new(&principal.user)))
}

async fn refresh(call: Call<'_>) -> Result<Response, Error> {
    let body = RefreshRequest::decode(&call)?;
    let sessions = call.auth.sessions();
    let pair = match body.refresh_token {
        Some(token) => sessions.refresh(&token, call.client(), ttl(&call)).await?,
        None => {
            let principal = call.principal().await?;
            sessions
                .refresh_session(&principal, call.client(), ttl(&call))
                .await?
        }
    };
    Ok(Response::json(200, &TokenBody::new(&pair)))
}

async fn logout(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    call.auth.sessions().logout(&principal).await?;
    Ok(Response::empty(204))
}

async fn sessions(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let current = principal.session_id();
    let list: Vec<SessionBody> = call
        .auth
        .sessions()
        .list(&principal)
        .await?
        .into_iter()
        .map(|s: SessionRecord| SessionBody {
            id: s.id,
            created_at: timestamp(s.created_at),
            last_used_at: timestamp(s.last_used_at),
            user_agent: s.user_agent,
            current: Some(s.id) == current,
        })
        .collect();
    Ok(Response::json(200, &list))
}

async fn delete_session(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let session_id = call.id_param("id")?;
    call.auth.sessions().revoke(&principal, session_id).await?;
    Ok(Response::empty(204))
}

async fn password(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let body = PasswordChangeRequest::decode(&call)?;
    call.auth
        .accounts()
        .change_password(
            &principal,
            body.current_password,
            body.new_password,
            call.client(),
        )
        .await?;
    Ok(Response::empty(204))
}

/// Longest personal-token lifetime accepted: 10 years.
const MAX_TOKEN_TTL_SECS: i64 = 10 * 366 * 24 * 3600;

async fn create_token(call: Call<'_>) -> Result<Response, Error> {
    let principal: Principal = call.principal().await?;
    let body = CreateTokenRequest::decode(&call)?;
    let expires_in = body
        .expires_in
        .map(|secs| Duration::from_secs(secs.unsigned_abs()));
    let issued = call
        .auth
        .personal_tokens()
        .create_for(
            &principal,
            body.current_password,
            call.client(),
            body.name,
            expires_in,
        )
        .await?;
    Ok(Response::json(
        201,
        &PersonalTokenBody::new(&issued.record, Some(&issued.secret)),
    ))
}

async fn tokens(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let records = call.auth.personal_tokens().list(&principal).await?;
    let list: Vec<PersonalTokenBody> = records
        .iter()
        .map(|r| PersonalTokenBody::new(r, None))
        .collect();
    Ok(Response::json(200, &list))
}

async fn delete_token(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let token_id = call.id_param("id")?;
    call.auth
        .personal_tokens()
        .revoke(&principal, token_id)
        .await?;
    Ok(Response::empty(204))
}
