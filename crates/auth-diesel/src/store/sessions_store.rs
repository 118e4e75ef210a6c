//! [`auth_core::store::SessionStore`] on Diesel: sessions and refresh tokens.

use super::*;

impl SessionStore for DieselStore {
    fn create_session(&self, new: &NewSession) -> StoreResult<()> {
        same_session(new.session.id, &new.first_refresh)?;
        let row = SessionRow::from_record(&new.session);
        let token = NewRefreshRow::from_new(&new.first_refresh);
        write_tx!(self, conn => {
            if let Some(before) = new.purge_expired_before {
                diesel::delete(
                    sessions::table
                        .filter(sessions::user_id.eq(row.user_id.as_str()))
                        .filter(sessions::expires_at.le(before)),
                )
                .execute(conn)?;
            }
            diesel::insert_into(sessions::table).values(&row).execute(conn)?;
            diesel::insert_into(refresh_tokens::table).values(&token).execute(conn)?;
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

    fn find_refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshRecord>> {
        let hash = hash.to_hex();
        with_conn!(self, conn => {
            let found = refresh_tokens::table
                .inner_join(sessions::table)
                .filter(refresh_tokens::token_hash.eq(hash.as_str()))
                .select((
                    RefreshRow::as_select(),
                    sessions::user_id,
                    sessions::expires_at,
                    sessions::created_at,
                    sessions::access_ttl,
                ))
                .get_result::<(RefreshRow, String, i64, i64, Option<i64>)>(conn)
                .optional()?;
            let Some((token, user_id, session_expires_at, created_at, access_ttl)) = found else {
                return Ok(None);
            };
            let successor_used = match &token.successor_hash {
                None => false,
                Some(next) => refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(next.as_str()))
                    .select(refresh_tokens::used_at)
                    .get_result::<Option<i64>>(conn)
                    .optional()?
                    // Gone counts as used.
                    .is_none_or(|used_at| used_at.is_some()),
            };
            Ok(Some(RefreshRecord {
                session_id: parse_id(&token.session_id, "refresh_tokens.session_id")?,
                user_id: parse_id(&user_id, "sessions.user_id")?,
                expires_at: token.expires_at,
                used_at: token.used_at,
                replay: token.replay,
                successor_used,
                session_expires_at,
                session_bounds: SessionBounds {
                    created_at,
                    access_ttl,
                },
            }))
        })
        .map_err(Fail::into_store)
    }

    fn rotate_refresh_token(&self, rotation: &RefreshRotation) -> StoreResult<bool> {
        let old = rotation.old.to_hex();
        let new = NewRefreshRow::from_new(&rotation.new);
        let now = rotation.now;
        let result = write_tx!(self, conn => {
            // The conditional write comes first: a concurrent exchange that already marked
            // the token makes it match no row (PostgreSQL re-checks the condition after
            // waiting for the row lock; SQLite writers are serialized).
            let claimed = diesel::update(
                refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(old.as_str()))
                    .filter(refresh_tokens::session_id.eq(new.session_id.as_str()))
                    .filter(refresh_tokens::used_at.is_null()),
            )
            .set((
                refresh_tokens::used_at.eq(now),
                refresh_tokens::replay.eq(rotation.replay.as_slice()),
                refresh_tokens::successor_hash.eq(new.token_hash.as_str()),
            ))
            .execute(conn)?;
            if claimed != 1 {
                return Err(Fail::Abort);
            }
            diesel::insert_into(refresh_tokens::table).values(&new).execute(conn)?;
            let updated = diesel::update(
                sessions::table.filter(sessions::id.eq(new.session_id.as_str())),
            )
            .set((
                sessions::access_jti.eq(rotation.new_access_jti.as_str()),
                sessions::last_used_at.eq(now),
                sessions::expires_at.eq(new.expires_at),
            ))
            .execute(conn)?;
            if updated != 1 {
                return Err(Fail::Abort);
            }
            Ok(true)
        });
        conditional(result)
    }

    fn rotate_access_token(&self, rotation: &AccessRotation) -> StoreResult<bool> {
        same_session(rotation.session_id, &rotation.new_refresh)?;
        let session_id = id_text(rotation.session_id);
        let new = NewRefreshRow::from_new(&rotation.new_refresh);
        let now = rotation.now;
        let result = write_tx!(self, conn => {
            let updated = diesel::update(
                sessions::table
                    .filter(sessions::id.eq(session_id.as_str()))
                    .filter(sessions::access_jti.eq(rotation.old_access_jti.as_str()))
                    .filter(sessions::expires_at.gt(now)),
            )
            .set((
                sessions::access_jti.eq(rotation.new_access_jti.as_str()),
                sessions::last_used_at.eq(now),
                sessions::expires_at.eq(new.expires_at),
            ))
            .execute(conn)?;
            if updated != 1 {
                return Err(Fail::Abort);
            }
            // The unused token is superseded as used, with no replay: whoever presents it
            // later (its owner, if the access token was stolen) triggers reuse detection.
            diesel::update(
                refresh_tokens::table
                    .filter(refresh_tokens::session_id.eq(session_id.as_str()))
                    .filter(refresh_tokens::used_at.is_null()),
            )
            .set((
                refresh_tokens::used_at.eq(now),
                refresh_tokens::replay.eq(None::<Vec<u8>>),
                refresh_tokens::successor_hash.eq(new.token_hash.as_str()),
            ))
            .execute(conn)?;
            diesel::insert_into(refresh_tokens::table).values(&new).execute(conn)?;
            Ok(true)
        });
        conditional(result)
    }
}
