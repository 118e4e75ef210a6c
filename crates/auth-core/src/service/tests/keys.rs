//! Signing keys changed behind a running service (by the command line or another instance):
//! rotations and retirements take effect within the reload interval, also on a service that
//! only verifies tokens or only publishes its JWKS.

use std::sync::Arc;

use super::{ACCESS_TTL, World, config};
use crate::clock::Clock as _;
use crate::config::{Config, Signing};
use crate::store::KeyStore as _;
use crate::testing::MemoryStore;
use crate::token::{generate_signing_key, retire_signing_key};

const KEK: [u8; 32] = [6; 32];

/// The kids the service publishes now (without reloading).
fn published(world: &World) -> Vec<String> {
    let jwks = world.auth.jwks().expect("EdDSA publishes a JWKS");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// An EdDSA service with a token signed by its first key, which was then rotated out and
/// retired in the store behind its back: the world, the token, the retired and the new kid.
async fn retired_behind_its_back() -> (World, String, String, String) {
    let store = Arc::new(MemoryStore::new());
    let eddsa = Config {
        signing: Signing::EdDsa {
            key_encryption_key: KEK,
        },
        ..config()
    };
    let world = World::on(store.clone(), eddsa);
    world.account("a@example.com", &[]).await;
    let token = world.login("a@example.com").await.tokens.access_token;
    let [old] = published(&world).try_into().expect("one key");
    let new = generate_signing_key(&KEK, world.clock.now(), true).expect("new key");
    store.add_signing_key(&new).expect("rotate");
    retire_signing_key(store.as_ref(), &old).expect("retire");
    // Within the interval the service may still trust what it loaded.
    assert!(world.authenticates(&token).await);
    assert_eq!(published(&world), vec![old.clone()]);
    (world, token, old, new.kid)
}

#[tokio::test]
async fn a_retired_key_stops_verifying_within_the_reload_interval() {
    let (world, token, _, new) = retired_behind_its_back().await;
    // Past the interval, with nothing but verifications in between.
    world.clock.advance(61);
    assert!(ACCESS_TTL.as_secs() > 61, "the token itself is still valid");
    assert!(
        !world.authenticates(&token).await,
        "a token of the retired key"
    );
    assert_eq!(published(&world), vec![new]);
}

#[tokio::test]
async fn the_jwks_drops_a_retired_key_within_the_reload_interval() {
    let (world, _, old, new) = retired_behind_its_back().await;
    world.clock.advance(61);
    let jwks = world.auth.current_jwks().await.expect("a JWKS");
    assert!(!jwks.to_string().contains(&old), "{jwks}");
    assert_eq!(published(&world), vec![new]);
}
