//! [`RateLimitStore`] of the [`MemoryStore`]: failed logins and rate-limit hits.

use super::{LoginFailure, MemoryStore, RateLimitHit, State};
use crate::store::{
    FailureCounts, FailureQuery, FailureSeries, LoginAttempt, RateLimitStore, Reservation,
    StoreResult,
};

/// Whether `failure` belongs to `series` of `query` (inside its window, which includes its
/// start).
fn in_series(failure: &LoginFailure, query: &FailureQuery, series: FailureSeries) -> bool {
    let (email, ip) = (failure.email_key == query.email_key, failure.ip == query.ip);
    match series {
        FailureSeries::EmailIp => email && ip && failure.at >= query.email_ip_since,
        FailureSeries::Email => email && failure.at >= query.email_since,
        FailureSeries::Ip => ip && failure.at >= query.ip_since,
    }
}

/// A count of rows as `u64`.
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl State {
    fn failure_counts(&self, query: &FailureQuery) -> FailureCounts {
        let of = |series| {
            count(
                self.login_failures
                    .iter()
                    .filter(|f| in_series(f, query, series))
                    .count(),
            )
        };
        FailureCounts {
            email_ip: of(FailureSeries::EmailIp),
            email: of(FailureSeries::Email),
            ip: of(FailureSeries::Ip),
        }
    }

    fn push_failure(&mut self, email_key: &str, ip: &str, at: i64) {
        self.login_failures.push(LoginFailure {
            email_key: email_key.to_owned(),
            ip: ip.to_owned(),
            at,
        });
    }
}

impl RateLimitStore for MemoryStore {
    fn count_login_failures(&self, query: &FailureQuery) -> StoreResult<FailureCounts> {
        Ok(self.lock()?.failure_counts(query))
    }

    fn nth_login_failure(
        &self,
        query: &FailureQuery,
        series: FailureSeries,
        skip: u64,
    ) -> StoreResult<Option<i64>> {
        let state = self.lock()?;
        let mut times: Vec<i64> = state
            .login_failures
            .iter()
            .filter(|f| in_series(f, query, series))
            .map(|f| f.at)
            .collect();
        times.sort_unstable();
        Ok(usize::try_from(skip)
            .ok()
            .and_then(|skip| times.get(skip).copied()))
    }

    fn record_login_failure(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()> {
        self.lock()?.push_failure(email_key, ip, at);
        Ok(())
    }

    fn reserve_login_attempt(&self, attempt: &LoginAttempt) -> StoreResult<Reservation> {
        let mut state = self.lock()?;
        let q = &attempt.query;
        let known = attempt.known_since.is_some_and(|since| {
            state
                .known_addresses
                .get(&(q.email_key.clone(), q.ip.clone()))
                .is_some_and(|at| *at >= since)
        });
        let counts = state.failure_counts(q);
        if crate::store::limit_reached(&counts, &attempt.max, known) {
            return Ok(Reservation::Refused { counts, known });
        }
        state.push_failure(&q.email_key, &q.ip, attempt.now);
        Ok(Reservation::Reserved)
    }

    fn release_login_attempt(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()> {
        let mut state = self.lock()?;
        let found = state
            .login_failures
            .iter()
            .position(|f| f.email_key == email_key && f.ip == ip && f.at == at);
        if let Some(index) = found {
            state.login_failures.swap_remove(index);
        }
        Ok(())
    }

    fn remember_address(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()> {
        let mut state = self.lock()?;
        let last = state
            .known_addresses
            .entry((email_key.to_owned(), ip.to_owned()))
            .or_insert(at);
        *last = (*last).max(at);
        Ok(())
    }

    fn purge_known_addresses(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let doomed: Vec<(String, String)> = state
            .known_addresses
            .iter()
            .filter(|(_, at)| **at < before)
            .map(|(key, _)| key.clone())
            .take(limit as usize)
            .collect();
        for key in &doomed {
            state.known_addresses.remove(key);
        }
        Ok(count(doomed.len()))
    }

    fn clear_login_failures(&self, email_key: &str) -> StoreResult<()> {
        self.lock()?
            .login_failures
            .retain(|f| f.email_key != email_key);
        Ok(())
    }

    fn hit_rate_limit(
        &self,
        bucket: &str,
        key: &str,
        since: i64,
        limit: u64,
        now: i64,
    ) -> StoreResult<(u64, Option<i64>)> {
        let mut state = self.lock()?;
        let in_window = state
            .rate_limit_hits
            .iter()
            .filter(|h| h.bucket == bucket && h.key == key && h.at >= since);
        let (hits, oldest) = in_window.fold((0_usize, None::<i64>), |(n, oldest), h| {
            (n + 1, Some(oldest.map_or(h.at, |o| o.min(h.at))))
        });
        let hits = count(hits);
        if hits < limit {
            state.rate_limit_hits.push(RateLimitHit {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                at: now,
            });
        }
        Ok((hits, oldest))
    }

    fn purge_rate_limits(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let mut state = self.lock()?;
        // At most `limit` of each table, as a database batch would.
        let mut failures = limit as usize;
        state.login_failures.retain(|f| {
            let doomed = f.at < before && failures > 0;
            failures -= usize::from(doomed);
            !doomed
        });
        let mut hits = limit as usize;
        state.rate_limit_hits.retain(|h| {
            let doomed = h.at < before && hits > 0;
            hits -= usize::from(doomed);
            !doomed
        });
        let purged = (limit as usize - failures) + (limit as usize - hits);
        Ok(count(purged))
    }
}
