//! The audit webhook's delivery (memory store, fixed clock, a webhook of the test's own):
//! every recorded event is delivered once, signed, in order; a transient failure is retried
//! after the first wait; a permanent one is not.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{TERMS, client, config};
use crate::service::Auth;
use crate::testing::{FixedClock, MemoryStore};
use crate::webhook::{Webhook, WebhookError, sign};

/// Records what it was handed; fails the first `transient` deliveries, or every one with a
/// permanent error.
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<(Vec<u8>, String)>>,
    transient: Mutex<u32>,
    permanent: bool,
}

impl Webhook for Receiver {
    fn deliver<'a>(
        &'a self,
        body: &'a [u8],
        signature: &'a str,
    ) -> BoxFuture<'a, Result<(), WebhookError>> {
        Box::pin(async move {
            self.got
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push((body.to_vec(), signature.to_owned()));
            let mut transient = self
                .transient
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if self.permanent {
                return Err(WebhookError::Permanent("410 Gone".to_owned()));
            }
            if *transient > 0 {
                *transient -= 1;
                return Err(WebhookError::Transient("503".to_owned()));
            }
            Ok(())
        })
    }
}

fn service() -> Arc<Auth> {
    let clock = Arc::new(FixedClock::at(chrono::Utc::now().timestamp()));
    Arc::new(Auth::with_clock(Arc::new(MemoryStore::new()), config(), clock).expect("service"))
}

async fn failed_login(auth: &Auth) {
    let _ = auth
        .sessions()
        .login(
            "nobody@example.com",
            "wrong password".to_owned(),
            client(7),
            TERMS,
        )
        .await;
}

/// Waits (real time) until `receiver` got `n` deliveries.
async fn until_got(receiver: &Receiver, n: usize) -> Vec<(Vec<u8>, String)> {
    for _ in 0..400 {
        let got = receiver
            .got
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} deliveries");
}

#[tokio::test]
async fn events_are_delivered_signed_and_retried_after_a_transient_failure() {
    let auth = service();
    let receiver = Arc::new(Receiver {
        transient: Mutex::new(1),
        ..Receiver::default()
    });
    let key = b"webhook secret".to_vec();
    assert!(
        auth.start_audit_webhook(receiver.clone(), key.clone())
            .is_some()
    );
    assert!(
        auth.start_audit_webhook(receiver.clone(), key.clone())
            .is_none(),
        "once per service"
    );
    failed_login(&auth).await;
    // The first try fails, the retry (after the first wait, one second) succeeds.
    let got = until_got(&receiver, 2).await;
    assert_eq!(got[0], got[1], "the same body and signature, retried");
    let (body, signature) = &got[0];
    assert_eq!(signature, &sign(&key, body));
    let event: serde_json::Value = serde_json::from_slice(body).expect("JSON");
    assert_eq!(event["kind"], "login.failed");
    assert_eq!(event["ip"], "10.0.0.7");
    assert!(event["at"].as_str().is_some_and(|at| at.ends_with('Z')));
    assert!(!String::from_utf8_lossy(body).contains("wrong password"));
}

#[tokio::test]
async fn a_permanent_refusal_is_not_retried() {
    let auth = service();
    let receiver = Arc::new(Receiver {
        permanent: true,
        ..Receiver::default()
    });
    auth.start_audit_webhook(receiver.clone(), b"k".to_vec());
    failed_login(&auth).await;
    until_got(&receiver, 1).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        receiver
            .got
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len(),
        1
    );
}
