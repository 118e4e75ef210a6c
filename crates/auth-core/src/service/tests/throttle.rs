//! The login limit and its `Retry-After`, on the fixed clock.

use std::time::Duration;

use super::{PASSWORD, World, client};
use crate::error::Error;
use crate::service::ThrottledAction;

#[tokio::test]
async fn ten_failures_lock_the_email_from_that_ip_until_the_window_frees() {
    let world = World::new();
    world.account("limit@example.com", &[]).await;
    let accounts = world.auth.accounts();
    for _ in 0..10 {
        let wrong = accounts
            .check_credentials("limit@example.com", "wrong".to_owned(), client(7))
            .await;
        assert_eq!(wrong, Err(Error::InvalidCredentials));
    }
    let limited = accounts
        .check_credentials("limit@example.com", PASSWORD.to_owned(), client(7))
        .await;
    assert_eq!(limited, Err(Error::RateLimited(Duration::from_secs(900))));
    world.clock.advance(600);
    assert_eq!(
        accounts
            .check_credentials("limit@example.com", PASSWORD.to_owned(), client(7))
            .await
            .map(drop),
        Err(Error::RateLimited(Duration::from_secs(300)))
    );
    // Windows include their first second (timestamps are whole seconds, so a failure stored
    // at t may have happened at t + 0.9): the limit lifts one second after `Retry-After`.
    world.clock.advance(300);
    assert_eq!(
        accounts
            .check_credentials("limit@example.com", PASSWORD.to_owned(), client(7))
            .await
            .map(drop),
        Err(Error::RateLimited(Duration::from_secs(1)))
    );
    world.clock.advance(1);
    assert!(
        accounts
            .check_credentials("limit@example.com", PASSWORD.to_owned(), client(7))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_success_clears_the_emails_failures_from_every_ip() {
    let world = World::new();
    world.account("clear@example.com", &[]).await;
    let accounts = world.auth.accounts();
    for _ in 0..10 {
        let _ = accounts
            .check_credentials("clear@example.com", "wrong".to_owned(), client(7))
            .await;
    }
    assert!(
        accounts
            .check_credentials("clear@example.com", PASSWORD.to_owned(), client(8))
            .await
            .is_ok(),
        "another IP is not limited by the email+IP series"
    );
    assert!(
        accounts
            .check_credentials("clear@example.com", PASSWORD.to_owned(), client(7))
            .await
            .is_ok(),
        "the success cleared the email's failures"
    );
}

#[tokio::test]
async fn registrations_per_ip_are_limited() {
    let mut config = super::config();
    config.rate_limits.register_ip = crate::config::Limit::per(2, 60);
    let world = World::with(config);
    let throttle = world.auth.throttle();
    throttle
        .hit(ThrottledAction::Register, client(3))
        .await
        .expect("first");
    throttle
        .hit(ThrottledAction::Register, client(3))
        .await
        .expect("second");
    assert_eq!(
        throttle.hit(ThrottledAction::Register, client(3)).await,
        Err(Error::RateLimited(Duration::from_secs(60)))
    );
    // The window includes its first second (whole-second timestamps).
    world.clock.advance(60);
    assert_eq!(
        throttle.hit(ThrottledAction::Register, client(3)).await,
        Err(Error::RateLimited(Duration::from_secs(1)))
    );
    world.clock.advance(1);
    throttle
        .hit(ThrottledAction::Register, client(3))
        .await
        .expect("the window moved on");
}

#[test]
fn ipv6_clients_are_keyed_by_their_network() {
    use crate::service::Client;
    let key = |ip: &str, len: u8| {
        Client {
            ip: ip.parse().ok(),
            user_agent: None,
        }
        .ip_key(len)
    };
    assert_eq!(key("2001:db8:1:2:3:4:5:6", 64), "2001:db8:1:2::/64");
    assert_eq!(key("2001:db8:1:2:ffff::1", 64), "2001:db8:1:2::/64");
    assert_eq!(key("2001:db8:1:2:3:4:5:6", 48), "2001:db8:1::/48");
    assert_eq!(key("::ffff:192.0.2.7", 64), "192.0.2.7");
    assert_eq!(key("192.0.2.7", 64), "192.0.2.7");
    assert_eq!(key("nonsense", 64), "unknown");
}
