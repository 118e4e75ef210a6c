//! The `AuthRejection` type.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

/// Why [`crate::AuthUser`] refused a request, as the auth API's own error response: the
/// core's 401 with `WWW-Authenticate` for a missing, malformed or invalid token, in the
/// mounted profile's error shape; a 500 naming what to add when [`crate::mount`] is not
/// applied to the `App`. Return it from your own handlers (it is a [`ResponseError`], so
/// `Result<_, AuthRejection>` works); it is written unchanged.
#[derive(Debug, Clone)]
pub struct AuthRejection(pub(crate) auth_core::Response);

impl AuthRejection {
    /// `err` answered as the auth API answers it (status, headers, the mounted profile's
    /// error shape), e.g. `AuthRejection::from_error(&app, &auth_core::Error::Forbidden)`
    /// for a 403 of your own; `app` is the one given to [`crate::mount`].
    pub fn from_error(app: &auth_core::App, err: &auth_core::Error) -> Self {
        Self(app.error_answer(err))
    }

    /// The rejection of an `AuthUser` used where [`crate::mount`] did not install the app.
    pub(crate) fn misconfigured() -> Self {
        Self(auth_core::Response::misconfigured(
            "Can't extract AuthUser. Is `auth_actix::mount(app)` applied to this App with \
             `.configure(..)`?",
        ))
    }
}

impl ResponseError for AuthRejection {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        crate::convert::into_response(self.0.clone())
    }
}

impl std::fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "authentication refused ({})", self.0.status)
    }
}

impl std::error::Error for AuthRejection {}
