//! Rotation, replay within the reuse interval, reuse detection, expiry.

use super::{ACCESS_TTL, World};
use crate::error::Error;

#[tokio::test]
async fn a_refresh_rotates_the_pair_and_the_old_access_token_dies() {
    let world = World::new();
    world.account("rot@example.com", &[]).await;
    let grant = world.login("rot@example.com").await;
    let pair = world
        .auth
        .sessions()
        .refresh(&grant.tokens.refresh_token, super::client(1), ACCESS_TTL)
        .await
        .expect("refresh");
    assert_ne!(pair.refresh_token, grant.tokens.refresh_token);
    assert!(world.authenticates(&pair.access_token).await);
    assert!(
        !world.authenticates(&grant.tokens.access_token).await,
        "the old access token stops at once"
    );
}

#[tokio::test]
async fn a_replay_within_the_interval_gets_the_same_pair_and_after_it_revokes() {
    let world = World::new();
    world.account("replay@example.com", &[]).await;
    let grant = world.login("replay@example.com").await;
    let sessions = world.auth.sessions();
    let old = grant.tokens.refresh_token.clone();
    let first = sessions
        .refresh(&old, super::client(1), ACCESS_TTL)
        .await
        .expect("refresh");
    world.clock.advance(9);
    let replayed = sessions
        .refresh(&old, super::client(1), ACCESS_TTL)
        .await
        .expect("replay");
    assert_eq!(replayed, first, "byte-identical within the 10 s interval");
    // The window closes within a second after the interval (whole seconds).
    world.clock.advance(2);
    assert_eq!(
        sessions.refresh(&old, super::client(1), ACCESS_TTL).await,
        Err(Error::InvalidToken)
    );
    assert!(
        !world.authenticates(&first.access_token).await,
        "reuse revoked the whole session"
    );
    assert_eq!(
        sessions
            .refresh(&first.refresh_token, super::client(1), ACCESS_TTL)
            .await,
        Err(Error::InvalidToken),
        "the successor died with the session"
    );
}

#[tokio::test]
async fn a_replay_after_the_successor_was_used_is_reuse() {
    let world = World::new();
    world.account("succ@example.com", &[]).await;
    let grant = world.login("succ@example.com").await;
    let sessions = world.auth.sessions();
    let first = sessions
        .refresh(&grant.tokens.refresh_token, super::client(1), ACCESS_TTL)
        .await
        .expect("refresh");
    let second = sessions
        .refresh(&first.refresh_token, super::client(1), ACCESS_TTL)
        .await
        .expect("refresh the successor");
    assert_eq!(
        sessions
            .refresh(&grant.tokens.refresh_token, super::client(1), ACCESS_TTL)
            .await,
        Err(Error::InvalidToken),
        "inside the interval, but the successor is used"
    );
    assert!(!world.authenticates(&second.access_token).await);
}

#[tokio::test]
async fn refresh_tokens_and_access_tokens_expire_by_the_clock() {
    let world = World::new();
    world.account("exp@example.com", &[]).await;
    let grant = world.login("exp@example.com").await;
    // Access token: 900 s, with the default 5 s leeway.
    world.clock.advance(900 + 5);
    assert!(world.authenticates(&grant.tokens.access_token).await);
    world.clock.advance(1);
    assert!(!world.authenticates(&grant.tokens.access_token).await);
    // Refresh token (and session): 30 days.
    world.clock.advance(30 * 24 * 3600);
    assert_eq!(
        world
            .auth
            .sessions()
            .refresh(&grant.tokens.refresh_token, super::client(1), ACCESS_TTL)
            .await,
        Err(Error::InvalidToken)
    );
}

#[tokio::test]
async fn a_bearer_refresh_rotates_the_session_once() {
    let world = World::new();
    world.account("bearer@example.com", &[]).await;
    let grant = world.login("bearer@example.com").await;
    let sessions = world.auth.sessions();
    let principal = sessions
        .authenticate(World::bearer(&grant.tokens.access_token).as_deref())
        .await
        .expect("authenticated");
    let pair = sessions
        .refresh_session(&principal, super::client(1), ACCESS_TTL)
        .await
        .expect("bearer refresh");
    assert!(world.authenticates(&pair.access_token).await);
    assert!(!world.authenticates(&grant.tokens.access_token).await);
    assert_eq!(
        sessions
            .refresh_session(&principal, super::client(1), ACCESS_TTL)
            .await,
        Err(Error::InvalidToken),
        "the same access token cannot rotate twice"
    );
}

#[tokio::test]
async fn any_generation_older_than_the_previous_is_reuse_even_long_after() {
    let world = World::new();
    world.account("gens@example.com", &[]).await;
    let grant = world.login("gens@example.com").await;
    let sessions = world.auth.sessions();
    let mut tokens = vec![grant.tokens.refresh_token.clone()];
    let mut last = grant.tokens;
    for _ in 0..5 {
        world.clock.advance(60);
        last = sessions
            .refresh(&last.refresh_token, super::client(1), ACCESS_TTL)
            .await
            .expect("refresh");
        tokens.push(last.refresh_token.clone());
    }
    // Generation 2 of 5: none of it is stored any more, yet it is reuse.
    assert_eq!(
        sessions
            .refresh(&tokens[2], super::client(1), ACCESS_TTL)
            .await,
        Err(Error::InvalidToken)
    );
    assert!(!world.authenticates(&last.access_token).await, "revoked");
    assert_eq!(
        sessions
            .refresh(&tokens[5], super::client(1), ACCESS_TTL)
            .await,
        Err(Error::InvalidToken),
        "the current one died with the session"
    );
}

#[tokio::test]
async fn tokens_that_only_look_like_the_sessions_revoke_nothing() {
    let world = World::new();
    world.account("forged@example.com", &[]).await;
    let grant = world.login("forged@example.com").await;
    let sessions = world.auth.sessions();
    let real = grant.tokens.refresh_token.clone();
    let (named, secret) = real.rsplit_once('.').expect("three parts");
    let forged_secret = format!("{named}.{}", "A".repeat(secret.len()));
    let (session, _) = named.rsplit_once('.').expect("session and generation");
    let newer = format!("{session}.7.{secret}");
    let legacy = format!("authrt_{}", "A".repeat(43));
    for forged in [forged_secret, newer, legacy, format!("{real}x")] {
        assert_eq!(
            sessions
                .refresh(&forged, super::client(1), ACCESS_TTL)
                .await,
            Err(Error::InvalidToken),
            "{forged}"
        );
    }
    assert!(world.authenticates(&grant.tokens.access_token).await);
    sessions
        .refresh(&real, super::client(1), ACCESS_TTL)
        .await
        .expect("the real one still rotates");
}

#[tokio::test]
async fn a_bearer_refresh_makes_the_superseded_token_reuse_and_the_new_one_current() {
    let world = World::new();
    world.account("bearer-gen@example.com", &[]).await;
    let grant = world.login("bearer-gen@example.com").await;
    let sessions = world.auth.sessions();
    let principal = sessions
        .authenticate(World::bearer(&grant.tokens.access_token).as_deref())
        .await
        .expect("principal");
    let bearer = sessions
        .refresh_session(&principal, super::client(1), ACCESS_TTL)
        .await
        .expect("bearer refresh");
    assert!(bearer.refresh_token.contains(".1."), "generation 1");
    // The new token is current: it rotates.
    let next = sessions
        .refresh(&bearer.refresh_token, super::client(1), ACCESS_TTL)
        .await
        .expect("the bearer-minted token rotates");
    assert!(next.refresh_token.contains(".2."));
    // The superseded login token, within the interval: reuse, no replay.
    assert_eq!(
        sessions
            .refresh(&grant.tokens.refresh_token, super::client(1), ACCESS_TTL)
            .await,
        Err(Error::InvalidToken)
    );
    assert!(!world.authenticates(&next.access_token).await, "revoked");
}
