//! Mounting the auth routes into a router.

use std::net::SocketAddr;

use auth_core::App;
use auth_core::http::{Request as CoreRequest, RequestHeaders, collect_body};
use axum::Router;
use axum::extract::{ConnectInfo, Extension, Request};
use axum::response::Response;
use axum::routing::any;

use crate::convert::into_response;

/// `routes` with every auth route of `app` merged in (each profile prefix and everything
/// below it, and the fixed paths such as `/healthz`, all answered by [`App::handle`]), and
/// `app` installed for [`crate::AuthUser`] in every route `routes` already has. Routes added
/// after `mount` do not see the app (their `AuthUser` answers a 500 saying so): add them
/// before. Serve with `into_make_service_with_connect_info::<SocketAddr>()` so client IPs
/// are known.
pub fn mount<S>(app: App, routes: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut auth = Router::new();
    for path in app.fixed_paths() {
        auth = auth.route(path, any(handle));
    }
    for prefix in app.prefixes() {
        auth = auth
            .route(&prefix, any(handle))
            .route(&format!("{prefix}/{{*rest}}"), any(handle));
    }
    // One layer over both, so the auth routes and the user's `AuthUser` find the same app.
    routes.merge(auth).layer(Extension(app))
}

async fn handle(Extension(app): Extension<App>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = RequestHeaders::from_pairs(
        parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    let body = collect_body(
        body.into_data_stream(),
        app.body_limit(),
        headers.content_length,
    )
    .await;
    let client_ip = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    if client_ip.is_none() {
        app.unknown_peer(
            "serve the router with `into_make_service_with_connect_info::<SocketAddr>()`",
        );
    }
    let request = CoreRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        client_ip,
        body,
    };
    into_response(app.handle(request).await)
}
