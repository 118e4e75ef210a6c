//! The background purger on the memory store with the fixed clock: what a round removes and
//! keeps, and the task's life (it runs on its interval and stops with the service).

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{World, config};
use crate::clock::Clock as _;
use crate::service::Purged;
use crate::store::{PersonalTokenStore, RateLimitStore, SessionStore};
use crate::testing::MemoryStore;

const DAY: i64 = 86_400;

#[tokio::test]
async fn a_purge_round_removes_what_has_expired_and_keeps_the_rest() {
    let store = Arc::new(MemoryStore::new());
    let world = World::on(store.clone(), config());
    world.account("purge@example.com", &[]).await;
    world.account("later@example.com", &[]).await;
    let user = world.login("purge@example.com").await.user;
    let now = world.clock.now();
    let old = only_session(&store, user.id, now);
    let tokens = world.auth.personal_tokens();
    tokens
        .create(user.id, "short".to_owned(), Some(Duration::from_secs(3600)))
        .await
        .expect("short-lived token");
    tokens
        .create(user.id, "forever".to_owned(), None)
        .await
        .expect("token without expiry");
    store
        .record_login_failure("someone@example.com", "10.0.0.7", now)
        .expect("failure");
    store
        .remember_address("purge@example.com", "10.0.0.7", now)
        .expect("address");

    // Nothing has expired yet: a round removes nothing.
    assert_eq!(world.auth.purge().await.expect("purge"), Purged::default());

    // 31 days on, past the refresh lifetime (30 d), the known-address window (30 d), every
    // rate-limit window and the short token's hour; another user's new login is live.
    world.clock.advance(31 * DAY);
    let later = world.login("later@example.com").await.user;
    let fresh = only_session(&store, later.id, world.clock.now());
    let purged = world.auth.purge().await.expect("purge");
    assert_eq!(
        purged,
        Purged {
            challenges: 0,
            sessions: 1,
            personal_tokens: 1,
            // The old failure; the new login's own rows are recent and stay.
            rate_limits: 1,
            // The old login's address and the one remembered by hand.
            known_addresses: 2,
            one_time_tokens: 0,
            audit_events: 0,
        }
    );
    assert!(store.find_refresh_token(old).expect("find").is_none());
    assert!(store.find_refresh_token(fresh).expect("find").is_some());
    let names: Vec<String> = store
        .list_personal_tokens(user.id)
        .expect("list")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["forever".to_owned()]);
    assert_eq!(world.auth.purge().await.expect("again"), Purged::default());
}

#[tokio::test]
async fn the_purger_runs_on_its_interval_and_stops_with_the_service() {
    let store = Arc::new(MemoryStore::new());
    let interval = Duration::from_millis(50);
    let world = World::on(
        store.clone(),
        crate::config::Config {
            purge_interval: interval,
            ..config()
        },
    );
    world.account("task@example.com", &[]).await;
    let user = world.login("task@example.com").await.user;
    let session = only_session(&store, user.id, world.clock.now());
    world.clock.advance(31 * DAY);
    let World { auth, .. } = world;
    let auth = Arc::new(auth);
    let task = auth.start_purger().expect("an interval: a purger");

    // Generous margins: the machine may be loaded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while store.find_refresh_token(session).expect("find").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the purger never ran"
        );
        tokio::time::sleep(interval).await;
    }

    drop(auth);
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("the purger stops once the service is dropped")
        .expect("the purger ends without panicking");
}

#[tokio::test]
async fn no_interval_no_purger() {
    let world = World::with(crate::config::Config {
        purge_interval: Duration::ZERO,
        ..config()
    });
    assert!(Arc::new(world.auth).start_purger().is_none());
}

/// The one session of `user` live at `now`.
fn only_session(store: &MemoryStore, user: Uuid, now: i64) -> Uuid {
    let live = store.list_sessions(user, now).expect("list");
    assert_eq!(live.len(), 1, "one live session");
    live[0].id
}
