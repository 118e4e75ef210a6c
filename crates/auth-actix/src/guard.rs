//! The `RequireRole` extractor: a signed-in user with a given role.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use auth_core::{App, Principal, RequiredRole};

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

impl<R: RequiredRole> FromRequest for RequireRole<R> {
    type Error = AuthRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AuthRejection>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let app = request.app_data::<web::Data<App>>().cloned();
        let headers = request.headers().clone();
        let method = request.method().clone();
        Box::pin(async move {
            let Some(app) = app else {
                return Err(AuthRejection::misconfigured());
            };
            let pairs = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()));
            let principal = app
                .authenticate_with_role(method.as_str(), pairs, R::NAME)
                .await
                .map_err(AuthRejection)?;
            Ok(Self(AuthUser(principal), PhantomData))
        })
    }
}
