//! [`SessionStore`] and [`PersonalTokenStore`] of the [`MemoryStore`]: sessions, their
//! refresh tokens, and personal access tokens.

use uuid::Uuid;

use super::{MemoryStore, State, StoredPersonalToken, StoredRefresh, missing};
use crate::store::{
    AccessRotation, NewPersonalToken, NewRefreshToken, NewSession, PersonalTokenRecord,
    PersonalTokenStore, RefreshRecord, RefreshRotation, SessionRecord, SessionStore, StoreError,
    StoreResult, TokenHash, Use, UserRecord,
};

/// Refuses a refresh token meant for another session than the one being written.
fn same_session(expected: Uuid, refresh: &NewRefreshToken) -> StoreResult<()> {
    if refresh.session_id == expected {
        Ok(())
    } else {
        Err(StoreError::Other(
            "refresh token does not belong to the session".to_owned(),
        ))
    }
}

/// The row of a refresh token not yet exchanged.
fn fresh(token: &NewRefreshToken) -> StoredRefresh {
    StoredRefresh {
        session_id: token.session_id,
        expires_at: token.expires_at,
        used_at: None,
        replay: None,
        successor: None,
    }
}

impl State {
    /// The session `id` and its user, if both exist.
    fn session_and_user(&self, id: Uuid) -> Option<(&SessionRecord, &UserRecord)> {
        let session = self.sessions.get(&id)?;
        Some((session, self.user(session.user_id)?))
    }
}

impl SessionStore for MemoryStore {
    fn create_session(&self, new: &NewSession) -> StoreResult<()> {
        same_session(new.session.id, &new.first_refresh)?;
        let mut state = self.lock()?;
        let user_id = new.session.user_id;
        if state.user(user_id).is_none() {
            return Err(missing("user"));
        }
        // The purge happens first, so what it removes cannot conflict with the insert.
        let purged = |s: &SessionRecord| {
            s.user_id == user_id && new.purge_expired_before.is_some_and(|t| s.expires_at <= t)
        };
        let session_taken = state
            .sessions
            .get(&new.session.id)
            .is_some_and(|s| !purged(s));
        let hash_taken = state
            .refresh_tokens
            .get(&new.first_refresh.hash)
            .and_then(|token| state.sessions.get(&token.session_id))
            .is_some_and(|s| !purged(s));
        if session_taken || hash_taken {
            return Err(StoreError::Conflict);
        }
        state.delete_sessions(purged);
        state.sessions.insert(new.session.id, new.session.clone());
        state
            .refresh_tokens
            .insert(new.first_refresh.hash, fresh(&new.first_refresh));
        Ok(())
    }

    fn session_with_user(
        &self,
        session_id: Uuid,
        seen: Use,
    ) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        let mut state = self.lock()?;
        let Some((session, user)) = state.session_and_user(session_id) else {
            return Ok(None);
        };
        if session.expires_at <= seen.now {
            return Ok(None);
        }
        let user = user.clone();
        let Some(session) = state.sessions.get_mut(&session_id) else {
            return Ok(None);
        };
        if session.last_used_at < seen.touch_before {
            session.last_used_at = seen.now;
        }
        Ok(Some((session.clone(), user)))
    }

    fn list_sessions(&self, user_id: Uuid, now: i64) -> StoreResult<Vec<SessionRecord>> {
        let state = self.lock()?;
        let mut live: Vec<SessionRecord> = state
            .sessions
            .values()
            .filter(|s| s.user_id == user_id && s.expires_at > now)
            .cloned()
            .collect();
        live.sort_unstable_by_key(|s| (s.created_at, s.id));
        Ok(live)
    }

    fn delete_session(&self, user_id: Uuid, session_id: Uuid) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let owned = state
            .sessions
            .get(&session_id)
            .is_some_and(|s| s.user_id == user_id);
        if owned {
            state.delete_sessions(|s| s.id == session_id);
        }
        Ok(owned)
    }

    fn find_refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshRecord>> {
        let state = self.lock()?;
        let Some(token) = state.refresh_tokens.get(hash) else {
            return Ok(None);
        };
        let Some(session) = state.sessions.get(&token.session_id) else {
            return Ok(None);
        };
        let successor_used = token.successor.is_some_and(|next| {
            // Gone (removed by a bearer-form refresh) counts as used.
            state
                .refresh_tokens
                .get(&next)
                .is_none_or(|successor| successor.used_at.is_some())
        });
        Ok(Some(RefreshRecord {
            session_id: token.session_id,
            user_id: session.user_id,
            expires_at: token.expires_at,
            used_at: token.used_at,
            replay: token.replay.clone(),
            successor_used,
            session_expires_at: session.expires_at,
            session_bounds: session.bounds,
        }))
    }

    fn rotate_refresh_token(&self, rotation: &RefreshRotation) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let session_id = rotation.new.session_id;
        let claimable = state
            .refresh_tokens
            .get(&rotation.old)
            .is_some_and(|old| old.session_id == session_id && old.used_at.is_none());
        if !claimable || !state.sessions.contains_key(&session_id) {
            return Ok(false);
        }
        if state.refresh_tokens.contains_key(&rotation.new.hash) {
            return Err(StoreError::Conflict);
        }
        if let Some(old) = state.refresh_tokens.get_mut(&rotation.old) {
            old.used_at = Some(rotation.now);
            old.replay = Some(rotation.replay.clone());
            old.successor = Some(rotation.new.hash);
        }
        state
            .refresh_tokens
            .insert(rotation.new.hash, fresh(&rotation.new));
        if let Some(session) = state.sessions.get_mut(&session_id) {
            session.access_jti.clone_from(&rotation.new_access_jti);
            session.last_used_at = rotation.now;
            session.expires_at = rotation.new.expires_at;
        }
        Ok(true)
    }

    fn rotate_access_token(&self, rotation: &AccessRotation) -> StoreResult<bool> {
        same_session(rotation.session_id, &rotation.new_refresh)?;
        let mut state = self.lock()?;
        let session_id = rotation.session_id;
        let current = state.sessions.get(&session_id).is_some_and(|s| {
            s.access_jti == rotation.old_access_jti && s.expires_at > rotation.now
        });
        if !current {
            return Ok(false);
        }
        if state
            .refresh_tokens
            .contains_key(&rotation.new_refresh.hash)
        {
            return Err(StoreError::Conflict);
        }
        if let Some(session) = state.sessions.get_mut(&session_id) {
            session.access_jti.clone_from(&rotation.new_access_jti);
            session.last_used_at = rotation.now;
            session.expires_at = rotation.new_refresh.expires_at;
        }
        // The unused token is superseded as used, with no replay: presenting it later is
        // reuse.
        for token in state.refresh_tokens.values_mut() {
            if token.session_id == session_id && token.used_at.is_none() {
                token.used_at = Some(rotation.now);
                token.replay = None;
                token.successor = Some(rotation.new_refresh.hash);
            }
        }
        state
            .refresh_tokens
            .insert(rotation.new_refresh.hash, fresh(&rotation.new_refresh));
        Ok(true)
    }
}

impl PersonalTokenStore for MemoryStore {
    fn create_personal_token(&self, token: &NewPersonalToken) -> StoreResult<PersonalTokenRecord> {
        let mut state = self.lock()?;
        let taken = state.personal_tokens.contains_key(&token.id)
            || state.personal_tokens.values().any(|t| t.hash == token.hash);
        if taken {
            return Err(StoreError::Conflict);
        }
        if state.user(token.user_id).is_none() {
            return Err(missing("user"));
        }
        let record = PersonalTokenRecord {
            id: token.id,
            user_id: token.user_id,
            name: token.name.clone(),
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used_at: None,
        };
        state.personal_tokens.insert(
            token.id,
            StoredPersonalToken {
                hash: token.hash,
                record: record.clone(),
            },
        );
        Ok(record)
    }

    fn personal_token_with_user(
        &self,
        hash: &TokenHash,
        seen: Use,
    ) -> StoreResult<Option<(PersonalTokenRecord, UserRecord)>> {
        let mut state = self.lock()?;
        let Some((id, user_id)) = state
            .personal_tokens
            .values()
            .find(|t| t.hash == *hash)
            .map(|t| (t.record.id, t.record.user_id))
        else {
            return Ok(None);
        };
        let Some(user) = state.user(user_id).cloned() else {
            return Ok(None);
        };
        let Some(token) = state.personal_tokens.get_mut(&id) else {
            return Ok(None);
        };
        let record = &mut token.record;
        if record.last_used_at.is_none_or(|t| t < seen.touch_before) {
            record.last_used_at = Some(seen.now);
        }
        Ok(Some((record.clone(), user)))
    }

    fn list_personal_tokens(&self, user_id: Uuid) -> StoreResult<Vec<PersonalTokenRecord>> {
        let state = self.lock()?;
        let mut tokens: Vec<PersonalTokenRecord> = state
            .personal_tokens
            .values()
            .filter(|t| t.record.user_id == user_id)
            .map(|t| t.record.clone())
            .collect();
        tokens.sort_unstable_by_key(|t| (t.created_at, t.id));
        Ok(tokens)
    }

    fn delete_personal_token(&self, user_id: Uuid, token_id: Uuid) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let owned = state
            .personal_tokens
            .get(&token_id)
            .is_some_and(|t| t.record.user_id == user_id);
        if owned {
            state.personal_tokens.remove(&token_id);
        }
        Ok(owned)
    }
}
