//! actix-web adapter for the auth toolkit.
//!
//! - [`mount`]: a `configure` function for `actix_web::App::configure` that mounts every auth
//!   route and installs the app for [`AuthUser`] in every route of that `App`.
//! - [`AuthUser`]: the signed-in user of a request, a `FromRequest` extractor.
//! - [`RequireRole`]: the same, for a user with a given role (403 otherwise).
//! - [`AuthRejection`]: why [`AuthUser`] refused, answered as the auth API's own error; also
//!   [`AuthRejection::from_error`], any `auth_core::Error` answered in the API's shape.
//!
//! `auth-axum` and `auth-warp` export the same names for the same roles; docs/adapters.md
//! is the contract. All behaviour lives in `auth-core`; this crate only converts.

mod convert;
mod extract;
mod guard;
mod mount;
mod rejection;

pub use extract::AuthUser;
pub use guard::RequireRole;
pub use mount::mount;
pub use rejection::AuthRejection;
