//! `native` (seed 002, extended): register, login, me, refresh, logout, sessions, password
//! change and personal access tokens, with RFC 9457 problem documents for errors.

use std::time::Duration;

use futures_util::FutureExt as _;
use serde::Serialize;
use uuid::Uuid;

use super::body::{UserBody, timestamp};
use super::problem::{Problem, render_error};
use super::transport::{
    Transport, clear_cookies, cookie_answer, or_cookie_session, refresh_cookie,
};

use super::{Call, Profile, Route, jwt_ttl, list_of, route, schema_of, session_terms};
use crate::error::Error;
use crate::http::Response;
use crate::service::TokenPair;
use crate::store::SessionRecord;

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
    cookie_sessions: true,
};

mod email;
mod requests;
mod tokens;

use email::{
    AcceptedBody, EmailChangeRequest, EmailRequest, MagicLinkVerifyRequest, ResetPasswordRequest,
    TokenRequest,
};
use requests::{NativeLoginRequest, PasswordChangeRequest, RefreshRequest, RegisterRequest};
use tokens::{CreateTokenRequest, PersonalTokenBody, create_token, delete_token};

static ROUTES: &[Route] = &[
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
    .answers(200, Some(or_cookie_session::<AuthResponse<'static>>))
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
    .errors(&[403, 422]),
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
    .answers(200, Some(or_cookie_session::<AuthResponse<'static>>))
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
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: String,
    user_agent: Option<String>,
    current: bool,
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
    grant_answer(&call, 201, &grant, body.transport)
}

/// The answer of a new session: `{user, token}`, or by cookie.
fn grant_answer(
    call: &Call<'_>,
    status: u16,
    grant: &crate::service::SessionGrant,
    transport: Option<Transport>,
) -> Result<Response, Error> {
    match transport {
        Some(Transport::Cookie) => cookie_answer(call, status, &grant.user, &grant.tokens),
        Some(Transport::Bearer) | None => Ok(Response::json(status, &AuthResponse::new(grant))),
    }
}

async fn login(call: Call<'_>) -> Result<Response, Error> {
    let (body, transport) = NativeLoginRequest::decode(&call)?;
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
    grant_answer(&call, 200, &grant, transport)
}

async fn me(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    Ok(Response::json(200, &UserBody::new(&principal.user)))
}

async fn refresh(call: Call<'_>) -> Result<Response, Error> {
    let body = RefreshRequest::decode(&call)?;
    let sessions = call.auth.sessions();
    let authorization = call.request.headers.authorization.as_deref();
    // A refresh needs no CSRF token: a forged one only rotates the victim's tokens into
    // cookies the forger cannot read, and a page reloaded without its CSRF token gets it
    // back from here.
    let (pair, by_cookie) = match (body.refresh_token, refresh_cookie(&call)) {
        (Some(token), _) => (
            sessions.refresh(&token, call.client(), ttl(&call)).await?,
            false,
        ),
        (None, Some(token)) if authorization.is_none() => {
            let pair = sessions.refresh(token, call.client(), ttl(&call)).await?;
            (pair, true)
        }
        (None, _) => {
            let principal = sessions.authenticate(authorization).await?;
            let pair = sessions
                .refresh_session(&principal, call.client(), ttl(&call))
                .await?;
            (pair, false)
        }
    };
    let cookie = match body.transport {
        Some(transport) => transport == Transport::Cookie,
        None => by_cookie,
    };
    if !cookie {
        return Ok(Response::json(200, &TokenBody::new(&pair)));
    }
    // The answer shows the user: read through the new access token, as any request would.
    let principal = sessions.authenticate_cookie(&pair.access_token).await?;
    cookie_answer(&call, 200, &principal.user, &pair)
}

async fn logout(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    call.auth
        .sessions()
        .logout(&principal, call.client())
        .await?;
    let done = Response::empty(204);
    Ok(if call.by_cookie() {
        clear_cookies(&call, done)
    } else {
        done
    })
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
    call.auth
        .sessions()
        .revoke(&principal, session_id, call.client())
        .await?;
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
