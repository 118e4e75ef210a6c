//! The `AuthUser` extractor.

use auth_core::{App, Principal};
use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::AuthRejection;

/// The signed-in user of a request (bearer access token or personal access token), for your
/// own handlers in the router given to [`crate::mount`]. Refuses with [`AuthRejection`]:
/// exactly the answer the auth routes give the same `Authorization` header.
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
        // The raw bytes: the core decides what a header that is not UTF-8 means.
        let authorization = parts.headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
        app.authenticate_header(authorization)
            .await
            .map(AuthUser)
            .map_err(AuthRejection)
    }
}
