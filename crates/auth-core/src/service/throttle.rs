//! The rate limits: failed logins in three windows, and per-IP limits on registrations and
//! refreshes. Counters live in the store, so every instance on the database shares them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::audit::Event;
use super::purge::{PURGE_BATCH, longest_window};
use super::{Client, Context};
use crate::clock::secs;
use crate::config::Limit;
use crate::error::Error;
use crate::store::{
    AuditKind, FailureCounts, FailureQuery, FailureSeries, LoginAttempt, Reservation,
};

/// How often expired rate-limit counters are purged, at most.
const PURGE_EVERY_SECS: i64 = 600;

/// Per-IP limits on unauthenticated work other than login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottledAction {
    /// Registrations.
    Register,
    /// Refreshes.
    Refresh,
    /// Requests that send mail (forgot password, magic link, resend, email change).
    Mail,
    /// Passkey ceremonies started (sign-in, registration, step-up).
    Passkey,
}

/// The rate-limit service.
#[derive(Clone, Copy)]
pub struct Throttle<'a>(pub(super) &'a Context);

impl Throttle<'_> {
    /// Counts one `action` for the client's IP; `RateLimited` once over the limit.
    pub async fn hit(&self, action: ThrottledAction, client: Client<'_>) -> Result<(), Error> {
        let limits = &self.0.config.rate_limits;
        let (bucket, limit) = match action {
            ThrottledAction::Register => ("register", limits.register_ip),
            ThrottledAction::Refresh => ("refresh", limits.refresh_ip),
            ThrottledAction::Mail => ("mail", self.0.config.mail.per_ip),
            ThrottledAction::Passkey => ("passkey", limits.passkey_ip),
        };
        if !limit.enabled() {
            return Ok(());
        }
        let now = self.0.now();
        let since = now - secs(limit.window);
        let key = client.ip_key(self.0.config.ipv6_prefix_len);
        let (count, oldest) = self
            .0
            .store(move |store| store.hit_rate_limit(bucket, &key, since, limit.max, now))
            .await?;
        if count < limit.max {
            return Ok(());
        }
        let free_at = oldest.map_or(now + 1, |at| at + secs(limit.window));
        tripped(self.0, bucket, client).await;
        Err(Error::RateLimited(retry_after(free_at, now)))
    }

    /// The failure windows of a login attempt for `email_key` from `client` at `now`.
    pub(super) fn failure_query(
        &self,
        email_key: &str,
        client: Client<'_>,
        now: i64,
    ) -> FailureQuery {
        let limits = self.0.config.rate_limits;
        let since = |limit: Limit| now - secs(limit.window);
        FailureQuery {
            email_key: email_key.to_owned(),
            ip: client.ip_key(self.0.config.ipv6_prefix_len),
            email_ip_since: since(limits.login_email_ip),
            email_since: since(limits.login_email),
            ip_since: since(limits.login_ip),
        }
    }

    /// Admits a login attempt (or a step-up) while every failure count that applies is below
    /// its limit, reserving it as a failure in the same locked transaction as the check, so
    /// concurrent attempts cannot all slip through; `RateLimited` otherwise. Runs before the
    /// email is looked up, so the answer is the same for unknown emails. A client address
    /// the email logged in from within the known-address window is held only to the
    /// email+IP limit, so a distributed guessing run cannot lock the owner out.
    ///
    /// A refusal is recorded in the audit log as `rate_limit.tripped`, bucket `login`.
    pub(super) async fn admit(
        &self,
        query: &FailureQuery,
        now: i64,
        client: Client<'_>,
    ) -> Result<Admitted, Error> {
        let config = &self.0.config;
        let limits = config.rate_limits;
        let max = FailureCounts {
            email_ip: limits.login_email_ip.max,
            email: limits.login_email.max,
            ip: limits.login_ip.max,
        };
        if max == FailureCounts::default() {
            return Ok(Admitted { reserved: None });
        }
        let window = secs(config.known_address_window);
        let attempt = LoginAttempt {
            query: query.clone(),
            max,
            known_since: (window > 0).then(|| now - window),
            now,
        };
        let (counts, known) = match self
            .0
            .store(move |store| store.reserve_login_attempt(&attempt))
            .await?
        {
            Reservation::Reserved => {
                return Ok(Admitted {
                    reserved: Some((query.email_key.clone(), query.ip.clone(), now)),
                });
            }
            Reservation::Refused { counts, known } => (counts, known),
        };
        let series = [
            (
                FailureSeries::EmailIp,
                limits.login_email_ip,
                counts.email_ip,
            ),
            (FailureSeries::Email, limits.login_email, counts.email),
            (FailureSeries::Ip, limits.login_ip, counts.ip),
        ];
        let mut free_at: Option<i64> = None;
        for (which, limit, count) in series {
            let applies = which == FailureSeries::EmailIp || !known;
            if !applies || !limit.enabled() || count < limit.max {
                continue;
            }
            // The window frees up when the failure that put the count at the limit leaves it.
            let skip = count - limit.max;
            let query = query.clone();
            let at = self
                .0
                .store(move |store| store.nth_login_failure(&query, which, skip))
                .await?
                .unwrap_or(now);
            let at = at + secs(limit.window);
            free_at = Some(free_at.map_or(at, |current| current.max(at)));
        }
        tripped(self.0, "login", client).await;
        Err(Error::RateLimited(retry_after(
            free_at.unwrap_or(now + 1),
            now,
        )))
    }

    /// The attempt failed: its reservation stays as the failure; now and then expired
    /// counters are purged.
    pub(super) async fn failed(&self, admitted: Admitted, now: i64) {
        drop(admitted);
        self.purge_now_and_then(now).await;
    }

    /// The attempt was not a failure (an inactive account with the right password, a right
    /// current password, or the check could not run): its reservation goes.
    pub(super) async fn release(&self, admitted: Admitted) {
        let Some((key, ip, at)) = admitted.reserved else {
            return;
        };
        if let Err(err) = self
            .0
            .store(move |store| store.release_login_attempt(&key, &ip, at))
            .await
        {
            tracing::warn!(error = %err, "releasing a login reservation failed");
        }
    }

    /// The attempt succeeded: the email's failures are forgotten (the contract; the
    /// reservation with them) and the client's address becomes known for the email.
    pub(super) async fn succeeded(
        &self,
        admitted: Admitted,
        query: &FailureQuery,
        now: i64,
    ) -> Result<(), Error> {
        drop(admitted);
        self.clear_failures(&query.email_key).await?;
        if self.0.config.known_address_window.is_zero() {
            return Ok(());
        }
        let (key, ip) = (query.email_key.clone(), query.ip.clone());
        self.0
            .store(move |store| store.remember_address(&key, &ip, now))
            .await
    }

    /// Forgets the failures of an email after a successful login.
    async fn clear_failures(&self, email_key: &str) -> Result<(), Error> {
        let key = email_key.to_owned();
        self.0
            .store(move |store| store.clear_login_failures(&key))
            .await
    }

    /// Purges expired counters at most every ten minutes, on the back of a request.
    async fn purge_now_and_then(&self, now: i64) {
        // The background purger, when it runs, does this (and more) in bounded batches.
        if self.0.purger_running.load(Ordering::Acquire) {
            return;
        }
        let last = self.0.last_purge.load(Ordering::Relaxed);
        if now - last < PURGE_EVERY_SECS
            || self
                .0
                .last_purge
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let before = now - longest_window(self.0);
        match self
            .0
            .store(move |store| store.purge_rate_limits(before, PURGE_BATCH))
            .await
        {
            Ok(removed) => tracing::debug!(removed, "expired rate-limit counters purged"),
            Err(err) => tracing::warn!(error = %err, "purging rate-limit counters failed"),
        }
        let known_before = now - secs(self.0.config.known_address_window);
        match self
            .0
            .store(move |store| store.purge_known_addresses(known_before, PURGE_BATCH))
            .await
        {
            Ok(removed) => tracing::debug!(removed, "stale known addresses purged"),
            Err(err) => tracing::warn!(error = %err, "purging known addresses failed"),
        }
    }
}

/// A login attempt let through the limits, with its reservation (email key, client, time)
/// when one was made; see [`Throttle::admit`]. It ends as failed, released or succeeded.
#[must_use = "an admitted attempt ends as failed, released or succeeded"]
pub(super) struct Admitted {
    reserved: Option<(String, String, i64)>,
}

/// Records that the limit `bucket` refused `client`: counted in the metrics and written to
/// the audit log (no target: the refusal comes before any lookup, and must not tell whether
/// an address has an account).
async fn tripped(ctx: &Context, bucket: &'static str, client: Client<'_>) {
    ctx.metrics.rate_limited(bucket);
    Event::new(AuditKind::RateLimitTripped)
        .from(client)
        .detail(serde_json::json!({ "bucket": bucket }))
        .record(ctx)
        .await;
}

/// Seconds from `now` until `free_at`, at least one.
fn retry_after(free_at: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(free_at - now).unwrap_or(0).max(1))
}
