//! A tiny app of its own that mounts the auth API and protects one route.
//!
//! `cargo run -p auth-actix --example actix_protected`, then register and call
//! `curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/hello`.

use std::sync::Arc;

use actix_web::{HttpServer, web};
use auth_actix::AuthUser;
use auth_core::{App, Auth, Config, MountSpec};
use auth_diesel::DieselStore;

async fn hello(user: AuthUser) -> String {
    format!("hello, {}\n", user.user.email)
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let store = Arc::new(DieselStore::connect("example-actix.db", 4)?);
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
    HttpServer::new(move || {
        actix_web::App::new()
            .configure(auth_actix::mount(app.clone()))
            .route("/hello", web::get().to(hello))
    })
    .bind("127.0.0.1:3000")?
    .run()
    .await?;
    Ok(())
}
