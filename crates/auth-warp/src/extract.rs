//! The `AuthUser` type and the `auth_user` filter.

use auth_core::{App, Principal};
use warp::Filter;
use warp::http::{HeaderMap, Method};

use crate::AuthRejection;

/// The signed-in user of a request (bearer access token, personal access token, or the
/// cookie transport's access cookie with `X-CSRF-Token` on state changes), as extracted by
/// [`auth_user`].
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

impl std::ops::Deref for AuthUser {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// A filter yielding the signed-in user, or rejecting with [`AuthRejection`]: exactly the
/// answer the auth routes give the same headers, once the routes using it are given to
/// [`crate::mount`].
pub fn auth_user(app: App) -> impl Filter<Extract = (AuthUser,), Error = warp::Rejection> + Clone {
    // The raw values, not `warp::header::optional::<String>`: that one answers a header that
    // is not UTF-8 with warp's own 400, and the core decides what such a header means, and
    // which headers count (`Authorization`, or the session cookie and `X-CSRF-Token`).
    let request = warp::method().and(warp::header::headers_cloned());
    request.and_then(move |method: Method, headers: HeaderMap| {
        let app = app.clone();
        async move {
            let pairs = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()));
            app.authenticate_request(method.as_str(), pairs)
                .await
                .map(AuthUser)
                .map_err(|response| warp::reject::custom(AuthRejection(response)))
        }
    })
}
