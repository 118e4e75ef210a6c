//! [`SessionStore`] and [`PersonalTokenStore`] of the [`MemoryStore`]: sessions, their
//! refresh tokens, and personal access tokens.

use std::collections::HashSet;

use uuid::Uuid;

use super::{MemoryStore, State, StoredPersonalToken, StoredRefresh, missing};
use crate::store::{
    AccessRotation, NewPersonalToken, NewRefreshToken, NewSession, PersonalTokenRecord,
    PersonalTokenStore, PreviousRefresh, RefreshRecord, RefreshRotation, SessionRecord,
    SessionStore, StoreError, StoreResult, TokenHash, Use, UserRecord,
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
        if session_taken {
            return Err(StoreError::Conflict);
        }
        state.delete_sessions(purged);
        state.sessions.insert(new.session.id, new.session.clone());
        state.refresh.insert(
            new.session.id,
            StoredRefresh {
                generation: new.first_refresh.generation,
                current: new.first_refresh.hash,
                previous: None,
            },
        );
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

    fn find_refresh_token(&self, session_id: Uuid) -> StoreResult<Option<RefreshRecord>> {
        let state = self.lock()?;
        let (Some(session), Some(refresh)) = (
            state.sessions.get(&session_id),
            state.refresh.get(&session_id),
        ) else {
            return Ok(None);
        };
        Ok(Some(RefreshRecord {
            session_id,
            user_id: session.user_id,
            generation: refresh.generation,
            current: refresh.current,
            previous: refresh.previous.clone(),
            session_expires_at: session.expires_at,
            session_bounds: session.bounds,
        }))
    }

    fn rotate_refresh_token(&self, rotation: &RefreshRotation) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let session_id = rotation.new.session_id;
        let claimable = state.refresh.get(&session_id).is_some_and(|r| {
            r.current == rotation.old
                && r.generation.checked_add(1) == Some(rotation.new.generation)
        });
        if !claimable || !state.sessions.contains_key(&session_id) {
            return Ok(false);
        }
        if let Some(refresh) = state.refresh.get_mut(&session_id) {
            refresh.previous = Some(PreviousRefresh {
                hash: refresh.current,
                used_at: rotation.now,
                replay: Some(rotation.replay.clone()),
            });
            refresh.current = rotation.new.hash;
            refresh.generation = rotation.new.generation;
        }
        if let Some(session) = state.sessions.get_mut(&session_id) {
            session.access_jti.clone_from(&rotation.new_access_jti);
            session.last_used_at = rotation.now;
            session.expires_at = rotation.new.expires_at;
        }
        Ok(true)
    }

    fn rotate_access_token(&self, rotation: &AccessRotation) -> StoreResult<Option<u64>> {
        let mut state = self.lock()?;
        let session_id = rotation.session_id;
        let current = state.sessions.get(&session_id).is_some_and(|s| {
            s.access_jti == rotation.old_access_jti && s.expires_at > rotation.now
        });
        let Some(refresh) = state.refresh.get_mut(&session_id).filter(|_| current) else {
            return Ok(None);
        };
        let Some(generation) = refresh.generation.checked_add(1) else {
            return Ok(None);
        };
        // The current token is superseded as used, with no replay: presenting it later is
        // reuse.
        refresh.previous = Some(PreviousRefresh {
            hash: refresh.current,
            used_at: rotation.now,
            replay: None,
        });
        refresh.current = rotation.new_refresh;
        refresh.generation = generation;
        if let Some(session) = state.sessions.get_mut(&session_id) {
            session.access_jti.clone_from(&rotation.new_access_jti);
            session.last_used_at = rotation.now;
            session.expires_at = rotation.expires_at;
        }
        Ok(Some(generation))
    }

    fn purge_expired_sessions(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let doomed: HashSet<Uuid> = state
            .sessions
            .values()
            .filter(|s| s.expires_at <= before)
            .map(|s| s.id)
            .take(limit as usize)
            .collect();
        state.delete_sessions(|s| doomed.contains(&s.id));
        Ok(doomed.len() as u64)
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

    fn purge_expired_personal_tokens(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let doomed: Vec<Uuid> = state
            .personal_tokens
            .values()
            .filter(|t| t.record.expires_at.is_some_and(|at| at <= before))
            .map(|t| t.record.id)
            .take(limit as usize)
            .collect();
        for id in &doomed {
            state.personal_tokens.remove(id);
        }
        Ok(doomed.len() as u64)
    }
}
