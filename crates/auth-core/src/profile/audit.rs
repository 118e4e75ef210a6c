//! `GET /api/v1/admin/audit` of the admin profile: the audit log, newest first, filtered and
//! paged, for callers with the `admin` role. Bad filters are 422 problem documents.

use chrono::DateTime;
use serde::Serialize;
use uuid::Uuid;

use super::Call;
use super::admin::{DEFAULT_LIMIT, MAX_LIMIT, admin};
use super::body::timestamp;
use crate::error::{Error, Rule};
use crate::http::Response;
use crate::store::{AuditEventRecord, AuditKind, AuditQuery};
use crate::validate::Fields;

/// A page of audit events.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// The events, newest first.
    items: Vec<AuditEventBody>,
    /// How many events match the filters.
    total: u64,
}

/// One audit event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEventBody {
    /// The event's id.
    id: Uuid,
    /// When it happened.
    #[schema(format = DateTime)]
    at: String,
    /// What happened, e.g. `login.failed`.
    kind: String,
    /// Who did it, when known.
    actor_id: Option<Uuid>,
    /// Whom it concerns, when a user.
    target_id: Option<Uuid>,
    /// The client IP, when known.
    ip: Option<String>,
    /// The client's `User-Agent`.
    user_agent: Option<String>,
    /// Non-secret particulars (e.g. `reason`, `bucket`, `fields`).
    #[schema(value_type = Option<Object>)]
    detail: Option<serde_json::Value>,
}

impl From<AuditEventRecord> for AuditEventBody {
    fn from(e: AuditEventRecord) -> Self {
        Self {
            id: e.id,
            at: timestamp(e.at),
            kind: e.kind,
            actor_id: e.actor_id,
            target_id: e.target_id,
            ip: e.ip,
            user_agent: e.user_agent,
            detail: e.detail,
        }
    }
}

/// Unix seconds of an RFC 3339 date-time.
fn unix_seconds(value: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(value.trim())
        .ok()
        .map(|at| at.timestamp())
}

/// Reads the filters and the page from the query string; every bad one is named in the 422.
pub(super) fn audit_query(query: Option<&str>) -> Result<AuditQuery, Error> {
    let mut out = AuditQuery {
        limit: DEFAULT_LIMIT,
        ..AuditQuery::default()
    };
    let mut errors = Fields::parse_optional(b"")?;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        let name = key.as_ref();
        match name {
            "kind" => match AuditKind::parse(&value) {
                Some(kind) => out.kind = Some(kind.as_str().to_owned()),
                None => errors.reject("kind", Rule::OneOf(&AuditKind::NAMES)),
            },
            "actor_id" | "target_id" => match Uuid::parse_str(value.trim()) {
                Ok(id) if name == "actor_id" => out.actor_id = Some(id),
                Ok(id) => out.target_id = Some(id),
                Err(_) => errors.reject(name, Rule::Uuid),
            },
            "since" | "until" => match unix_seconds(&value) {
                Some(at) if name == "since" => out.since = Some(at),
                Some(at) => out.until = Some(at),
                None => errors.reject(name, Rule::DateTime),
            },
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => out.limit = n,
                _ => errors.reject("limit", Rule::Between(1, i64::from(MAX_LIMIT))),
            },
            "offset" => match value.parse::<u64>() {
                Ok(n) => out.offset = n,
                _ => errors.reject("offset", Rule::Between(0, i64::MAX)),
            },
            _ => {}
        }
    }
    errors.finish()?;
    Ok(out)
}

/// `GET /audit`.
pub(super) async fn list_audit(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    let query = audit_query(call.request.query.as_deref())?;
    let (events, total) = admin.audit(query).await?;
    let items = events.into_iter().map(AuditEventBody::from).collect();
    Ok(Response::json(200, &AuditPage { items, total }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_queries() {
        let plain = audit_query(None).unwrap();
        assert_eq!((plain.limit, plain.offset, plain.kind), (50, 0, None));
        let id = Uuid::new_v4();
        let q = audit_query(Some(&format!(
            "kind=login.failed&target_id={id}&since=2023-11-14T22:13:20Z\
             &until=2023-11-15T00:13:20%2B02:00&limit=10&offset=5"
        )))
        .unwrap();
        assert_eq!(q.kind.as_deref(), Some("login.failed"));
        assert_eq!(q.target_id, Some(id));
        assert_eq!(
            (q.since, q.until),
            (Some(1_700_000_000), Some(1_700_000_000))
        );
        assert_eq!((q.limit, q.offset), (10, 5));
        for bad in [
            "kind=login",
            "actor_id=nope",
            "target_id=",
            "since=yesterday",
            "until=1700000000",
            "limit=0",
            "limit=101",
            "offset=-1",
        ] {
            assert!(
                matches!(audit_query(Some(bad)), Err(Error::Validation(_))),
                "{bad}"
            );
        }
    }
}
