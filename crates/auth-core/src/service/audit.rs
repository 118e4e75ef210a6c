//! The audit log (issue 14): the one small API the services call to record a security event,
//! and the admins' read of it.
//!
//! A write goes through the store threads like every store call; a failure to write is
//! logged as a warning and never fails the request that caused the event. Nothing secret is
//! ever recorded: `detail` carries reason codes, bucket names and field names only.

use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::{Client, Context};
use crate::store::{AuditKind, MAX_AUDIT_USER_AGENT_LEN, NewAuditEvent};

/// Where a request came from, owned (kept by an [`crate::service::Admin`] for the events
/// of its actions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The client IP as text, when known.
    pub(crate) ip: Option<String>,
    /// The `User-Agent`, cut to [`MAX_AUDIT_USER_AGENT_LEN`] characters.
    pub(crate) user_agent: Option<String>,
}

impl From<Client<'_>> for Origin {
    fn from(client: Client<'_>) -> Self {
        Self {
            ip: client.ip.map(|ip| ip.to_canonical().to_string()),
            user_agent: client
                .user_agent
                .map(|ua| ua.chars().take(MAX_AUDIT_USER_AGENT_LEN).collect()),
        }
    }
}

/// An event about to be recorded: built with the methods below, written by [`Event::record`].
#[derive(Debug, Clone)]
pub(crate) struct Event {
    kind: AuditKind,
    actor: Option<Uuid>,
    target: Option<Uuid>,
    origin: Origin,
    detail: Option<Value>,
}

impl Event {
    /// An event of `kind` with nothing else known yet.
    pub(crate) fn new(kind: AuditKind) -> Self {
        Self {
            kind,
            actor: None,
            target: None,
            origin: Origin::default(),
            detail: None,
        }
    }

    /// Who did it.
    pub(crate) fn actor(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.actor = id.into();
        self
    }

    /// Whom it concerns.
    pub(crate) fn target(mut self, id: impl Into<Option<Uuid>>) -> Self {
        self.target = id.into();
        self
    }

    /// The user who did it to themselves: actor and target.
    pub(crate) fn user(self, id: Uuid) -> Self {
        self.actor(id).target(id)
    }

    /// Where the request came from.
    pub(crate) fn from(mut self, origin: impl Into<Origin>) -> Self {
        self.origin = origin.into();
        self
    }

    /// The reason code of a refusal (`{"reason": ...}`).
    pub(crate) fn reason(self, reason: &'static str) -> Self {
        self.detail(json!({ "reason": reason }))
    }

    /// Non-secret particulars (a JSON object).
    pub(crate) fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// Appends the event at the clock's current time. Never fails: a store error is logged
    /// as a warning and the request goes on.
    pub(crate) async fn record(self, ctx: &Context) {
        let kind = self.kind.as_str();
        let event = NewAuditEvent {
            id: Uuid::new_v4(),
            at: ctx.now(),
            kind: kind.to_owned(),
            actor_id: self.actor,
            target_id: self.target,
            ip: self.origin.ip,
            user_agent: self.origin.user_agent,
            detail: self.detail,
        };
        let body = ctx.audit_feed.get().map(|_| webhook_body(&event));
        if let Err(err) = ctx.store(move |store| store.append_audit(&event)).await {
            tracing::warn!(error = %err, kind, "audit event not recorded");
            return;
        }
        if let (Some(feed), Some(body)) = (ctx.audit_feed.get(), body)
            && let Err(mpsc::error::TrySendError::Full(_)) = feed.try_send(body)
        {
            tracing::warn!(
                kind,
                "audit webhook queue full: event not sent (it is in the log)"
            );
        }
    }
}

/// An event as the webhook receives it: the fields of `GET /api/v1/admin/audit`'s items.
fn webhook_body(event: &NewAuditEvent) -> Vec<u8> {
    let at = chrono::DateTime::from_timestamp(event.at, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    json!({
        "id": event.id,
        "at": at,
        "kind": event.kind,
        "actor_id": event.actor_id,
        "target_id": event.target_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "detail": event.detail,
    })
    .to_string()
    .into_bytes()
}
