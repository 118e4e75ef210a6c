//! The `AuthUser` extractor.

use auth_core::{App, Principal};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::Response;

/// The signed-in user of a request (bearer access token or personal access token).
/// Rejects with the same 401 the auth routes give.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

impl std::ops::Deref for AuthUser {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(app) = parts.extensions.get::<App>().cloned() else {
            return Err(misconfigured());
        };
        let authorization = parts
            .headers
            .get(AUTHORIZATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        app.authenticate(authorization.as_deref())
            .await
            .map(AuthUser)
            .map_err(crate::convert::into_response)
    }
}

fn misconfigured() -> Response {
    crate::convert::into_response(auth_core::Response::misconfigured(
        "Can't extract AuthUser. Is `auth_axum::extension(app)` layered on this router?",
    ))
}
