//! How `native` hands a session over (issue 12, rule 2): as bearer tokens in the body (the
//! default, as before), or to a browser as `HttpOnly` cookies that page scripts never read,
//! with a body of `{user, expires_in, csrf_token}` and no token string at all. Register, login
//! and refresh take `"transport"` in their body; a refresh by the refresh cookie answers by
//! cookie unless told otherwise.

use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{OneOfBuilder, Schema};

use super::Call;
use super::body::UserBody;
use crate::cookie::{self, SessionCookies};
use crate::error::Error;
use crate::http::Response;
use crate::service::TokenPair;
use crate::store::UserRecord;
use crate::validate::Fields;

/// Where a session's tokens go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// In the body, for clients that keep them (the default).
    Bearer,
    /// In `HttpOnly` cookies, for browser apps; the body carries the CSRF token instead.
    Cookie,
}

/// The accepted values of `transport`, in [`Transport`]'s order.
const NAMES: &[&str] = &["bearer", "cookie"];

impl Transport {
    /// Reads the optional `transport` field: `bearer` or `cookie`, anything else is a
    /// validation error of that field.
    pub fn decode(fields: &mut Fields) -> Option<Self> {
        fields
            .optional_one_of("transport", NAMES)
            .map(|index| match index {
                0 => Transport::Bearer,
                _ => Transport::Cookie,
            })
    }
}

/// `{user, expires_in, csrf_token}`: the body of a session handed over by cookie. The page
/// keeps `csrf_token` (it is the session's, the same across refreshes) and sends it as
/// `X-CSRF-Token` with every state change.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CookieSessionBody<'a> {
    user: UserBody<'a>,
    /// Lifetime of the access cookie in seconds.
    expires_in: u64,
    /// The session's CSRF token, for `X-CSRF-Token`.
    csrf_token: String,
}

/// [`super::SchemaFn`] of an answer that is `T`, or with the cookie transport a
/// [`CookieSessionBody`].
pub fn or_cookie_session<T: utoipa::ToSchema>(
    components: &mut Vec<(String, RefOr<Schema>)>,
) -> RefOr<Schema> {
    let bearer = super::schema_of::<T>(components);
    let cookie = super::schema_of::<CookieSessionBody<'static>>(components);
    OneOfBuilder::new().item(bearer).item(cookie).into()
}

/// The path the refresh cookie is scoped to: the mount's refresh route.
pub fn refresh_path(call: &Call<'_>) -> String {
    format!("{}/refresh", call.prefix)
}

/// The answer that hands `user`'s session to a browser: the body without tokens, and the two
/// cookies that carry them.
pub fn cookie_answer(
    call: &Call<'_>,
    status: u16,
    user: &UserRecord,
    pair: &TokenPair,
) -> Result<Response, Error> {
    let session_id = pair.session_id().ok_or(Error::Internal)?;
    let body = CookieSessionBody {
        user: UserBody::new(user),
        expires_in: pair.expires_in,
        csrf_token: call.auth.csrf().token_for(session_id),
    };
    let [access, refresh] = cookie::set(
        call.auth.config(),
        &refresh_path(call),
        SessionCookies {
            access_token: &pair.access_token,
            access_max_age: pair.expires_in,
            refresh_token: &pair.refresh_token,
            refresh_max_age: pair.refresh_expires_in,
        },
    );
    Ok(Response::json(status, &body)
        .with_header("set-cookie", access)
        .with_header("set-cookie", refresh))
}

/// `response` with both session cookies cleared (`Max-Age=0`).
pub fn clear_cookies(call: &Call<'_>, response: Response) -> Response {
    let [access, refresh] = cookie::clear(call.auth.config(), &refresh_path(call));
    response
        .with_header("set-cookie", access)
        .with_header("set-cookie", refresh)
}

/// The refresh token of the request's refresh cookie, if it sent one.
pub fn refresh_cookie<'c>(call: &'c Call<'_>) -> Option<&'c str> {
    let name = cookie::refresh_name(call.auth.config());
    cookie::read(call.request.headers.cookie.as_deref(), name)
}
