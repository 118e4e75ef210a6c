//! The rate limits: failed logins in three windows, and per-IP limits on registrations and
//! refreshes. Counters live in the store, so every instance on the database shares them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Client, Context};
use crate::clock::secs;
use crate::config::Limit;
use crate::error::Error;
use crate::store::{FailureQuery, FailureSeries};

/// How often expired rate-limit counters are purged, at most.
const PURGE_EVERY_SECS: i64 = 600;

/// Per-IP limits on unauthenticated work other than login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottledAction {
    /// Registrations.
    Register,
    /// Refreshes.
    Refresh,
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
        };
        if !limit.enabled() {
            return Ok(());
        }
        let now = self.0.now();
        let since = now - secs(limit.window);
        let key = client.ip_key();
        let (count, oldest) = self
            .0
            .store(move |store| store.hit_rate_limit(bucket, &key, since, limit.max, now))
            .await?;
        if count < limit.max {
            return Ok(());
        }
        let free_at = oldest.map_or(now + 1, |at| at + secs(limit.window));
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
            ip: client.ip_key(),
            email_ip_since: since(limits.login_email_ip),
            email_since: since(limits.login_email),
            ip_since: since(limits.login_ip),
        }
    }

    /// Refuses a login attempt while any of the three failure counts is at its limit. Runs
    /// before the email is looked up, so the answer is the same for unknown emails.
    pub(super) async fn login_gate(&self, query: &FailureQuery, now: i64) -> Result<(), Error> {
        let limits = self.0.config.rate_limits;
        let series = [
            (FailureSeries::EmailIp, limits.login_email_ip),
            (FailureSeries::Email, limits.login_email),
            (FailureSeries::Ip, limits.login_ip),
        ];
        if series.iter().all(|(_, limit)| !limit.enabled()) {
            return Ok(());
        }
        let counts = {
            let query = query.clone();
            self.0
                .store(move |store| store.count_login_failures(&query))
                .await?
        };
        let mut free_at: Option<i64> = None;
        for (which, limit) in series {
            let count = match which {
                FailureSeries::EmailIp => counts.email_ip,
                FailureSeries::Email => counts.email,
                FailureSeries::Ip => counts.ip,
            };
            if !limit.enabled() || count < limit.max {
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
        match free_at {
            Some(at) => Err(Error::RateLimited(retry_after(at, now))),
            None => Ok(()),
        }
    }

    /// Records a failed login, and now and then purges expired counters.
    pub(super) async fn record_failure(&self, query: &FailureQuery, now: i64) -> Result<(), Error> {
        let (key, ip) = (query.email_key.clone(), query.ip.clone());
        self.0
            .store(move |store| store.record_login_failure(&key, &ip, now))
            .await?;
        self.purge_now_and_then(now).await;
        Ok(())
    }

    /// Forgets the failures of an email after a successful login.
    pub(super) async fn clear_failures(&self, email_key: &str) -> Result<(), Error> {
        let key = email_key.to_owned();
        self.0
            .store(move |store| store.clear_login_failures(&key))
            .await
    }

    /// Purges expired counters at most every ten minutes, on the back of a request.
    async fn purge_now_and_then(&self, now: i64) {
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
        let limits = self.0.config.rate_limits;
        let longest = [
            limits.login_email_ip,
            limits.login_email,
            limits.login_ip,
            limits.register_ip,
            limits.refresh_ip,
        ]
        .iter()
        .map(|limit| secs(limit.window))
        .max()
        .unwrap_or(0);
        let before = now - longest;
        match self
            .0
            .store(move |store| store.purge_rate_limits(before))
            .await
        {
            Ok(removed) => tracing::debug!(removed, "expired rate-limit counters purged"),
            Err(err) => tracing::warn!(error = %err, "purging rate-limit counters failed"),
        }
    }
}

/// Seconds from `now` until `free_at`, at least one.
fn retry_after(free_at: i64, now: i64) -> Duration {
    Duration::from_secs(u64::try_from(free_at - now).unwrap_or(0).max(1))
}
