//! Framework-neutral core of the auth toolkit.
//!
//! **Architecture invariant:** this crate knows no HTTP framework and no database driver.
//! Adapters turn framework requests into [`http::Request`]s and call [`App::handle`]; storage
//! crates implement [`store::Store`].
//!
//! The flow: bytes → adapter → [`App`] (the fixed paths, then the route table of each
//! [`mount`]ed [`profile`], size and media-type checks) → a profile handler (decode, validate)
//! → a [`service`] (domain rules, hashing pool, tokens; `auth.accounts()`, `auth.sessions()`,
//! ...) → [`store::Store`] on a dedicated store thread → back up as a [`http::Response`]
//! rendered by the profile. The modules form layers (docs/architecture.md; checked by
//! `tests/tidy.rs`).
//!
//! Feature `test-support` exposes [`testing`]: an in-memory store, a fixed clock and the store
//! contract suite, for tests only.

pub mod app;
pub mod broadcast;
pub mod cache;
pub mod clock;
pub mod config;
pub mod cookie;
pub mod cors;
pub mod error;
pub mod http;
pub mod mail;
mod memo;
pub mod metrics;
pub mod mount;
pub mod openapi;
pub mod passkey;
pub mod password;
pub mod principal;
pub mod profile;
pub mod service;
pub mod store;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
pub mod token;
pub mod validate;
pub mod webhook;
mod workers;

pub use app::App;
pub use config::{Argon2Params, Config, Signing};
pub use error::Error;
pub use http::{Request, Response};
pub use mount::MountSpec;
pub use principal::{Admin, Credential, Principal, RequiredRole};
pub use service::{Auth, Purged};
