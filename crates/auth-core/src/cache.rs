//! A short-lived cache of authenticated principals, so a busy client costs one database round
//! trip per second instead of one per request.
//!
//! The contract's promise holds: a token revoked on this instance stops working at once (every
//! revocation goes through the services' one revocation path, which evicts before it
//! answers), and one revoked on another instance sharing the database stops working within
//! the cache's lifetime (one second by default), because entries are never served older than
//! that; with a [`crate::broadcast::Broadcast`] that carries revocations between instances
//! (PostgreSQL), within the time a message takes to arrive.

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::clock::Clock;
use crate::memo::Memo;
use crate::principal::Principal;
use crate::store::TokenHash;

/// Entries kept at most; past this the cache is emptied (a flood of distinct tokens cannot
/// grow memory without bound).
const MAX_ENTRIES: usize = 100_000;

/// What an entry is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKey {
    /// A session, by id.
    Session(Uuid),
    /// A personal access token, by hash.
    PersonalToken(TokenHash),
}

/// What a revocation makes stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stale {
    /// One session.
    Session(Uuid),
    /// Everything of one user (password change, deactivation, deletion, token revocation).
    User(Uuid),
}

#[derive(Clone)]
struct Entry {
    /// Monotonic time of storing.
    stored: Duration,
    principal: Principal,
    /// For personal tokens: when the token expires (Unix seconds).
    expires_at: Option<i64>,
}

/// The cache. A zero lifetime disables it.
pub struct PrincipalCache {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    entries: Memo<CacheKey, Entry>,
}

impl std::fmt::Debug for PrincipalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrincipalCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PrincipalCache {
    /// A cache whose entries live `ttl` by `clock`.
    pub fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl,
            clock,
            entries: Memo::new(MAX_ENTRIES),
        }
    }

    /// Take this before reading a principal from the database; pass it to [`Self::put`].
    pub fn generation(&self) -> u64 {
        self.entries.generation()
    }

    /// A fresh entry, if any, with the personal token's expiry.
    pub fn get(&self, key: &CacheKey) -> Option<(Principal, Option<i64>)> {
        if self.ttl.is_zero() {
            return None;
        }
        let now = self.clock.monotonic();
        self.entries
            .get(key, |entry| now.saturating_sub(entry.stored) < self.ttl)
            .map(|entry| (entry.principal, entry.expires_at))
    }

    /// Remembers a principal read at `generation`, unless something was evicted since.
    pub fn put(
        &self,
        key: CacheKey,
        principal: Principal,
        expires_at: Option<i64>,
        generation: u64,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let entry = Entry {
            stored: self.clock.monotonic(),
            principal,
            expires_at,
        };
        self.entries.put(key, entry, generation);
    }

    /// Forgets what `stale` names. Called after the revocation is written.
    pub fn evict(&self, stale: Stale) {
        match stale {
            Stale::Session(id) => self.entries.remove(&CacheKey::Session(id)),
            Stale::User(user_id) => self
                .entries
                .retain(|_, entry| entry.principal.user.id != user_id),
        }
    }

    /// Forgets everything, as if every principal were revoked (revocations may have been
    /// missed). Reads in flight are not cached either.
    pub fn clear(&self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Credential;
    use crate::store::UserRecord;
    use crate::testing::FixedClock;

    fn principal(user: Uuid) -> Principal {
        Principal {
            user: Arc::new(UserRecord {
                id: user,
                email: "a@b.co".into(),
                password_hash: String::new(),
                full_name: None,
                phone: None,
                is_active: true,
                roles: vec![],
                organization_id: None,
                attributes: serde_json::json!({}),
                created_at: 0,
                updated_at: 0,
                email_verified_at: None,
            }),
            credential: Credential::PersonalToken {
                token_id: Uuid::new_v4(),
            },
        }
    }

    #[test]
    fn entries_expire_and_evict() {
        let clock = Arc::new(FixedClock::at(1_000));
        let cache = PrincipalCache::new(Duration::from_millis(50), clock.clone());
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let key = CacheKey::Session(session);
        cache.put(key, principal(user), None, cache.generation());
        assert!(cache.get(&key).is_some());
        cache.evict(Stale::Session(session));
        assert!(cache.get(&key).is_none());
        cache.put(key, principal(user), None, cache.generation());
        cache.evict(Stale::User(user));
        assert!(cache.get(&key).is_none());
        let before = cache.generation();
        cache.evict(Stale::Session(Uuid::new_v4()));
        cache.put(key, principal(user), None, before);
        assert!(
            cache.get(&key).is_none(),
            "a read older than an eviction is not cached"
        );
        cache.put(key, principal(user), None, cache.generation());
        clock.advance_millis(49);
        assert!(cache.get(&key).is_some());
        clock.advance_millis(1);
        assert!(
            cache.get(&key).is_none(),
            "never served older than the lifetime"
        );
    }

    #[test]
    fn zero_lifetime_disables() {
        let cache = PrincipalCache::new(Duration::ZERO, Arc::new(FixedClock::at(0)));
        let key = CacheKey::Session(Uuid::new_v4());
        cache.put(key, principal(Uuid::new_v4()), None, cache.generation());
        assert!(cache.get(&key).is_none());
    }
}
