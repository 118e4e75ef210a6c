//! The `auth_user` filter.

use auth_core::{App, Principal};
use warp::Filter;
use warp::reject::Reject;

/// The signed-in user of a request (bearer access token or personal access token).
#[derive(Debug, Clone)]
pub struct AuthUser(pub Principal);

impl std::ops::Deref for AuthUser {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// The refusal of [`auth_user`]: carries the auth API's own error response.
/// Turn it into that response with [`recover`].
#[derive(Debug)]
pub struct Rejection(pub auth_core::Response);

impl Reject for Rejection {}

/// A filter yielding the signed-in user, or rejecting with [`Rejection`].
pub fn auth_user(app: App) -> impl Filter<Extract = (AuthUser,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(
        move |authorization: Option<String>| {
            let app = app.clone();
            async move {
                app.authenticate(authorization.as_deref())
                    .await
                    .map(AuthUser)
                    .map_err(|response| warp::reject::custom(Rejection(response)))
            }
        },
    )
}

/// Recovers a [`Rejection`] into its response; passes every other rejection on.
pub async fn recover(rejection: warp::Rejection) -> Result<warp::reply::Response, warp::Rejection> {
    match rejection.find::<Rejection>() {
        Some(Rejection(response)) => Ok(crate::convert::into_response(response.clone())),
        None => Err(rejection),
    }
}
