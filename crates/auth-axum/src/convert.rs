//! Request and response conversion, and mounting.

use std::net::SocketAddr;

use auth_core::App;
use auth_core::http::{
    Request as CoreRequest, RequestHeaders, Response as CoreResponse, collect_body,
};
use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

/// A router serving every mounted profile prefix and the fixed paths (`/healthz`), all through
/// [`App::handle`]. Merge it into your own router; serve with
/// `into_make_service_with_connect_info::<SocketAddr>()` so client IPs are known.
pub fn router<S>(app: App) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut router = Router::new();
    for path in app.fixed_paths() {
        router = router.route(path, any(handle));
    }
    for prefix in app.prefixes() {
        router = router
            .route(&prefix, any(handle))
            .route(&format!("{prefix}/{{*rest}}"), any(handle));
    }
    router.layer(extension(app))
}

/// The layer that makes the [`App`] available to [`crate::AuthUser`] in your own routes.
pub fn extension(app: App) -> Extension<App> {
    Extension(app)
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
    let request = CoreRequest {
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers,
        client_ip: parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip()),
        body,
    };
    into_response(app.handle(request).await)
}

/// Writes a core response as an axum response, unchanged.
pub(crate) fn into_response(response: CoreResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = (status, Body::from(response.body)).into_response();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}
