//! The `require_role` filter: a signed-in user with a given role.

use auth_core::App;
use warp::Filter;
use warp::http::{HeaderMap, Method};

use crate::{AuthRejection, AuthUser};

/// A filter yielding the signed-in user when they have the role `role` (e.g.
/// `auth_core::Admin::NAME`, or `"editor"`). Rejects like [`crate::auth_user`] when nobody
/// is signed in, and with the API's own 403 (in the mounted profile's error shape) when the
/// user lacks the role; [`crate::mount`] recovers either into its response.
pub fn require_role(
    app: App,
    role: &'static str,
) -> impl Filter<Extract = (AuthUser,), Error = warp::Rejection> + Clone {
    let request = warp::method().and(warp::header::headers_cloned());
    request.and_then(move |method: Method, headers: HeaderMap| {
        let app = app.clone();
        async move {
            let pairs = headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes()));
            app.authenticate_with_role(method.as_str(), pairs, role)
                .await
                .map(AuthUser)
                .map_err(|response| warp::reject::custom(AuthRejection(response)))
        }
    })
}
