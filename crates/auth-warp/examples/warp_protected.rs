//! A tiny app of its own that mounts the auth API and protects one route.
//!
//! `cargo run -p auth-warp --example warp_protected`, then register and call
//! `curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/hello`.

use std::sync::Arc;

use auth_core::{App, Auth, Config, MountSpec};
use auth_diesel::DieselStore;
use auth_warp::AuthUser;
use warp::Filter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let store = Arc::new(DieselStore::connect("example-warp.db", 4)?);
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
    let hello = warp::path!("hello")
        .and(warp::get())
        .and(auth_warp::auth_user(app.clone()))
        .map(|user: AuthUser| format!("hello, {}\n", user.user.email));
    let routes = auth_warp::mount(app, hello);
    warp::serve(routes).run(([127, 0, 0, 1], 3000)).await;
    Ok(())
}
