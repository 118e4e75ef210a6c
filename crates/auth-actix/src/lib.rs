//! actix-web adapter for the auth toolkit.
//!
//! [`configure`] mounts every route of an [`auth_core::App`] into an actix `ServiceConfig`;
//! [`AuthUser`] extracts the signed-in user in your own handlers.
//! All behaviour lives in `auth-core`; this crate only converts requests and responses.

mod convert;
mod extract;

pub use convert::configure;
pub use extract::AuthUser;
