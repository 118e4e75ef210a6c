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

/// Everything the core can be tuned with. `Config::default()` is the production default.
#[derive(Debug, Clone)]
pub struct Config {
    /// `iss` claim written into and required from every access token.
    pub issuer: String,
    /// HS256 secret; at least 32 bytes.
    pub jwt_secret: Vec<u8>,
    /// Leeway for `exp` and `nbf`; clamped to at most 30 s.
    pub leeway: Duration,
    /// Password hashing cost.
    pub argon2: Argon2Params,
    /// How many hashes may run at once (default: one per core).
    pub hashing_slots: usize,
    /// How many hash requests may wait for a slot before new ones get 503.
    pub hashing_queue: usize,
    /// Lifetime of refresh tokens and of the sessions they keep alive (default 30 days).
    pub refresh_ttl: Duration,
    /// How long a used refresh token may be replayed for the same answer (default 10 s).
    pub refresh_reuse_interval: Duration,
    /// Largest accepted request body (default 64 KiB).
    pub body_limit: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            issuer: "auth-server".to_owned(),
            jwt_secret: Vec::new(),
            leeway: Duration::from_secs(5),
            argon2: Argon2Params::default(),
            hashing_slots: std::thread::available_parallelism().map_or(1, |n| n.get()),
            hashing_queue: 256,
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_reuse_interval: Duration::from_secs(10),
            body_limit: 64 * 1024,
        }
    }
}

/// Smallest accepted HS256 secret, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

/// Largest leeway the contract allows for `exp` and `nbf`.
pub const MAX_LEEWAY: Duration = Duration::from_secs(30);
