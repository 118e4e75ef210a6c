//! Revocations told to every instance sharing the database, and heard from them.
//!
//! An instance evicts its own principal cache when it revokes (the services' one revocation
//! path); the other instances sharing the database would otherwise honour the revoked
//! credential until their cache entry times out. A [`Broadcast`] closes that gap: the
//! revocation path publishes what it made stale, and every instance hands what it hears to
//! its [`Listener`], which evicts. A storage crate implements it where the database can
//! carry messages (PostgreSQL's `LISTEN`/`NOTIFY`); [`Alone`], the default, does nothing,
//! for databases only one instance opens (SQLite, the memory store).
//!
//! What is published names sessions and users by id only (see [`Notice::encode`]): no
//! token, no hash, nothing usable as a credential.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use uuid::Uuid;

use crate::cache::{PrincipalCache, Stale};
use crate::store::StoreResult;

/// The longest encoded [`Notice`], in bytes: far below PostgreSQL's 8000-byte limit on a
/// notification's payload.
pub const MAX_PAYLOAD_LEN: usize = 2 + 36;

/// One revocation as told between instances (not the store's `Revocation`, which says what
/// a write revokes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// Principals made stale (a session, or everything of a user).
    Stale(Stale),
    /// The signing keys changed (rotated, retired, re-sealed): reload them.
    Keys,
}

impl Notice {
    /// The compact text form: `s:<session uuid>`, `u:<user uuid>`, or `k`. Ids only, never a
    /// secret; at most [`MAX_PAYLOAD_LEN`] bytes.
    pub fn encode(&self) -> String {
        match self {
            Notice::Stale(Stale::Session(id)) => format!("s:{id}"),
            Notice::Stale(Stale::User(id)) => format!("u:{id}"),
            Notice::Keys => "k".to_owned(),
        }
    }

    /// Reads [`Notice::encode`]'s form; `None` for anything else (a listener then flushes
    /// everything, so a newer instance's message is never ignored).
    pub fn decode(text: &str) -> Option<Self> {
        if text == "k" {
            return Some(Notice::Keys);
        }
        let (kind, id) = text.split_once(':')?;
        let id = Uuid::parse_str(id).ok()?;
        match kind {
            "s" => Some(Notice::Stale(Stale::Session(id))),
            "u" => Some(Notice::Stale(Stale::User(id))),
            _ => None,
        }
    }
}

/// Keeps an instance hearing revocations; dropping it stops the hearing.
pub type Subscription = Box<dyn Send + Sync>;

/// Where revocations are told to the other instances and heard from them.
pub trait Broadcast: Send + Sync {
    /// Tells every instance (this one included: hearing its own revocation is harmless)
    /// about `revocation`. May queue it and return before it is delivered (bounded: a full
    /// queue is an error), but never blocks for long; the revocation path calls it on a store
    /// thread right after the revoking store call. A failure is logged by the caller and never fails the
    /// revocation: the cache lifetime stays the worst case.
    fn publish(&self, revocation: Notice) -> StoreResult<()>;

    /// Starts handing every revocation heard to `listener`, until the returned subscription
    /// is dropped. Connection faults are the implementation's to survive (reconnecting, and
    /// calling [`Listener::missed`] when messages may have been lost); an error here means it
    /// could not start at all (e.g. no thread).
    fn subscribe(&self, listener: Listener) -> std::io::Result<Subscription>;
}

/// The broadcast of an instance alone on its database: publishes nothing, hears nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Alone;

impl Broadcast for Alone {
    fn publish(&self, _revocation: Notice) -> StoreResult<()> {
        Ok(())
    }

    fn subscribe(&self, _listener: Listener) -> std::io::Result<Subscription> {
        Ok(Box::new(()))
    }
}

/// What a [`Broadcast`] hands what it hears to: one instance's principal cache and its
/// signing-key reload clock. Cheap to clone; callable from any thread.
#[derive(Clone)]
pub struct Listener {
    cache: Arc<PrincipalCache>,
    /// When the keys were last loaded (Unix seconds); zero makes the next use reload them.
    keys_loaded_at: Arc<AtomicI64>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").finish_non_exhaustive()
    }
}

impl Listener {
    pub(crate) fn new(cache: Arc<PrincipalCache>, keys_loaded_at: Arc<AtomicI64>) -> Self {
        Self {
            cache,
            keys_loaded_at,
        }
    }

    /// Applies one revocation heard: evicts what it names, or, for keys, makes the next
    /// token verification reload them.
    pub fn heard(&self, revocation: Notice) {
        match revocation {
            Notice::Stale(stale) => self.cache.evict(stale),
            Notice::Keys => self.keys_loaded_at.store(0, Ordering::Release),
        }
    }

    /// Applies a message in text form: one or more [`Notice::encode`] forms, one per line
    /// (publishers batch notices that pile up). A line it cannot read counts as
    /// [`Listener::missed`].
    pub fn heard_text(&self, text: &str) {
        for line in text.split('\n') {
            match Notice::decode(line) {
                Some(revocation) => self.heard(revocation),
                None => {
                    tracing::warn!(
                        len = line.len(),
                        "unreadable revocation message: flushing the principal cache"
                    );
                    self.missed();
                    return;
                }
            }
        }
    }

    /// Revocations may have been lost (the connection carrying them dropped): forgets every
    /// cached principal and reloads the keys at next use.
    pub fn missed(&self) {
        self.cache.clear();
        self.keys_loaded_at.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::cache::CacheKey;
    use crate::principal::{Credential, Principal};
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
    fn a_message_of_several_lines_applies_each_notice() {
        let cache = Arc::new(PrincipalCache::new(
            std::time::Duration::from_secs(60),
            Arc::new(FixedClock::at(1_000)),
        ));
        let keys_loaded_at = Arc::new(AtomicI64::new(1_000));
        let listener = Listener::new(cache.clone(), keys_loaded_at.clone());
        let sessions = [Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4()];
        let keys = sessions.map(|session| {
            let key = CacheKey::Session(session);
            cache.put(key, principal(Uuid::new_v4()), None, cache.generation());
            key
        });
        let message = [
            Notice::Stale(Stale::Session(sessions[0])),
            Notice::Stale(Stale::Session(sessions[1])),
        ]
        .map(|n| n.encode())
        .join("\n");
        listener.heard_text(&message);
        assert!(cache.get(&keys[0]).is_none() && cache.get(&keys[1]).is_none());
        assert!(cache.get(&keys[2]).is_some(), "not named: stays");
        assert_eq!(
            keys_loaded_at.load(Ordering::Acquire),
            1_000,
            "keys untouched"
        );
    }

    #[test]
    fn a_listener_evicts_what_it_hears_and_everything_when_it_missed_some() {
        let clock = Arc::new(FixedClock::at(1_000));
        let cache = Arc::new(PrincipalCache::new(
            std::time::Duration::from_secs(60),
            clock,
        ));
        let keys_loaded_at = Arc::new(AtomicI64::new(1_000));
        let listener = Listener::new(cache.clone(), keys_loaded_at.clone());
        let (one, other) = (Uuid::new_v4(), Uuid::new_v4());
        let put = |session: Uuid| {
            let key = CacheKey::Session(session);
            cache.put(key, principal(Uuid::new_v4()), None, cache.generation());
            key
        };
        let (one_key, other_key) = (put(one), put(other));
        listener.heard_text(&Notice::Stale(Stale::Session(one)).encode());
        assert!(
            cache.get(&one_key).is_none(),
            "the session heard of is evicted"
        );
        assert!(cache.get(&other_key).is_some(), "the others stay");
        listener.heard_text("k");
        assert_eq!(
            keys_loaded_at.load(Ordering::Acquire),
            0,
            "keys reload at next use"
        );
        listener.heard_text("something newer");
        assert!(
            cache.get(&other_key).is_none(),
            "unreadable: everything goes"
        );
        let key = put(one);
        listener.missed();
        assert!(cache.get(&key).is_none(), "missed: everything goes");
    }

    #[test]
    fn encodings_round_trip_and_stay_small() {
        let id = Uuid::new_v4();
        for revocation in [
            Notice::Stale(Stale::Session(id)),
            Notice::Stale(Stale::User(id)),
            Notice::Keys,
        ] {
            let text = revocation.encode();
            assert!(text.len() <= MAX_PAYLOAD_LEN, "{text}");
            assert_eq!(Notice::decode(&text), Some(revocation));
        }
        for bad in [
            "",
            "s:",
            "x:00000000-0000-0000-0000-000000000000",
            "kk",
            "u:1",
        ] {
            assert_eq!(Notice::decode(bad), None, "{bad}");
        }
    }
}
