//! [`OneTimeTokenStore`] and [`MailQueueStore`] of the [`MemoryStore`]: one-time tokens,
//! the outgoing mail queue, and the address fields of a user a patch may change.

use uuid::Uuid;

use super::{MemoryStore, State, StoredUser, missing};
use crate::store::{
    MailQueueStore, NewOneTimeToken, OneTimeTokenRecord, OneTimeTokenStore, QueuedMail, StoreError,
    StoreResult, TokenHash, TokenPurpose, UserPatch,
};

/// A count of rows as `u64`.
fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl State {
    /// `Conflict` when the patch's new email key belongs to another user (the unique index
    /// on `users.email_key`).
    pub(super) fn check_new_email(&self, id: Uuid, patch: &UserPatch) -> StoreResult<()> {
        let taken = patch.email.as_ref().is_some_and(|new| {
            self.users
                .values()
                .any(|u| u.record.id != id && u.email_key == new.email_key)
        });
        if taken {
            Err(StoreError::Conflict)
        } else {
            Ok(())
        }
    }

    /// Deletes every one-time token of the user (what `ON DELETE CASCADE` does).
    pub(super) fn forget_one_time_tokens(&mut self, user_id: Uuid) {
        self.one_time_tokens.retain(|_, t| t.user_id != user_id);
    }
}

/// Applies the address fields of `patch`, already checked by [`State::check_new_email`].
pub(super) fn patch_address(user: &mut StoredUser, patch: &UserPatch) {
    if let Some(new) = &patch.email {
        user.email_key.clone_from(&new.email_key);
        user.record.email.clone_from(&new.email);
    }
    if let Some(verified_at) = patch.email_verified_at {
        user.record.email_verified_at = verified_at;
    }
}

impl OneTimeTokenStore for MemoryStore {
    fn create_one_time_token(&self, token: &NewOneTimeToken) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state.user(token.user_id).is_none() {
            return Err(missing("user"));
        }
        // The replaced tokens go first, so what they free cannot conflict with the insert.
        let replaced = |t: &OneTimeTokenRecord| {
            token.replace_others && t.user_id == token.user_id && t.purpose == token.purpose
        };
        let taken = state
            .one_time_tokens
            .get(&token.hash)
            .is_some_and(|t| !replaced(t));
        if taken {
            return Err(StoreError::Conflict);
        }
        state.one_time_tokens.retain(|_, t| !replaced(t));
        state.one_time_tokens.insert(
            token.hash,
            OneTimeTokenRecord {
                user_id: token.user_id,
                purpose: token.purpose,
                email: token.email.clone(),
                created_at: token.created_at,
                expires_at: token.expires_at,
            },
        );
        Ok(())
    }

    fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: i64,
    ) -> StoreResult<Option<OneTimeTokenRecord>> {
        let mut state = self.lock()?;
        let of_purpose = state
            .one_time_tokens
            .get(hash)
            .is_some_and(|t| t.purpose == purpose);
        if !of_purpose {
            return Ok(None);
        }
        // Gone whether it still works or not.
        let token = state.one_time_tokens.remove(hash);
        Ok(token.filter(|t| t.expires_at > now))
    }

    fn delete_one_time_tokens(&self, user_id: Uuid, purpose: TokenPurpose) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let before = state.one_time_tokens.len();
        state
            .one_time_tokens
            .retain(|_, t| t.user_id != user_id || t.purpose != purpose);
        Ok(count(before - state.one_time_tokens.len()))
    }

    fn purge_one_time_tokens(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let doomed: Vec<TokenHash> = state
            .one_time_tokens
            .iter()
            .filter(|(_, t)| t.expires_at <= before)
            .map(|(hash, _)| *hash)
            .take(limit as usize)
            .collect();
        for hash in &doomed {
            state.one_time_tokens.remove(hash);
        }
        Ok(count(doomed.len()))
    }
}

impl MailQueueStore for MemoryStore {
    fn enqueue_mail(&self, mail: &QueuedMail) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state.mail_queue.contains_key(&mail.id) {
            return Err(StoreError::Conflict);
        }
        state.mail_queue.insert(mail.id, mail.clone());
        Ok(())
    }

    fn claim_mail(&self, now: i64, lease_until: i64, limit: u32) -> StoreResult<Vec<QueuedMail>> {
        let mut state = self.lock()?;
        let mut due: Vec<&QueuedMail> = state
            .mail_queue
            .values()
            .filter(|m| m.next_attempt_at <= now)
            .collect();
        due.sort_unstable_by_key(|m| (m.next_attempt_at, m.created_at, m.id));
        let claimed: Vec<QueuedMail> = due.into_iter().take(limit as usize).cloned().collect();
        for mail in &claimed {
            if let Some(queued) = state.mail_queue.get_mut(&mail.id) {
                queued.next_attempt_at = lease_until;
            }
        }
        Ok(claimed)
    }

    fn delete_mail(&self, id: Uuid) -> StoreResult<bool> {
        Ok(self.lock()?.mail_queue.remove(&id).is_some())
    }

    fn reschedule_mail(&self, id: Uuid, attempts: u32, next_attempt_at: i64) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let Some(mail) = state.mail_queue.get_mut(&id) else {
            return Ok(false);
        };
        mail.attempts = attempts;
        mail.next_attempt_at = next_attempt_at;
        Ok(true)
    }

    fn queued_mail_count(&self) -> StoreResult<u64> {
        Ok(count(self.lock()?.mail_queue.len()))
    }
}
