//! Request and response conversion, and mounting.

use actix_web::http::StatusCode;
use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use auth_core::App;
use auth_core::http::{
    Request as CoreRequest, RequestHeaders, Response as CoreResponse, collect_body,
};

/// Mounts every mounted profile prefix and the fixed paths (`/healthz`), all through
/// [`App::handle`], and registers the [`App`] as app data so [`crate::AuthUser`] works in
/// your own routes: `actix_web::App::new().configure(auth_actix::configure(app))`.
pub fn configure(app: App) -> impl FnOnce(&mut ServiceConfig) {
    move |config| {
        config.app_data(web::Data::new(app.clone()));
        for path in app.fixed_paths() {
            config.service(web::resource(path).to(handle));
        }
        for prefix in app.prefixes() {
            config
                .service(web::resource(prefix.as_str()).to(handle))
                .service(web::resource(format!("{prefix}/{{rest:.*}}")).to(handle));
        }
    }
}

async fn handle(app: web::Data<App>, request: HttpRequest, payload: Payload) -> HttpResponse {
    let headers = RequestHeaders::from_pairs(
        request
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    let body = collect_body(payload, app.body_limit(), headers.content_length).await;
    let core_request = CoreRequest {
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        headers,
        client_ip: request.peer_addr().map(|addr| addr.ip()),
        body,
    };
    into_response(app.handle(core_request).await)
}

/// Writes a core response as an actix response, unchanged.
pub(crate) fn into_response(response: CoreResponse) -> HttpResponse {
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = HttpResponse::build(status);
    for (name, value) in response.headers {
        if name == "connection" && value == "close" {
            // actix manages the Connection header itself; this is how it is told.
            out.force_close();
        } else {
            out.insert_header((name, value));
        }
    }
    out.body(response.body)
}
