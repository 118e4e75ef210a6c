//! The user's own route answers bad credentials exactly as the auth routes do.

#[path = "../../auth-axum/tests/support/mod.rs"]
mod support;

use actix_web::{HttpServer, web};
use auth_actix::{AuthUser, RequireRole};

async fn hello(user: AuthUser) -> String {
    support::hello(&user.user.email)
}

async fn admin_only(admin: RequireRole<auth_core::Admin>) -> String {
    support::admin_hello(&admin.user.email)
}

#[test]
fn own_route_answers_bad_authorization_like_the_core() {
    let app = support::app();
    support::create_admin(&app);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().expect("bound");
    // The example app, served on a thread of its own so the test can block on sockets.
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            HttpServer::new(move || {
                actix_web::App::new()
                    .configure(auth_actix::mount(app.clone()))
                    .route(support::OWN_ROUTE, web::get().to(hello))
                    .route(support::OWN_ROUTE, web::post().to(hello))
                    .route(support::ADMIN_ROUTE, web::get().to(admin_only))
            })
            .workers(1)
            .listen(listener)
            .expect("listens")
            .run()
            .await
            .expect("serves");
        });
    });
    support::assert_own_route_answers_like_the_core(addr);
    support::assert_role_guard(addr);
}
