//! Framework-neutral core of the auth toolkit.
//!
//! **Architecture invariant:** this crate knows no HTTP framework and no database driver.
//! Adapters turn framework requests into [`http::Request`]s and call [`http::App::handle`];
//! storage crates implement [`store::Store`].
//!
//! The flow: bytes → adapter → [`http::App`] (route table of each mounted [`profile`], size and
//! media-type checks) → a profile handler (decode, validate) → [`service::Auth`] (domain rules,
//! hashing pool, tokens) → [`store::Store`] on a dedicated store thread → back up as a
//! [`http::Response`] rendered by the profile.

pub mod cache;
pub mod config;
pub mod error;
pub mod http;
pub mod openapi;
pub mod password;
pub mod profile;
pub mod service;
pub mod store;
pub mod token;
pub mod validate;
mod workers;

pub use config::{Argon2Params, Config};
pub use error::Error;
pub use http::{App, MountSpec, Request, Response};
pub use service::{Auth, Credential, Principal};
