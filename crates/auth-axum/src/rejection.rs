//! The `AuthRejection` type.

use axum::response::{IntoResponse, Response};

/// Why [`crate::AuthUser`] or [`crate::RequireRole`] refused a request, as the auth API's
/// own error response: the core's 401 with `WWW-Authenticate` for a missing, malformed or
/// invalid token, 403 for a missing role, in the mounted profile's error shape; a 500 naming what to add when [`crate::mount`] does not
/// cover the route. Return it from your own handlers (it is [`IntoResponse`]); it is written
/// unchanged.
#[derive(Debug, Clone)]
pub struct AuthRejection(pub(crate) auth_core::Response);

impl AuthRejection {
    /// `err` answered as the auth API answers it (status, headers, the mounted profile's
    /// error shape), e.g. `AuthRejection::from_error(&app, &auth_core::Error::Forbidden)`
    /// for a 403 of your own; `app` is the one given to [`crate::mount`] (an
    /// `Extension<auth_core::App>` in your handlers).
    pub fn from_error(app: &auth_core::App, err: &auth_core::Error) -> Self {
        Self(app.error_answer(err))
    }

    /// The rejection of an `AuthUser` used where [`crate::mount`] did not install the app.
    pub(crate) fn misconfigured() -> Self {
        Self(auth_core::Response::misconfigured(
            "Can't extract AuthUser. Is this route in the router given to \
             `auth_axum::mount(app, router)`? Routes added after `mount` are not.",
        ))
    }
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        crate::convert::into_response(self.0)
    }
}

impl std::fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "authentication refused ({})", self.0.status)
    }
}

impl std::error::Error for AuthRejection {}
