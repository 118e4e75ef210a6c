//! The `AuthUser` extractor.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use auth_core::{App, Principal};

use crate::AuthRejection;

/// The signed-in user of a request (bearer access token, personal access token, or the
/// cookie transport's access cookie with `X-CSRF-Token` on state changes), for your own
/// handlers in an `App` configured with [`crate::mount`]. Refuses with [`AuthRejection`]:
/// exactly the answer the auth routes give the same headers.
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

impl std::ops::Deref for AuthUser {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

impl FromRequest for AuthUser {
    type Error = AuthRejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, AuthRejection>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let app = request.app_data::<web::Data<App>>().cloned();
        // The raw bytes (a cheap clone): the core decides what a header that is not UTF-8
        // means, and which headers count (`Authorization`, or the session cookie and
        // `X-CSRF-Token`).
        let headers = request.headers().clone();
        let method = request.method().clone();
        Box::pin(async move {
            let Some(app) = app else {
                return Err(AuthRejection::misconfigured());
            };
            let pairs = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()));
            app.authenticate_request(method.as_str(), pairs)
                .await
                .map(AuthUser)
                .map_err(AuthRejection)
        })
    }
}
