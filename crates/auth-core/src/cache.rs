//! A short-lived cache of authenticated principals, so a busy client costs one database round
//! trip per second instead of one per request.
//!
//! The contract's promise holds: a token revoked on this instance stops working at once (every
//! revocation path here evicts before it answers), and one revoked on another instance sharing
//! the database stops working within the cache's lifetime (one second by default), because
//! entries are never served older than that.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::service::Principal;
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

struct Entry {
    stored: Instant,
    principal: Principal,
    /// For personal tokens: when the token expires (Unix seconds).
    expires_at: Option<i64>,
}

/// The cache. A zero lifetime disables it.
pub struct PrincipalCache {
    ttl: Duration,
    entries: Mutex<HashMap<CacheKey, Entry>>,
    /// Bumped by every eviction: a principal read from the database before an eviction is
    /// not cached after it (it may predate the revocation).
    generation: AtomicU64,
}

impl std::fmt::Debug for PrincipalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrincipalCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl PrincipalCache {
    /// A cache whose entries live `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Take this before reading a principal from the database; pass it to [`Self::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A fresh entry, if any, with the personal token's expiry.
    pub fn get(&self, key: &CacheKey) -> Option<(Principal, Option<i64>)> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        (entry.stored.elapsed() < self.ttl).then(|| (entry.principal.clone(), entry.expires_at))
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
        if let Ok(mut entries) = self.entries.lock() {
            if self.generation.load(Ordering::Acquire) != generation {
                return;
            }
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(
                key,
                Entry {
                    stored: Instant::now(),
                    principal,
                    expires_at,
                },
            );
        }
    }

    /// Forgets one entry. Call it after the revocation is written.
    pub fn evict(&self, key: &CacheKey) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.remove(key);
        }
    }

    /// Forgets every entry of a user (password change, deactivation, deletion, token revocation).
    pub fn evict_user(&self, user_id: Uuid) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.retain(|_, entry| entry.principal.user.id != user_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Credential;
    use crate::store::UserRecord;

    fn principal(user: Uuid) -> Principal {
        Principal {
            user: std::sync::Arc::new(UserRecord {
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
            }),
            credential: Credential::PersonalToken {
                token_id: Uuid::new_v4(),
            },
        }
    }

    #[test]
    fn entries_expire_and_evict() {
        let cache = PrincipalCache::new(Duration::from_millis(50));
        let (user, session) = (Uuid::new_v4(), Uuid::new_v4());
        let key = CacheKey::Session(session);
        cache.put(key, principal(user), None, cache.generation());
        assert!(cache.get(&key).is_some());
        cache.evict(&key);
        assert!(cache.get(&key).is_none());
        cache.put(key, principal(user), None, cache.generation());
        cache.evict_user(user);
        assert!(cache.get(&key).is_none());
        let before = cache.generation();
        cache.evict(&CacheKey::Session(Uuid::new_v4()));
        cache.put(key, principal(user), None, before);
        assert!(
            cache.get(&key).is_none(),
            "a read older than an eviction is not cached"
        );
        cache.put(key, principal(user), None, cache.generation());
        std::thread::sleep(Duration::from_millis(60));
        assert!(
            cache.get(&key).is_none(),
            "never served older than the lifetime"
        );
    }

    #[test]
    fn zero_lifetime_disables() {
        let cache = PrincipalCache::new(Duration::ZERO);
        let key = CacheKey::Session(Uuid::new_v4());
        cache.put(key, principal(Uuid::new_v4()), None, cache.generation());
        assert!(cache.get(&key).is_none());
    }
}
