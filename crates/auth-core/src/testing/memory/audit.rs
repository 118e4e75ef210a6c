//! [`AuditStore`] of the [`MemoryStore`]: the audit log, kept in insertion order.

use super::MemoryStore;
use crate::store::{
    AuditEventRecord, AuditQuery, AuditStore, NewAuditEvent, StoreError, StoreResult,
};

impl MemoryStore {
    /// Makes every later [`AuditStore::append_audit`] fail as unavailable.
    #[cfg(test)]
    pub(crate) fn fail_audit_appends(&self) {
        self.audit_fails
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

impl AuditStore for MemoryStore {
    fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()> {
        #[cfg(test)]
        if self.audit_fails.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable("audit appends fail".to_owned()));
        }
        let mut state = self.lock()?;
        if state.audit.iter().any(|e| e.id == event.id) {
            return Err(StoreError::Conflict);
        }
        state.audit.push(event.clone());
        Ok(())
    }

    fn list_audit(&self, query: &AuditQuery) -> StoreResult<(Vec<AuditEventRecord>, u64)> {
        let state = self.lock()?;
        let mut matching: Vec<&AuditEventRecord> = state
            .audit
            .iter()
            .filter(|e| query.kind.as_ref().is_none_or(|k| &e.kind == k))
            .filter(|e| query.actor_id.is_none_or(|id| e.actor_id == Some(id)))
            .filter(|e| query.target_id.is_none_or(|id| e.target_id == Some(id)))
            .filter(|e| query.since.is_none_or(|since| e.at >= since))
            .filter(|e| query.until.is_none_or(|until| e.at <= until))
            .collect();
        // Newest first; ids break ties as the databases order their text form (hex text
        // sorts as the bytes do).
        matching.sort_unstable_by_key(|e| std::cmp::Reverse((e.at, e.id)));
        Ok(super::page(matching, query.offset, query.page_size()))
    }

    fn purge_audit(&self, older_than: i64) -> StoreResult<u64> {
        let mut state = self.lock()?;
        let before = state.audit.len();
        state.audit.retain(|e| e.at >= older_than);
        Ok(u64::try_from(before - state.audit.len()).unwrap_or(u64::MAX))
    }
}
