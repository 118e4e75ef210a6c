//! Writing a core response as an axum response.

use auth_core::http::Response as CoreResponse;
use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Writes a core response as an axum response, unchanged.
pub(crate) fn into_response(response: CoreResponse) -> Response {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = (status, Body::from(response.body)).into_response();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            // Appended, not inserted: a session answer sets two cookies.
            out.headers_mut().append(name, value);
        }
    }
    out
}
