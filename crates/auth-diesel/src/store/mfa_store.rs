//! [`auth_core::store::MfaStore`] on Diesel: TOTP factors, recovery codes, passkeys and the
//! challenges of multi-factor sign-in, step-up and the WebAuthn ceremonies. Every row goes
//! with its user (ON DELETE CASCADE).

use auth_core::store::{
    ChallengePurpose, ChallengeRecord, MfaFactors, MfaStore, PasskeyRecord, TotpRecord,
};
use diesel::upsert::excluded;

use super::*;
use crate::models::{ChallengeRow, NewRecoveryCodeRow, PasskeyRow, TotpRow};
use crate::schema::{mfa_challenges, passkeys, recovery_codes, totp_factors};

/// First key of the PostgreSQL advisory locks serializing the writes that replace or delete
/// one user's recovery codes (the second key is a hash of the user id), so that of
/// concurrent replacements exactly one set is left.
const RECOVERY_CODES_LOCK_CLASS: i32 = 0x7263_6f64; // "rcod"

/// How many recovery codes one `INSERT` binds at most (SQLite limits the number of bound
/// parameters per statement).
const CODE_CHUNK: usize = 300;

/// Converts an affected-row count (never negative) to `u64`.
fn rows_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// "A foreign key refused the write": the user does not exist.
fn no_such_user() -> Fail {
    Fail::other("foreign key: no such user")
}

/// Takes a challenge inside the caller's write transaction: deletes it when it has
/// `purpose` and `expires_at > now`, and returns the row as it was deleted.
trait TakeChallenge {
    /// The deleted row, or `None` when no live challenge of `purpose` has this hash.
    fn take_challenge_row(
        &mut self,
        hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<ChallengeRow>, Fail>;
}

impl TakeChallenge for SqliteConnection {
    /// `BEGIN IMMEDIATE` holds the database's single write lock already: the row read is the
    /// row deleted, and no concurrent taker reads it until this one has committed.
    fn take_challenge_row(
        &mut self,
        hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<ChallengeRow>, Fail> {
        let live = mfa_challenges::table
            .filter(mfa_challenges::hash.eq(hash))
            .filter(mfa_challenges::purpose.eq(purpose))
            .filter(mfa_challenges::expires_at.gt(now));
        let Some(row) = live
            .select(ChallengeRow::as_select())
            .get_result::<ChallengeRow>(self)
            .optional()?
        else {
            return Ok(None);
        };
        let deleted = diesel::delete(live).execute(self)?;
        Ok((deleted > 0).then_some(row))
    }
}

impl TakeChallenge for PgConnection {
    /// One `DELETE ... RETURNING`: of concurrent takers, the ones that waited for the row
    /// lock re-check the condition, find the row gone and get nothing.
    fn take_challenge_row(
        &mut self,
        hash: &str,
        purpose: &str,
        now: i64,
    ) -> Result<Option<ChallengeRow>, Fail> {
        Ok(diesel::delete(
            mfa_challenges::table
                .filter(mfa_challenges::hash.eq(hash))
                .filter(mfa_challenges::purpose.eq(purpose))
                .filter(mfa_challenges::expires_at.gt(now)),
        )
        .returning(ChallengeRow::as_returning())
        .get_result::<ChallengeRow>(self)
        .optional()?)
    }
}

/// `replace_codes!(conn, user_id, codes, now)`: inside the caller's write transaction,
/// holding the user's recovery-codes lock, deletes the user's codes and inserts `codes`
/// (duplicates stored once).
macro_rules! replace_codes {
    ($conn:ident, $user_id:expr, $codes:expr, $now:expr) => {{
        let user_id: &str = $user_id;
        let mut hashes: Vec<String> = $codes.iter().map(TokenHash::to_hex).collect();
        hashes.sort_unstable();
        hashes.dedup();
        diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id)))
            .execute($conn)?;
        for chunk in hashes.chunks(CODE_CHUNK) {
            let rows: Vec<NewRecoveryCodeRow<'_>> = chunk
                .iter()
                .map(|hash| NewRecoveryCodeRow {
                    user_id,
                    code_hash: hash.clone(),
                    created_at: $now,
                })
                .collect();
            diesel::insert_into(recovery_codes::table)
                .values(&rows)
                .execute($conn)?;
        }
    }};
}

/// `count_factors!(conn, user_id)`: the user's [`MfaFactors`] as the connection sees them.
macro_rules! count_factors {
    ($conn:ident, $user_id:expr) => {{
        let user_id: &str = $user_id;
        let totp = diesel::select(diesel::dsl::exists(
            totp_factors::table
                .filter(totp_factors::user_id.eq(user_id))
                .filter(totp_factors::confirmed_at.is_not_null()),
        ))
        .get_result::<bool>($conn)?;
        let codes = recovery_codes::table
            .filter(recovery_codes::user_id.eq(user_id))
            .count()
            .get_result::<i64>($conn)?;
        let keys = passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .count()
            .get_result::<i64>($conn)?;
        MfaFactors {
            totp,
            recovery_codes: count_u64(codes),
            passkeys: count_u64(keys),
        }
    }};
}

impl MfaStore for DieselStore {
    fn mfa_factors(&self, user_id: Uuid) -> StoreResult<MfaFactors> {
        let user_id = id_text(user_id);
        read_tx!(self, conn => {
            Ok(count_factors!(conn, user_id.as_str()))
        })
        .map_err(Fail::into_store)
    }

    fn totp(&self, user_id: Uuid) -> StoreResult<Option<TotpRecord>> {
        let user_id = id_text(user_id);
        with_conn!(self, conn => {
            totp_factors::table
                .filter(totp_factors::user_id.eq(user_id.as_str()))
                .select(TotpRow::as_select())
                .get_result::<TotpRow>(conn)
                .optional()?
                .map(TotpRow::into_record)
                .transpose()
        })
        .map_err(Fail::into_store)
    }

    fn begin_totp(&self, user_id: Uuid, secret_sealed: &[u8], now: i64) -> StoreResult<bool> {
        let row = TotpRow {
            user_id: id_text(user_id),
            secret_sealed: secret_sealed.to_vec(),
            confirmed_at: None,
            last_used_step: None,
            created_at: now,
        };
        with_conn!(self, conn => {
            // One statement: inserts, or replaces a pending factor; a confirmed one is left as
            // it is and nothing is written (no row affected). Concurrent setups wait for
            // each other on the row, so each sees the one before it.
            let upsert = diesel::insert_into(totp_factors::table)
                .values(&row)
                .on_conflict(totp_factors::user_id)
                .do_update()
                .set((
                    totp_factors::secret_sealed.eq(excluded(totp_factors::secret_sealed)),
                    totp_factors::confirmed_at.eq(None::<i64>),
                    totp_factors::last_used_step.eq(None::<i64>),
                    totp_factors::created_at.eq(excluded(totp_factors::created_at)),
                ));
            // `ON CONFLICT ... DO UPDATE ... WHERE`: only a pending factor is replaced.
            let written = diesel::query_dsl::methods::FilterDsl::filter(upsert, totp_factors::confirmed_at.is_null())
                .execute(conn)?;
            Ok(written > 0)
        })
        .map_err(Fail::into_store)
    }

    fn confirm_totp(
        &self,
        user_id: Uuid,
        secret_sealed: &[u8],
        step: i64,
        codes: &[TokenHash],
        now: i64,
    ) -> StoreResult<bool> {
        let user_id = id_text(user_id);
        conditional(write_tx!(self, conn => {
            conn.lock_for_write(RECOVERY_CODES_LOCK_CLASS, &user_id)?;
            // Of concurrent confirmations one updates the row; PostgreSQL re-checks
            // `confirmed_at IS NULL` for the others after the row lock, SQLite's write lock
            // serializes them.
            let confirmed = diesel::update(
                totp_factors::table
                    .filter(totp_factors::user_id.eq(user_id.as_str()))
                    .filter(totp_factors::confirmed_at.is_null())
                    .filter(totp_factors::secret_sealed.eq(secret_sealed)),
            )
            .set((
                totp_factors::confirmed_at.eq(now),
                totp_factors::last_used_step.eq(step),
            ))
            .execute(conn)?;
            if confirmed == 0 {
                return Err(Fail::Abort);
            }
            replace_codes!(conn, user_id.as_str(), codes, now);
            Ok(true)
        }))
    }

    fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool> {
        let user_id = id_text(user_id);
        with_conn!(self, conn => {
            // A compare-and-set in one statement: of concurrent uses of one step, the ones
            // after the first find `last_used_step < step` false.
            let used = diesel::update(
                totp_factors::table
                    .filter(totp_factors::user_id.eq(user_id.as_str()))
                    .filter(totp_factors::confirmed_at.is_not_null())
                    .filter(
                        totp_factors::last_used_step
                            .is_null()
                            .or(totp_factors::last_used_step.lt(step)),
                    ),
            )
            .set(totp_factors::last_used_step.eq(step))
            .execute(conn)?;
            Ok(used > 0)
        })
        .map_err(Fail::into_store)
    }

    fn delete_totp(&self, user_id: Uuid) -> StoreResult<bool> {
        let user_id = id_text(user_id);
        write_tx!(self, conn => {
            conn.lock_for_write(RECOVERY_CODES_LOCK_CLASS, &user_id)?;
            diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id.as_str())))
                .execute(conn)?;
            let deleted = diesel::delete(
                totp_factors::table.filter(totp_factors::user_id.eq(user_id.as_str())),
            )
            .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[TokenHash],
        now: i64,
    ) -> StoreResult<()> {
        let user_id = id_text(user_id);
        write_tx!(self, conn => {
            conn.lock_for_write(RECOVERY_CODES_LOCK_CLASS, &user_id)?;
            // An unknown user is refused even with no codes to insert (which the foreign key
            // alone would not refuse).
            let known = diesel::select(diesel::dsl::exists(
                users::table.filter(users::id.eq(user_id.as_str())),
            ))
            .get_result::<bool>(conn)?;
            if !known {
                return Err(no_such_user());
            }
            replace_codes!(conn, user_id.as_str(), codes, now);
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn use_recovery_code(&self, user_id: Uuid, hash: &TokenHash) -> StoreResult<bool> {
        let user_id = id_text(user_id);
        let hash = hash.to_hex();
        with_conn!(self, conn => {
            // Of concurrent uses only one deletes the row.
            let deleted = diesel::delete(
                recovery_codes::table
                    .filter(recovery_codes::user_id.eq(user_id.as_str()))
                    .filter(recovery_codes::code_hash.eq(hash.as_str())),
            )
            .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
        let row = PasskeyRow::from_record(passkey);
        with_conn!(self, conn => {
            diesel::insert_into(passkeys::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn list_passkeys(&self, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        let user_id = id_text(user_id);
        with_conn!(self, conn => {
            passkeys::table
                .filter(passkeys::user_id.eq(user_id.as_str()))
                .order((passkeys::created_at.asc(), passkeys::id.asc()))
                .select(PasskeyRow::as_select())
                .load::<PasskeyRow>(conn)?
                .into_iter()
                .map(PasskeyRow::into_record)
                .collect()
        })
        .map_err(Fail::into_store)
    }

    fn find_passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        with_conn!(self, conn => {
            passkeys::table
                .filter(passkeys::credential_id.eq(credential_id))
                .select(PasskeyRow::as_select())
                .get_result::<PasskeyRow>(conn)
                .optional()?
                .map(PasskeyRow::into_record)
                .transpose()
        })
        .map_err(Fail::into_store)
    }

    fn touch_passkey(&self, id: Uuid, data: &str, now: i64) -> StoreResult<bool> {
        let id = id_text(id);
        with_conn!(self, conn => {
            let touched = diesel::update(passkeys::table.filter(passkeys::id.eq(id.as_str())))
                .set((passkeys::data.eq(data), passkeys::last_used_at.eq(now)))
                .execute(conn)?;
            Ok(touched > 0)
        })
        .map_err(Fail::into_store)
    }

    fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let (user_id, id) = (id_text(user_id), id_text(id));
        with_conn!(self, conn => {
            let deleted = diesel::delete(
                passkeys::table
                    .filter(passkeys::id.eq(id.as_str()))
                    .filter(passkeys::user_id.eq(user_id.as_str())),
            )
            .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn reset_mfa(&self, user_id: Uuid) -> StoreResult<MfaFactors> {
        let user_id = id_text(user_id);
        write_tx!(self, conn => {
            conn.lock_for_write(RECOVERY_CODES_LOCK_CLASS, &user_id)?;
            // What the user had is what this transaction deletes: counted by the deletes
            // themselves, so a row added meanwhile is counted if and only if it went.
            let confirmed = diesel::delete(
                totp_factors::table
                    .filter(totp_factors::user_id.eq(user_id.as_str()))
                    .filter(totp_factors::confirmed_at.is_not_null()),
            )
            .execute(conn)?;
            diesel::delete(totp_factors::table.filter(totp_factors::user_id.eq(user_id.as_str())))
                .execute(conn)?;
            let codes = diesel::delete(
                recovery_codes::table.filter(recovery_codes::user_id.eq(user_id.as_str())),
            )
            .execute(conn)?;
            let keys = diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id.as_str())))
                .execute(conn)?;
            diesel::delete(
                mfa_challenges::table.filter(mfa_challenges::user_id.eq(user_id.as_str())),
            )
            .execute(conn)?;
            Ok(MfaFactors {
                totp: confirmed > 0,
                recovery_codes: rows_u64(codes),
                passkeys: rows_u64(keys),
            })
        })
        .map_err(Fail::into_store)
    }

    fn create_challenge(&self, challenge: &ChallengeRecord) -> StoreResult<()> {
        let row = ChallengeRow::from_record(challenge);
        with_conn!(self, conn => {
            diesel::insert_into(mfa_challenges::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn find_challenge(
        &self,
        hash: &TokenHash,
        purpose: ChallengePurpose,
        now: i64,
    ) -> StoreResult<Option<ChallengeRecord>> {
        let hash = hash.to_hex();
        with_conn!(self, conn => {
            mfa_challenges::table
                .filter(mfa_challenges::hash.eq(hash.as_str()))
                .filter(mfa_challenges::purpose.eq(purpose.as_str()))
                .filter(mfa_challenges::expires_at.gt(now))
                .select(ChallengeRow::as_select())
                .get_result::<ChallengeRow>(conn)
                .optional()?
                .map(ChallengeRow::into_record)
                .transpose()
        })
        .map_err(Fail::into_store)
    }

    fn fail_challenge(&self, hash: &TokenHash, max: u32) -> StoreResult<Option<u32>> {
        let hash = hash.to_hex();
        write_tx!(self, conn => {
            let of_hash = mfa_challenges::table.filter(mfa_challenges::hash.eq(hash.as_str()));
            // The increment locks the row until commit (SQLite: the write lock), so the count
            // read next is this failure's, and concurrent failures are each counted once. A
            // count at the column's limit stays there.
            diesel::update(of_hash.filter(mfa_challenges::failures.lt(i32::MAX)))
                .set(mfa_challenges::failures.eq(mfa_challenges::failures + 1))
                .execute(conn)?;
            let failures = of_hash
                .select(mfa_challenges::failures)
                .get_result::<i32>(conn)
                .optional()?;
            let Some(failures) = failures else {
                return Ok(None);
            };
            let failures = u32::try_from(failures)
                .map_err(|_| Fail::other("negative count in column mfa_challenges.failures"))?;
            if failures >= max {
                diesel::delete(of_hash).execute(conn)?;
            }
            Ok(Some(failures))
        })
        .map_err(Fail::into_store)
    }

    fn take_challenge(
        &self,
        hash: &TokenHash,
        purpose: ChallengePurpose,
        now: i64,
    ) -> StoreResult<Option<ChallengeRecord>> {
        let hash = hash.to_hex();
        write_tx!(self, conn => {
            conn.take_challenge_row(&hash, purpose.as_str(), now)?
                .map(ChallengeRow::into_record)
                .transpose()
        })
        .map_err(Fail::into_store)
    }

    fn purge_expired_challenges(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let limit = i64::from(limit);
        with_conn!(self, conn => {
            // A bounded batch by the expiry index, deleted with the expiry checked again, as
            // for one-time tokens.
            let batch: Vec<String> = mfa_challenges::table
                .filter(mfa_challenges::expires_at.le(before))
                .select(mfa_challenges::hash)
                .limit(limit)
                .load(conn)?;
            if batch.is_empty() {
                return Ok(0);
            }
            let deleted = diesel::delete(
                mfa_challenges::table
                    .filter(mfa_challenges::hash.eq_any(&batch))
                    .filter(mfa_challenges::expires_at.le(before)),
            )
            .execute(conn)?;
            Ok(rows_u64(deleted))
        })
        .map_err(Fail::into_store)
    }
}
