//! The auth toolkit for your own app: [`Builder`] gives a library user what `auth-server
//! serve` does (the database opened and migrated, a generated signing secret kept sealed in
//! it, the core's defaults, the background tasks), in one call, and [`kek`] is the one
//! implementation of where the key-encryption key comes from, which the server uses too.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let app = auth_toolkit::Builder::from_env().build().await?;
//! // then: auth_axum::mount(app, your_routes), auth_actix::mount, or auth_warp::mount
//! # drop(app); Ok(()) }
//! ```

mod builder;
pub mod kek;

pub use builder::Builder;
