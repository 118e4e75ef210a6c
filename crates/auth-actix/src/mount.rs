//! Mounting the auth routes into a `ServiceConfig`.

use actix_web::web::{self, Payload, ServiceConfig};
use actix_web::{HttpRequest, HttpResponse};
use auth_core::App;
use auth_core::http::{Request as CoreRequest, RequestHeaders, collect_body};

use crate::convert::into_response;

/// For `actix_web::App::new().configure(auth_actix::mount(app))`: mounts every auth route of
/// `app` (each profile prefix and everything below it, and the fixed paths such as
/// `/healthz`, all answered by [`App::handle`]) and registers `app` as app data, so
/// [`crate::AuthUser`] works in every route of that actix `App`, before or after.
pub fn mount(app: App) -> impl FnOnce(&mut ServiceConfig) {
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
    let client_ip = request.peer_addr().map(|addr| addr.ip());
    if client_ip.is_none() {
        app.unknown_peer("serve the App on a TCP listener (`HttpServer::bind`)");
    }
    let core_request = CoreRequest {
        method: request.method().as_str().to_owned(),
        path: request.uri().path().to_owned(),
        query: request.uri().query().map(str::to_owned),
        headers,
        client_ip,
        body,
    };
    into_response(app.handle(core_request).await)
}
