//! [`auth_core::store::PersonalTokenStore`] on Diesel: personal access tokens.

use super::*;

impl PersonalTokenStore for DieselStore {
    fn create_personal_token(&self, token: &NewPersonalToken) -> StoreResult<PersonalTokenRecord> {
        let row = NewPersonalTokenRow {
            id: id_text(token.id),
            user_id: id_text(token.user_id),
            name: &token.name,
            token_hash: token.hash.to_hex(),
            created_at: token.created_at,
            expires_at: token.expires_at,
        };
        with_conn!(self, conn => {
            diesel::insert_into(personal_tokens::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)?;
        Ok(PersonalTokenRecord {
            id: token.id,
            user_id: token.user_id,
            name: token.name.clone(),
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used_at: None,
        })
    }

    fn personal_token_with_user(
        &self,
        hash: &TokenHash,
        seen: Use,
    ) -> StoreResult<Option<(PersonalTokenRecord, UserRecord)>> {
        let hash = hash.to_hex();
        let (now, stale) = (seen.now, seen.touch_before);
        with_conn!(self, conn => {
            // Token, user and the user's role names in one statement (a row per role).
            let rows = personal_tokens::table
                .inner_join(users::table.left_join(user_roles::table.left_join(roles::table)))
                .filter(personal_tokens::token_hash.eq(hash.as_str()))
                .select((
                    PersonalTokenRow::as_select(),
                    UserRow::as_select(),
                    roles::name.nullable(),
                ))
                .load::<(PersonalTokenRow, UserRow, Option<String>)>(conn)?;
            let Some((mut token, user, role_names)) = with_role_names(rows) else {
                return Ok(None);
            };
            if token.last_used_at.is_none_or(|t| t < stale) {
                let touched = diesel::update(
                    personal_tokens::table
                        .filter(personal_tokens::id.eq(token.id.as_str()))
                        .filter(
                            personal_tokens::last_used_at
                                .is_null()
                                .or(personal_tokens::last_used_at.lt(stale)),
                        ),
                )
                .set(personal_tokens::last_used_at.eq(now))
                .execute(conn);
                match touched {
                    Ok(n) if n > 0 => token.last_used_at = Some(now),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "could not record personal token use"),
                }
            }
            Ok(Some((token.into_record()?, user.into_record(role_names)?)))
        })
        .map_err(Fail::into_store)
    }

    fn list_personal_tokens(&self, user_id: Uuid) -> StoreResult<Vec<PersonalTokenRecord>> {
        let user_id = id_text(user_id);
        with_conn!(self, conn => {
            personal_tokens::table
                .filter(personal_tokens::user_id.eq(user_id.as_str()))
                .order((personal_tokens::created_at.asc(), personal_tokens::id.asc()))
                .select(PersonalTokenRow::as_select())
                .load::<PersonalTokenRow>(conn)?
                .into_iter()
                .map(PersonalTokenRow::into_record)
                .collect()
        })
        .map_err(Fail::into_store)
    }

    fn delete_personal_token(&self, user_id: Uuid, token_id: Uuid) -> StoreResult<bool> {
        let user_id = id_text(user_id);
        let token_id = id_text(token_id);
        with_conn!(self, conn => {
            let deleted = diesel::delete(
                personal_tokens::table
                    .filter(personal_tokens::id.eq(token_id.as_str()))
                    .filter(personal_tokens::user_id.eq(user_id.as_str())),
            )
            .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn purge_expired_personal_tokens(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let limit = i64::from(limit);
        with_conn!(self, conn => {
            // A bounded batch by the expiry index, deleted with the expiry checked again, as
            // for sessions.
            let batch: Vec<String> = personal_tokens::table
                .filter(personal_tokens::expires_at.le(before))
                .select(personal_tokens::id)
                .limit(limit)
                .load(conn)?;
            if batch.is_empty() {
                return Ok(0);
            }
            let deleted = diesel::delete(
                personal_tokens::table
                    .filter(personal_tokens::id.eq_any(&batch))
                    .filter(personal_tokens::expires_at.le(before)),
            )
            .execute(conn)?;
            Ok(deleted as u64)
        })
        .map_err(Fail::into_store)
    }
}
