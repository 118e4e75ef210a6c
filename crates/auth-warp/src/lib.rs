//! warp adapter for the auth toolkit.
//!
//! - [`mount`]: a filter serving every auth route, then your own routes, with
//!   [`AuthRejection`]s of your routes recovered into their responses.
//! - [`AuthUser`]: the signed-in user of a request, extracted by [`auth_user`] (warp's idiom
//!   for an extractor is a filter).
//! - [`AuthRejection`]: why [`auth_user`] refused, answered as the auth API's own error.
//!
//! `auth-axum` and `auth-actix` export the same names for the same roles; docs/adapters.md
//! is the contract. All behaviour lives in `auth-core`; this crate only converts.

mod convert;
mod extract;
mod mount;
mod rejection;

pub use extract::{AuthUser, auth_user};
pub use mount::mount;
pub use rejection::AuthRejection;
