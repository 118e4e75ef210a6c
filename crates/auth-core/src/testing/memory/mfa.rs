//! [`MfaStore`] of the [`MemoryStore`]: TOTP factors, recovery codes, passkeys and
//! challenges, mirroring `auth-diesel`'s tables (primary keys, the unique credential id, rows
//! that go with their user).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::MemoryStore;
use crate::store::{
    ChallengePurpose, ChallengeRecord, MfaFactors, MfaStore, PasskeyRecord, StoreError,
    StoreResult, TokenHash, TotpRecord,
};

/// The tables of second factors.
#[derive(Debug, Default)]
pub(super) struct MfaTables {
    /// By user (one factor per user).
    totp: HashMap<Uuid, TotpRecord>,
    /// (user, code hash): the primary key.
    recovery_codes: HashSet<(Uuid, TokenHash)>,
    /// By id.
    passkeys: HashMap<Uuid, PasskeyRecord>,
    /// By hash.
    challenges: HashMap<TokenHash, ChallengeRecord>,
}

impl MfaTables {
    /// Deletes every row of the user (the user is gone).
    pub(super) fn forget_user(&mut self, user_id: Uuid) {
        self.totp.remove(&user_id);
        self.recovery_codes.retain(|(user, _)| *user != user_id);
        self.passkeys.retain(|_, p| p.user_id != user_id);
        self.challenges.retain(|_, c| c.user_id != Some(user_id));
    }

    fn factors(&self, user_id: Uuid) -> MfaFactors {
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        MfaFactors {
            totp: self
                .totp
                .get(&user_id)
                .is_some_and(|t| t.confirmed_at.is_some()),
            recovery_codes: count(
                self.recovery_codes
                    .iter()
                    .filter(|(user, _)| *user == user_id)
                    .count(),
            ),
            passkeys: count(
                self.passkeys
                    .values()
                    .filter(|p| p.user_id == user_id)
                    .count(),
            ),
        }
    }

    fn replace_codes(&mut self, user_id: Uuid, codes: &[TokenHash]) {
        self.recovery_codes.retain(|(user, _)| *user != user_id);
        self.recovery_codes
            .extend(codes.iter().map(|hash| (user_id, *hash)));
    }
}

/// "A foreign key refused the write": the user does not exist.
fn no_such_user() -> StoreError {
    StoreError::Other("foreign key: no such user".to_owned())
}

impl MfaStore for MemoryStore {
    fn mfa_factors(&self, user_id: Uuid) -> StoreResult<MfaFactors> {
        Ok(self.lock()?.mfa.factors(user_id))
    }

    fn totp(&self, user_id: Uuid) -> StoreResult<Option<TotpRecord>> {
        Ok(self.lock()?.mfa.totp.get(&user_id).cloned())
    }

    fn begin_totp(&self, user_id: Uuid, secret_sealed: &[u8], now: i64) -> StoreResult<bool> {
        let mut state = self.lock()?;
        if !state.users.contains_key(&user_id) {
            return Err(no_such_user());
        }
        if state
            .mfa
            .totp
            .get(&user_id)
            .is_some_and(|t| t.confirmed_at.is_some())
        {
            return Ok(false);
        }
        state.mfa.totp.insert(
            user_id,
            TotpRecord {
                user_id,
                secret_sealed: secret_sealed.to_vec(),
                confirmed_at: None,
                last_used_step: None,
                created_at: now,
            },
        );
        Ok(true)
    }

    fn confirm_totp(
        &self,
        user_id: Uuid,
        secret_sealed: &[u8],
        step: i64,
        codes: &[TokenHash],
        now: i64,
    ) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let Some(totp) = state.mfa.totp.get_mut(&user_id) else {
            return Ok(false);
        };
        if totp.confirmed_at.is_some() || totp.secret_sealed != secret_sealed {
            return Ok(false);
        }
        totp.confirmed_at = Some(now);
        totp.last_used_step = Some(step);
        state.mfa.replace_codes(user_id, codes);
        Ok(true)
    }

    fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let Some(totp) = state.mfa.totp.get_mut(&user_id) else {
            return Ok(false);
        };
        if totp.confirmed_at.is_none() || totp.last_used_step.is_some_and(|last| last >= step) {
            return Ok(false);
        }
        totp.last_used_step = Some(step);
        Ok(true)
    }

    fn delete_totp(&self, user_id: Uuid) -> StoreResult<bool> {
        let mut state = self.lock()?;
        state.mfa.replace_codes(user_id, &[]);
        Ok(state.mfa.totp.remove(&user_id).is_some())
    }

    fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[TokenHash],
        _now: i64,
    ) -> StoreResult<()> {
        let mut state = self.lock()?;
        if !state.users.contains_key(&user_id) {
            return Err(no_such_user());
        }
        state.mfa.replace_codes(user_id, codes);
        Ok(())
    }

    fn use_recovery_code(&self, user_id: Uuid, hash: &TokenHash) -> StoreResult<bool> {
        Ok(self.lock()?.mfa.recovery_codes.remove(&(user_id, *hash)))
    }

    fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()> {
        let mut state = self.lock()?;
        if !state.users.contains_key(&passkey.user_id) {
            return Err(no_such_user());
        }
        let taken = state
            .mfa
            .passkeys
            .values()
            .any(|p| p.id == passkey.id || p.credential_id == passkey.credential_id);
        if taken {
            return Err(StoreError::Conflict);
        }
        state.mfa.passkeys.insert(passkey.id, passkey.clone());
        Ok(())
    }

    fn list_passkeys(&self, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>> {
        let state = self.lock()?;
        let mut list: Vec<PasskeyRecord> = state
            .mfa
            .passkeys
            .values()
            .filter(|p| p.user_id == user_id)
            .cloned()
            .collect();
        list.sort_unstable_by_key(|p| (p.created_at, p.id));
        Ok(list)
    }

    fn find_passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>> {
        let state = self.lock()?;
        Ok(state
            .mfa
            .passkeys
            .values()
            .find(|p| p.credential_id == credential_id)
            .cloned())
    }

    fn touch_passkey(&self, id: Uuid, data: &str, now: i64) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let Some(passkey) = state.mfa.passkeys.get_mut(&id) else {
            return Ok(false);
        };
        data.clone_into(&mut passkey.data);
        passkey.last_used_at = Some(now);
        Ok(true)
    }

    fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let owned = state
            .mfa
            .passkeys
            .get(&id)
            .is_some_and(|p| p.user_id == user_id);
        if owned {
            state.mfa.passkeys.remove(&id);
        }
        Ok(owned)
    }

    fn reset_mfa(&self, user_id: Uuid) -> StoreResult<MfaFactors> {
        let mut state = self.lock()?;
        let had = state.mfa.factors(user_id);
        state.mfa.forget_user(user_id);
        Ok(had)
    }

    fn create_challenge(&self, challenge: &ChallengeRecord) -> StoreResult<()> {
        let mut state = self.lock()?;
        if let Some(user_id) = challenge.user_id
            && !state.users.contains_key(&user_id)
        {
            return Err(no_such_user());
        }
        if state.mfa.challenges.contains_key(&challenge.hash) {
            return Err(StoreError::Conflict);
        }
        state
            .mfa
            .challenges
            .insert(challenge.hash, challenge.clone());
        Ok(())
    }

    fn find_challenge(
        &self,
        hash: &TokenHash,
        purpose: ChallengePurpose,
        now: i64,
    ) -> StoreResult<Option<ChallengeRecord>> {
        let state = self.lock()?;
        Ok(state
            .mfa
            .challenges
            .get(hash)
            .filter(|c| c.purpose == purpose && c.expires_at > now)
            .cloned())
    }

    fn fail_challenge(&self, hash: &TokenHash, max: u32) -> StoreResult<Option<u32>> {
        let mut state = self.lock()?;
        let Some(challenge) = state.mfa.challenges.get_mut(hash) else {
            return Ok(None);
        };
        challenge.failures = challenge.failures.saturating_add(1);
        let failures = challenge.failures;
        if failures >= max {
            state.mfa.challenges.remove(hash);
        }
        Ok(Some(failures))
    }

    fn take_challenge(
        &self,
        hash: &TokenHash,
        purpose: ChallengePurpose,
        now: i64,
    ) -> StoreResult<Option<ChallengeRecord>> {
        let mut state = self.lock()?;
        let live = state
            .mfa
            .challenges
            .get(hash)
            .is_some_and(|c| c.purpose == purpose && c.expires_at > now);
        Ok(if live {
            state.mfa.challenges.remove(hash)
        } else {
            None
        })
    }

    fn purge_expired_challenges(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let expired: Vec<TokenHash> = state
            .mfa
            .challenges
            .values()
            .filter(|c| c.expires_at <= before)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .map(|c| c.hash)
            .collect();
        for hash in &expired {
            state.mfa.challenges.remove(hash);
        }
        Ok(u64::try_from(expired.len()).unwrap_or(u64::MAX))
    }
}
