//! Cases of [`MailQueueStore`](crate::store::MailQueueStore): the outgoing mail queue, which
//! hands each due message to one sender at a time.

use std::collections::HashSet;

use uuid::Uuid;

use super::support::{T0, THREADS, queued_mail, race};
use crate::store::{QueuedMail, Store, StoreError};

/// How long a claim leases a message in these cases.
const LEASE: i64 = 300;

/// The ids of `mails`, in order.
fn ids(mails: &[QueuedMail]) -> Vec<Uuid> {
    mails.iter().map(|m| m.id).collect()
}

/// Claims at `now` with the cases' lease.
fn claim(store: &dyn Store, now: i64, limit: u32) -> Vec<QueuedMail> {
    store.claim_mail(now, now + LEASE, limit).expect("claim")
}

/// A claim at `now` hands out only the messages due (`next_attempt_at <= now`), oldest first
/// (by `next_attempt_at`, then `created_at`), at most `limit`, as they were before the claim
/// (payload bytes as queued); it leases them until `lease_until`, so a second claim at the
/// same `now` gets none of them, and once the lease runs out they are due again.
pub fn mail_is_claimed_when_due_oldest_first(store: &dyn Store) {
    let t = T0;
    assert_eq!(store.queued_mail_count().expect("count"), 0);
    assert!(claim(store, t, 10).is_empty(), "an empty queue");
    // Queued out of order: two due at the same time (older `created_at` first), one due
    // exactly now, one not yet.
    let later_created = queued_mail(t - 10, t - 50);
    let earlier_created = queued_mail(t - 20, t - 50);
    let oldest_due = queued_mail(t - 5, t - 100);
    let due_now = queued_mail(t - 30, t);
    let not_yet = queued_mail(t - 40, t + 1);
    for mail in [
        &later_created,
        &not_yet,
        &due_now,
        &earlier_created,
        &oldest_due,
    ] {
        store.enqueue_mail(mail).expect("enqueue");
    }
    assert_eq!(store.queued_mail_count().expect("count"), 5);

    let first = claim(store, t, 2);
    assert_eq!(first, vec![oldest_due.clone(), earlier_created.clone()]);
    let second = claim(store, t, 10);
    assert_eq!(second, vec![later_created.clone(), due_now.clone()]);
    assert!(
        claim(store, t, 10).is_empty(),
        "every due message is leased"
    );
    assert_eq!(
        store.queued_mail_count().expect("count"),
        5,
        "claims keep them"
    );

    // The one not due before is due now; the leased ones are not.
    assert_eq!(claim(store, t + 1, 10), vec![not_yet.clone()]);
    assert!(claim(store, t + LEASE - 1, 10).is_empty());
    // When the lease runs out the messages of the first two claims are due again (attempts
    // unchanged, due at the lease's end, so oldest `created_at` first); the third claim's
    // lease runs a second longer.
    let again = claim(store, t + LEASE, 10);
    let leased = |mail: &QueuedMail| QueuedMail {
        next_attempt_at: t + LEASE,
        ..mail.clone()
    };
    assert_eq!(
        again,
        [&due_now, &earlier_created, &later_created, &oldest_due]
            .map(leased)
            .to_vec()
    );
    assert_eq!(claim(store, t + 2 * LEASE, 0), Vec::new(), "limit 0");
}

/// `reschedule_mail` records an attempt (the message is next due when told); `delete_mail`
/// removes a message; both are false for a message that is not there. A taken id is a
/// `Conflict`.
pub fn mail_is_rescheduled_and_deleted(store: &dyn Store) {
    let t = T0;
    let a = queued_mail(t, t);
    let b = queued_mail(t + 1, t);
    store.enqueue_mail(&a).expect("enqueue");
    store.enqueue_mail(&b).expect("enqueue");
    let duplicate = QueuedMail {
        payload: vec![1, 2, 3],
        ..a.clone()
    };
    match store.enqueue_mail(&duplicate) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(ids(&claim(store, t, 10)), vec![a.id, b.id]);

    // A failed attempt: due again at t + 60, after one attempt.
    assert!(store.reschedule_mail(a.id, 1, t + 60).expect("reschedule"));
    assert!(claim(store, t + 59, 10).is_empty());
    let retried = claim(store, t + 60, 10);
    assert_eq!(
        retried,
        vec![QueuedMail {
            attempts: 1,
            next_attempt_at: t + 60,
            ..a.clone()
        }]
    );
    // Rescheduled into the past, it is due at once (and ahead of the others).
    assert!(
        store
            .reschedule_mail(b.id, 7, t - 1000)
            .expect("reschedule")
    );
    assert!(store.reschedule_mail(a.id, 2, t).expect("reschedule"));
    let both = claim(store, t + 60, 10);
    assert_eq!(ids(&both), vec![b.id, a.id]);
    assert_eq!((both[0].attempts, both[1].attempts), (7, 2));
    assert!(
        !store
            .reschedule_mail(Uuid::new_v4(), 1, t)
            .expect("unknown")
    );

    assert!(store.delete_mail(a.id).expect("delete"));
    assert!(!store.delete_mail(a.id).expect("again"));
    assert!(!store.delete_mail(Uuid::new_v4()).expect("unknown"));
    assert!(!store.reschedule_mail(a.id, 3, t).expect("deleted"));
    assert_eq!(store.queued_mail_count().expect("count"), 1);
    assert!(store.delete_mail(b.id).expect("delete"));
    assert_eq!(store.queued_mail_count().expect("count"), 0);
    assert!(claim(store, i64::MAX - LEASE, 10).is_empty());
}

/// Senders claiming at once never get the same message: every due message goes to at most
/// one of them, and what none got is still there for the next claim.
pub fn concurrent_mail_claims_hand_each_message_out_once(store: &dyn Store) {
    let t = T0;
    let queued: Vec<QueuedMail> = (0..20).map(|i| queued_mail(t - 100 + i, t - i)).collect();
    for mail in &queued {
        store.enqueue_mail(mail).expect("enqueue");
    }
    let claims = race(THREADS, |_| claim(store, t, 3));
    let mut seen = HashSet::new();
    for mail in claims.iter().flatten() {
        assert!(seen.insert(mail.id), "claimed twice: {mail:?}");
    }
    for mail in claim(store, t, 100) {
        assert!(seen.insert(mail.id), "claimed twice: {mail:?}");
    }
    assert_eq!(seen, queued.iter().map(|m| m.id).collect::<HashSet<_>>());
}
