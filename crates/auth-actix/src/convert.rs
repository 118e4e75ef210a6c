//! Writing a core response as an actix response.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use auth_core::http::Response as CoreResponse;

/// Writes a core response as an actix response, unchanged.
pub(crate) fn into_response(response: CoreResponse) -> HttpResponse {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (name, value) in response.headers {
        if name == "connection" && value == "close" {
            // actix manages the Connection header itself; this is how it is told.
            out.force_close();
        } else {
            // Appended, not inserted: a session answer sets two cookies.
            out.append_header((name, value));
        }
    }
    out.body(response.body)
}
