//! An app of its own that mounts the auth API: a public route, a protected one and one only
//! admins may use, configured from the environment.
//!
//! `cargo run -p auth-axum --example axum_protected`, then register and call
//! `curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/hello`. Environment:
//! `AUTH_JWT_SECRET` (32+ random bytes; a fixed example secret otherwise, with a warning),
//! `DATABASE_URL` (default `sqlite://example-axum.db`), `PORT` (default 3000; 0 picks a free
//! one). `auth-server user create --database-url ... --role admin EMAIL` makes an admin.

use std::net::SocketAddr;
use std::sync::Arc;

use auth_axum::{AuthUser, RequireRole};
use auth_core::{App, Auth, Config, MountSpec};
use auth_diesel::DieselStore;
use axum::Router;
use axum::routing::get;

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
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://example-axum.db".into());
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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let (config, database, port) = settings()?;
    let app = build(config, &database)?;
    let routes = Router::new()
        .route("/", get(public))
        .route("/hello", get(hello))
        .route("/admin-only", get(admin_only));
    let router = auth_axum::mount(app, routes);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await?;
    Ok(())
}
