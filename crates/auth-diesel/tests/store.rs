//! The store contract, run against SQLite (a fresh temporary file per test) and, when
//! `AUTH_TEST_POSTGRES_URL` names an admin URL, against PostgreSQL (a fresh database per
//! test, dropped afterwards even when the test fails). Without it the Postgres tests are
//! ignored, and cargo's summary says so (the build script sets `auth_test_postgres`).

use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use auth_core::store::{
    AccessRotation, FailureCounts, FailureQuery, FailureSeries, NewPersonalToken, NewRefreshToken,
    NewUser, OrganizationRecord, RefreshRotation, SessionRecord, SigningKeyRecord, Store,
    StoreError, TokenHash, UserPatch, UserQuery, UserRecord,
};
use auth_diesel::{DieselStore, TEST_POSTGRES_URL_ENV, TestDatabase, create_postgres_database};
use uuid::Uuid;

const THREADS: usize = 8;

/// Callers racing on one rate limit (more than the pool has connections).
const RATE_LIMIT_THREADS: usize = 20;

// ---------------------------------------------------------------------------------------
// Harness

/// A store plus whatever keeps its database alive; dropping it removes the database.
/// Field order matters: the pool closes before the database goes.
struct Harness {
    store: DieselStore,
    _guard: Guard,
}

/// What a [`Harness`] holds its database by.
enum Guard {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { _database: TestDatabase },
}

fn sqlite_harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("auth.db");
    let url = format!("sqlite://{}", path.display());
    let store = DieselStore::connect(&url, THREADS as u32).expect("connect sqlite");
    assert_eq!(store.backend(), "sqlite");
    Harness {
        store,
        _guard: Guard::Sqlite { _dir: dir },
    }
}

/// The admin URL the Postgres tests run under. They are compiled as ignored unless it was
/// set, so reaching here without it (a test binary run by hand, `--include-ignored`) is a
/// mistake worth a loud failure, not a silent pass.
fn postgres_admin_url() -> String {
    TestDatabase::admin_url_from_env().unwrap_or_else(|| {
        panic!("{TEST_POSTGRES_URL_ENV} is not set: it names the admin URL the Postgres tests use")
    })
}

/// A fresh database of this test's own under [`postgres_admin_url`].
fn postgres_database() -> TestDatabase {
    let admin = postgres_admin_url();
    TestDatabase::create(&admin, "auth_test")
        .unwrap_or_else(|err| panic!("cannot create a test database through {admin}: {err}"))
}

fn postgres_harness() -> Harness {
    // The guard exists before connecting, so a failed connect still drops the database.
    let database = postgres_database();
    let store = DieselStore::connect(database.url(), THREADS as u32).expect("connect postgres");
    assert_eq!(store.backend(), "postgres");
    Harness {
        store,
        _guard: Guard::Postgres {
            _database: database,
        },
    }
}

/// Declares each test function once per backend: `sqlite::name` and `postgres::name`, the
/// latter ignored (with the reason in cargo's output) when no Postgres URL was given.
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    let h = super::sqlite_harness();
                    super::$name(&h.store);
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                #[cfg_attr(
                    not(auth_test_postgres),
                    ignore = "set AUTH_TEST_POSTGRES_URL to an admin URL to run against PostgreSQL"
                )]
                fn $name() {
                    let h = super::postgres_harness();
                    super::$name(&h.store);
                }
            )*
        }
    };
}

backend_tests!(
    ping_and_settings,
    user_roundtrip,
    email_conflict_is_case_insensitive,
    concurrent_create_user_has_one_winner,
    session_lifecycle,
    refresh_rotation,
    concurrent_refresh_rotation_has_one_winner,
    access_rotation_is_conditional_on_jti,
    expired_session_reads_as_revoked,
    deactivation_deletes_sessions_and_tokens,
    change_password_keeps_only_given_session,
    personal_tokens,
    update_password_hash_keeps_sessions,
    update_user_patches_each_field,
    update_user_replaces_roles,
    update_user_deactivation_deletes_sessions_and_tokens,
    list_users_pages_and_counts,
    delete_user_cascades,
    organizations,
    user_roles_have_ids_and_descriptions,
    login_failures_are_counted_per_window,
    nth_login_failure_per_series,
    clear_login_failures_forgets_only_that_email,
    rate_limit_hits_count_in_their_window,
    concurrent_rate_limit_hits_respect_the_limit,
    purge_rate_limits_removes_old_rows,
    signing_keys_switch_the_active_one,
    credential_lookups_carry_the_users_roles,
);

// ---------------------------------------------------------------------------------------
// Helpers

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn random_hash() -> TokenHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    TokenHash(bytes)
}

fn new_user(email: &str, roles: &[&str], now: i64) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        email: email.to_owned(),
        email_key: email.to_lowercase(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        full_name: Some("Test User".to_owned()),
        is_active: true,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        organization_id: None,
        now,
    }
}

fn make_user(store: &DieselStore, email: &str) -> UserRecord {
    store
        .create_user(&new_user(email, &["user"], now()))
        .expect("create user")
}

/// Creates a live session (one hour) with its first refresh token.
fn make_session(store: &DieselStore, user: Uuid, created_at: i64) -> (SessionRecord, TokenHash) {
    let session = SessionRecord {
        id: Uuid::new_v4(),
        user_id: user,
        access_jti: format!("jti-{}", Uuid::new_v4()),
        user_agent: Some("test-agent".to_owned()),
        created_at,
        last_used_at: created_at,
        expires_at: created_at + 3600,
    };
    let hash = random_hash();
    let refresh = NewRefreshToken {
        hash,
        session_id: session.id,
        created_at,
        expires_at: session.expires_at,
    };
    store
        .create_session(&session, &refresh)
        .expect("create session");
    (session, hash)
}

fn rotation(session: Uuid, old: TokenHash, new: TokenHash, jti: &str, now: i64) -> RefreshRotation {
    RefreshRotation {
        old,
        new: NewRefreshToken {
            hash: new,
            session_id: session,
            created_at: now,
            expires_at: now + 7200,
        },
        new_access_jti: jti.to_owned(),
        replay: vec![1, 2, 3, 0, 255],
        now,
    }
}

fn session_of(store: &DieselStore, id: Uuid, now: i64) -> Option<SessionRecord> {
    store
        .session_with_user(id, now)
        .expect("session_with_user")
        .map(|(s, _)| s)
}

// ---------------------------------------------------------------------------------------
// Tests

fn ping_and_settings(store: &DieselStore) {
    store.ping().expect("ping");
    assert_eq!(store.get_or_init_setting("k", "v1").expect("init"), "v1");
    assert_eq!(store.get_or_init_setting("k", "v2").expect("again"), "v1");
    assert_eq!(store.get_or_init_setting("other", "x").expect("other"), "x");

    // Racing initializers all agree on one value.
    let barrier = Barrier::new(THREADS);
    let values: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    store
                        .get_or_init_setting("race", &format!("value-{i}"))
                        .expect("race")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    assert!(values.iter().all(|v| v == &values[0]), "{values:?}");
}

fn user_roundtrip(store: &DieselStore) {
    let t = now();
    let input = new_user("Alice@Example.com", &["writer", "admin", "writer"], t);
    let created = store.create_user(&input).expect("create");
    assert_eq!(created.id, input.id);
    assert_eq!(created.email, "Alice@Example.com");
    assert_eq!(created.password_hash, input.password_hash);
    assert_eq!(created.full_name.as_deref(), Some("Test User"));
    assert_eq!(created.phone, None);
    assert!(created.is_active);
    assert_eq!(created.roles, vec!["admin".to_owned(), "writer".to_owned()]);
    assert_eq!(created.organization_id, None);
    assert_eq!(created.attributes, serde_json::json!({}));
    assert_eq!((created.created_at, created.updated_at), (t, t));

    let by_id = store.find_user(input.id).expect("find").expect("exists");
    assert_eq!(by_id, created);
    let by_email = store
        .find_user_by_email("alice@example.com")
        .expect("find by email")
        .expect("exists");
    assert_eq!(by_email, created);
    assert!(store.find_user(Uuid::new_v4()).expect("find").is_none());
    assert!(
        store
            .find_user_by_email("nobody@example.com")
            .expect("find")
            .is_none()
    );

    // Existing roles are reused; a user may have none.
    let bob = store
        .create_user(&new_user("bob@example.com", &["admin"], t))
        .expect("bob");
    assert_eq!(bob.roles, vec!["admin".to_owned()]);
    let carol = store
        .create_user(&new_user("carol@example.com", &[], t))
        .expect("carol");
    assert!(carol.roles.is_empty());

    // An unknown organization is refused (foreign key), and it is not a conflict.
    let mut orphan = new_user("dave@example.com", &[], t);
    orphan.organization_id = Some(Uuid::new_v4());
    match store.create_user(&orphan) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }
    assert!(store.find_user(orphan.id).expect("find").is_none());
}

fn email_conflict_is_case_insensitive(store: &DieselStore) {
    store
        .create_user(&new_user("Erin@Example.com", &["a"], now()))
        .expect("first");
    let second = new_user("erin@EXAMPLE.com", &["b"], now());
    match store.create_user(&second) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Nothing of the refused user was written.
    assert!(store.find_user(second.id).expect("find").is_none());
    let first = store
        .find_user_by_email("erin@example.com")
        .expect("find")
        .expect("exists");
    assert_eq!(first.email, "Erin@Example.com");
    assert_eq!(first.roles, vec!["a".to_owned()]);
}

fn concurrent_create_user_has_one_winner(store: &DieselStore) {
    let barrier = Barrier::new(THREADS);
    let results: Vec<Result<UserRecord, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || {
                    let email = if i % 2 == 0 {
                        "race@example.com"
                    } else {
                        "RACE@example.com"
                    };
                    let user = new_user(email, &["racer", &format!("r{i}")], now());
                    barrier.wait();
                    store.create_user(&user)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict)))
        .count();
    assert_eq!((ok, conflicts), (1, THREADS - 1), "{results:?}");
    let winner = store
        .find_user_by_email("race@example.com")
        .expect("find")
        .expect("exists");
    assert_eq!(winner.roles.len(), 2);
}

fn session_lifecycle(store: &DieselStore) {
    let user = make_user(store, "sam@example.com");
    let other = make_user(store, "other@example.com");
    let t = now();
    let (s1, h1) = make_session(store, user.id, t - 100);
    let (s2, _) = make_session(store, user.id, t - 50);

    // Lookup joins the user and refreshes a stale last_used_at.
    let (found, found_user) = store
        .session_with_user(s1.id, t)
        .expect("lookup")
        .expect("live");
    assert_eq!(found_user, user);
    assert_eq!(found.id, s1.id);
    assert_eq!(found.access_jti, s1.access_jti);
    assert_eq!(found.user_agent.as_deref(), Some("test-agent"));
    assert_eq!(found.last_used_at, t);
    // Within a minute it is left alone.
    assert_eq!(
        session_of(store, s1.id, t + 30).expect("live").last_used_at,
        t
    );
    assert_eq!(
        session_of(store, s1.id, t + 61).expect("live").last_used_at,
        t + 61
    );

    // Expiry.
    assert!(session_of(store, s1.id, s1.expires_at - 1).is_some());
    assert!(session_of(store, s1.id, s1.expires_at).is_none());
    assert!(session_of(store, Uuid::new_v4(), t).is_none());

    // Listing: live ones only, oldest first.
    let ids: Vec<Uuid> = store
        .list_sessions(user.id, t)
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec![s1.id, s2.id]);
    let later: Vec<Uuid> = store
        .list_sessions(user.id, s1.expires_at)
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(later, vec![s2.id]);
    assert!(store.list_sessions(other.id, t).expect("list").is_empty());

    // Deleting: only the owner's, and it takes the refresh tokens along.
    assert!(store.find_refresh_token(&h1).expect("find").is_some());
    assert!(!store.delete_session(other.id, s1.id).expect("delete"));
    assert!(store.delete_session(user.id, s1.id).expect("delete"));
    assert!(!store.delete_session(user.id, s1.id).expect("delete again"));
    assert!(session_of(store, s1.id, t).is_none());
    assert!(store.find_refresh_token(&h1).expect("find").is_none());
    assert!(session_of(store, s2.id, t).is_some());
}

fn refresh_rotation(store: &DieselStore) {
    let user = make_user(store, "rita@example.com");
    let t = now();
    let (session, h1) = make_session(store, user.id, t);

    let first = store
        .find_refresh_token(&h1)
        .expect("find")
        .expect("exists");
    assert_eq!(first.session_id, session.id);
    assert_eq!(first.user_id, user.id);
    assert_eq!(first.expires_at, session.expires_at);
    assert_eq!(first.used_at, None);
    assert_eq!(first.replay, None);
    assert!(!first.successor_used);
    assert!(!first.session_revoked);

    let h2 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(session.id, h1, h2, "jti-2", t + 10))
            .expect("rotate")
    );
    let used = store.find_refresh_token(&h1).expect("find").expect("kept");
    assert_eq!(used.used_at, Some(t + 10));
    assert_eq!(used.replay, Some(vec![1, 2, 3, 0, 255]));
    assert!(!used.successor_used);
    let s = session_of(store, session.id, t + 10).expect("live");
    assert_eq!(s.access_jti, "jti-2");
    assert_eq!(s.last_used_at, t + 10);
    assert_eq!(s.expires_at, t + 10 + 7200);
    let second = store.find_refresh_token(&h2).expect("find").expect("new");
    assert_eq!(second.used_at, None);
    assert_eq!(second.expires_at, t + 10 + 7200);

    // The same old token again: false, and nothing written.
    let h3 = random_hash();
    assert!(
        !store
            .rotate_refresh_token(&rotation(session.id, h1, h3, "jti-3", t + 20))
            .expect("rotate again")
    );
    assert!(store.find_refresh_token(&h3).expect("find").is_none());
    let unchanged = store.find_refresh_token(&h1).expect("find").expect("kept");
    assert_eq!(unchanged.used_at, Some(t + 10));
    let s = session_of(store, session.id, t + 20).expect("live");
    assert_eq!(s.access_jti, "jti-2");
    assert_eq!(s.last_used_at, t + 10);

    // A token of another session cannot be exchanged into this one.
    let (other_session, other_hash) = make_session(store, user.id, t);
    assert!(
        !store
            .rotate_refresh_token(&rotation(session.id, other_hash, random_hash(), "x", t))
            .expect("cross-session")
    );
    assert!(
        store
            .find_refresh_token(&other_hash)
            .expect("find")
            .expect("kept")
            .used_at
            .is_none()
    );
    assert!(session_of(store, other_session.id, t).is_some());

    // Using the successor marks the first one's successor as used.
    let h4 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(session.id, h2, h4, "jti-4", t + 30))
            .expect("rotate successor")
    );
    assert!(
        store
            .find_refresh_token(&h1)
            .expect("find")
            .expect("kept")
            .successor_used
    );
    assert!(
        !store
            .find_refresh_token(&h2)
            .expect("find")
            .expect("kept")
            .successor_used
    );

    // An unknown token is simply absent.
    assert!(
        store
            .find_refresh_token(&random_hash())
            .expect("find")
            .is_none()
    );
}

fn concurrent_refresh_rotation_has_one_winner(store: &DieselStore) {
    let user = make_user(store, "conc@example.com");
    let t = now();
    let (session, h1) = make_session(store, user.id, t);
    let barrier = Barrier::new(THREADS);
    let results: Vec<(TokenHash, Result<bool, StoreError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|i| {
                let barrier = &barrier;
                s.spawn(move || {
                    let new = random_hash();
                    let r = rotation(session.id, h1, new, &format!("jti-{i}"), t + 1);
                    barrier.wait();
                    (new, store.rotate_refresh_token(&r))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    let winners: Vec<&TokenHash> = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(true)))
        .map(|(h, _)| h)
        .collect();
    let losers = results
        .iter()
        .filter(|(_, r)| matches!(r, Ok(false)))
        .count();
    assert_eq!(
        (winners.len(), losers),
        (1, THREADS - 1),
        "{:?}",
        results.iter().map(|(_, r)| r).collect::<Vec<_>>()
    );
    // Exactly the winner's token exists.
    for (hash, _) in &results {
        let exists = store.find_refresh_token(hash).expect("find").is_some();
        assert_eq!(exists, hash == winners[0]);
    }
    let winner_index = results
        .iter()
        .position(|(_, r)| matches!(r, Ok(true)))
        .expect("winner");
    let s = session_of(store, session.id, t + 1).expect("live");
    assert_eq!(s.access_jti, format!("jti-{winner_index}"));
}

fn access_rotation_is_conditional_on_jti(store: &DieselStore) {
    let user = make_user(store, "ada@example.com");
    let t = now();
    let (session, h1) = make_session(store, user.id, t);
    // h1 is exchanged for h2, so h1 is a used token and h2 the live one.
    let h2 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(session.id, h1, h2, "jti-2", t + 1))
            .expect("rotate")
    );

    let access = |old: &str, new: &str, hash: TokenHash, now: i64| AccessRotation {
        session_id: session.id,
        old_access_jti: old.to_owned(),
        new_access_jti: new.to_owned(),
        new_refresh: NewRefreshToken {
            hash,
            session_id: session.id,
            created_at: now,
            expires_at: now + 9000,
        },
        now,
    };

    // Wrong jti: false, nothing written.
    let h3 = random_hash();
    assert!(
        !store
            .rotate_access_token(&access(&session.access_jti, "jti-3", h3, t + 2))
            .expect("stale jti")
    );
    assert!(store.find_refresh_token(&h3).expect("find").is_none());
    assert!(store.find_refresh_token(&h2).expect("find").is_some());
    assert_eq!(
        session_of(store, session.id, t + 2)
            .expect("live")
            .access_jti,
        "jti-2"
    );

    // Current jti: rotates, drops the unused refresh token, keeps the used one.
    assert!(
        store
            .rotate_access_token(&access("jti-2", "jti-3", h3, t + 3))
            .expect("rotate access")
    );
    let s = session_of(store, session.id, t + 3).expect("live");
    assert_eq!(s.access_jti, "jti-3");
    assert_eq!(s.last_used_at, t + 3);
    assert_eq!(s.expires_at, t + 3 + 9000);
    assert!(store.find_refresh_token(&h2).expect("find").is_none());
    let old = store
        .find_refresh_token(&h1)
        .expect("find")
        .expect("used kept");
    assert!(old.successor_used, "a removed successor counts as used");
    let new = store.find_refresh_token(&h3).expect("find").expect("new");
    assert_eq!((new.used_at, new.expires_at), (None, t + 3 + 9000));

    // The same old jti again: false.
    let h4 = random_hash();
    assert!(
        !store
            .rotate_access_token(&access("jti-2", "jti-4", h4, t + 4))
            .expect("replayed jti")
    );
    assert!(store.find_refresh_token(&h4).expect("find").is_none());

    // A deleted session cannot be rotated.
    assert!(store.delete_session(user.id, session.id).expect("delete"));
    assert!(
        !store
            .rotate_access_token(&access("jti-3", "jti-5", random_hash(), t + 5))
            .expect("gone")
    );
}

fn expired_session_reads_as_revoked(store: &DieselStore) {
    let user = make_user(store, "exp@example.com");
    let t = now();
    let (session, hash) = make_session(store, user.id, t - 4000); // expired 400 s ago
    assert!(session_of(store, session.id, t).is_none());
    let record = store.find_refresh_token(&hash).expect("find").expect("row");
    assert!(record.session_revoked);
    // A new login clears the user's expired sessions.
    make_session(store, user.id, t);
    assert!(store.find_refresh_token(&hash).expect("find").is_none());
}

fn deactivation_deletes_sessions_and_tokens(store: &DieselStore) {
    let user = make_user(store, "deact@example.com");
    let bystander = make_user(store, "stay@example.com");
    let t = now();
    let (s1, h1) = make_session(store, user.id, t);
    let (_s2, h2) = make_session(store, user.id, t);
    let (bs, bh) = make_session(store, bystander.id, t);
    let pat = personal_token(user.id, "ci", t);
    store.create_personal_token(&pat).expect("pat");
    let bpat = personal_token(bystander.id, "ci", t);
    store.create_personal_token(&bpat).expect("pat");

    assert!(
        store
            .set_user_active(user.id, false, t + 5)
            .expect("deactivate")
    );
    let found = store.find_user(user.id).expect("find").expect("exists");
    assert!(!found.is_active);
    assert_eq!(found.updated_at, t + 5);
    assert!(store.list_sessions(user.id, t).expect("list").is_empty());
    assert!(session_of(store, s1.id, t).is_none());
    assert!(store.find_refresh_token(&h1).expect("find").is_none());
    assert!(store.find_refresh_token(&h2).expect("find").is_none());
    assert!(
        store
            .list_personal_tokens(user.id)
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .personal_token_with_user(&pat.hash, t)
            .expect("lookup")
            .is_none()
    );

    // Others are untouched.
    assert!(session_of(store, bs.id, t).is_some());
    assert!(store.find_refresh_token(&bh).expect("find").is_some());
    assert_eq!(
        store
            .list_personal_tokens(bystander.id)
            .expect("list")
            .len(),
        1
    );

    // Reactivation only flips the flag; unknown users report false.
    assert!(
        store
            .set_user_active(user.id, true, t + 6)
            .expect("activate")
    );
    assert!(
        store
            .find_user(user.id)
            .expect("find")
            .expect("exists")
            .is_active
    );
    assert!(
        !store
            .set_user_active(Uuid::new_v4(), false, t)
            .expect("unknown")
    );
}

fn change_password_keeps_only_given_session(store: &DieselStore) {
    let user = make_user(store, "pw@example.com");
    let t = now();
    let (s1, _) = make_session(store, user.id, t);
    let (s2, h2) = make_session(store, user.id, t + 1);
    let (s3, h3) = make_session(store, user.id, t + 2);
    let pat = personal_token(user.id, "keep me", t);
    store.create_personal_token(&pat).expect("pat");

    store
        .change_password(user.id, "$argon2id$new", Some(s2.id), t + 10)
        .expect("change");
    let found = store.find_user(user.id).expect("find").expect("exists");
    assert_eq!(found.password_hash, "$argon2id$new");
    assert_eq!(found.updated_at, t + 10);
    let ids: Vec<Uuid> = store
        .list_sessions(user.id, t)
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec![s2.id]);
    assert!(session_of(store, s1.id, t).is_none());
    assert!(session_of(store, s3.id, t).is_none());
    assert!(store.find_refresh_token(&h2).expect("find").is_some());
    assert!(store.find_refresh_token(&h3).expect("find").is_none());
    assert_eq!(store.list_personal_tokens(user.id).expect("list").len(), 1);

    store
        .change_password(user.id, "$argon2id$newer", None, t + 20)
        .expect("change again");
    assert!(store.list_sessions(user.id, t).expect("list").is_empty());
}

fn personal_token(user: Uuid, name: &str, created_at: i64) -> NewPersonalToken {
    NewPersonalToken {
        id: Uuid::new_v4(),
        user_id: user,
        name: name.to_owned(),
        hash: random_hash(),
        created_at,
        expires_at: Some(created_at + 86_400),
    }
}

fn personal_tokens(store: &DieselStore) {
    let user = make_user(store, "pat@example.com");
    let other = make_user(store, "notme@example.com");
    let t = now();
    let first = personal_token(user.id, "first", t);
    let mut second = personal_token(user.id, "second", t + 1);
    second.expires_at = None;
    let created = store.create_personal_token(&first).expect("create");
    assert_eq!(created.id, first.id);
    assert_eq!(created.name, "first");
    assert_eq!(created.expires_at, Some(t + 86_400));
    assert_eq!(created.last_used_at, None);
    store.create_personal_token(&second).expect("create");

    // A second token with the same hash is a conflict.
    let mut dup = personal_token(user.id, "dup", t);
    dup.hash = first.hash;
    match store.create_personal_token(&dup) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }

    let listed = store.list_personal_tokens(user.id).expect("list");
    assert_eq!(
        listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        vec!["first", "second"]
    );
    assert_eq!(listed[1].expires_at, None);
    assert!(
        store
            .list_personal_tokens(other.id)
            .expect("list")
            .is_empty()
    );

    // Lookup joins the user and records use at most once a minute.
    let (token, owner) = store
        .personal_token_with_user(&first.hash, t + 5)
        .expect("lookup")
        .expect("found");
    assert_eq!(owner, user);
    assert_eq!(token.id, first.id);
    assert_eq!(token.last_used_at, Some(t + 5));
    let again = store
        .personal_token_with_user(&first.hash, t + 30)
        .expect("lookup")
        .expect("found");
    assert_eq!(again.0.last_used_at, Some(t + 5));
    let later = store
        .personal_token_with_user(&first.hash, t + 70)
        .expect("lookup")
        .expect("found");
    assert_eq!(later.0.last_used_at, Some(t + 70));
    assert_eq!(
        store.list_personal_tokens(user.id).expect("list")[0].last_used_at,
        Some(t + 70)
    );
    assert!(
        store
            .personal_token_with_user(&random_hash(), t)
            .expect("lookup")
            .is_none()
    );

    // Deleting: only the owner's.
    assert!(
        !store
            .delete_personal_token(other.id, first.id)
            .expect("delete")
    );
    assert!(
        store
            .delete_personal_token(user.id, first.id)
            .expect("delete")
    );
    assert!(
        !store
            .delete_personal_token(user.id, first.id)
            .expect("again")
    );
    assert!(
        store
            .personal_token_with_user(&first.hash, t)
            .expect("lookup")
            .is_none()
    );
    assert_eq!(store.list_personal_tokens(user.id).expect("list").len(), 1);
}

fn organization(name: &str, created_at: i64) -> OrganizationRecord {
    OrganizationRecord {
        id: Uuid::new_v4(),
        name: name.to_owned(),
        created_at,
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

fn update_password_hash_keeps_sessions(store: &DieselStore) {
    let user = make_user(store, "upgrade@example.com");
    let t = now();
    let (s1, h1) = make_session(store, user.id, t);
    store
        .update_password_hash(user.id, "$argon2id$upgraded", t + 3)
        .expect("update hash");
    let found = store.find_user(user.id).expect("find").expect("exists");
    assert_eq!(found.password_hash, "$argon2id$upgraded");
    assert_eq!(found.updated_at, t + 3);
    assert!(session_of(store, s1.id, t).is_some());
    assert!(store.find_refresh_token(&h1).expect("find").is_some());
    // An unknown user is not an error.
    store
        .update_password_hash(Uuid::new_v4(), "$argon2id$x", t)
        .expect("unknown user");
}

fn update_user_patches_each_field(store: &DieselStore) {
    let t = now();
    let org = organization("Acme", t);
    store.create_organization(&org).expect("org");
    let user = store
        .create_user(&new_user("patch@example.com", &["user"], t))
        .expect("create");
    let bystander = make_user(store, "untouched@example.com");

    // An empty patch only moves updated_at.
    let same = store
        .update_user(user.id, &UserPatch::default(), t + 1)
        .expect("empty patch")
        .expect("exists");
    assert_eq!(
        same,
        UserRecord {
            updated_at: t + 1,
            ..user.clone()
        }
    );

    let patch = UserPatch {
        full_name: Some(Some("Patched Name".to_owned())),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 2)
        .expect("name")
        .expect("exists");
    assert_eq!(u.full_name.as_deref(), Some("Patched Name"));
    assert_eq!(u.updated_at, t + 2);

    let patch = UserPatch {
        phone: Some(Some("+1 555 0100".to_owned())),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 3)
        .expect("phone")
        .expect("exists");
    assert_eq!(u.phone.as_deref(), Some("+1 555 0100"));
    assert_eq!(u.full_name.as_deref(), Some("Patched Name"), "left alone");

    let patch = UserPatch {
        organization_id: Some(Some(org.id)),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 4)
        .expect("org")
        .expect("exists");
    assert_eq!(u.organization_id, Some(org.id));

    let attributes = serde_json::json!({"team": "blue", "level": 3, "tags": ["a", "b"]});
    let patch = UserPatch {
        attributes: Some(attributes.clone()),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 5)
        .expect("attrs")
        .expect("exists");
    assert_eq!(u.attributes, attributes);
    let patch = UserPatch {
        attributes: Some(serde_json::json!({"team": "red"})),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 6)
        .expect("attrs")
        .expect("exists");
    assert_eq!(
        u.attributes,
        serde_json::json!({"team": "red"}),
        "replaced, not merged"
    );

    // An active user's sessions survive `is_active: Some(true)`.
    let (session, _) = make_session(store, user.id, t);
    let patch = UserPatch {
        is_active: Some(true),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 7)
        .expect("active")
        .expect("exists");
    assert!(u.is_active);
    assert!(session_of(store, session.id, t).is_some());

    // Some(None) clears the nullable fields.
    let patch = UserPatch {
        full_name: Some(None),
        phone: Some(None),
        organization_id: Some(None),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 8)
        .expect("clear")
        .expect("exists");
    assert_eq!(
        (&u.full_name, &u.phone, u.organization_id),
        (&None, &None, None)
    );
    assert_eq!(u.attributes, serde_json::json!({"team": "red"}));
    assert_eq!(u.roles, strings(&["user"]));
    assert_eq!(
        (u.email.as_str(), u.created_at, u.updated_at),
        ("patch@example.com", t, t + 8)
    );
    assert_eq!(u.password_hash, user.password_hash);
    assert_eq!(store.find_user(user.id).expect("find"), Some(u.clone()));

    // Everything at once.
    let patch = UserPatch {
        full_name: Some(Some("All".to_owned())),
        phone: Some(Some("1".to_owned())),
        is_active: Some(true),
        roles: Some(strings(&["ops"])),
        organization_id: Some(Some(org.id)),
        attributes: Some(serde_json::json!({"x": null})),
    };
    let all = store
        .update_user(user.id, &patch, t + 9)
        .expect("all")
        .expect("exists");
    assert_eq!(all.full_name.as_deref(), Some("All"));
    assert_eq!(all.phone.as_deref(), Some("1"));
    assert_eq!(all.roles, strings(&["ops"]));
    assert_eq!(all.organization_id, Some(org.id));
    assert_eq!(all.attributes, serde_json::json!({"x": null}));
    assert_eq!(all.updated_at, t + 9);

    // An unknown organization is Other, and the whole patch is rolled back.
    let patch = UserPatch {
        full_name: Some(Some("Never".to_owned())),
        roles: Some(strings(&["never"])),
        organization_id: Some(Some(Uuid::new_v4())),
        ..UserPatch::default()
    };
    match store.update_user(user.id, &patch, t + 10) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }
    assert_eq!(store.find_user(user.id).expect("find"), Some(all));

    // Attributes must be an object.
    let patch = UserPatch {
        attributes: Some(serde_json::json!([1, 2])),
        ..UserPatch::default()
    };
    assert!(matches!(
        store.update_user(user.id, &patch, t + 11),
        Err(StoreError::Other(_))
    ));

    // Unknown user: None, nothing written.
    let patch = UserPatch {
        full_name: Some(Some("Ghost".to_owned())),
        roles: Some(strings(&["ghost-role"])),
        is_active: Some(false),
        ..UserPatch::default()
    };
    let ghost = Uuid::new_v4();
    assert_eq!(store.update_user(ghost, &patch, t).expect("unknown"), None);
    assert!(store.find_user(ghost).expect("find").is_none());
    assert_eq!(
        store.find_user(bystander.id).expect("find"),
        Some(bystander)
    );
}

fn update_user_replaces_roles(store: &DieselStore) {
    let t = now();
    let user = store
        .create_user(&new_user("roles@example.com", &["user", "viewer"], t))
        .expect("create");
    let other = store
        .create_user(&new_user("shares@example.com", &["admin", "viewer"], t))
        .expect("other");
    let admin_id = store.user_roles(other.id).expect("roles")[0].id;

    // Replaces the set: unknown names are created, duplicates collapse, dropped ones go.
    let patch = UserPatch {
        roles: Some(strings(&["editor", "admin", "editor", "viewer"])),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 1)
        .expect("roles")
        .expect("exists");
    assert_eq!(u.roles, strings(&["admin", "editor", "viewer"]));
    assert_eq!(u.updated_at, t + 1);
    let roles = store.user_roles(user.id).expect("roles");
    assert_eq!(
        roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["admin", "editor", "viewer"]
    );
    // The existing role is reused, not duplicated.
    assert_eq!(roles[0].id, admin_id);
    assert_eq!(store.find_user(user.id).expect("find").expect("exists"), u);

    // The other user's roles are untouched.
    assert_eq!(
        store
            .find_user(other.id)
            .expect("find")
            .expect("exists")
            .roles,
        strings(&["admin", "viewer"])
    );

    // A role created by update_user can be reused by create_user.
    let later = store
        .create_user(&new_user("later@example.com", &["editor"], t))
        .expect("later");
    assert_eq!(
        store.user_roles(later.id).expect("roles")[0].id,
        roles[1].id
    );

    // None leaves the roles; an empty set clears them.
    let patch = UserPatch {
        full_name: Some(None),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 2)
        .expect("name")
        .expect("exists");
    assert_eq!(u.roles, strings(&["admin", "editor", "viewer"]));
    let patch = UserPatch {
        roles: Some(Vec::new()),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 3)
        .expect("clear")
        .expect("exists");
    assert!(u.roles.is_empty());
    assert!(store.user_roles(user.id).expect("roles").is_empty());
    assert_eq!(
        store
            .find_user(other.id)
            .expect("find")
            .expect("exists")
            .roles,
        strings(&["admin", "viewer"])
    );
}

fn update_user_deactivation_deletes_sessions_and_tokens(store: &DieselStore) {
    let user = make_user(store, "off@example.com");
    let bystander = make_user(store, "on@example.com");
    let t = now();
    let (s1, h1) = make_session(store, user.id, t);
    let (_s2, h2) = make_session(store, user.id, t);
    let (bs, bh) = make_session(store, bystander.id, t);
    let pat = personal_token(user.id, "ci", t);
    store.create_personal_token(&pat).expect("pat");
    let bpat = personal_token(bystander.id, "ci", t);
    store.create_personal_token(&bpat).expect("pat");

    let patch = UserPatch {
        is_active: Some(false),
        full_name: Some(Some("Gone Dark".to_owned())),
        roles: Some(strings(&["suspended"])),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 5)
        .expect("deactivate")
        .expect("exists");
    assert!(!u.is_active);
    assert_eq!(u.full_name.as_deref(), Some("Gone Dark"));
    assert_eq!(u.roles, strings(&["suspended"]));
    assert_eq!(u.updated_at, t + 5);

    assert!(store.list_sessions(user.id, t).expect("list").is_empty());
    assert!(session_of(store, s1.id, t).is_none());
    assert!(store.find_refresh_token(&h1).expect("find").is_none());
    assert!(store.find_refresh_token(&h2).expect("find").is_none());
    assert!(
        store
            .list_personal_tokens(user.id)
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .personal_token_with_user(&pat.hash, t)
            .expect("lookup")
            .is_none()
    );

    // Others are untouched.
    assert!(session_of(store, bs.id, t).is_some());
    assert!(store.find_refresh_token(&bh).expect("find").is_some());
    assert_eq!(
        store
            .list_personal_tokens(bystander.id)
            .expect("list")
            .len(),
        1
    );

    // Reactivating only flips the flag.
    let patch = UserPatch {
        is_active: Some(true),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, t + 6)
        .expect("activate")
        .expect("exists");
    assert!(u.is_active);
    assert_eq!(u.roles, strings(&["suspended"]));
}

fn list_users_pages_and_counts(store: &DieselStore) {
    let t = now();
    assert_eq!(
        store
            .list_users(&UserQuery {
                email_key: None,
                limit: 10,
                offset: 0,
            })
            .expect("empty"),
        (Vec::new(), 0)
    );

    // Created out of order; two share a creation time (ordered by id then).
    let mut created = Vec::new();
    for (i, at) in [(0, t + 30), (1, t + 10), (2, t + 20), (3, t + 20), (4, t)] {
        let roles: &[&str] = if i % 2 == 0 {
            &["even", "all"]
        } else {
            &["all"]
        };
        created.push(
            store
                .create_user(&new_user(&format!("User{i}@Example.com"), roles, at))
                .expect("create"),
        );
    }
    let mut expected = created.clone();
    expected.sort_by_key(|u| (u.created_at, u.id));

    let page = |email_key: Option<&str>, limit: u32, offset: u64| {
        store
            .list_users(&UserQuery {
                email_key: email_key.map(str::to_owned),
                limit,
                offset,
            })
            .expect("list")
    };

    let (all, total) = page(None, 100, 0);
    assert_eq!(total, 5);
    assert_eq!(all, expected, "records equal find_user's, roles included");
    for user in &all {
        assert_eq!(store.find_user(user.id).expect("find").as_ref(), Some(user));
    }

    let mut walked = Vec::new();
    for offset in [0, 2, 4] {
        let (users, total) = page(None, 2, offset);
        assert_eq!(total, 5, "total counts every match, not the page");
        assert_eq!(users.len(), if offset == 4 { 1 } else { 2 });
        walked.extend(users);
    }
    assert_eq!(walked, expected);
    assert_eq!(page(None, 2, 5), (Vec::new(), 5));
    assert_eq!(page(None, 2, u64::MAX), (Vec::new(), 5));
    assert_eq!(page(None, 0, 0), (Vec::new(), 5));

    // The email filter matches the normalized key exactly.
    let target = &created[2];
    assert_eq!(
        page(Some("user2@example.com"), 10, 0),
        (vec![target.clone()], 1)
    );
    assert_eq!(page(Some("user2@example.com"), 10, 1), (Vec::new(), 1));
    assert_eq!(page(Some("user2@example.com"), 0, 0), (Vec::new(), 1));
    assert_eq!(page(Some("User2@Example.com"), 10, 0), (Vec::new(), 0));
    assert_eq!(page(Some("user2"), 10, 0), (Vec::new(), 0));
    assert_eq!(page(Some("nobody@example.com"), 10, 0), (Vec::new(), 0));
}

fn delete_user_cascades(store: &DieselStore) {
    let t = now();
    let org = organization("Keeps", t);
    store.create_organization(&org).expect("org");
    let mut input = new_user("doomed@example.com", &["shared", "own"], t);
    input.organization_id = Some(org.id);
    let user = store.create_user(&input).expect("create");
    let bystander = store
        .create_user(&new_user("survivor@example.com", &["shared"], t))
        .expect("bystander");
    let (s1, h1) = make_session(store, user.id, t);
    let h2 = random_hash();
    assert!(
        store
            .rotate_refresh_token(&rotation(s1.id, h1, h2, "jti-2", t + 1))
            .expect("rotate")
    );
    let (s2, h3) = make_session(store, user.id, t + 2);
    let pat = personal_token(user.id, "ci", t);
    store.create_personal_token(&pat).expect("pat");
    let (bs, bh) = make_session(store, bystander.id, t);
    let bpat = personal_token(bystander.id, "ci", t);
    store.create_personal_token(&bpat).expect("pat");

    assert!(store.delete_user(user.id).expect("delete"));
    assert!(store.find_user(user.id).expect("find").is_none());
    assert!(
        store
            .find_user_by_email("doomed@example.com")
            .expect("find")
            .is_none()
    );
    assert!(session_of(store, s1.id, t + 2).is_none());
    assert!(session_of(store, s2.id, t + 2).is_none());
    assert!(store.list_sessions(user.id, t).expect("list").is_empty());
    for hash in [h1, h2, h3] {
        assert!(store.find_refresh_token(&hash).expect("find").is_none());
    }
    assert!(
        store
            .personal_token_with_user(&pat.hash, t)
            .expect("lookup")
            .is_none()
    );
    assert!(
        store
            .list_personal_tokens(user.id)
            .expect("list")
            .is_empty()
    );
    assert!(store.user_roles(user.id).expect("roles").is_empty());
    assert!(!store.delete_user(user.id).expect("again"));
    assert!(!store.delete_user(Uuid::new_v4()).expect("unknown"));

    // The organization, the roles and other users' things stay.
    assert_eq!(store.find_organization(org.id).expect("org"), Some(org));
    assert_eq!(
        store.find_user(bystander.id).expect("find"),
        Some(bystander.clone())
    );
    assert!(session_of(store, bs.id, t).is_some());
    assert!(store.find_refresh_token(&bh).expect("find").is_some());
    assert!(
        store
            .personal_token_with_user(&bpat.hash, t)
            .expect("lookup")
            .is_some()
    );
    // The email is free again; the old roles are reused.
    let again = store
        .create_user(&new_user("Doomed@example.com", &["own"], t + 3))
        .expect("recreate");
    assert_eq!(again.roles, strings(&["own"]));
    assert_eq!(
        store
            .list_users(&UserQuery {
                email_key: None,
                limit: 10,
                offset: 0,
            })
            .expect("list")
            .1,
        2
    );
}

fn organizations(store: &DieselStore) {
    let t = now();
    assert!(store.list_organizations().expect("empty").is_empty());
    let late = organization("Late", t + 10);
    let early = organization("Early", t);
    let (tie_a, tie_b) = {
        let a = organization("Tie A", t + 5);
        let b = organization("Tie B", t + 5);
        if a.id < b.id { (a, b) } else { (b, a) }
    };
    for org in [&late, &tie_b, &early, &tie_a] {
        store.create_organization(org).expect("create");
    }
    assert_eq!(
        store.list_organizations().expect("list"),
        vec![early.clone(), tie_a, tie_b, late.clone()]
    );
    assert_eq!(
        store.find_organization(late.id).expect("find"),
        Some(late.clone())
    );
    assert!(
        store
            .find_organization(Uuid::new_v4())
            .expect("find")
            .is_none()
    );

    // The same id again is a conflict.
    let dup = OrganizationRecord {
        name: "Other name".to_owned(),
        ..early.clone()
    };
    match store.create_organization(&dup) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.find_organization(early.id).expect("find"),
        Some(early.clone())
    );

    // Users can belong to one.
    let mut input = new_user("member@example.com", &[], t);
    input.organization_id = Some(early.id);
    let member = store.create_user(&input).expect("member");
    assert_eq!(member.organization_id, Some(early.id));
    assert_eq!(store.list_organizations().expect("list").len(), 4);
}

fn user_roles_have_ids_and_descriptions(store: &DieselStore) {
    let t = now();
    let user = store
        .create_user(&new_user(
            "r@example.com",
            &["zeta", "Alpha", "mid", "alpha"],
            t,
        ))
        .expect("create");
    assert_eq!(user.roles, strings(&["Alpha", "alpha", "mid", "zeta"]));
    let roles = store.user_roles(user.id).expect("roles");
    assert_eq!(
        roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["Alpha", "alpha", "mid", "zeta"],
        "sorted by name (byte order)"
    );
    assert!(roles.iter().all(|r| r.description.is_none()));
    let mut ids: Vec<Uuid> = roles.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);

    // The same role has the same id for every user.
    let other = store
        .create_user(&new_user("r2@example.com", &["mid"], t))
        .expect("other");
    let other_roles = store.user_roles(other.id).expect("roles");
    assert_eq!(other_roles, vec![roles[2].clone()]);

    // No roles, or no such user: empty.
    let none = store
        .create_user(&new_user("r3@example.com", &[], t))
        .expect("none");
    assert!(store.user_roles(none.id).expect("roles").is_empty());
    assert!(store.user_roles(Uuid::new_v4()).expect("roles").is_empty());
}

/// The failures of [`failure_fixture`], relative to `t`: (email, IP, seconds before `t`),
/// deliberately out of time order.
const FAILURES: &[(&str, &str, i64)] = &[
    ("a@example.com", "10.0.0.1", 10),
    ("a@example.com", "10.0.0.1", 100),
    ("a@example.com", "10.0.0.2", 30),
    ("a@example.com", "10.0.0.1", 50),
    ("a@example.com", "10.0.0.1", 61),
    ("b@example.com", "10.0.0.1", 20),
    ("b@example.com", "10.0.0.1", 200),
    ("a@example.com", "10.0.0.1", 101),
];

/// Records [`FAILURES`] and returns `t`.
fn failure_fixture(store: &DieselStore) -> i64 {
    let t = now();
    for (email, ip, ago) in FAILURES {
        store
            .record_login_failure(email, ip, t - ago)
            .expect("record failure");
    }
    t
}

/// Windows of 60 s (email+IP), 100 s (email) and 25 s (IP) ending at `t`.
fn failure_query(email: &str, ip: &str, t: i64) -> FailureQuery {
    FailureQuery {
        email_key: email.to_owned(),
        ip: ip.to_owned(),
        email_ip_since: t - 60,
        email_since: t - 100,
        ip_since: t - 25,
    }
}

fn counts(email_ip: u64, email: u64, ip: u64) -> FailureCounts {
    FailureCounts {
        email_ip,
        email,
        ip,
    }
}

fn login_failures_are_counted_per_window(store: &DieselStore) {
    let t = now();
    let empty = failure_query("a@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&empty).expect("count"),
        counts(0, 0, 0)
    );

    let t = failure_fixture(store);
    // email+IP since t-60: 10, 50 (61, 100, 101 are older; 30 is another IP).
    // email since t-100 (inclusive): 10, 30, 50, 61, 100.
    // IP since t-25: a's 10 and b's 20.
    let a = failure_query("a@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&a).expect("count"),
        counts(2, 5, 2)
    );
    // Another IP of the same email: its own email+IP and IP counts, the same email count.
    let other_ip = failure_query("a@example.com", "10.0.0.2", t);
    assert_eq!(
        store.count_login_failures(&other_ip).expect("count"),
        counts(1, 5, 0)
    );
    let mut narrower = other_ip.clone();
    narrower.email_ip_since = t - 29;
    narrower.ip_since = t - 30;
    assert_eq!(
        store.count_login_failures(&narrower).expect("count"),
        counts(0, 5, 1)
    );
    // Another email from the same IP.
    let b = failure_query("b@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&b).expect("count"),
        counts(1, 1, 2)
    );
    // Unknown email, unknown IP.
    let nobody = failure_query("c@example.com", "10.0.0.9", t);
    assert_eq!(
        store.count_login_failures(&nobody).expect("count"),
        counts(0, 0, 0)
    );
    let from_a_ip = failure_query("c@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&from_a_ip).expect("count"),
        counts(0, 0, 2)
    );
}

fn nth_login_failure_per_series(store: &DieselStore) {
    let t = failure_fixture(store);
    let q = failure_query("a@example.com", "10.0.0.1", t);
    let series = |series: FailureSeries| -> Vec<Option<i64>> {
        (0..6)
            .map(|skip| store.nth_login_failure(&q, series, skip).expect("nth"))
            .collect()
    };
    let ago = |secs: &[i64]| -> Vec<Option<i64>> {
        let mut v: Vec<Option<i64>> = secs.iter().map(|s| Some(t - s)).collect();
        v.resize(6, None);
        v
    };
    assert_eq!(series(FailureSeries::EmailIp), ago(&[50, 10]));
    assert_eq!(series(FailureSeries::Email), ago(&[100, 61, 50, 30, 10]));
    assert_eq!(series(FailureSeries::Ip), ago(&[20, 10]));
    assert_eq!(
        store
            .nth_login_failure(&q, FailureSeries::Email, u64::MAX)
            .expect("huge skip"),
        None
    );
    let nobody = failure_query("c@example.com", "10.0.0.9", t);
    for s in [
        FailureSeries::EmailIp,
        FailureSeries::Email,
        FailureSeries::Ip,
    ] {
        assert_eq!(store.nth_login_failure(&nobody, s, 0).expect("nth"), None);
    }
}

fn clear_login_failures_forgets_only_that_email(store: &DieselStore) {
    let t = failure_fixture(store);
    store
        .clear_login_failures("a@example.com")
        .expect("clear a");
    let a = failure_query("a@example.com", "10.0.0.1", t);
    // Only b's failure at t-20 is left in the IP window.
    assert_eq!(
        store.count_login_failures(&a).expect("count"),
        counts(0, 0, 1)
    );
    let a2 = failure_query("a@example.com", "10.0.0.2", t);
    assert_eq!(
        store.count_login_failures(&a2).expect("count"),
        counts(0, 0, 0)
    );
    assert_eq!(
        store
            .nth_login_failure(&a, FailureSeries::Email, 0)
            .expect("nth"),
        None
    );
    let b = failure_query("b@example.com", "10.0.0.1", t);
    assert_eq!(
        store.count_login_failures(&b).expect("count"),
        counts(1, 1, 1)
    );
    let mut all_of_b = b.clone();
    all_of_b.email_since = t - 1000;
    assert_eq!(
        store.count_login_failures(&all_of_b).expect("count").email,
        2
    );
    // Clearing an email without failures (or twice) is fine.
    store.clear_login_failures("a@example.com").expect("again");
    store
        .clear_login_failures("c@example.com")
        .expect("unknown");
    assert_eq!(
        store.count_login_failures(&b).expect("count"),
        counts(1, 1, 1)
    );
}

fn rate_limit_hits_count_in_their_window(store: &DieselStore) {
    let t = now();
    let hit = |key: &str, since: i64, limit: u64, at: i64| {
        store
            .hit_rate_limit("register", key, since, limit, at)
            .expect("hit")
    };
    assert_eq!(hit("k", t - 60, 3, t - 100), (0, None));
    assert_eq!(hit("k", t - 60, 3, t - 40), (0, None), "t-100 is outside");
    assert_eq!(hit("k", t - 60, 3, t - 20), (1, Some(t - 40)));
    assert_eq!(hit("k", t - 60, 3, t), (2, Some(t - 40)));
    // Full: counted, not recorded.
    assert_eq!(hit("k", t - 60, 3, t), (3, Some(t - 40)));
    assert_eq!(hit("k", t - 60, 3, t), (3, Some(t - 40)));
    // The window's start is inclusive.
    assert_eq!(hit("k", t - 100, 0, t), (4, Some(t - 100)));
    // A wider limit records again.
    assert_eq!(hit("k", t - 60, 4, t), (3, Some(t - 40)));
    assert_eq!(hit("k", t - 60, 0, t), (4, Some(t - 40)));
    // Other keys and buckets are separate.
    assert_eq!(hit("other", t - 60, 3, t), (0, None));
    assert_eq!(
        store
            .hit_rate_limit("login", "k", t - 60, 3, t)
            .expect("other bucket"),
        (0, None)
    );
    // A separator in bucket or key does not merge counts.
    assert_eq!(
        store
            .hit_rate_limit("register:k", "", t - 60, 3, t)
            .expect("separator"),
        (0, None)
    );
}

fn concurrent_rate_limit_hits_respect_the_limit(store: &DieselStore) {
    const LIMIT: u64 = 5;
    let t = now();
    let barrier = Barrier::new(RATE_LIMIT_THREADS);
    let results: Vec<(u64, Option<i64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..RATE_LIMIT_THREADS)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    store
                        .hit_rate_limit("login", "10.0.0.1", t - 60, LIMIT, t)
                        .expect("hit")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    let mut admitted: Vec<u64> = results
        .iter()
        .map(|(count, _)| *count)
        .filter(|count| *count < LIMIT)
        .collect();
    admitted.sort_unstable();
    assert_eq!(admitted, (0..LIMIT).collect::<Vec<_>>(), "{results:?}");
    let refused = results.iter().filter(|(count, _)| *count >= LIMIT).count();
    assert_eq!(refused, RATE_LIMIT_THREADS - LIMIT as usize, "{results:?}");
    for (count, oldest) in &results {
        assert_eq!(*oldest, (*count > 0).then_some(t), "{results:?}");
    }
    // Exactly LIMIT hits were recorded.
    assert_eq!(
        store
            .hit_rate_limit("login", "10.0.0.1", t - 60, 0, t)
            .expect("count"),
        (LIMIT, Some(t))
    );
}

fn purge_rate_limits_removes_old_rows(store: &DieselStore) {
    let t = now();
    assert_eq!(store.purge_rate_limits(t).expect("purge empty"), 0);
    for ago in [300, 200, 100, 10] {
        store
            .record_login_failure("a@example.com", "10.0.0.1", t - ago)
            .expect("failure");
        store
            .hit_rate_limit("register", "10.0.0.1", t - 1000, 100, t - ago)
            .expect("hit");
    }
    // Rows at exactly `before` stay.
    assert_eq!(store.purge_rate_limits(t - 100).expect("purge"), 4);
    assert_eq!(store.purge_rate_limits(t - 100).expect("again"), 0);
    let q = FailureQuery {
        email_key: "a@example.com".to_owned(),
        ip: "10.0.0.1".to_owned(),
        email_ip_since: t - 1000,
        email_since: t - 1000,
        ip_since: t - 1000,
    };
    assert_eq!(
        store.count_login_failures(&q).expect("count"),
        counts(2, 2, 2)
    );
    assert_eq!(
        store
            .nth_login_failure(&q, FailureSeries::EmailIp, 0)
            .expect("nth"),
        Some(t - 100)
    );
    assert_eq!(
        store
            .hit_rate_limit("register", "10.0.0.1", t - 1000, 0, t)
            .expect("hits"),
        (2, Some(t - 100))
    );
    assert_eq!(store.purge_rate_limits(t + 1).expect("purge all"), 4);
    assert_eq!(
        store.count_login_failures(&q).expect("count"),
        counts(0, 0, 0)
    );
}

fn signing_key(kid: &str, created_at: i64, active: bool) -> SigningKeyRecord {
    let mut private_key = vec![0u8, 255, 1, 254];
    private_key.extend_from_slice(kid.as_bytes());
    SigningKeyRecord {
        kid: kid.to_owned(),
        algorithm: "EdDSA".to_owned(),
        public_key: (0..32).collect(),
        private_key,
        created_at,
        active,
    }
}

/// The kids of the stored keys (newest first) and which one is active.
fn key_state(store: &DieselStore) -> (Vec<String>, Vec<String>) {
    let keys = store.signing_keys().expect("signing keys");
    let kids = keys.iter().map(|k| k.kid.clone()).collect();
    let active = keys
        .iter()
        .filter(|k| k.active)
        .map(|k| k.kid.clone())
        .collect();
    (kids, active)
}

fn signing_keys_switch_the_active_one(store: &DieselStore) {
    let t = now();
    assert!(store.signing_keys().expect("empty").is_empty());

    let k1 = signing_key("k1", t, true);
    store.add_signing_key(&k1).expect("add k1");
    assert_eq!(store.signing_keys().expect("keys"), vec![k1.clone()]);

    // An inactive key leaves the active one alone.
    store
        .add_signing_key(&signing_key("k2", t + 1, false))
        .expect("add k2");
    assert_eq!(key_state(store), (strings(&["k2", "k1"]), strings(&["k1"])));

    // An active key deactivates every other one.
    let k3 = signing_key("k3", t + 2, true);
    store.add_signing_key(&k3).expect("add k3");
    assert_eq!(
        key_state(store),
        (strings(&["k3", "k2", "k1"]), strings(&["k3"]))
    );
    let keys = store.signing_keys().expect("keys");
    assert_eq!(keys[0], k3);
    assert_eq!(
        keys[2],
        SigningKeyRecord {
            active: false,
            ..k1
        }
    );

    // Same creation time: the greater kid comes first.
    store
        .add_signing_key(&signing_key("k4", t + 2, true))
        .expect("add k4");
    assert_eq!(
        key_state(store),
        (strings(&["k4", "k3", "k2", "k1"]), strings(&["k4"]))
    );

    // A taken kid is a conflict and changes nothing (not even the active flags).
    match store.add_signing_key(&signing_key("k2", t + 3, true)) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        key_state(store),
        (strings(&["k4", "k3", "k2", "k1"]), strings(&["k4"]))
    );

    // Racing activations leave exactly one active key.
    let barrier = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for i in 0..THREADS {
            let barrier = &barrier;
            s.spawn(move || {
                let key = signing_key(&format!("race-{i}"), t + 10, true);
                barrier.wait();
                store.add_signing_key(&key).expect("add racing key");
            });
        }
    });
    let (kids, active) = key_state(store);
    assert_eq!(kids.len(), 4 + THREADS);
    assert_eq!(active.len(), 1, "{active:?}");
}

// ---------------------------------------------------------------------------------------
// Backend-independent tests

#[test]
fn sqlite_reconnect_runs_migrations_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("again.db");
    let first = DieselStore::connect(path.to_str().expect("utf-8 path"), 2).expect("connect");
    let user = make_user(&first, "persist@example.com");
    drop(first);
    for url in [
        format!("sqlite:{}", path.display()),
        format!("sqlite://{}", path.display()),
    ] {
        let store = DieselStore::connect(&url, 2).expect("reconnect");
        assert_eq!(store.find_user(user.id).expect("find"), Some(user.clone()));
    }
}

#[test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to an admin URL to run against PostgreSQL"
)]
fn postgres_reconnect_runs_migrations_once() {
    let database = postgres_database();
    let url = database.url().to_owned();
    let first = DieselStore::connect(&url, 2).expect("connect");
    let user = make_user(&first, "persist@example.com");
    drop(first);
    // Two instances starting at once on the same database both come up.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| DieselStore::connect(&url, 2));
        let b = s.spawn(|| DieselStore::connect(&url, 2));
        (a.join().expect("join"), b.join().expect("join"))
    });
    let (a, b) = (a.expect("a"), b.expect("b"));
    assert_eq!(a.find_user(user.id).expect("find"), Some(user.clone()));
    assert_eq!(b.find_user(user.id).expect("find"), Some(user));
}

#[test]
fn sqlite_parallel_first_connects_agree() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| DieselStore::connect(&url, 2)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("join"))
            .collect()
    });
    for r in results {
        r.expect("connect").ping().expect("ping");
    }
}

#[test]
fn in_memory_sqlite_works() {
    for url in [":memory:", "sqlite::memory:"] {
        let store = DieselStore::connect(url, 8).expect("connect");
        assert_eq!(store.backend(), "sqlite");
        let user = make_user(&store, "mem@example.com");
        assert_eq!(store.find_user(user.id).expect("find"), Some(user));
    }
}

#[test]
fn unreachable_postgres_is_unavailable() {
    let started = Instant::now();
    let result = DieselStore::connect("postgres://postgres@127.0.0.1:1/postgres", 2);
    let elapsed = started.elapsed();
    match result {
        Err(StoreError::Unavailable(message)) => {
            assert!(!message.contains("password"), "{message}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(elapsed < Duration::from_secs(15), "took {elapsed:?}");

    match create_postgres_database("postgres://postgres@127.0.0.1:1/postgres", "x") {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn bad_urls_are_refused() {
    assert!(matches!(
        DieselStore::connect("mysql://localhost/db", 1),
        Err(StoreError::Other(_))
    ));
    match DieselStore::connect("/nonexistent-dir/for/sure/auth.db", 1) {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(create_postgres_database("postgres://h/db", "bad name").is_err());
}

fn credential_lookups_carry_the_users_roles(store: &DieselStore) {
    let t = now();
    let many = store
        .create_user(&new_user(
            "many@example.com",
            &["writer", "admin", "viewer"],
            t,
        ))
        .expect("create");
    let none = store
        .create_user(&new_user("none@example.com", &[], t))
        .expect("create");
    let other = store
        .create_user(&new_user("other@example.com", &["auditor"], t))
        .expect("create");
    for user in [&many, &none, &other] {
        let (session, _) = make_session(store, user.id, t);
        let pat = personal_token(user.id, "roles", t);
        store.create_personal_token(&pat).expect("pat");
        let (found_session, by_session) = store
            .session_with_user(session.id, t)
            .expect("lookup")
            .expect("live session");
        assert_eq!(found_session.id, session.id);
        let (found_token, by_token) = store
            .personal_token_with_user(&pat.hash, t)
            .expect("lookup")
            .expect("live token");
        assert_eq!(found_token.id, pat.id);
        for found in [by_session, by_token] {
            assert_eq!(found.id, user.id);
            assert_eq!(found.roles, user.roles, "roles of {}", user.email);
        }
    }
    assert_eq!(many.roles, strings(&["admin", "viewer", "writer"]));
    assert!(none.roles.is_empty());
}
