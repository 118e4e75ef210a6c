//! Delivering the mail queue (issue 13): requests only queue a sealed message (one insert,
//! never a wait on a mail server); a task of the service claims due messages, hands each to
//! the [`Mailer`] on a blocking thread, and deletes it once delivered. A failed attempt is
//! retried with exponential backoff; a permanent failure, or too many attempts, drops the
//! message with a warning that names its id and the error, never its contents. Messages stay
//! in the database meanwhile, so a crash or restart loses none, and several instances share
//! the queue (each claim leases a message to one sender).

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt as _;
use uuid::Uuid;

use super::{Auth, Context};
use crate::error::Error;
use crate::mail::{Mail, MailError, Mailer};
use crate::store::QueuedMail;

/// Messages claimed per round.
const BATCH: u32 = 32;
/// Deliveries in flight at once (each on a blocking thread).
const PARALLEL_SENDS: usize = 8;
/// How long a claimed message is another sender's to leave alone (seconds): longer than any
/// delivery takes, so it only comes back when its sender died.
const LEASE_SECS: i64 = 300;
/// How often the queue is looked at when no request wakes the sender.
const POLL: Duration = Duration::from_secs(1);
/// Attempts before a message is given up.
pub const MAX_ATTEMPTS: u32 = 12;
/// The first retry's delay (seconds); each next one doubles, up to [`MAX_BACKOFF_SECS`].
const FIRST_BACKOFF_SECS: i64 = 5;
const MAX_BACKOFF_SECS: i64 = 3600;

/// Delay before attempt `attempts + 1`, after `attempts` failed ones.
pub(crate) fn backoff_secs(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    (FIRST_BACKOFF_SECS << doublings).min(MAX_BACKOFF_SECS)
}

impl Context {
    /// Queues a message (sealed) and wakes this instance's sender; drops it with a warning
    /// (its kind, never its contents) when the queue is at its limit.
    pub(crate) async fn queue_mail(&self, mail: &Mail) -> Result<(), Error> {
        let queued = QueuedMail {
            id: Uuid::new_v4(),
            payload: self.mail_key.seal(mail)?,
            attempts: 0,
            next_attempt_at: self.now(),
            created_at: self.now(),
        };
        let limit = self.config.mail.queue_limit;
        let queued = self
            .store(move |store| {
                // Count and insert are not atomic: several instances may overshoot the limit
                // by a few messages, which is what a limit on growth allows.
                if store.queued_mail_count()? >= limit {
                    return Ok(false);
                }
                store.enqueue_mail(&queued).map(|()| true)
            })
            .await?;
        if queued {
            self.mail_wakeup.notify_one();
        } else {
            tracing::warn!(
                subject = %mail.subject,
                limit,
                "mail queue full: message dropped (is the mail server reachable?)"
            );
        }
        Ok(())
    }
}

impl Auth {
    /// Starts delivering the mail queue through `mailer` on a task of the current Tokio
    /// runtime (panics outside one). The task ends within a second of the last other
    /// `Arc<Auth>` being dropped. Call it once per instance; several instances may run one
    /// each on a shared database.
    pub fn start_mail_sender(
        self: &Arc<Self>,
        mailer: Arc<dyn Mailer>,
    ) -> tokio::task::JoinHandle<()> {
        let service: Weak<Auth> = Arc::downgrade(self);
        let wakeup = self.ctx.mail_wakeup.clone();
        tokio::spawn(async move {
            loop {
                let Some(auth) = service.upgrade() else {
                    break;
                };
                let full = match auth.deliver_due(&mailer).await {
                    Ok(handled) => handled == BATCH as usize,
                    Err(err) => {
                        tracing::warn!(error = %err, "mail queue unreadable; retrying");
                        false
                    }
                };
                drop(auth);
                if !full {
                    tokio::select! {
                        () = wakeup.notified() => {}
                        () = tokio::time::sleep(POLL) => {}
                    }
                }
            }
            tracing::debug!("service dropped: mail sender stopped");
        })
    }

    /// One round: claims the due messages and attempts each once; how many were handled.
    async fn deliver_due(&self, mailer: &Arc<dyn Mailer>) -> Result<usize, Error> {
        let ctx = &self.ctx;
        let now = ctx.now();
        let claimed = ctx
            .store(move |store| store.claim_mail(now, now + LEASE_SECS, BATCH))
            .await?;
        let handled = claimed.len();
        // Several at once: one SMTP exchange takes tens of milliseconds of round trips, so
        // one at a time would cap an instance at a few dozen mails a second.
        let outcomes: Vec<Result<(), Error>> = futures_util::stream::iter(claimed)
            .map(|queued| self.attempt(mailer, queued))
            .buffer_unordered(PARALLEL_SENDS)
            .collect()
            .await;
        outcomes.into_iter().collect::<Result<(), Error>>()?;
        Ok(handled)
    }

    /// Attempts one message, then deletes or reschedules it.
    async fn attempt(&self, mailer: &Arc<dyn Mailer>, queued: QueuedMail) -> Result<(), Error> {
        let ctx = &self.ctx;
        let id = queued.id;
        let Some(mail) = ctx.mail_key.open(&queued.payload) else {
            tracing::warn!(mail = %id, "queued mail does not open under the current key; dropped");
            ctx.store(move |store| store.delete_mail(id)).await?;
            return Ok(());
        };
        let mailer = mailer.clone();
        let outcome = tokio::task::spawn_blocking(move || mailer.send(&mail))
            .await
            .unwrap_or_else(|_| Err(MailError::Transient("the mailer panicked".to_owned())));
        let attempts = queued.attempts.saturating_add(1);
        match outcome {
            Ok(()) => {
                tracing::info!(mail = %id, attempts, "mail delivered");
                ctx.store(move |store| store.delete_mail(id)).await?;
            }
            Err(MailError::Transient(why)) if attempts < MAX_ATTEMPTS => {
                let next = ctx.now() + backoff_secs(attempts);
                tracing::warn!(mail = %id, attempts, error = %why, "mail delivery failed; will retry");
                ctx.store(move |store| store.reschedule_mail(id, attempts, next))
                    .await?;
            }
            Err(err) => {
                tracing::warn!(mail = %id, attempts, error = %err, "mail given up");
                ctx.store(move |store| store.delete_mail(id)).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_secs(1), 5);
        assert_eq!(backoff_secs(2), 10);
        assert_eq!(backoff_secs(5), 80);
        assert_eq!(backoff_secs(11), 3600);
        assert_eq!(backoff_secs(u32::MAX), 3600);
    }
}
