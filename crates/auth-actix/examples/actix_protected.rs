//! An app of its own that mounts the auth API: a public route, a protected one and one only
//! admins may use, configured from the environment.
//!
//! `cargo run -p auth-actix --example actix_protected`, then register and call
//! `curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/hello`. Environment:
//! `AUTH_JWT_SECRET` (32+ random bytes; a fixed example secret otherwise, with a warning),
//! `DATABASE_URL` (default `sqlite://example-actix.db`), `PORT` (default 3000; 0 picks a free
//! one). `auth-server user create --database-url ... --role admin EMAIL` makes an admin.

use std::sync::Arc;

use actix_web::{HttpServer, web};
use auth_actix::{AuthUser, RequireRole};
use auth_core::{App, Auth, Config, MountSpec};
use auth_diesel::DieselStore;

async fn hello(user: AuthUser) -> String {
    format!("hello, {}\n", user.user.email)
}

async fn admin_only(admin: RequireRole<auth_core::Admin>) -> String {
    format!("admin, {}\n", admin.user.email)
}

async fn public() -> &'static str {
    "open to everyone\n"
}

/// The example's settings, from the environment.
fn settings() -> Result<(Config, String, u16), Box<dyn std::error::Error>> {
    let secret = match std::env::var("AUTH_JWT_SECRET") {
        Ok(secret) => secret.into_bytes(),
        Err(_) => {
            tracing::warn!("AUTH_JWT_SECRET is not set: using the example's fixed secret");
            b"example secret, use a random one of 32+ bytes".to_vec()
        }
    };
    let database =
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://example-actix.db".into());
    let port = std::env::var("PORT").map_or(Ok(3000), |port| port.parse())?;
    let config = Config {
        signing: auth_core::Signing::Hs256 { secret },
        ..Config::default()
    };
    Ok((config, database, port))
}

fn build(config: Config, database: &str) -> Result<App, Box<dyn std::error::Error>> {
    // Opens and migrates the database: blocking, so before serving.
    let store = Arc::new(DieselStore::connect(database, 4)?);
    Ok(App::new(
        Arc::new(Auth::new(store, config)?),
        &MountSpec::parse_list("native")?,
    )?)
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let (config, database, port) = settings()?;
    let app = build(config, &database)?;
    let server = HttpServer::new(move || {
        actix_web::App::new()
            .configure(auth_actix::mount(app.clone()))
            .route("/", web::get().to(public))
            .route("/hello", web::get().to(hello))
            .route("/admin-only", web::get().to(admin_only))
    })
    .bind(("127.0.0.1", port))?;
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    server.run().await?;
    Ok(())
}
