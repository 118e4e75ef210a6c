//! The audit webhook over HTTP: [`HttpWebhook`] POSTs each signed event (see
//! `auth_core::webhook`).

use std::time::Duration;

use auth_core::webhook::{SIGNATURE_HEADER, Webhook, WebhookError};
use futures_util::future::BoxFuture;

/// How long one delivery may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(10);

/// POSTs to one URL; 2xx is delivered, 408, 429, 5xx and transport errors are worth a retry,
/// any other answer is final.
pub(crate) struct HttpWebhook {
    url: reqwest::Url,
    client: reqwest::Client,
}

impl HttpWebhook {
    /// Checks `url` (http or https) and builds the client.
    pub(crate) fn new(url: &str) -> anyhow::Result<Self> {
        let url = reqwest::Url::parse(url)
            .map_err(|_| anyhow::anyhow!("--audit-webhook-url is not a URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            anyhow::bail!("--audit-webhook-url must be http:// or https://");
        }
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            // A redirect would resend the signed body somewhere not configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self { url, client })
    }
}

impl Webhook for HttpWebhook {
    fn deliver<'a>(
        &'a self,
        body: &'a [u8],
        signature: &'a str,
    ) -> BoxFuture<'a, Result<(), WebhookError>> {
        Box::pin(async move {
            let answer = self
                .client
                .post(self.url.clone())
                .header("content-type", "application/json")
                .header(SIGNATURE_HEADER, signature)
                .body(body.to_vec())
                .send()
                .await
                // The error names the host, never the body.
                .map_err(|err| WebhookError::Transient(without_url(&err)))?;
            let status = answer.status();
            if status.is_success() {
                Ok(())
            } else if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
                Err(WebhookError::Transient(status.to_string()))
            } else {
                Err(WebhookError::Permanent(status.to_string()))
            }
        })
    }
}

/// A transport error without its URL (which may carry credentials in its query).
fn without_url(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "transport error"
    };
    kind.to_owned()
}
