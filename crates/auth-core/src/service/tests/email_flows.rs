//! The email flows on the memory store with the fixed clock: what needs time to pass (token
//! expiry, retries), what needs another configuration (`require_verified_email`), and the
//! mail sender's handling of failures. The wire and a real SMTP server are the conformance
//! group `email`'s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{PASSWORD, TERMS, World, client, config};
use crate::error::Error;
use crate::mail::{Mail, MailError, Mailer};
use crate::store::MailQueueStore;
use crate::testing::MemoryStore;
use crate::token::mail_seal::MailSealKey;

/// Takes every queued message out of `store`, opened.
pub(super) fn take_mail(store: &MemoryStore) -> Vec<Mail> {
    let key = MailSealKey::derive(&config().signing);
    let claimed = store.claim_mail(i64::MAX, i64::MAX, 1000).expect("claim");
    claimed
        .into_iter()
        .map(|queued| {
            store.delete_mail(queued.id).expect("delete");
            key.open(&queued.payload).expect("opens")
        })
        .collect()
}

/// The token of the last mail to `to`.
pub(super) fn token_to(mails: &[Mail], to: &str) -> String {
    let mail = mails
        .iter()
        .rev()
        .find(|m| m.to == to)
        .expect("a mail to the address");
    mail.text
        .lines()
        .find(|line| line.len() == 43 && !line.contains(' '))
        .expect("the bare token (no URL configured)")
        .to_owned()
}

#[tokio::test]
async fn a_reset_token_expires_and_is_gone_after_use_or_expiry() {
    let store = Arc::new(MemoryStore::new());
    let world = World::on(store.clone(), config());
    world.account("reset@example.com", &[]).await;
    let flows = world.auth.email_flows();
    flows
        .forgot_password("reset@example.com", client(1))
        .await
        .expect("202");
    let token = token_to(&take_mail(&store), "reset@example.com");
    world.clock.advance(30 * 60 + 1);
    let err = flows
        .reset_password(&token, "a brand new password".to_owned(), client(1))
        .await
        .expect_err("expired");
    assert_eq!(err, Error::InvalidOneTimeToken);
    world.clock.advance(-(30 * 60 + 1));
    let err = flows
        .reset_password(&token, "a brand new password".to_owned(), client(1))
        .await
        .expect_err("an expired token is deleted when presented");
    assert_eq!(err, Error::InvalidOneTimeToken);
}

#[tokio::test]
async fn a_magic_link_lives_fifteen_minutes() {
    let store = Arc::new(MemoryStore::new());
    let world = World::on(store.clone(), config());
    world.account("magic@example.com", &[]).await;
    let flows = world.auth.email_flows();
    for (wait, works) in [(15 * 60 - 1, true), (15 * 60, false)] {
        flows
            .request_magic_link("magic@example.com", client(1))
            .await
            .expect("202");
        let token = token_to(&take_mail(&store), "magic@example.com");
        world.clock.advance(wait);
        let outcome = flows.magic_link_login(&token, client(1), TERMS).await;
        assert_eq!(outcome.is_ok(), works, "after {wait} s");
    }
}

#[tokio::test]
async fn unverified_accounts_cannot_log_in_when_verification_is_required() {
    let store = Arc::new(MemoryStore::new());
    let mut settings = config();
    settings.mail.require_verified_email = true;
    let world = World::on(store.clone(), settings);
    let grant = world
        .auth
        .accounts()
        .register(
            "new@example.com".to_owned(),
            PASSWORD.to_owned(),
            None,
            client(1),
            TERMS,
        )
        .await
        .expect("registered");
    let sessions = world.auth.sessions();
    let login =
        |password: &str| sessions.login("new@example.com", password.to_owned(), client(1), TERMS);
    assert_eq!(
        login("a wrong password").await.expect_err("wrong"),
        Error::InvalidCredentials,
        "the wrong password learns nothing"
    );
    assert_eq!(
        login(PASSWORD).await.expect_err("unverified"),
        Error::EmailNotVerified
    );
    let token = token_to(&take_mail(&store), &grant.user.email);
    world
        .auth
        .email_flows()
        .verify_email(&token)
        .await
        .expect("verified");
    assert!(login(PASSWORD).await.is_ok());
}

/// A mailer that fails transiently `failures` times, then delivers into `sent`.
struct Flaky {
    failures: Mutex<u32>,
    permanent: bool,
    sent: Mutex<Vec<Mail>>,
}

impl Mailer for Flaky {
    fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let mut failures = self.failures.lock().expect("lock");
        if *failures > 0 {
            *failures -= 1;
            return Err(if self.permanent {
                MailError::Permanent("550 no such user".to_owned())
            } else {
                MailError::Transient("connection refused".to_owned())
            });
        }
        self.sent.lock().expect("lock").push(mail.clone());
        Ok(())
    }
}

/// Waits (real time, bounded) until `done` holds.
async fn eventually(what: &str, done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} within 5 s");
}

#[tokio::test]
async fn the_sender_retries_with_backoff_and_drops_permanent_failures() {
    let store = Arc::new(MemoryStore::new());
    let world = World::on(store.clone(), config());
    world.account("queue@example.com", &[]).await;
    let auth = Arc::new(world.auth);
    let flaky = Arc::new(Flaky {
        failures: Mutex::new(1),
        permanent: false,
        sent: Mutex::new(Vec::new()),
    });
    let sender = auth.start_mail_sender(flaky.clone());
    auth.email_flows()
        .forgot_password("queue@example.com", client(1))
        .await
        .expect("202");
    eventually("the first attempt to fail", || {
        *flaky.failures.lock().expect("lock") == 0
    })
    .await;
    assert!(flaky.sent.lock().expect("lock").is_empty());
    assert_eq!(
        store.queued_mail_count().expect("count"),
        1,
        "kept for a retry"
    );
    world.clock.advance(5);
    eventually("the retry to deliver", || {
        flaky.sent.lock().expect("lock").len() == 1
    })
    .await;
    eventually("the delivered mail to leave the queue", || {
        store.queued_mail_count().expect("count") == 0
    })
    .await;
    sender.abort();

    let permanent = Arc::new(Flaky {
        failures: Mutex::new(1),
        permanent: true,
        sent: Mutex::new(Vec::new()),
    });
    let sender = auth.start_mail_sender(permanent.clone());
    auth.email_flows()
        .request_magic_link("queue@example.com", client(2))
        .await
        .expect("202");
    eventually("a permanent failure to drop the mail", || {
        store.queued_mail_count().expect("count") == 0
    })
    .await;
    assert!(permanent.sent.lock().expect("lock").is_empty());
    sender.abort();
}

#[tokio::test]
async fn a_full_queue_drops_new_mail_and_the_request_still_answers() {
    let store = Arc::new(MemoryStore::new());
    let mut config = config();
    config.mail.queue_limit = 2;
    let world = World::on(store.clone(), config);
    for n in 0..3 {
        world.account(&format!("full{n}@example.com"), &[]).await;
    }
    let flows = world.auth.email_flows();
    for n in 0..3 {
        flows
            .forgot_password(&format!("full{n}@example.com"), client(n))
            .await
            .expect("202 even when the queue is full");
    }
    assert_eq!(store.queued_mail_count().expect("count"), 2);
    let mut kept: Vec<String> = take_mail(&store).into_iter().map(|m| m.to).collect();
    kept.sort();
    assert_eq!(kept, ["full0@example.com", "full1@example.com"]);
    // Room again once the sender has delivered.
    flows
        .forgot_password("full2@example.com", client(9))
        .await
        .expect("202");
    assert_eq!(store.queued_mail_count().expect("count"), 1);
}
