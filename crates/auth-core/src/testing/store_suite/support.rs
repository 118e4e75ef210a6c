//! Builders and small helpers shared by the cases. Time is a fixed Unix second ([`T0`]):
//! a store never reads the clock, so no case needs the real one.

use std::sync::Barrier;

use uuid::Uuid;

use crate::store::{
    NewOneTimeToken, NewPersonalToken, NewRefreshToken, NewSession, NewUser, OrganizationRecord,
    QueuedMail, RefreshRotation, SessionBounds, SessionRecord, Store, TokenHash, TokenPurpose, Use,
    UserRecord,
};

/// The time every case starts at (2023-11-14T22:13:20Z).
pub(super) const T0: i64 = 1_700_000_000;

/// Threads racing in the concurrency cases.
pub(super) const THREADS: usize = 8;

/// Callers racing on one rate limit (more than a typical pool has connections).
pub(super) const RATE_LIMIT_THREADS: usize = 20;

/// How long a credential's `last_used_at` is left alone (the core's once-a-minute rule).
const TOUCH_INTERVAL: i64 = 60;

/// A use at `now` that refreshes a `last_used_at` older than a minute.
pub(super) fn seen(now: i64) -> Use {
    Use {
        now,
        touch_before: now - TOUCH_INTERVAL,
    }
}

/// A random token hash.
pub(super) fn random_hash() -> TokenHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    TokenHash(bytes)
}

/// An active user to insert, with a lower-cased email key.
pub(super) fn new_user(email: &str, roles: &[&str], now: i64) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        email: email.to_owned(),
        email_key: email.to_lowercase(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        full_name: Some("Test User".to_owned()),
        is_active: true,
        roles: strings(roles),
        organization_id: None,
        now,
    }
}

/// Creates a user with the role `user` at [`T0`].
pub(super) fn make_user(store: &dyn Store, email: &str) -> UserRecord {
    store
        .create_user(&new_user(email, &["user"], T0))
        .expect("create user")
}

/// A live session (one hour from `created_at`) and its first refresh token, to insert.
pub(super) fn new_session(user: Uuid, created_at: i64) -> (NewSession, TokenHash) {
    let session = SessionRecord {
        id: Uuid::new_v4(),
        user_id: user,
        access_jti: format!("jti-{}", Uuid::new_v4()),
        user_agent: Some("test-agent".to_owned()),
        created_at,
        last_used_at: created_at,
        expires_at: created_at + 3600,
        profile: "native".to_owned(),
        bounds: SessionBounds {
            created_at,
            access_ttl: Some(1800),
        },
    };
    let hash = random_hash();
    let first_refresh = NewRefreshToken {
        hash,
        session_id: session.id,
        generation: 0,
        created_at,
        expires_at: session.expires_at,
    };
    let new = NewSession {
        session,
        first_refresh,
        purge_expired_before: None,
    };
    (new, hash)
}

/// Creates a live session (one hour) with its first refresh token, purging nothing.
pub(super) fn make_session(
    store: &dyn Store,
    user: Uuid,
    created_at: i64,
) -> (SessionRecord, TokenHash) {
    let (new, hash) = new_session(user, created_at);
    store.create_session(&new).expect("create session");
    (new.session, hash)
}

/// An exchange of `old`, of generation `from`, for `new` in `session` at `now` (the new token
/// lives two hours).
pub(super) fn rotation(
    session: Uuid,
    from: u64,
    old: TokenHash,
    new: TokenHash,
    jti: &str,
    now: i64,
) -> RefreshRotation {
    RefreshRotation {
        old,
        new: NewRefreshToken {
            hash: new,
            session_id: session,
            generation: from + 1,
            created_at: now,
            expires_at: now + 7200,
        },
        new_access_jti: jti.to_owned(),
        replay: vec![1, 2, 3, 0, 255],
        now,
    }
}

/// The session `id` if it is live at `now` (touching it as a request would).
pub(super) fn session_of(store: &dyn Store, id: Uuid, now: i64) -> Option<SessionRecord> {
    store
        .session_with_user(id, seen(now))
        .expect("session_with_user")
        .map(|(s, _)| s)
}

/// A personal token of `user` valid for a day, to insert.
pub(super) fn personal_token(user: Uuid, name: &str, created_at: i64) -> NewPersonalToken {
    NewPersonalToken {
        id: Uuid::new_v4(),
        user_id: user,
        name: name.to_owned(),
        hash: random_hash(),
        created_at,
        expires_at: Some(created_at + 86_400),
    }
}

/// A one-time token of `user` for `purpose`, made at `created_at` and working for an hour,
/// replacing nothing, to insert.
pub(super) fn one_time_token(
    user: &UserRecord,
    purpose: TokenPurpose,
    created_at: i64,
) -> NewOneTimeToken {
    NewOneTimeToken {
        hash: random_hash(),
        user_id: user.id,
        purpose,
        email: user.email.clone(),
        created_at,
        expires_at: created_at + 3600,
        replace_others: false,
    }
}

/// A message queued at `created_at`, due at `due`, never tried, with a payload of every byte
/// value (a store keeps the bytes as they are).
pub(super) fn queued_mail(created_at: i64, due: i64) -> QueuedMail {
    let mut payload: Vec<u8> = (0..=255).collect();
    payload.extend_from_slice(Uuid::new_v4().as_bytes());
    QueuedMail {
        id: Uuid::new_v4(),
        payload,
        attempts: 0,
        next_attempt_at: due,
        created_at,
    }
}

/// An organization to insert.
pub(super) fn organization(name: &str, created_at: i64) -> OrganizationRecord {
    OrganizationRecord {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        created_at,
    }
}

/// Owned copies of `names`.
pub(super) fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

/// Runs `f(i)` on `n` threads released together by a barrier, and returns the results in
/// thread order.
pub(super) fn race<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (barrier, f) = (&barrier, &f);
                s.spawn(move || {
                    barrier.wait();
                    f(i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("racing thread panicked"))
            .collect()
    })
}
