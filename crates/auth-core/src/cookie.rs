//! The cookies of the cookie transport (issue 12, rule 2): what `Set-Cookie` says when a
//! session's tokens go to a browser that page scripts must never let read them, and how a
//! request's `Cookie` header gives them back.
//!
//! Two cookies, both `HttpOnly` and `SameSite` as configured (`Lax` by default):
//! - the access token, on `Path=/`, so it reaches every route (and the adapters'
//!   extractors on the application's own routes); `Max-Age` is the token's lifetime;
//! - the refresh token, only on the refresh route's path, so no other request carries it;
//!   `Max-Age` is the refresh token's lifetime.
//!
//! With `Secure` (the default) they are named `__Host-auth_access` (the browser then refuses
//! it unless `Secure`, on `/`, with no `Domain`: no sibling subdomain can plant or shadow it)
//! and `__Secure-auth_refresh`; without (plain-HTTP development) `auth_access` and
//! `auth_refresh`.

use crate::config::{Config, SameSite};

/// The access cookie's name with `Secure`.
pub const ACCESS_SECURE: &str = "__Host-auth_access";
/// The access cookie's name without `Secure`.
pub const ACCESS_PLAIN: &str = "auth_access";
/// The refresh cookie's name with `Secure`.
pub const REFRESH_SECURE: &str = "__Secure-auth_refresh";
/// The refresh cookie's name without `Secure`.
pub const REFRESH_PLAIN: &str = "auth_refresh";

/// The access cookie's name under `config`.
pub fn access_name(config: &Config) -> &'static str {
    if config.cookie_secure {
        ACCESS_SECURE
    } else {
        ACCESS_PLAIN
    }
}

/// The refresh cookie's name under `config`.
pub fn refresh_name(config: &Config) -> &'static str {
    if config.cookie_secure {
        REFRESH_SECURE
    } else {
        REFRESH_PLAIN
    }
}

/// The value of the first cookie named `name` in a `Cookie` header (`a=1; b=2`), if any.
/// Browsers send the cookie of the longest path first, so the first is the one that applies.
pub fn read<'h>(header: Option<&'h str>, name: &str) -> Option<&'h str> {
    header?.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

/// The `Set-Cookie` of one session cookie: `name=value` on `path`, living `max_age` seconds
/// (0 clears it).
fn render(config: &Config, name: &str, value: &str, path: &str, max_age: u64) -> String {
    let secure = if config.cookie_secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite={}{secure}",
        config.cookie_same_site.as_str()
    )
}

/// A session's tokens, as the two cookies that carry them.
#[derive(Clone, Copy)]
pub struct SessionCookies<'a> {
    /// The JWT access token.
    pub access_token: &'a str,
    /// Lifetime of the access token.
    pub access_max_age: u64,
    /// The refresh token.
    pub refresh_token: &'a str,
    /// Lifetime of the refresh token.
    pub refresh_max_age: u64,
}

impl std::fmt::Debug for SessionCookies<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookies").finish_non_exhaustive()
    }
}

/// The two `Set-Cookie` values that hand a browser its session (the refresh cookie on
/// `refresh_path`).
pub fn set(config: &Config, refresh_path: &str, cookies: SessionCookies<'_>) -> [String; 2] {
    [
        render(
            config,
            access_name(config),
            cookies.access_token,
            "/",
            cookies.access_max_age,
        ),
        render(
            config,
            refresh_name(config),
            cookies.refresh_token,
            refresh_path,
            cookies.refresh_max_age,
        ),
    ]
}

/// The two `Set-Cookie` values that make a browser forget its session (`Max-Age=0`, same
/// names and paths as [`set`]).
pub fn clear(config: &Config, refresh_path: &str) -> [String; 2] {
    [
        render(config, access_name(config), "", "/", 0),
        render(config, refresh_name(config), "", refresh_path, 0),
    ]
}

/// Whether `same_site` with `secure` is a pair browsers accept (`None` needs `Secure`).
pub fn accepted_by_browsers(same_site: SameSite, secure: bool) -> bool {
    secure || same_site != SameSite::None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_read_from_a_header() {
        let header = Some("a=1; __Host-auth_access=eyJ.x.y ; b=\"2\"; a=3");
        assert_eq!(read(header, "a"), Some("1"));
        assert_eq!(read(header, ACCESS_SECURE), Some("eyJ.x.y"));
        assert_eq!(read(header, "b"), Some("2"));
        assert_eq!(read(header, "c"), None);
        assert_eq!(read(Some("garbage"), "garbage"), None);
        assert_eq!(read(None, "a"), None);
    }

    #[test]
    fn set_and_clear_name_the_same_cookies() {
        let mut config = Config::default();
        let cookies = SessionCookies {
            access_token: "A",
            access_max_age: 60,
            refresh_token: "R",
            refresh_max_age: 600,
        };
        let [access, refresh] = set(&config, "/api/v1/auth/refresh", cookies);
        assert_eq!(
            access,
            "__Host-auth_access=A; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        assert_eq!(
            refresh,
            "__Secure-auth_refresh=R; Path=/api/v1/auth/refresh; Max-Age=600; HttpOnly; \
             SameSite=Lax; Secure"
        );
        config.cookie_secure = false;
        config.cookie_same_site = SameSite::Strict;
        let [access, refresh] = clear(&config, "/auth/refresh");
        assert_eq!(
            access,
            "auth_access=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"
        );
        assert_eq!(
            refresh,
            "auth_refresh=; Path=/auth/refresh; Max-Age=0; HttpOnly; SameSite=Strict"
        );
        assert!(!accepted_by_browsers(SameSite::None, false));
        assert!(accepted_by_browsers(SameSite::None, true));
    }
}
