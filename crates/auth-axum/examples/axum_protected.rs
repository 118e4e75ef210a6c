//! A tiny app of its own that mounts the auth API and protects one route.
//!
//! `cargo run -p auth-axum --example axum_protected`, then register and call
//! `curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/hello`.

use std::net::SocketAddr;
use std::sync::Arc;

use auth_axum::AuthUser;
use auth_core::{App, Auth, Config, MountSpec};
use auth_diesel::DieselStore;
use axum::Router;
use axum::routing::get;

async fn hello(user: AuthUser) -> String {
    format!("hello, {}\n", user.user.email)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let store = Arc::new(DieselStore::connect("example-axum.db", 4)?);
    let config = Config {
        signing: auth_core::Signing::Hs256 {
            secret: b"example secret, use a random one of 32+ bytes".to_vec(),
        },
        ..Config::default()
    };
    let app = App::new(
        Arc::new(Auth::new(store, config)?),
        &MountSpec::parse_list("native")?,
    )?;
    let router = auth_axum::mount(app, Router::new().route("/hello", get(hello)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
