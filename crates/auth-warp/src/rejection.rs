//! The `AuthRejection` type.

use warp::reject::Reject;

/// Why [`crate::auth_user`] refused a request, as the auth API's own error response: the
/// core's 401 with `WWW-Authenticate` for a missing, malformed or invalid token, in the
/// mounted profile's error shape. [`crate::mount`] recovers it into that response for the
/// routes it is given; elsewhere, find it in a rejection
/// (`rejection.find::<AuthRejection>()`) and answer with it: it is a [`warp::Reply`],
/// written unchanged.
#[derive(Debug, Clone)]
pub struct AuthRejection(pub(crate) auth_core::Response);

impl AuthRejection {
    /// `err` answered as the auth API answers it (status, headers, the mounted profile's
    /// error shape), e.g. `AuthRejection::from_error(&app, &auth_core::Error::Forbidden)`
    /// for a 403 of your own; `app` is the one given to [`crate::mount`].
    pub fn from_error(app: &auth_core::App, err: &auth_core::Error) -> Self {
        Self(app.error_answer(err))
    }
}

impl Reject for AuthRejection {}

impl warp::Reply for AuthRejection {
    fn into_response(self) -> warp::reply::Response {
        crate::convert::into_response(self.0)
    }
}

impl std::fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "authentication refused ({})", self.0.status)
    }
}

impl std::error::Error for AuthRejection {}
