//! The `RequireRole` extractor: a signed-in user with a given role.

use std::marker::PhantomData;

use auth_core::{App, Principal, RequiredRole};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::{AuthRejection, AuthUser};

/// The signed-in user of a request who has the role `R` (e.g.
/// `RequireRole<auth_core::Admin>`, or a role of your own: see [`RequiredRole`]). Refuses
/// like [`AuthUser`] when nobody is signed in, and with the API's own 403 (in the mounted
/// profile's error shape) when the user lacks the role.
/// Derefs to the [`Principal`], like [`AuthUser`]: `admin.user.email`.
pub struct RequireRole<R: RequiredRole>(pub AuthUser, PhantomData<fn() -> R>);

impl<R: RequiredRole> std::fmt::Debug for RequireRole<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequireRole")
            .field("role", &R::NAME)
            .field("user", &self.0)
            .finish()
    }
}

impl<R: RequiredRole> std::ops::Deref for RequireRole<R> {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0.0
    }
}

impl<S, R> FromRequestParts<S> for RequireRole<R>
where
    S: Send + Sync,
    R: RequiredRole,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(app) = parts.extensions.get::<App>() else {
            return Err(AuthRejection::misconfigured());
        };
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()));
        let principal = app
            .authenticate_with_role(parts.method.as_str(), headers, R::NAME)
            .await
            .map_err(AuthRejection)?;
        Ok(Self(AuthUser(principal), PhantomData))
    }
}
