//! What every service shares: the store threads, the hasher, the signer, the principal cache,
//! the clock and the configuration. Also the one revocation path.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64};

use crate::broadcast::{Alone, Broadcast, Listener, Notice, Subscription};
use crate::cache::{PrincipalCache, Stale};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::Error;
use crate::metrics::Metrics;
use crate::password::PasswordHasher;
use crate::store::{Store, StoreError, StoreResult};
use crate::token::TokenSigner;
use crate::token::csrf::CsrfKey;
use crate::token::mail_seal::MailSealKey;
use crate::token::totp::TotpSealKey;
use crate::workers::Workers;

/// The shared context of the services. One per [`crate::Auth`].
pub(crate) struct Context {
    /// Runs the blocking store calls; each thread holds the store.
    store_threads: Workers<Arc<dyn Store>>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) signer: TokenSigner,
    /// Makes and checks the CSRF tokens of cookie sessions.
    pub(crate) csrf: CsrfKey,
    /// Seals queued mail.
    pub(crate) mail_key: MailSealKey,
    /// Seals TOTP secrets.
    pub(crate) totp_key: TotpSealKey,
    /// The WebAuthn relying party, when passkeys are configured.
    pub(crate) passkeys: Option<crate::passkey::RelyingParty>,
    /// Wakes this instance's mail sender when a message is queued.
    pub(crate) mail_wakeup: Arc<tokio::sync::Notify>,
    pub(crate) cache: Arc<PrincipalCache>,
    /// The Prometheus metrics.
    pub(crate) metrics: Arc<Metrics>,
    /// Where recorded audit events go for the webhook, once its delivery task runs.
    pub(crate) audit_feed: std::sync::OnceLock<tokio::sync::mpsc::Sender<Vec<u8>>>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: Config,
    /// When expired rate-limit counters were last purged by a request (Unix seconds).
    pub(crate) last_purge: AtomicI64,
    /// Whether the background purger runs (then requests purge nothing themselves).
    pub(crate) purger_running: AtomicBool,
    /// When the signing keys were last loaded from the store (Unix seconds); shared with the
    /// broadcast's listener, which zeroes it when another instance changed the keys.
    pub(crate) keys_loaded_at: Arc<AtomicI64>,
    /// Tells the other instances what this one revoked.
    broadcast: Arc<dyn Broadcast>,
    /// Keeps this instance hearing theirs; `None` until [`Context::broadcast_on`].
    subscription: Option<Subscription>,
}

impl Context {
    /// Assembles the context; the store threads are started here.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        hasher: PasswordHasher,
        signer: TokenSigner,
        clock: Arc<dyn Clock>,
        config: Config,
    ) -> std::io::Result<Self> {
        let store_threads = Workers::start(
            "auth-db",
            config.store_threads,
            config.store_queue,
            0,
            move || store.clone(),
        )?
        .with_start_deadline(config.store_wait);
        let now = clock.now();
        let metrics = Arc::new(Metrics::new(hasher.instruments()));
        Ok(Self {
            store_threads,
            metrics,
            audit_feed: std::sync::OnceLock::new(),
            hasher,
            csrf: CsrfKey::derive(&config.signing),
            mail_key: MailSealKey::derive(&config.signing),
            totp_key: TotpSealKey::derive(&config.signing),
            passkeys: None,
            mail_wakeup: Arc::new(tokio::sync::Notify::new()),
            signer,
            cache: Arc::new(PrincipalCache::new(
                config.principal_cache_ttl,
                clock.clone(),
            )),
            clock,
            config,
            last_purge: AtomicI64::new(0),
            purger_running: AtomicBool::new(false),
            keys_loaded_at: Arc::new(AtomicI64::new(now)),
            broadcast: Arc::new(Alone),
            subscription: None,
        })
    }

    /// Publishes this instance's revocations on `broadcast` and hears the others' from it
    /// (replacing any earlier one).
    pub(crate) fn broadcast_on(&mut self, broadcast: Arc<dyn Broadcast>) -> std::io::Result<()> {
        let listener = Listener::new(self.cache.clone(), self.keys_loaded_at.clone());
        self.subscription = Some(broadcast.subscribe(listener)?);
        self.broadcast = broadcast;
        Ok(())
    }

    /// The current time, Unix seconds.
    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    /// Runs a store call on a store thread, keeping the store's own error.
    pub(crate) async fn store_raw<T, F>(&self, call: F) -> Result<StoreResult<T>, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    {
        self.store_threads
            .run(move |store| call(store.as_ref()))
            .await
    }

    /// Runs a store call on a store thread.
    pub(crate) async fn store<T, F>(&self, call: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    {
        self.store_raw(call).await?.map_err(Error::from)
    }

    /// The one revocation path: runs a store call that revokes credentials, tells the other
    /// instances (on the same store thread, right after the call, so before this answers),
    /// then evicts what it made stale from the principal cache, whatever the call's outcome
    /// (an eviction too many costs one database read; one too few would honour a revoked
    /// token). Only an unreachable database skips the publishing: nothing was revoked, and
    /// the message could not go either.
    pub(crate) async fn revoking<T, F>(&self, stale: Stale, call: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> StoreResult<T> + Send + 'static,
    {
        let broadcast = self.broadcast.clone();
        let result = self
            .store(move |store| {
                let result = call(store);
                if !matches!(result, Err(StoreError::Unavailable(_)))
                    && let Err(err) = broadcast.publish(Notice::Stale(stale))
                {
                    tracing::warn!(error = %err, "publishing a revocation failed");
                }
                result
            })
            .await;
        self.cache.evict(stale);
        result
    }
}
