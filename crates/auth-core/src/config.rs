//! Configuration of the core: hashing cost, token lifetimes, limits.

use std::time::Duration;

/// argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory in KiB (default 19456).
    pub memory_kib: u32,
    /// Passes over memory (default 2).
    pub iterations: u32,
    /// Lanes (default 1).
    pub parallelism: u32,
}

impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// At most `max` events per `window`; `max == 0` disables the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed within the window.
    pub max: u64,
    /// The sliding window.
    pub window: Duration,
}

impl Limit {
    /// `max` per `secs` seconds.
    pub const fn per(max: u64, secs: u64) -> Self {
        Self {
            max,
            window: Duration::from_secs(secs),
        }
    }

    /// Parses `MAX/SECONDS`, e.g. `10/900`; `off` disables.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self::per(0, 1));
        }
        let (max, secs) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` must look like MAX/SECONDS or off"))?;
        let max = max
            .trim()
            .parse()
            .map_err(|_| format!("`{max}` is not a count"))?;
        let secs: u64 = secs
            .trim()
            .parse()
            .map_err(|_| format!("`{secs}` is not a number of seconds"))?;
        if secs == 0 {
            return Err("the window must be at least one second".to_owned());
        }
        Ok(Self::per(max, secs))
    }

    /// Whether the limit applies at all.
    pub fn enabled(&self) -> bool {
        self.max > 0
    }
}

/// The rate limits (counters live in the database, shared by every instance).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Failed logins for one email from one client IP (default 10 per 15 minutes).
    pub login_email_ip: Limit,
    /// Failed logins for one email from anywhere (default 100 per hour).
    pub login_email: Limit,
    /// Failed logins from one client IP (default 100 per 15 minutes).
    pub login_ip: Limit,
    /// Registrations from one client IP (default 30 per hour).
    pub register_ip: Limit,
    /// Refreshes from one client IP (default 300 per 15 minutes).
    pub refresh_ip: Limit,
    /// Passkey ceremonies started from one client IP: sign-ins, registrations, step-ups
    /// (default 60 per 10 minutes). Each start stores a challenge, so this bounds what a
    /// client can make the database keep.
    pub passkey_ip: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_email_ip: Limit::per(10, 900),
            login_email: Limit::per(100, 3600),
            login_ip: Limit::per(100, 900),
            register_ip: Limit::per(30, 3600),
            refresh_ip: Limit::per(300, 900),
            passkey_ip: Limit::per(60, 600),
        }
    }
}

/// How access tokens are signed. `Debug` shows the algorithm only.
#[derive(Clone, PartialEq, Eq)]
pub enum Signing {
    /// HS256 with this secret (at least [`MIN_SECRET_LEN`] bytes).
    Hs256 {
        /// The shared secret.
        secret: Vec<u8>,
    },
    /// EdDSA (Ed25519) with keys kept in the database, private parts encrypted with this
    /// 32-byte key-encryption key; the public keys are published as a JWKS.
    EdDsa {
        /// The key-encryption key.
        key_encryption_key: [u8; 32],
    },
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signing::Hs256 { .. } => f.write_str("Hs256 { .. }"),
            Signing::EdDsa { .. } => f.write_str("EdDsa { .. }"),
        }
    }
}

/// Everything the core can be tuned with. `Config::default()` is the production default.
#[derive(Debug, Clone)]
pub struct Config {
    /// `iss` claim written into and required from every access token.
    pub issuer: String,
    /// How access tokens are signed, with the secret or key-encryption key that goes with it
    /// (default: HS256 with an empty secret, which [`crate::Auth::new`] refuses).
    pub signing: Signing,
    /// Leeway for `exp` and `nbf`; clamped to at most 30 s.
    pub leeway: Duration,
    /// Password hashing cost.
    pub argon2: Argon2Params,
    /// How many hashes may run at once (default: one per core).
    pub hashing_slots: usize,
    /// How many hash requests may wait for a slot before new ones get 503.
    pub hashing_queue: usize,
    /// How much nicer than the process the hashing threads run (default 10; 0: the same;
    /// Linux only). With a positive value a login flood still uses every idle cycle, but the
    /// threads serving other requests win whenever they need a core.
    pub hashing_niceness: i32,
    /// Dedicated threads that run store (database) calls (default 8; match the store's
    /// connection pool, since a thread without a connection only waits).
    pub store_threads: usize,
    /// Store calls that may be pending at once, queued or running (default 1024); past it a
    /// request gets 503 with `Retry-After` at once instead of queueing without bound.
    pub store_queue: usize,
    /// How long the store threads may all be stuck (none starting or finishing a call, e.g.
    /// every database connection waiting on a lock) before a waiting store call is refused
    /// (default 500 ms): the request gets 503 with `Retry-After` and the call never runs.
    /// Requests are answered within about this instead of waiting as long as the threads
    /// stay stuck; a busy pool that keeps moving serves its queue as before.
    pub store_wait: Duration,
    /// Lifetime of refresh tokens and of the sessions they keep alive (default 30 days).
    pub refresh_ttl: Duration,
    /// How long a used refresh token may be replayed for the same answer (default 10 s).
    pub refresh_reuse_interval: Duration,
    /// Absolute lifetime of a session, counted from its login (default 90 days): no rotation
    /// extends it, and no access or refresh token of the session outlives it.
    pub session_lifetime: Duration,
    /// Largest accepted request body (default 64 KiB).
    pub body_limit: usize,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// Peers whose `X-Forwarded-For` is believed, addresses or ranges (default: none, so the
    /// peer address counts).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A client address from which an email logged in successfully within this window is
    /// held only to the email+IP login limit (default 30 days; zero: no address is known).
    pub known_address_window: Duration,
    /// IPv6 clients are counted per network of this prefix length (default 64: one
    /// customer's network; 48 counts whole sites together). IPv4 clients per address.
    pub ipv6_prefix_len: u8,
    /// Refuse the 10,000 most common passwords wherever a password is set (default on;
    /// turning it off is an explicit choice).
    pub refuse_common_passwords: bool,
    /// How long an authenticated session or personal token is trusted without asking the
    /// database again (default 1 s; zero disables). Revocations on this instance apply at once,
    /// on other instances within this lifetime.
    pub principal_cache_ttl: Duration,
    /// How often the background purger (started with `Auth::start_purger`) deletes expired
    /// sessions, personal tokens, rate-limit counters and stale known addresses (default
    /// 5 min; zero: no purger).
    pub purge_interval: Duration,
    /// How long audit-log events are kept: the background purger deletes older ones (default
    /// 90 days; zero keeps them forever).
    pub audit_retention: Duration,
    /// Browser origins allowed to call the API with credentials (CORS), each exact and
    /// normalised by [`parse_allowed_origin`] (default: none, so no CORS headers at all).
    pub cors_allowed_origins: Vec<String>,
    /// Whether the cookies of the cookie transport are `Secure` (default on; off only for
    /// plain-HTTP development). `Secure` cookies are named `__Host-auth_access` and
    /// `__Secure-auth_refresh`, plain ones `auth_access` and `auth_refresh`.
    pub cookie_secure: bool,
    /// The `SameSite` of those cookies (default `Lax`).
    pub cookie_same_site: SameSite,
    /// The account lifecycle over email: links, lifetimes, limits, templates.
    pub mail: MailSettings,
    /// Second factors and passkeys.
    pub mfa: MfaSettings,
}

/// How second factors and passkeys behave (issue 15).
#[derive(Debug, Clone, Default)]
pub struct MfaSettings {
    /// The issuer an authenticator app shows next to a TOTP account (default: the token
    /// issuer, [`Config::issuer`]).
    pub totp_issuer: Option<String>,
    /// Let users with a second factor sign in with the password alone through the seed
    /// profiles, which have no second step (default off: such a login is refused with the
    /// profile's 403, "Multi-factor authentication required"). An explicit downgrade.
    pub seed_profiles_password_only: bool,
    /// The WebAuthn relying party; without it the passkey routes answer 404.
    pub webauthn: Option<WebauthnSettings>,
}

/// The WebAuthn relying party: its id (a registrable domain, e.g. `example.com`) and the
/// exact origins whose pages may register and use passkeys (e.g. `https://app.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebauthnSettings {
    /// The relying-party id.
    pub rp_id: String,
    /// The allowed origins (at least one).
    pub origins: Vec<String>,
}

/// How the email flows behave (issue 13).
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// Page that takes a verification (and email-change) token: the mail links to it with
    /// `token=<token>` added to its query. Without it the mail carries the bare token.
    pub verify_email_url: Option<String>,
    /// Page that takes a password-reset token (same rule).
    pub reset_password_url: Option<String>,
    /// Page that takes a magic-link token (same rule).
    pub magic_link_url: Option<String>,
    /// Lifetime of verification and email-change tokens (default 24 h).
    pub verify_email_ttl: Duration,
    /// Lifetime of password-reset tokens (default 30 min).
    pub reset_password_ttl: Duration,
    /// Lifetime of magic-link tokens (default 15 min).
    pub magic_link_ttl: Duration,
    /// Refuse logins (403 `EMAIL_NOT_VERIFIED`) until the address is verified (default off).
    pub require_verified_email: bool,
    /// Mails of one kind to one address (default 5 per hour); past it the request still
    /// answers as usual but nothing is sent.
    pub per_address: Limit,
    /// Mail-sending requests per client IP (default 30 per hour); past it, 429.
    pub per_ip: Limit,
    /// Messages the persisted queue holds at most (default 10,000): past it a new message is
    /// dropped with a warning and its request answers as usual, so a mail server that stays
    /// down cannot grow the database without end.
    pub queue_limit: u64,
    /// What the mails say.
    pub templates: crate::mail::Templates,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            verify_email_url: None,
            reset_password_url: None,
            magic_link_url: None,
            verify_email_ttl: Duration::from_secs(24 * 3600),
            reset_password_ttl: Duration::from_secs(30 * 60),
            magic_link_ttl: Duration::from_secs(15 * 60),
            require_verified_email: false,
            per_address: Limit::per(5, 3600),
            per_ip: Limit::per(30, 3600),
            queue_limit: 10_000,
            templates: crate::mail::Templates::default(),
        }
    }
}

/// A cookie's `SameSite` attribute: which cross-site requests carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Top-level navigations only (the default): no cross-site `fetch`, form post or frame.
    #[default]
    Lax,
    /// Same-site requests only.
    Strict,
    /// Every request; browsers take it with `Secure` only (an API on another site).
    None,
}

impl SameSite {
    /// The attribute's value, e.g. `Lax`.
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }

    /// Parses `lax`, `strict` or `none` (any case).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "lax" => Ok(SameSite::Lax),
            "strict" => Ok(SameSite::Strict),
            "none" => Ok(SameSite::None),
            _ => Err(format!("`{text}`: SameSite is lax, strict or none")),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "auth-server".to_owned(),
            signing: Signing::Hs256 { secret: Vec::new() },
            leeway: Duration::from_secs(5),
            argon2: Argon2Params::default(),
            hashing_slots: std::thread::available_parallelism().map_or(1, |n| n.get()),
            hashing_queue: 256,
            hashing_niceness: 10,
            store_threads: 8,
            store_queue: 1024,
            store_wait: Duration::from_millis(500),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_reuse_interval: Duration::from_secs(10),
            session_lifetime: Duration::from_secs(90 * 24 * 3600),
            body_limit: 64 * 1024,
            rate_limits: RateLimits::default(),
            trusted_proxies: Vec::new(),
            ipv6_prefix_len: 64,
            known_address_window: Duration::from_secs(30 * 24 * 3600),
            refuse_common_passwords: true,
            principal_cache_ttl: Duration::from_secs(1),
            purge_interval: Duration::from_secs(300),
            audit_retention: Duration::from_secs(90 * 24 * 3600),
            cors_allowed_origins: Vec::new(),
            cookie_secure: true,
            cookie_same_site: SameSite::Lax,
            mail: MailSettings::default(),
            mfa: MfaSettings::default(),
        }
    }
}

/// Smallest accepted HS256 secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Largest leeway the contract allows for `exp` and `nbf`.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);

/// Parses one allowed CORS origin as a browser serialises it in `Origin`: `http` or `https`,
/// a host, an optional port; lower-cased, the scheme's default port dropped, one trailing `/`
/// forgiven. Refuses `*` (never together with credentials), `null`, paths, queries,
/// user information and anything else a browser never sends.
pub fn parse_allowed_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    if lower == "*" {
        return Err(
            "`*` cannot be an allowed origin: answers carry credentials, so every \
                    origin must be named"
                .to_owned(),
        );
    }
    let (scheme, rest) = lower
        .split_once("://")
        .ok_or_else(|| format!("`{text}` is not an origin: write scheme://host[:port]"))?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(format!("`{text}`: an origin's scheme is http or https")),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']');
    if authority.is_empty() || !authority.chars().all(valid) {
        return Err(format!(
            "`{text}` is not an origin: only scheme://host[:port], no path, query or user"
        ));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() || host.starts_with('.') || host.ends_with('.') {
        return Err(format!("`{text}` names no host"));
    }
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("`{text}`: the port must be a number"));
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Ok(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse() {
        assert_eq!(Limit::parse("10/900"), Ok(Limit::per(10, 900)));
        assert!(!Limit::parse("off").unwrap().enabled());
        assert!(Limit::parse("10").is_err());
        assert!(Limit::parse("10/0").is_err());
        assert!(Limit::parse("x/9").is_err());
    }

    #[test]
    fn origins_parse_as_browsers_send_them() {
        let ok = |t: &str| parse_allowed_origin(t).unwrap();
        assert_eq!(ok("https://App.Example.com/"), "https://app.example.com");
        assert_eq!(ok("https://app.example.com:443"), "https://app.example.com");
        assert_eq!(ok("http://127.0.0.1:8081"), "http://127.0.0.1:8081");
        assert_eq!(ok("http://[::1]:8081"), "http://[::1]:8081");
        for bad in [
            "*",
            "null",
            "app.example.com",
            "ftp://x.org",
            "https://x.org/app",
            "https://u@x.org",
            "https://x.org?q",
            "https://",
            "https://x.org:http",
        ] {
            assert!(parse_allowed_origin(bad).is_err(), "{bad}");
        }
    }
}
