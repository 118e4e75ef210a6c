//! The `AuthUser` extractor.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpRequest, HttpResponse, ResponseError, web};
use auth_core::{App, Principal};

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

/// Why [`AuthUser`] could not be extracted; renders as the auth API's own error response.
#[derive(Debug)]
pub struct Rejection(auth_core::Response);

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "authentication refused ({})", self.0.status)
    }
}

impl ResponseError for Rejection {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::from_u16(self.0.status)
            .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        crate::convert::into_response(self.0.clone())
    }
}

impl FromRequest for AuthUser {
    type Error = Rejection;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Rejection>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let app = request.app_data::<web::Data<App>>().cloned();
        let authorization = request
            .headers()
            .get(AUTHORIZATION)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        Box::pin(async move {
            let Some(app) = app else {
                return Err(Rejection(misconfigured()));
            };
            app.authenticate(authorization.as_deref())
                .await
                .map(AuthUser)
                .map_err(Rejection)
        })
    }
}

fn misconfigured() -> auth_core::Response {
    auth_core::Response::misconfigured(
        "Can't extract AuthUser. Is `auth_actix::configure(app)` applied to this App?",
    )
}
