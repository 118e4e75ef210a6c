//! An app of its own that mounts the auth API: a public route, a protected one and one only
//! admins may use, configured from the environment.
//!
//! `cargo run -p auth-warp --example warp_protected`, then register and call
//! `curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/hello`. Environment:
//! `AUTH_JWT_SECRET` (32+ random bytes; a fixed example secret otherwise, with a warning),
//! `DATABASE_URL` (default `sqlite://example-warp.db`), `PORT` (default 3000; 0 picks a free
//! one). `auth-server user create --database-url ... --role admin EMAIL` makes an admin.

use std::sync::Arc;

use auth_core::{App, Auth, Config, MountSpec, RequiredRole as _};
use auth_diesel::DieselStore;
use auth_warp::AuthUser;
use warp::Filter;

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
        std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://example-warp.db".into());
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
    let public = warp::path::end().map(|| "open to everyone\n");
    let hello = warp::path!("hello")
        .and(auth_warp::auth_user(app.clone()))
        .map(|user: AuthUser| format!("hello, {}\n", user.user.email));
    let admin_only = warp::path!("admin-only")
        .and(auth_warp::require_role(app.clone(), auth_core::Admin::NAME))
        .map(|admin: AuthUser| format!("admin, {}\n", admin.user.email));
    let routes = auth_warp::mount(app, public.or(hello).or(admin_only));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    warp::serve(routes).incoming(listener).run().await;
    Ok(())
}
