//! [`auth_core::store::SessionStore`] on Diesel: sessions and their refresh state, kept on
//! the session row (current and previous generation).

use super::*;

impl SessionStore for DieselStore {
    fn create_session(&self, new: &NewSession) -> StoreResult<()> {
        same_session(new.session.id, &new.first_refresh)?;
        let row = SessionRow::from_record(&new.session);
        let refresh = (
            sessions::refresh_generation.eq(generation_column(new.first_refresh.generation)?),
            sessions::refresh_hash.eq(new.first_refresh.hash.to_hex()),
        );
        write_tx!(self, conn => {
            if let Some(before) = new.purge_expired_before {
                diesel::delete(
                    sessions::table
                        .filter(sessions::user_id.eq(row.user_id.as_str()))
                        .filter(sessions::expires_at.le(before)),
                )
                .execute(conn)?;
            }
            diesel::insert_into(sessions::table)
                .values((&row, refresh.clone()))
                .execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn session_with_user(
        &self,
        session_id: Uuid,
        seen: Use,
    ) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        let id = id_text(session_id);
        let (now, stale) = (seen.now, seen.touch_before);
        with_conn!(self, conn => {
            // Session, user and the user's role names in one statement (a row per role).
            let rows = sessions::table
                .inner_join(users::table.left_join(user_roles::table.left_join(roles::table)))
                .filter(sessions::id.eq(id.as_str()))
                .filter(sessions::expires_at.gt(now))
                .select((SessionRow::as_select(), UserRow::as_select(), roles::name.nullable()))
                .load::<(SessionRow, UserRow, Option<String>)>(conn)?;
            let Some((mut session, user, role_names)) = with_role_names(rows) else {
                return Ok(None);
            };
            if session.last_used_at < stale {
                let touched = diesel::update(
                    sessions::table
                        .filter(sessions::id.eq(id.as_str()))
                        .filter(sessions::last_used_at.lt(stale)),
                )
                .set(sessions::last_used_at.eq(now))
                .execute(conn);
                match touched {
                    Ok(n) if n > 0 => session.last_used_at = now,
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "could not record session use"),
                }
            }
            Ok(Some((session.into_record()?, user.into_record(role_names)?)))
        })
        .map_err(Fail::into_store)
    }

    fn list_sessions(&self, user_id: Uuid, now: i64) -> StoreResult<Vec<SessionRecord>> {
        let user_id = id_text(user_id);
        with_conn!(self, conn => {
            sessions::table
                .filter(sessions::user_id.eq(user_id.as_str()))
                .filter(sessions::expires_at.gt(now))
                .order((sessions::created_at.asc(), sessions::id.asc()))
                .select(SessionRow::as_select())
                .load::<SessionRow>(conn)?
                .into_iter()
                .map(SessionRow::into_record)
                .collect()
        })
        .map_err(Fail::into_store)
    }

    fn delete_session(&self, user_id: Uuid, session_id: Uuid) -> StoreResult<bool> {
        let user_id = id_text(user_id);
        let session_id = id_text(session_id);
        with_conn!(self, conn => {
            let deleted = diesel::delete(
                sessions::table
                    .filter(sessions::id.eq(session_id.as_str()))
                    .filter(sessions::user_id.eq(user_id.as_str())),
            )
            .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn find_refresh_token(&self, session_id: Uuid) -> StoreResult<Option<RefreshRecord>> {
        let id = id_text(session_id);
        with_conn!(self, conn => {
            let found = sessions::table
                .filter(sessions::id.eq(id.as_str()))
                .select(RefreshRow::as_select())
                .get_result::<RefreshRow>(conn)
                .optional()?;
            found.map(RefreshRow::into_record).transpose()
        })
        .map_err(Fail::into_store)
    }

    fn rotate_refresh_token(&self, rotation: &RefreshRotation) -> StoreResult<bool> {
        let id = id_text(rotation.new.session_id);
        let old = rotation.old.to_hex();
        let new = rotation.new.hash.to_hex();
        let now = rotation.now;
        let next = generation_column(rotation.new.generation)?;
        let result = with_conn!(self, conn => {
            // One conditional statement, so of concurrent exchanges exactly one matches
            // (PostgreSQL re-checks the condition after waiting for the row lock; SQLite
            // writers are serialized). The previous generation is overwritten: nothing
            // older is kept.
            let claimed = diesel::update(
                sessions::table
                    .filter(sessions::id.eq(id.as_str()))
                    .filter(sessions::refresh_generation.eq(next - 1))
                    .filter(sessions::refresh_hash.eq(old.as_str())),
            )
            .set((
                sessions::previous_refresh_hash.eq(old.as_str()),
                sessions::previous_refresh_used_at.eq(now),
                sessions::previous_refresh_replay.eq(rotation.replay.as_slice()),
                sessions::refresh_hash.eq(new.as_str()),
                sessions::refresh_generation.eq(next),
                sessions::access_jti.eq(rotation.new_access_jti.as_str()),
                sessions::last_used_at.eq(now),
                sessions::expires_at.eq(rotation.new.expires_at),
            ))
            .execute(conn)?;
            Ok(claimed == 1)
        });
        result.map_err(Fail::into_store)
    }

    fn rotate_access_token(&self, rotation: &AccessRotation) -> StoreResult<Option<u64>> {
        let id = id_text(rotation.session_id);
        let new = rotation.new_refresh.to_hex();
        let now = rotation.now;
        let result = write_tx!(self, conn => {
            let generation = sessions::table
                .filter(sessions::id.eq(id.as_str()))
                .select(sessions::refresh_generation)
                .get_result::<i64>(conn)
                .optional()?
                .ok_or(Fail::Abort)?;
            let next = generation.checked_add(1).ok_or(Fail::Abort)?;
            // The current token is superseded as used, with no replay: whoever presents it
            // later (its owner, if the access token was stolen) triggers reuse detection.
            // The generation read above is part of the condition, so a concurrent rotation
            // of either form makes this match nothing.
            let updated = diesel::update(
                sessions::table
                    .filter(sessions::id.eq(id.as_str()))
                    .filter(sessions::access_jti.eq(rotation.old_access_jti.as_str()))
                    .filter(sessions::expires_at.gt(now))
                    .filter(sessions::refresh_generation.eq(generation)),
            )
            .set((
                sessions::previous_refresh_hash.eq(sessions::refresh_hash.nullable()),
                sessions::previous_refresh_used_at.eq(now),
                sessions::previous_refresh_replay.eq(None::<Vec<u8>>),
                sessions::refresh_hash.eq(new.as_str()),
                sessions::refresh_generation.eq(next),
                sessions::access_jti.eq(rotation.new_access_jti.as_str()),
                sessions::last_used_at.eq(now),
                sessions::expires_at.eq(rotation.expires_at),
            ))
            .execute(conn)?;
            if updated != 1 {
                return Err(Fail::Abort);
            }
            u64::try_from(next).map_err(|_| Fail::Abort)
        });
        match result {
            Ok(generation) => Ok(Some(generation)),
            Err(Fail::Abort) => Ok(None),
            Err(other) => Err(other.into_store()),
        }
    }

    fn purge_expired_sessions(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let limit = i64::from(limit);
        with_conn!(self, conn => {
            // A bounded batch of ids by the expiry index (neither backend takes
            // DELETE ... LIMIT), then one delete that checks the expiry again: a session
            // refreshed in between stays, and concurrent purges from other instances delete
            // disjoint rows or nothing.
            let batch: Vec<String> = sessions::table
                .filter(sessions::expires_at.le(before))
                .select(sessions::id)
                .limit(limit)
                .load(conn)?;
            if batch.is_empty() {
                return Ok(0);
            }
            let deleted = diesel::delete(
                sessions::table
                    .filter(sessions::id.eq_any(&batch))
                    .filter(sessions::expires_at.le(before)),
            )
            .execute(conn)?;
            Ok(deleted as u64)
        })
        .map_err(Fail::into_store)
    }
}

/// A generation as stored (BIGINT). Generations grow by one per refresh, so the limit is
/// never reached in practice; past it the store refuses rather than wraps.
fn generation_column(generation: u64) -> StoreResult<i64> {
    i64::try_from(generation)
        .map_err(|_| StoreError::Other("refresh generation out of range".to_owned()))
}

impl RefreshRow {
    fn into_record(self) -> Result<RefreshRecord, Fail> {
        let hash = |hex: &str, column: &str| {
            TokenHash::from_hex(hex)
                .ok_or_else(|| Fail::other(format!("invalid hash in column {column}")))
        };
        // A session migrated from before the generations has no current hash (''): it reads
        // as one that no token matches.
        let current = if self.refresh_hash.is_empty() {
            TokenHash([0; 32])
        } else {
            hash(&self.refresh_hash, "sessions.refresh_hash")?
        };
        let previous = match (self.previous_refresh_hash, self.previous_refresh_used_at) {
            (Some(previous), Some(used_at)) => Some(PreviousRefresh {
                hash: hash(&previous, "sessions.previous_refresh_hash")?,
                used_at,
                replay: self.previous_refresh_replay,
            }),
            _ => None,
        };
        Ok(RefreshRecord {
            session_id: parse_id(&self.id, "sessions.id")?,
            user_id: parse_id(&self.user_id, "sessions.user_id")?,
            generation: u64::try_from(self.refresh_generation)
                .map_err(|_| Fail::other("negative refresh generation".to_owned()))?,
            current,
            previous,
            session_expires_at: self.expires_at,
            session_bounds: SessionBounds {
                created_at: self.created_at,
                access_ttl: self.access_ttl,
            },
        })
    }
}
