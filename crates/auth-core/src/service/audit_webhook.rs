//! The audit webhook's delivery task: every audit event recorded after
//! [`Auth::start_audit_webhook`] is queued (bounded), signed and handed to the deployment's
//! [`Webhook`], one at a time and in order, with retries (see [`crate::webhook`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::Auth;
use crate::webhook::{Webhook, WebhookError, sign};

/// Events waiting for delivery at most; beyond it new events skip the webhook (they stay in
/// the log).
pub const WEBHOOK_QUEUE: usize = 1024;

/// The waits before each retry of a transient failure: five retries over about half a
/// minute, then the event is dropped from the webhook.
pub const WEBHOOK_RETRY_WAITS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

impl Auth {
    /// Delivers every audit event recorded from now on to `webhook`, its body signed with
    /// `key` (HMAC-SHA256). Once per service: `None` when it was already started. The task
    /// ends when the service is dropped.
    pub fn start_audit_webhook(
        self: &Arc<Self>,
        webhook: Arc<dyn Webhook>,
        key: Vec<u8>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let (feed, mut queue) = mpsc::channel::<Vec<u8>>(WEBHOOK_QUEUE);
        self.ctx.audit_feed.set(feed).ok()?;
        Some(tokio::spawn(async move {
            while let Some(body) = queue.recv().await {
                deliver(webhook.as_ref(), &key, &body).await;
            }
        }))
    }
}

/// One event: tried, then retried after each of [`WEBHOOK_RETRY_WAITS`] while the failure is
/// transient.
async fn deliver(webhook: &dyn Webhook, key: &[u8], body: &[u8]) {
    let signature = sign(key, body);
    let waits = std::iter::once(Duration::ZERO).chain(WEBHOOK_RETRY_WAITS);
    let attempts = WEBHOOK_RETRY_WAITS.len() + 1;
    for (attempt, wait) in waits.enumerate() {
        tokio::time::sleep(wait).await;
        match webhook.deliver(body, &signature).await {
            Ok(()) => return,
            Err(WebhookError::Permanent(why)) => {
                tracing::warn!(why, "audit event dropped from the webhook: refused");
                return;
            }
            Err(WebhookError::Transient(why)) if attempt + 1 == attempts => {
                tracing::warn!(why, attempts, "audit event dropped from the webhook");
            }
            Err(WebhookError::Transient(why)) => {
                tracing::debug!(why, attempt, "audit webhook delivery failed; retrying");
            }
        }
    }
}
