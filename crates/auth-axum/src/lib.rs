//! axum adapter for the auth toolkit.
//!
//! [`router`] mounts every route of an [`auth_core::App`]; [`AuthUser`] extracts the signed-in
//! user in your own handlers once [`extension`] is layered on your router.
//! All behaviour lives in `auth-core`; this crate only converts requests and responses.

mod convert;
mod extract;

pub use convert::{extension, router};
pub use extract::AuthUser;
