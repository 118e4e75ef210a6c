//! The `AuthUser` extractor.

use auth_core::{App, Principal};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::AuthRejection;

/// The signed-in user of a request (bearer access token, personal access token, or the
/// cookie transport's access cookie with `X-CSRF-Token` on state changes), for your own
/// handlers in the router given to [`crate::mount`]. Refuses with [`AuthRejection`]: exactly
/// the answer the auth routes give the same headers.
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
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(app) = parts.extensions.get::<App>() else {
            return Err(AuthRejection::misconfigured());
        };
        // The raw bytes: the core decides what a header that is not UTF-8 means, and which
        // headers count (`Authorization`, or the session cookie and `X-CSRF-Token`).
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()));
        app.authenticate_request(parts.method.as_str(), headers)
            .await
            .map(AuthUser)
            .map_err(AuthRejection)
    }
}
