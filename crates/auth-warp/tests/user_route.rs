//! The user's own route answers bad credentials exactly as the auth routes do.

#[path = "../../auth-axum/tests/support/mod.rs"]
mod support;

use auth_core::RequiredRole as _;
use auth_warp::AuthUser;
use warp::Filter;

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
            let hello = warp::path!("hello")
                .and(warp::get().or(warp::post()).unify())
                .and(auth_warp::auth_user(app.clone()))
                .map(|user: AuthUser| support::hello(&user.user.email));
            let admin_only = warp::path!("admin-only")
                .and(warp::get())
                .and(auth_warp::require_role(app.clone(), auth_core::Admin::NAME))
                .map(|user: AuthUser| support::admin_hello(&user.user.email));
            let routes = auth_warp::mount(app, hello.or(admin_only));
            warp::serve(routes).incoming(listener).run().await;
        });
    });
    support::assert_own_route_answers_like_the_core(addr);
    support::assert_role_guard(addr);
}
