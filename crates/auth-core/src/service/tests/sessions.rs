//! Authentication, logout, sessions, and the principal cache's promise.

use super::{ACCESS_TTL, World, client};
use crate::error::Error;

#[tokio::test]
async fn a_logout_takes_effect_at_once_despite_the_cache() {
    let world = World::new();
    world.account("out@example.com", &[]).await;
    let grant = world.login("out@example.com").await;
    let sessions = world.auth.sessions();
    let principal = sessions
        .authenticate(World::bearer(&grant.tokens.access_token).as_deref())
        .await
        .expect("authenticated (and cached)");
    sessions
        .logout(&principal, super::client(1))
        .await
        .expect("logout");
    assert!(!world.authenticates(&grant.tokens.access_token).await);
    assert_eq!(
        sessions
            .refresh(&grant.tokens.refresh_token, super::client(1), ACCESS_TTL)
            .await,
        Err(Error::InvalidToken)
    );
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_only_by_their_owner() {
    let world = World::new();
    world.account("own@example.com", &[]).await;
    world.account("other@example.com", &[]).await;
    let first = world.login("own@example.com").await;
    world.clock.advance(1);
    let second = world.login("own@example.com").await;
    let foreign = world.login("other@example.com").await;
    let sessions = world.auth.sessions();
    let me = sessions
        .authenticate(World::bearer(&second.tokens.access_token).as_deref())
        .await
        .expect("authenticated");
    let listed = sessions.list(&me).await.expect("list");
    assert_eq!(listed.len(), 2, "oldest first, only mine");
    assert!(listed[0].created_at < listed[1].created_at);
    let stranger = sessions
        .authenticate(World::bearer(&foreign.tokens.access_token).as_deref())
        .await
        .expect("authenticated");
    assert_eq!(
        sessions
            .revoke(&stranger, listed[0].id, super::client(1))
            .await,
        Err(Error::NotFound)
    );
    sessions
        .revoke(&me, listed[0].id, super::client(1))
        .await
        .expect("revoke");
    assert!(!world.authenticates(&first.tokens.access_token).await);
    assert!(world.authenticates(&second.tokens.access_token).await);
}

#[tokio::test]
async fn expired_sessions_are_purged_at_the_next_login() {
    let world = World::new();
    world.account("purge@example.com", &[]).await;
    world.login("purge@example.com").await;
    world.clock.advance(31 * 24 * 3600);
    let fresh = world.login("purge@example.com").await;
    let sessions = world.auth.sessions();
    let me = sessions
        .authenticate(World::bearer(&fresh.tokens.access_token).as_deref())
        .await
        .expect("authenticated");
    assert_eq!(sessions.list(&me).await.expect("list").len(), 1);
}

#[tokio::test]
async fn personal_tokens_authenticate_until_they_expire_or_are_revoked() {
    let world = World::new();
    world.account("pat@example.com", &[]).await;
    let grant = world.login("pat@example.com").await;
    let issued = world
        .auth
        .personal_tokens()
        .create(
            grant.user.id,
            "ci".to_owned(),
            Some(std::time::Duration::from_secs(60)),
        )
        .await
        .expect("created");
    assert!(world.authenticates(&issued.secret).await);
    world.clock.advance(60);
    assert!(!world.authenticates(&issued.secret).await, "expired");
    let forever = world
        .auth
        .personal_tokens()
        .create(grant.user.id, "forever".to_owned(), None)
        .await
        .expect("created");
    let principal = world
        .auth
        .sessions()
        .authenticate(World::bearer(&forever.secret).as_deref())
        .await
        .expect("authenticated");
    world
        .auth
        .personal_tokens()
        .revoke(&principal, forever.record.id, super::client(1))
        .await
        .expect("revoked");
    assert!(!world.authenticates(&forever.secret).await);
}

#[tokio::test]
async fn personal_tokens_need_the_current_password_and_a_session() {
    let world = World::new();
    world.account("step@example.com", &[]).await;
    let grant = world.login("step@example.com").await;
    let sessions = world.auth.sessions();
    let me = sessions
        .authenticate(World::bearer(&grant.tokens.access_token).as_deref())
        .await
        .expect("authenticated");
    let tokens = world.auth.personal_tokens();
    for _ in 0..10 {
        let guess = tokens
            .create_for(
                &me,
                "guess".to_owned(),
                &crate::service::SecondFactor::default(),
                client(9),
                "x".to_owned(),
                None,
            )
            .await;
        assert!(matches!(guess, Err(Error::WrongCurrentPassword)));
    }
    let limited = tokens
        .create_for(
            &me,
            super::PASSWORD.to_owned(),
            &crate::service::SecondFactor::default(),
            client(9),
            "x".to_owned(),
            None,
        )
        .await;
    assert!(
        matches!(limited, Err(Error::RateLimited(_))),
        "wrong current passwords count as failed logins"
    );
    let issued = tokens
        .create_for(
            &me,
            super::PASSWORD.to_owned(),
            &crate::service::SecondFactor::default(),
            client(2),
            "ok".to_owned(),
            None,
        )
        .await
        .expect("from another address, with the password");
    let by_token = sessions
        .authenticate(World::bearer(&issued.secret).as_deref())
        .await
        .expect("authenticated by the personal token");
    assert!(matches!(
        tokens
            .create_for(
                &by_token,
                super::PASSWORD.to_owned(),
                &crate::service::SecondFactor::default(),
                client(2),
                "child".to_owned(),
                None
            )
            .await,
        Err(Error::Forbidden)
    ));
}
