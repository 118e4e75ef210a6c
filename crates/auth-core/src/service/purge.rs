//! The background purger: what has expired leaves the database in bounded batches, on a
//! timer, instead of piling up (expired sessions with their refresh state, personal tokens
//! past expiry, rate-limit counters and login failures out of every window, addresses not
//! logged in from within the known-address window, one-time mail tokens past expiry, audit
//! events past their retention, expired second-factor and passkey challenges).
//!
//! One task per service runs one round at a time, so an instance never has two batches in
//! flight. Instances sharing a database may purge at the same moment: every batch is a
//! delete re-checking its condition, so concurrent ones delete disjoint rows or nothing.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::{Auth, Context};
use crate::clock::secs;
use crate::error::Error;
use crate::store::StoreResult;

/// Rows per purge statement: small enough that a batch holds its locks briefly.
pub(super) const PURGE_BATCH: u32 = 1000;
/// Batches per kind of row per round: one round is bounded in time, what is left waits for
/// the next round.
const MAX_BATCHES: u32 = 100;

/// What one purge round removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Expired sessions (with their refresh state).
    pub sessions: u64,
    /// Personal tokens past their expiry.
    pub personal_tokens: u64,
    /// Login failures and rate-limit hits older than the longest window.
    pub rate_limits: u64,
    /// Addresses not logged in from within the known-address window.
    pub known_addresses: u64,
    /// One-time tokens of mails (verification, reset, magic link, email change) past expiry.
    pub one_time_tokens: u64,
    /// Audit-log events older than `Config::audit_retention`.
    pub audit_events: u64,
    /// Challenges of second steps, step-ups and passkey ceremonies past expiry.
    pub challenges: u64,
}

impl Auth {
    /// One purge round at the clock's current time, in batches of [`PURGE_BATCH`] rows (at
    /// most a hundred batches of each kind): expired sessions, expired personal tokens,
    /// rate-limit rows out of every window, stale known addresses, expired one-time tokens,
    /// and audit events past the retention (unless it is zero). The first store failure
    /// ends the round with its error; what was purged before it stays purged.
    pub async fn purge(&self) -> Result<Purged, Error> {
        let ctx = &self.ctx;
        let now = ctx.now();
        let rate_before = now - longest_window(ctx);
        let known_before = now - secs(ctx.config.known_address_window);
        Ok(Purged {
            sessions: batches(ctx, move |s| s.purge_expired_sessions(now, PURGE_BATCH)).await?,
            personal_tokens: batches(ctx, move |s| {
                s.purge_expired_personal_tokens(now, PURGE_BATCH)
            })
            .await?,
            // Two tables per call: done when a call finds nothing left in either.
            rate_limits: batches_of(ctx, 1, move |s| {
                s.purge_rate_limits(rate_before, PURGE_BATCH)
            })
            .await?,
            known_addresses: batches(ctx, move |s| {
                s.purge_known_addresses(known_before, PURGE_BATCH)
            })
            .await?,
            one_time_tokens: batches(ctx, move |s| s.purge_one_time_tokens(now, PURGE_BATCH))
                .await?,
            audit_events: purge_audit(ctx, now).await?,
            challenges: batches(ctx, move |s| s.purge_expired_challenges(now, PURGE_BATCH)).await?,
        })
    }

    /// Starts the background purger on the current Tokio runtime: a [`Auth::purge`] round
    /// every `Config::purge_interval` (the first one interval after the start), failures
    /// logged and retried next round. `None` when the interval is zero (no purger; the
    /// rate-limit counters are then purged now and then by the requests that use them).
    ///
    /// The task holds the service only while a round runs, and ends at the first tick after
    /// the last other `Arc<Auth>` is dropped. Panics outside a Tokio runtime.
    pub fn start_purger(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let interval = self.ctx.config.purge_interval;
        if interval.is_zero() {
            return None;
        }
        self.ctx.purger_running.store(true, Ordering::Release);
        let service: Weak<Auth> = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            // A round that overran is not made up for with a burst.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(auth) = service.upgrade() else {
                    break;
                };
                match auth.purge().await {
                    Ok(purged) => tracing::debug!(?purged, "purge round done"),
                    Err(err) => {
                        tracing::warn!(error = %err, "purge round failed; retried next round")
                    }
                }
            }
            tracing::debug!("service dropped: purger stopped");
        }))
    }
}

/// Deletes the audit events older than the retention (none when it is zero).
async fn purge_audit(ctx: &Context, now: i64) -> Result<u64, Error> {
    let retention = secs(ctx.config.audit_retention);
    if retention == 0 {
        return Ok(0);
    }
    let older_than = now.saturating_sub(retention);
    ctx.store(move |store| store.purge_audit(older_than)).await
}

/// The longest window of the rate limits: every counter older than this counts for nothing.
pub(super) fn longest_window(ctx: &Context) -> i64 {
    let limits = ctx.config.rate_limits;
    [
        limits.login_email_ip,
        limits.login_email,
        limits.login_ip,
        limits.register_ip,
        limits.refresh_ip,
        ctx.config.mail.per_address,
        ctx.config.mail.per_ip,
    ]
    .iter()
    .map(|limit| secs(limit.window))
    .max()
    .unwrap_or(0)
}

/// Runs `purge` (one batch of one kind of row) until a batch comes back short. Expired rows
/// authenticate nothing already, so this revokes nothing and evicts nothing from the cache.
async fn batches(
    ctx: &Context,
    purge: impl Fn(&dyn crate::store::Store) -> StoreResult<u64> + Clone + Send + 'static,
) -> Result<u64, Error> {
    batches_of(ctx, u64::from(PURGE_BATCH), purge).await
}

/// Runs `purge` until a call removes fewer than `full` rows (at most [`MAX_BATCHES`] calls).
async fn batches_of(
    ctx: &Context,
    full: u64,
    purge: impl Fn(&dyn crate::store::Store) -> StoreResult<u64> + Clone + Send + 'static,
) -> Result<u64, Error> {
    let mut total = 0;
    for _ in 0..MAX_BATCHES {
        let purge = purge.clone();
        let gone = ctx.store(move |store| purge(store)).await?;
        total += gone;
        if gone < full {
            break;
        }
    }
    Ok(total)
}
