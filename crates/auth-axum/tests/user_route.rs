//! The user's own route answers bad credentials exactly as the auth routes do.

mod support;

use std::net::SocketAddr;

use auth_axum::{AuthUser, RequireRole};
use axum::Router;
use axum::routing::get;

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
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            listener.set_nonblocking(true).expect("non-blocking");
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            let router = auth_axum::mount(
                app,
                Router::new()
                    .route(support::OWN_ROUTE, get(hello).post(hello))
                    .route(support::ADMIN_ROUTE, get(admin_only)),
            );
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("serves");
        });
    });
    support::assert_own_route_answers_like_the_core(addr);
    support::assert_role_guard(addr);
}
