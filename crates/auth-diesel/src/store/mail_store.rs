//! [`auth_core::store::OneTimeTokenStore`] and [`auth_core::store::MailQueueStore`] on
//! Diesel: the one-time tokens of the email flows and the outgoing mail queue.

use super::*;

/// How many message ids one `IN (...)` of a claim binds at most (SQLite limits the number
/// of bound parameters per statement).
const CLAIM_CHUNK: usize = 500;

/// `due_mail!(now, limit)`: at most `limit` messages due at `now`, oldest first (the query
/// both backends' [`ClaimDue`] start from).
macro_rules! due_mail {
    ($now:expr, $limit:expr) => {
        mail_queue::table
            .filter(mail_queue::next_attempt_at.le($now))
            .order((
                mail_queue::next_attempt_at.asc(),
                mail_queue::created_at.asc(),
                mail_queue::id.asc(),
            ))
            .limit($limit)
            .select(MailRow::as_select())
    };
}

/// Picks the messages a claim takes, inside its write transaction, so that no concurrent
/// claim takes them too.
trait ClaimDue {
    /// At most `limit` messages due at `now`, oldest first, held for this transaction.
    fn due_mail(&mut self, now: i64, limit: i64) -> Result<Vec<MailRow>, Fail>;
}

impl ClaimDue for SqliteConnection {
    /// `BEGIN IMMEDIATE` holds the database's single write lock already: no other claim
    /// reads the queue until this one has committed its leases.
    fn due_mail(&mut self, now: i64, limit: i64) -> Result<Vec<MailRow>, Fail> {
        Ok(due_mail!(now, limit).load(self)?)
    }
}

impl ClaimDue for PgConnection {
    /// Row locks, skipping the rows another claim holds: concurrent claims take disjoint
    /// messages without waiting for each other. A row whose lease was committed after this
    /// statement's snapshot is checked again against `next_attempt_at <= now` when locked,
    /// and left out.
    fn due_mail(&mut self, now: i64, limit: i64) -> Result<Vec<MailRow>, Fail> {
        Ok(due_mail!(now, limit)
            .for_update()
            .skip_locked()
            .load(self)?)
    }
}

impl OneTimeTokenStore for DieselStore {
    fn create_one_time_token(&self, token: &NewOneTimeToken) -> StoreResult<()> {
        let row = NewOneTimeTokenRow {
            token_hash: token.hash.to_hex(),
            user_id: id_text(token.user_id),
            purpose: token.purpose.as_str(),
            email: &token.email,
            created_at: token.created_at,
            expires_at: token.expires_at,
        };
        let lock_name = format!("{}:{}", row.user_id, row.purpose);
        write_tx!(self, conn => {
            if token.replace_others {
                // Replacements of one user's tokens of one purpose run one at a time, so of
                // concurrent ones exactly one token is left; after the lock the delete sees
                // every replacement committed before.
                conn.lock_for_write(ONE_TIME_TOKEN_LOCK_CLASS, &lock_name)?;
                diesel::delete(
                    one_time_tokens::table
                        .filter(one_time_tokens::user_id.eq(row.user_id.as_str()))
                        .filter(one_time_tokens::purpose.eq(row.purpose)),
                )
                .execute(conn)?;
            }
            diesel::insert_into(one_time_tokens::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: i64,
    ) -> StoreResult<Option<OneTimeTokenRecord>> {
        let hash = hash.to_hex();
        let purpose = purpose.as_str();
        write_tx!(self, conn => {
            let found = one_time_tokens::table
                .filter(one_time_tokens::token_hash.eq(hash.as_str()))
                .filter(one_time_tokens::purpose.eq(purpose))
                .select(OneTimeTokenRow::as_select())
                .get_result::<OneTimeTokenRow>(conn)
                .optional()?;
            let Some(token) = found else {
                return Ok(None);
            };
            // Of concurrent consumers only one deletes the row (PostgreSQL re-checks the
            // condition after waiting for the row lock; on SQLite the write lock serializes
            // them): the others find nothing to delete and get None.
            let deleted = diesel::delete(
                one_time_tokens::table
                    .filter(one_time_tokens::token_hash.eq(hash.as_str()))
                    .filter(one_time_tokens::purpose.eq(purpose)),
            )
            .execute(conn)?;
            // An expired token is deleted all the same.
            if deleted == 0 || token.expires_at <= now {
                return Ok(None);
            }
            token.into_record().map(Some)
        })
        .map_err(Fail::into_store)
    }

    fn delete_one_time_tokens(&self, user_id: Uuid, purpose: TokenPurpose) -> StoreResult<u64> {
        let user_id = id_text(user_id);
        with_conn!(self, conn => {
            let deleted = diesel::delete(
                one_time_tokens::table
                    .filter(one_time_tokens::user_id.eq(user_id.as_str()))
                    .filter(one_time_tokens::purpose.eq(purpose.as_str())),
            )
            .execute(conn)?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .map_err(Fail::into_store)
    }

    fn purge_one_time_tokens(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let limit = i64::from(limit);
        with_conn!(self, conn => {
            // A bounded batch by the expiry index, deleted with the expiry checked again, as
            // for personal tokens.
            let batch: Vec<String> = one_time_tokens::table
                .filter(one_time_tokens::expires_at.le(before))
                .select(one_time_tokens::token_hash)
                .limit(limit)
                .load(conn)?;
            if batch.is_empty() {
                return Ok(0);
            }
            let deleted = diesel::delete(
                one_time_tokens::table
                    .filter(one_time_tokens::token_hash.eq_any(&batch))
                    .filter(one_time_tokens::expires_at.le(before)),
            )
            .execute(conn)?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .map_err(Fail::into_store)
    }
}

impl MailQueueStore for DieselStore {
    fn enqueue_mail(&self, mail: &QueuedMail) -> StoreResult<()> {
        let row = MailRow::from_record(mail);
        with_conn!(self, conn => {
            diesel::insert_into(mail_queue::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn claim_mail(&self, now: i64, lease_until: i64, limit: u32) -> StoreResult<Vec<QueuedMail>> {
        let limit = i64::from(limit);
        // Every server polls the queue each second, nearly always to find it empty: a plain
        // read first, so an idle queue costs no write lock (SQLite's is the database's one)
        // and never waits behind a writer holding it, which with a small pool starves the
        // requests of their connection.
        let any_due = with_conn!(self, conn => {
            let due = diesel::select(diesel::dsl::exists(
                mail_queue::table.filter(mail_queue::next_attempt_at.le(now)),
            ))
            .get_result::<bool>(conn)?;
            Ok(due)
        })
        .map_err(Fail::into_store)?;
        if !any_due {
            return Ok(Vec::new());
        }
        write_tx!(self, conn => {
            let due = conn.due_mail(now, limit)?;
            for chunk in due.chunks(CLAIM_CHUNK) {
                let ids: Vec<&str> = chunk.iter().map(|m| m.id.as_str()).collect();
                diesel::update(mail_queue::table.filter(mail_queue::id.eq_any(ids)))
                    .set(mail_queue::next_attempt_at.eq(lease_until))
                    .execute(conn)?;
            }
            // As they were before the claim.
            due.into_iter().map(MailRow::into_record).collect()
        })
        .map_err(Fail::into_store)
    }

    fn delete_mail(&self, id: Uuid) -> StoreResult<bool> {
        let id = id_text(id);
        with_conn!(self, conn => {
            let deleted = diesel::delete(mail_queue::table.filter(mail_queue::id.eq(id.as_str())))
                .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn reschedule_mail(&self, id: Uuid, attempts: u32, next_attempt_at: i64) -> StoreResult<bool> {
        let id = id_text(id);
        with_conn!(self, conn => {
            let updated = diesel::update(mail_queue::table.filter(mail_queue::id.eq(id.as_str())))
                .set((
                    mail_queue::attempts.eq(attempts_column(attempts)),
                    mail_queue::next_attempt_at.eq(next_attempt_at),
                ))
                .execute(conn)?;
            Ok(updated > 0)
        })
        .map_err(Fail::into_store)
    }

    fn queued_mail_count(&self) -> StoreResult<u64> {
        with_conn!(self, conn => {
            let n = mail_queue::table.count().get_result::<i64>(conn)?;
            Ok(count_u64(n))
        })
        .map_err(Fail::into_store)
    }
}
