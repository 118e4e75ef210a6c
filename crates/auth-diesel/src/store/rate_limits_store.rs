//! [`auth_core::store::RateLimitStore`] on Diesel: rate-limit counters.

use super::*;

/// `failure_counts!(conn, query)`: the three failure counts of `query` as
/// `Result<FailureCounts, Fail>`, in one statement (three scalar subqueries), so one round
/// trip and one snapshot. A macro so that it expands for either connection type, inside
/// whatever transaction the caller holds.
macro_rules! failure_counts {
    ($conn:ident, $q:expr) => {{
        let q: &FailureQuery = $q;
        let email_ip = login_failures::table
            .filter(login_failures::email_key.eq(q.email_key.as_str()))
            .filter(login_failures::ip.eq(q.ip.as_str()))
            .filter(login_failures::at.ge(q.email_ip_since))
            .count()
            .single_value();
        let email = login_failures::table
            .filter(login_failures::email_key.eq(q.email_key.as_str()))
            .filter(login_failures::at.ge(q.email_since))
            .count()
            .single_value();
        let ip = login_failures::table
            .filter(login_failures::ip.eq(q.ip.as_str()))
            .filter(login_failures::at.ge(q.ip_since))
            .count()
            .single_value();
        let (email_ip, email, ip) =
            diesel::select((email_ip, email, ip))
                .get_result::<(Option<i64>, Option<i64>, Option<i64>)>($conn)?;
        let n = |c: Option<i64>| count_u64(c.unwrap_or(0));
        Ok::<_, Fail>(FailureCounts {
            email_ip: n(email_ip),
            email: n(email),
            ip: n(ip),
        })
    }};
}

impl RateLimitStore for DieselStore {
    fn count_login_failures(&self, query: &FailureQuery) -> StoreResult<FailureCounts> {
        let q = query;
        with_conn!(self, conn => { failure_counts!(conn, q) }).map_err(Fail::into_store)
    }

    fn nth_login_failure(
        &self,
        query: &FailureQuery,
        series: FailureSeries,
        skip: u64,
    ) -> StoreResult<Option<i64>> {
        let q = query;
        let offset = i64::try_from(skip).unwrap_or(i64::MAX);
        with_conn!(self, conn => {
            let mut select = login_failures::table
                .select(login_failures::at)
                .order(login_failures::at.asc())
                .offset(offset)
                .into_boxed();
            select = match series {
                FailureSeries::EmailIp => select
                    .filter(login_failures::email_key.eq(q.email_key.as_str()))
                    .filter(login_failures::ip.eq(q.ip.as_str()))
                    .filter(login_failures::at.ge(q.email_ip_since)),
                FailureSeries::Email => select
                    .filter(login_failures::email_key.eq(q.email_key.as_str()))
                    .filter(login_failures::at.ge(q.email_since)),
                FailureSeries::Ip => select
                    .filter(login_failures::ip.eq(q.ip.as_str()))
                    .filter(login_failures::at.ge(q.ip_since)),
            };
            Ok(select.first::<i64>(conn).optional()?)
        })
        .map_err(Fail::into_store)
    }

    fn record_login_failure(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()> {
        let row = NewLoginFailureRow { email_key, ip, at };
        with_conn!(self, conn => {
            diesel::insert_into(login_failures::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn clear_login_failures(&self, email_key: &str) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel::delete(login_failures::table.filter(login_failures::email_key.eq(email_key)))
                .execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn reserve_login_attempt(&self, attempt: &LoginAttempt) -> StoreResult<Reservation> {
        let q = &attempt.query;
        let row = NewLoginFailureRow {
            email_key: &q.email_key,
            ip: &q.ip,
            at: attempt.now,
        };
        write_tx!(self, conn => {
            // Count and insert must not interleave with another reservation for this email
            // or this client. Every reservation takes the email's lock before the client's,
            // so two of them never wait for each other in a cycle.
            conn.lock_for_write(LOGIN_LOCK_CLASS, &format!("email:{}", q.email_key))?;
            conn.lock_for_write(LOGIN_LOCK_CLASS, &format!("ip:{}", q.ip))?;
            let known = match attempt.known_since {
                None => false,
                Some(since) => diesel::select(diesel::dsl::exists(
                    known_addresses::table
                        .filter(known_addresses::email_key.eq(q.email_key.as_str()))
                        .filter(known_addresses::ip.eq(q.ip.as_str()))
                        .filter(known_addresses::last_login_at.ge(since)),
                ))
                .get_result::<bool>(conn)?,
            };
            let counts = failure_counts!(conn, q)?;
            if limit_reached(&counts, &attempt.max, known) {
                return Ok(Reservation::Refused { counts, known });
            }
            diesel::insert_into(login_failures::table).values(&row).execute(conn)?;
            Ok(Reservation::Reserved)
        })
        .map_err(Fail::into_store)
    }

    fn release_login_attempt(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()> {
        write_tx!(self, conn => {
            // Under the email's reservation lock, so two releases of equal rows take two.
            conn.lock_for_write(LOGIN_LOCK_CLASS, &format!("email:{email_key}"))?;
            let one = login_failures::table
                .filter(login_failures::email_key.eq(email_key))
                .filter(login_failures::ip.eq(ip))
                .filter(login_failures::at.eq(at))
                .select(login_failures::id)
                .first::<i64>(conn)
                .optional()?;
            if let Some(id) = one {
                diesel::delete(login_failures::table.filter(login_failures::id.eq(id)))
                    .execute(conn)?;
            }
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn remember_address(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()> {
        // Keeps the latest time when logins race (the same statement on both backends).
        const UPSERT: &str = "INSERT INTO known_addresses (email_key, ip, last_login_at) \
             VALUES ($1, $2, $3) ON CONFLICT (email_key, ip) DO UPDATE \
             SET last_login_at = excluded.last_login_at \
             WHERE known_addresses.last_login_at < excluded.last_login_at";
        with_conn!(self, conn => {
            diesel::sql_query(UPSERT)
                .bind::<Text, _>(email_key)
                .bind::<Text, _>(ip)
                .bind::<diesel::sql_types::BigInt, _>(at)
                .execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn purge_known_addresses(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let limit = i64::from(limit);
        write_tx!(self, conn => {
            // A bounded batch by the last-login index; the key is two columns, so each row
            // goes by its key, its age checked again (a login in between keeps it).
            let batch: Vec<(String, String)> = known_addresses::table
                .filter(known_addresses::last_login_at.lt(before))
                .select((known_addresses::email_key, known_addresses::ip))
                .limit(limit)
                .load(conn)?;
            let mut gone = 0;
            for (email_key, ip) in &batch {
                gone += diesel::delete(
                    known_addresses::table
                        .filter(known_addresses::email_key.eq(email_key))
                        .filter(known_addresses::ip.eq(ip))
                        .filter(known_addresses::last_login_at.lt(before)),
                )
                .execute(conn)?;
            }
            Ok(u64::try_from(gone).unwrap_or(u64::MAX))
        })
        .map_err(Fail::into_store)
    }

    fn hit_rate_limit(
        &self,
        bucket: &str,
        key: &str,
        since: i64,
        limit: u64,
        now: i64,
    ) -> StoreResult<(u64, Option<i64>)> {
        let lock_name = format!("{bucket}:{key}");
        let row = NewRateLimitHitRow {
            bucket,
            key,
            at: now,
        };
        write_tx!(self, conn => {
            // Count and insert must not interleave with another caller's, or both could
            // see `limit - 1` and both insert.
            conn.lock_for_write(RATE_LIMIT_LOCK_CLASS, &lock_name)?;
            let (count, oldest) = rate_limit_hits::table
                .filter(rate_limit_hits::bucket.eq(bucket))
                .filter(rate_limit_hits::key.eq(key))
                .filter(rate_limit_hits::at.ge(since))
                .select((count_star(), min(rate_limit_hits::at)))
                .get_result::<(i64, Option<i64>)>(conn)?;
            let count = count_u64(count);
            if count < limit {
                diesel::insert_into(rate_limit_hits::table).values(&row).execute(conn)?;
            }
            Ok((count, oldest))
        })
        .map_err(Fail::into_store)
    }

    fn purge_rate_limits(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let limit = i64::from(limit);
        with_conn!(self, conn => {
            // Bounded batches of ids (neither backend takes DELETE ... LIMIT), each deleted
            // in one statement; old rows come first in id order, so the scan stops early.
            let failures: Vec<i64> = login_failures::table
                .filter(login_failures::at.lt(before))
                .select(login_failures::id)
                .limit(limit)
                .load(conn)?;
            let mut gone = 0;
            if !failures.is_empty() {
                gone += diesel::delete(
                    login_failures::table.filter(login_failures::id.eq_any(&failures)),
                )
                .execute(conn)?;
            }
            let hits: Vec<i64> = rate_limit_hits::table
                .filter(rate_limit_hits::at.lt(before))
                .select(rate_limit_hits::id)
                .limit(limit)
                .load(conn)?;
            if !hits.is_empty() {
                gone += diesel::delete(
                    rate_limit_hits::table.filter(rate_limit_hits::id.eq_any(&hits)),
                )
                .execute(conn)?;
            }
            Ok(u64::try_from(gone).unwrap_or(u64::MAX))
        })
        .map_err(Fail::into_store)
    }
}
