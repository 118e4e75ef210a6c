//! What bounds a session's tokens (issue 10, rule 1): a bearer-form refresh supersedes the
//! refresh token as used; no refresh mints past the opening profile's lifetime; sessions end
//! at their absolute lifetime whatever the rotations.

use std::time::Duration;

use super::{PASSWORD, World, client, config};
use crate::config::Config;
use crate::error::Error;
use crate::service::SessionTerms;

/// A 30-minute profile, like `rbac`.
const SHORT: SessionTerms = SessionTerms {
    profile: "rbac",
    access_ttl: Duration::from_secs(1800),
};
/// A 7-day profile, like `native`.
const LONG: Duration = Duration::from_secs(7 * 24 * 3600);

/// `iat` and `exp` of a JWT, read from its payload (the signature is the server's concern).
struct Times {
    iat: i64,
    exp: i64,
}

fn claims(_world: &World, token: &str) -> Times {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    let value: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
    let time = |name: &str| value[name].as_i64().expect("a number");
    Times {
        iat: time("iat"),
        exp: time("exp"),
    }
}

#[tokio::test]
async fn a_refresh_token_superseded_by_a_bearer_refresh_is_reuse_and_revokes_the_session() {
    let world = World::new();
    world.account("owner@example.com", &[]).await;
    let owner = world.login("owner@example.com").await;
    let sessions = world.auth.sessions();
    // The taker holds only the access token and refreshes in bearer form.
    let principal = sessions
        .authenticate(World::bearer(&owner.tokens.access_token).as_deref())
        .await
        .expect("authenticates");
    let taken = sessions
        .refresh_session(&principal, client(2), LONG)
        .await
        .expect("bearer refresh");
    assert!(world.authenticates(&taken.access_token).await);
    // The owner's refresh token, presented later, is reuse: the whole session dies.
    world.clock.advance(1);
    assert_eq!(
        sessions
            .refresh(&owner.tokens.refresh_token, client(1), LONG)
            .await,
        Err(Error::InvalidToken)
    );
    assert!(
        !world.authenticates(&taken.access_token).await,
        "the taker's access token died with the session"
    );
    assert_eq!(
        sessions
            .refresh(&taken.refresh_token, client(2), LONG)
            .await,
        Err(Error::InvalidToken),
        "and so did the taker's refresh token"
    );
}

#[tokio::test]
async fn no_refresh_outlives_the_lifetime_of_the_profile_that_opened_the_session() {
    let world = World::new();
    world.account("short@example.com", &[]).await;
    let grant = world
        .auth
        .sessions()
        .login("short@example.com", PASSWORD.to_owned(), client(1), SHORT)
        .await
        .expect("login");
    assert_eq!(grant.tokens.expires_in, 1800);
    let sessions = world.auth.sessions();
    // Body form through a 7-day profile.
    let pair = sessions
        .refresh(&grant.tokens.refresh_token, client(1), LONG)
        .await
        .expect("refresh");
    assert_eq!(pair.expires_in, 1800);
    let c = claims(&world, &pair.access_token);
    assert_eq!(c.exp - c.iat, 1800);
    // Bearer form through a 7-day profile.
    let principal = sessions
        .authenticate(World::bearer(&pair.access_token).as_deref())
        .await
        .expect("authenticates");
    let pair = sessions
        .refresh_session(&principal, client(1), LONG)
        .await
        .expect("bearer refresh");
    assert_eq!(pair.expires_in, 1800);
    // A shorter asking profile still gets its own, shorter lifetime.
    let pair = sessions
        .refresh(&pair.refresh_token, client(1), Duration::from_secs(60))
        .await
        .expect("refresh");
    assert_eq!(pair.expires_in, 60);
}

#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime_whatever_the_rotations() {
    let lifetime = 10 * 24 * 3600;
    let world = World::with(Config {
        session_lifetime: Duration::from_secs(lifetime),
        refresh_ttl: Duration::from_secs(3 * 24 * 3600),
        ..config()
    });
    world.account("abs@example.com", &[]).await;
    let grant = world
        .auth
        .sessions()
        .login(
            "abs@example.com",
            PASSWORD.to_owned(),
            client(1),
            SessionTerms {
                profile: "native",
                access_ttl: LONG,
            },
        )
        .await
        .expect("login");
    let login_at = claims(&world, &grant.tokens.access_token).iat;
    let ends_at = login_at + i64::try_from(lifetime).expect("fits");
    assert_eq!(grant.tokens.expires_in, 7 * 24 * 3600);
    let sessions = world.auth.sessions();
    let mut refresh = grant.tokens.refresh_token;
    // Rotate every two days: each pair is capped at the session's end, never past it.
    for _ in 0..4 {
        world.clock.advance(2 * 24 * 3600);
        let pair = sessions
            .refresh(&refresh, client(1), LONG)
            .await
            .expect("refresh");
        let c = claims(&world, &pair.access_token);
        assert!(c.exp <= ends_at, "exp {} past the end {ends_at}", c.exp);
        assert_eq!(i64::try_from(pair.expires_in).expect("fits"), c.exp - c.iat);
        refresh = pair.refresh_token;
    }
    // Day 8: the access token is capped at day 10.
    let pair = sessions
        .refresh(&refresh, client(1), LONG)
        .await
        .expect("refresh");
    assert_eq!(
        i64::try_from(pair.expires_in).expect("fits"),
        ends_at - (login_at + 8 * 24 * 3600)
    );
    // Day 10: the session is over, in both forms, and its last tokens are dead.
    world.clock.advance(2 * 24 * 3600);
    assert!(!world.authenticates(&pair.access_token).await);
    assert_eq!(
        sessions.refresh(&pair.refresh_token, client(1), LONG).await,
        Err(Error::InvalidToken)
    );
}
