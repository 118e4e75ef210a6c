//! The per-IP limit on starting passkey ceremonies: each start stores a challenge, so a client
//! gets `RateLimited` past the limit, whatever the ceremony, and other clients do not.

use std::time::Duration;

use super::{World, client, config};
use crate::config::{Limit, WebauthnSettings};
use crate::error::Error;

/// A world with a relying party and a passkey limit of 3 per 10 minutes.
fn world() -> World {
    let mut config = config();
    config.mfa.webauthn = Some(WebauthnSettings {
        rp_id: "localhost".to_owned(),
        origins: vec!["http://localhost:5173".to_owned()],
    });
    config.rate_limits.passkey_ip = Limit::per(3, 600);
    World::with(config)
}

#[tokio::test]
async fn starting_ceremonies_is_limited_per_client_ip() {
    let world = world();
    let passkeys = world.auth.passkeys();
    for _ in 0..2 {
        passkeys
            .start_login(None, client(7))
            .await
            .expect("a start");
    }
    passkeys
        .start_login(Some("nobody@example.com"), client(7))
        .await
        .expect("a start for an email");
    let limited = passkeys.start_login(None, client(7)).await.map(drop);
    assert_eq!(limited, Err(Error::RateLimited(Duration::from_secs(600))));
    // Another client is not held back, and the window frees the first.
    passkeys
        .start_login(None, client(8))
        .await
        .expect("another client");
    world.clock.advance(601);
    passkeys
        .start_login(None, client(7))
        .await
        .expect("after the window");
}
