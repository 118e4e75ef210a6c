//! Writing a core response as a warp response.

use auth_core::http::Response as CoreResponse;
use warp::http::{HeaderName, HeaderValue, StatusCode};

/// Writes a core response as a warp response, unchanged.
pub(crate) fn into_response(response: CoreResponse) -> warp::reply::Response {
    let mut out = warp::reply::Response::new(response.body.into());
    *out.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
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
