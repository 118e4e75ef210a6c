//! `native` (seed 002, extended): register, login, me, refresh, logout, sessions, password
//! change and personal access tokens, with RFC 9457 problem documents for errors.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::body::{UserBody, timestamp};
use super::problem::{Problem, render_error};
use super::transport::{Transport, clear_cookies, cookie_answer, refresh_cookie};

use super::{Call, Profile, jwt_ttl, schema_of, session_terms};
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
mod mfa;
mod passkeys;
mod requests;
mod routes;
mod tokens;

use routes::ROUTES;

use requests::{NativeLoginRequest, PasswordChangeRequest, RefreshRequest, RegisterRequest};

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
    let outcome = call
        .auth
        .sessions()
        .begin_login(
            &body.email,
            body.password,
            call.client(),
            session_terms(&call, ACCESS_TTL),
        )
        .await?;
    mfa::login_answer(&call, &outcome, transport)
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
            &body.proof,
            call.client(),
        )
        .await?;
    Ok(Response::empty(204))
}
