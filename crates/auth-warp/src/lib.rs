//! warp adapter for the auth toolkit.
//!
//! [`routes`] is a filter serving every route of an [`auth_core::App`]; [`auth_user`] is a
//! filter yielding the signed-in user for your own routes (combine with [`recover`]).
//! All behaviour lives in `auth-core`; this crate only converts requests and responses.

mod convert;
mod extract;

pub use convert::routes;
pub use extract::{AuthUser, Rejection, auth_user, recover};
