//! CORS for browser apps on other origins (the Fetch standard's rules): an exact allow-list,
//! credentials allowed, so never a wildcard. An origin not on the list is treated as if CORS
//! were off: its answers carry no CORS headers, which makes the browser withhold them from the
//! page, and its preflight gets what it gets without CORS (405 in the profile's shape).

use crate::config::Config;
use crate::http::{Request, Response};

/// Methods a preflight is told the API answers.
pub const ALLOW_METHODS: &str = "GET, HEAD, POST, PUT, PATCH, DELETE";
/// Request headers a page may send: the bearer token, the JSON body, the CSRF token, its own
/// request id.
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, X-CSRF-Token, X-Request-Id";
/// Response headers a page may read beyond the safelisted ones.
pub const EXPOSE_HEADERS: &str = "WWW-Authenticate, Retry-After, X-Request-Id";
/// Seconds a browser may keep a preflight's answer (Chromium caps this at 7,200).
pub const MAX_AGE_SECS: u64 = 600;

/// The allowed origin of a request: its `Origin`, when that is on the list.
pub fn allowed_origin<'r>(config: &Config, request: &'r Request) -> Option<&'r str> {
    let origin = request.headers.origin.as_deref()?;
    config
        .cors_allowed_origins
        .iter()
        .any(|allowed| allowed == origin)
        .then_some(origin)
}

/// Whether a request is a CORS preflight: `OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`. Any other `OPTIONS` is an ordinary request (405).
pub fn is_preflight(request: &Request) -> bool {
    request.method == "OPTIONS"
        && request.headers.origin.is_some()
        && request.headers.access_control_request_method.is_some()
}

/// The answer to a preflight from an allowed origin: 204 and what the page may do.
pub fn preflight(origin: &str) -> Response {
    Response::empty(204)
        .with_header("access-control-allow-origin", origin)
        .with_header("access-control-allow-methods", ALLOW_METHODS)
        .with_header("access-control-allow-headers", ALLOW_HEADERS)
        .with_header("access-control-allow-credentials", "true")
        .with_header("access-control-max-age", MAX_AGE_SECS.to_string())
        .with_header("vary", "Origin")
}

/// Adds to an actual answer (errors included) what lets the page read it; with CORS on,
/// every answer says it varies by `Origin`, so no cache hands one origin's answer to another.
pub fn decorate(config: &Config, origin: Option<&str>, response: Response) -> Response {
    if config.cors_allowed_origins.is_empty() {
        return response;
    }
    let response = response.with_header("vary", "Origin");
    match origin {
        Some(origin) => response
            .with_header("access-control-allow-origin", origin)
            .with_header("access-control-allow-credentials", "true")
            .with_header("access-control-expose-headers", EXPOSE_HEADERS),
        None => response,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Body, RequestHeaders};

    fn request(method: &str, origin: Option<&str>, acrm: Option<&str>) -> Request {
        Request {
            method: method.to_owned(),
            path: "/api/v1/auth/login".to_owned(),
            query: None,
            headers: RequestHeaders {
                origin: origin.map(str::to_owned),
                access_control_request_method: acrm.map(str::to_owned),
                ..RequestHeaders::default()
            },
            client_ip: None,
            body: Body::Complete(bytes::Bytes::new()),
        }
    }

    #[test]
    fn only_listed_origins_are_allowed() {
        let config = Config {
            cors_allowed_origins: vec!["https://app.example".to_owned()],
            ..Config::default()
        };
        let listed = request("POST", Some("https://app.example"), None);
        assert_eq!(
            allowed_origin(&config, &listed),
            Some("https://app.example")
        );
        let other = request("POST", Some("https://evil.example"), None);
        assert_eq!(allowed_origin(&config, &other), None);
        assert_eq!(allowed_origin(&Config::default(), &listed), None);
        let answer = decorate(&config, None, Response::empty(204));
        assert_eq!(answer.header("vary"), Some("Origin"));
        assert_eq!(answer.header("access-control-allow-origin"), None);
        let off = decorate(&Config::default(), None, Response::empty(204));
        assert!(off.headers.is_empty());
    }

    #[test]
    fn a_preflight_needs_origin_and_request_method() {
        assert!(is_preflight(&request("OPTIONS", Some("o"), Some("POST"))));
        assert!(!is_preflight(&request("OPTIONS", Some("o"), None)));
        assert!(!is_preflight(&request("OPTIONS", None, Some("POST"))));
        assert!(!is_preflight(&request("POST", Some("o"), Some("POST"))));
    }
}
