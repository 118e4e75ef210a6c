//! Which credential a request presents, for the API's routes and the adapters' extractors
//! alike: the `Authorization` header when there is one; otherwise, where the cookie transport
//! is taken, the access cookie, whose state changes must prove they come from the page that
//! holds the session (the CSRF token).

use super::Sessions;
use crate::error::Error;
use crate::http::RequestHeaders;
use crate::principal::Principal;

/// Whether a request of `method` only reads: browsers send the cookie with such requests from
/// other sites' links, so they must never change anything (and no route of ours does).
pub fn is_safe_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "OPTIONS")
}

impl Sessions<'_> {
    /// Authenticates a request. The `Authorization` header wins whenever it is sent (bearer
    /// requests are as before and need no CSRF token). Without it, and when `cookies` (the
    /// answering profile takes the cookie transport), the access cookie authenticates; a
    /// request of any method but `GET`, `HEAD` and `OPTIONS` must then carry the session's
    /// `X-CSRF-Token`, or it is refused with [`Error::CsrfFailed`] before anything is done.
    /// Without either: [`Error::MissingToken`].
    pub async fn authenticate_request(
        &self,
        method: &str,
        headers: &RequestHeaders,
        cookies: bool,
    ) -> Result<Principal, Error> {
        let authorization = headers.authorization.as_deref();
        if authorization.is_some() || !cookies {
            return self.authenticate(authorization).await;
        }
        let name = crate::cookie::access_name(&self.0.config);
        let Some(token) = crate::cookie::read(headers.cookie.as_deref(), name) else {
            return Err(Error::MissingToken);
        };
        let principal = self.authenticate_cookie(token).await?;
        if !is_safe_method(method) {
            let presented = headers.csrf_token.as_deref().unwrap_or_default();
            let valid = principal
                .session_id()
                .is_some_and(|session| self.0.csrf.verify(session, presented));
            if !valid {
                return Err(Error::CsrfFailed);
            }
        }
        Ok(principal)
    }
}
