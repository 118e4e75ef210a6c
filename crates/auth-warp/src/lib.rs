//! warp adapter for the auth toolkit.
//!
//! - [`mount`]: a filter serving every auth route, then your own routes, with
//!   [`AuthRejection`]s of your routes recovered into their responses.
//! - [`AuthUser`]: the signed-in user of a request, extracted by [`auth_user`] (warp's idiom
//!   for an extractor is a filter).
//! - [`require_role`]: the same, for a user with a given role (403 otherwise).
//! - [`AuthRejection`]: why [`auth_user`] refused, answered as the auth API's own error; also
//!   [`AuthRejection::from_error`], any `auth_core::Error` answered in the API's shape.
//!
//! `auth-axum` and `auth-actix` export the same names for the same roles; docs/adapters.md
//! is the contract. All behaviour lives in `auth-core`; this crate only converts.

mod convert;
mod extract;
mod guard;
mod mount;
mod rejection;

pub use extract::{AuthUser, auth_user};
pub use guard::require_role;
pub use mount::mount;
pub use rejection::AuthRejection;
