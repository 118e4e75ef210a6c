//! [`auth_core::store::AuditStore`] on Diesel: the `audit_events` table, appended, listed
//! newest first with filters, purged by age.

use auth_core::store::{AuditEventRecord, AuditQuery, AuditStore, NewAuditEvent};

use super::*;
use crate::schema::audit_events;

/// An `audit_events` row (`detail` as JSON text).
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
struct AuditRow {
    id: String,
    at: i64,
    kind: String,
    actor_id: Option<String>,
    target_id: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    detail: Option<String>,
}

impl AuditRow {
    fn from_event(e: &NewAuditEvent) -> Self {
        Self {
            id: id_text(e.id),
            at: e.at,
            kind: e.kind.clone(),
            actor_id: e.actor_id.map(id_text),
            target_id: e.target_id.map(id_text),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            detail: e.detail.as_ref().map(ToString::to_string),
        }
    }

    fn into_record(self) -> Result<AuditEventRecord, Fail> {
        let optional_id =
            |value: Option<String>, column: &str| value.map(|v| parse_id(&v, column)).transpose();
        let detail = match self.detail {
            None => None,
            Some(text) => Some(
                serde_json::from_str(&text)
                    .map_err(|_| Fail::other("invalid JSON in column audit_events.detail"))?,
            ),
        };
        Ok(AuditEventRecord {
            id: parse_id(&self.id, "audit_events.id")?,
            at: self.at,
            kind: self.kind,
            actor_id: optional_id(self.actor_id, "audit_events.actor_id")?,
            target_id: optional_id(self.target_id, "audit_events.target_id")?,
            ip: self.ip,
            user_agent: self.user_agent,
            detail,
        })
    }
}

/// `filtered!(boxed_query, query)`: the boxed query with every filter of an [`AuditQuery`]
/// that is set (written once for the count and the page).
macro_rules! filtered {
    ($boxed:expr, $query:expr, $actor:expr, $target:expr) => {{
        let mut boxed = $boxed;
        if let Some(kind) = $query.kind.as_deref() {
            boxed = boxed.filter(audit_events::kind.eq(kind));
        }
        if let Some(actor) = $actor {
            boxed = boxed.filter(audit_events::actor_id.eq(actor));
        }
        if let Some(target) = $target {
            boxed = boxed.filter(audit_events::target_id.eq(target));
        }
        if let Some(since) = $query.since {
            boxed = boxed.filter(audit_events::at.ge(since));
        }
        if let Some(until) = $query.until {
            boxed = boxed.filter(audit_events::at.le(until));
        }
        boxed
    }};
}

impl AuditStore for DieselStore {
    fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()> {
        let row = AuditRow::from_event(event);
        with_conn!(self, conn => {
            diesel::insert_into(audit_events::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn list_audit(&self, query: &AuditQuery) -> StoreResult<(Vec<AuditEventRecord>, u64)> {
        let limit = i64::from(query.page_size());
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        let actor = query.actor_id.map(id_text);
        let target = query.target_id.map(id_text);
        read_tx!(self, conn => {
            let count = filtered!(
                audit_events::table.count().into_boxed(),
                query,
                actor.as_deref(),
                target.as_deref()
            );
            let page = filtered!(
                audit_events::table
                    .select(AuditRow::as_select())
                    .order((audit_events::at.desc(), audit_events::id.desc()))
                    .limit(limit)
                    .offset(offset)
                    .into_boxed(),
                query,
                actor.as_deref(),
                target.as_deref()
            );
            let total = count.get_result::<i64>(conn)?;
            let rows = page.load::<AuditRow>(conn)?;
            let events = rows
                .into_iter()
                .map(AuditRow::into_record)
                .collect::<Result<Vec<_>, Fail>>()?;
            Ok((events, count_u64(total)))
        })
        .map_err(Fail::into_store)
    }

    fn purge_audit(&self, older_than: i64) -> StoreResult<u64> {
        with_conn!(self, conn => {
            let deleted =
                diesel::delete(audit_events::table.filter(audit_events::at.lt(older_than)))
                    .execute(conn)?;
            Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
        })
        .map_err(Fail::into_store)
    }
}
