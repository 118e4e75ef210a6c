//! The `AuthUser` type and the `auth_user` filter.

use auth_core::{App, Principal};
use warp::Filter;
use warp::http::HeaderValue;

use crate::AuthRejection;

/// The signed-in user of a request (bearer access token or personal access token), as
/// extracted by [`auth_user`].
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

impl std::ops::Deref for AuthUser {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// A filter yielding the signed-in user, or rejecting with [`AuthRejection`]: exactly the
/// answer the auth routes give the same `Authorization` header, once the routes using it
/// are given to [`crate::mount`].
pub fn auth_user(app: App) -> impl Filter<Extract = (AuthUser,), Error = warp::Rejection> + Clone {
    // The raw value, not `warp::header::optional::<String>`: that one answers a header that is
    // not UTF-8 with warp's own 400, and the core decides what such a header means.
    let authorization = warp::header::value("authorization")
        .map(Some)
        .or(warp::any().map(|| None))
        .unify();
    authorization.and_then(move |authorization: Option<HeaderValue>| {
        let app = app.clone();
        async move {
            app.authenticate_header(authorization.as_ref().map(HeaderValue::as_bytes))
                .await
                .map(AuthUser)
                .map_err(|response| warp::reject::custom(AuthRejection(response)))
        }
    })
}
