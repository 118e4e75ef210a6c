//! Domain rules on the memory store with a fixed clock: no database, no HTTP, no sleeping on
//! the real clock. Each test moves time itself.

mod accounts;
mod audit;
mod audit_webhook;
mod bounds;
mod email_flows;
mod keys;
mod mfa;
mod passkeys;
mod purge;
mod refresh;
mod sessions;
mod throttle;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Argon2Params, Config, Signing};
use crate::service::{Auth, Client, NewAccount, SessionGrant, SessionTerms};
use crate::testing::{FixedClock, MemoryStore};

/// The access-token lifetime the tests ask for.
const ACCESS_TTL: Duration = Duration::from_secs(900);
/// What the tests log in under: a profile named `native` with [`ACCESS_TTL`].
const TERMS: SessionTerms = SessionTerms {
    profile: "native",
    access_ttl: ACCESS_TTL,
};
/// A password every test account has.
const PASSWORD: &str = "correct horse battery";

/// A service on a fresh memory store, its clock, and its configuration's knobs.
struct World {
    auth: Auth,
    clock: Arc<FixedClock>,
}

/// A configuration for tests: cheap argon2, one thread each, the contract's limits.
fn config() -> Config {
    Config {
        signing: Signing::Hs256 {
            secret: vec![42; 32],
        },
        argon2: Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        hashing_slots: 1,
        hashing_niceness: 0,
        store_threads: 2,
        ..Config::default()
    }
}

impl World {
    fn new() -> Self {
        Self::with(config())
    }

    fn with(config: Config) -> Self {
        Self::on(Arc::new(MemoryStore::new()), config)
    }

    /// A service on `store`, which the test keeps to change behind the service's back.
    fn on(store: Arc<MemoryStore>, config: Config) -> Self {
        // Real time as the start, so tokens look like ordinary ones; then only the tests
        // move the clock.
        let clock = Arc::new(FixedClock::at(chrono::Utc::now().timestamp()));
        let auth = Auth::with_clock(store, config, clock.clone()).expect("service starts");
        Self { auth, clock }
    }

    /// An active account with `roles`.
    async fn account(&self, email: &str, roles: &[&str]) {
        self.auth
            .operator()
            .create_user(NewAccount {
                email: email.to_owned(),
                password: PASSWORD.to_owned(),
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                is_active: true,
                ..NewAccount::default()
            })
            .await
            .expect("account created");
    }

    /// Logs `email` in from `client()`.
    async fn login(&self, email: &str) -> SessionGrant {
        self.auth
            .sessions()
            .login(email, PASSWORD.to_owned(), client(1), TERMS)
            .await
            .expect("login")
    }

    /// The `Authorization` header for a token.
    fn bearer(token: &str) -> Option<String> {
        Some(format!("Bearer {token}"))
    }

    /// Whether `token` authenticates now.
    async fn authenticates(&self, token: &str) -> bool {
        self.auth
            .sessions()
            .authenticate(Self::bearer(token).as_deref())
            .await
            .is_ok()
    }
}

/// A client from 10.0.0.`n`.
fn client(n: u8) -> Client<'static> {
    Client {
        ip: Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n))),
        user_agent: Some("tests"),
    }
}
