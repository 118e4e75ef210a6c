//! Cases of [`AuditStore`](crate::store::AuditStore): the audit log, appended, read newest
//! first with filters and pages, purged by age.

use serde_json::json;
use uuid::Uuid;

use super::support::{T0, make_user};
use crate::store::{AuditQuery, NewAuditEvent, Store, StoreError};

/// An event of `kind` at `at`.
fn event(kind: &str, at: i64, actor: Option<Uuid>, target: Option<Uuid>) -> NewAuditEvent {
    NewAuditEvent {
        id: Uuid::new_v4(),
        at,
        kind: kind.to_owned(),
        actor_id: actor,
        target_id: target,
        ip: Some("203.0.113.7".to_owned()),
        user_agent: Some("suite/1.0".to_owned()),
        detail: Some(json!({"reason": "invalid_credentials", "fields": ["roles"]})),
    }
}

/// The ids of a page.
fn ids(page: &[NewAuditEvent]) -> Vec<Uuid> {
    page.iter().map(|e| e.id).collect()
}

/// An event round-trips field by field (detail as JSON, absent fields as `None`); a taken id
/// is a `Conflict`; the list is newest first with the total; an empty log lists nothing.
pub fn audit_events_round_trip_newest_first(store: &dyn Store) {
    let (page, total) = store.list_audit(&AuditQuery::default()).expect("list");
    assert!(page.is_empty());
    assert_eq!(total, 0);
    let user = make_user(store, "audited@example.com");
    let first = event("login.failed", T0, None, Some(user.id));
    let bare = NewAuditEvent {
        ip: None,
        user_agent: None,
        detail: None,
        ..event("login.succeeded", T0 + 5, Some(user.id), Some(user.id))
    };
    store.append_audit(&first).expect("append");
    store.append_audit(&bare).expect("append");
    assert!(matches!(
        store.append_audit(&first),
        Err(StoreError::Conflict)
    ));
    let (page, total) = store.list_audit(&AuditQuery::default()).expect("list");
    assert_eq!(total, 2);
    assert_eq!(
        page,
        vec![bare.clone(), first.clone()],
        "newest first, exact"
    );
    // Events outlive the user they name.
    assert!(store.delete_user(user.id, None).expect("delete"));
    let (page, _) = store.list_audit(&AuditQuery::default()).expect("list");
    assert_eq!(ids(&page), vec![bare.id, first.id]);
}

/// Each filter applies (kind, actor, target, inclusive since/until), they combine, and pages
/// of `limit` from `offset` cut one ordering with the total of every match.
pub fn audit_events_are_filtered_and_paged(store: &dyn Store) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let events: Vec<NewAuditEvent> = (0..10)
        .map(|i| {
            let kind = if i % 2 == 0 {
                "login.failed"
            } else {
                "token.created"
            };
            let actor = if i < 5 { Some(a) } else { Some(b) };
            event(kind, T0 + i, actor, if i % 3 == 0 { Some(b) } else { None })
        })
        .collect();
    for e in &events {
        store.append_audit(e).expect("append");
    }
    let newest: Vec<Uuid> = events.iter().rev().map(|e| e.id).collect();
    let list = |q: AuditQuery| store.list_audit(&q).expect("list");
    let (page, total) = list(AuditQuery {
        limit: 3,
        offset: 2,
        ..AuditQuery::default()
    });
    assert_eq!(total, 10);
    assert_eq!(ids(&page), newest[2..5].to_vec());
    let (page, total) = list(AuditQuery {
        offset: 9,
        ..AuditQuery::default()
    });
    assert_eq!((ids(&page), total), (vec![events[0].id], 10));
    let (page, total) = list(AuditQuery {
        offset: 100,
        ..AuditQuery::default()
    });
    assert!(page.is_empty());
    assert_eq!(total, 10);
    let (page, total) = list(AuditQuery {
        kind: Some("token.created".to_owned()),
        ..AuditQuery::default()
    });
    assert_eq!(total, 5);
    assert!(page.iter().all(|e| e.kind == "token.created"));
    let (page, total) = list(AuditQuery {
        actor_id: Some(b),
        kind: Some("login.failed".to_owned()),
        ..AuditQuery::default()
    });
    assert_eq!(total, 2, "events 6 and 8");
    assert_eq!(ids(&page), vec![events[8].id, events[6].id]);
    let (page, _) = list(AuditQuery {
        target_id: Some(b),
        ..AuditQuery::default()
    });
    assert_eq!(
        ids(&page),
        vec![events[9].id, events[6].id, events[3].id, events[0].id]
    );
    let (page, total) = list(AuditQuery {
        since: Some(T0 + 3),
        until: Some(T0 + 5),
        ..AuditQuery::default()
    });
    assert_eq!(total, 3);
    assert_eq!(ids(&page), vec![events[5].id, events[4].id, events[3].id]);
    let (_, total) = list(AuditQuery {
        kind: Some("nothing.like.this".to_owned()),
        ..AuditQuery::default()
    });
    assert_eq!(total, 0);
}

/// A purge deletes exactly the events older than its bound and says how many.
pub fn old_audit_events_are_purged(store: &dyn Store) {
    for i in 0..5 {
        store
            .append_audit(&event("login.failed", T0 + i, None, None))
            .expect("append");
    }
    assert_eq!(store.purge_audit(T0).expect("purge"), 0);
    assert_eq!(store.purge_audit(T0 + 3).expect("purge"), 3);
    let (page, total) = store.list_audit(&AuditQuery::default()).expect("list");
    assert_eq!(total, 2);
    assert!(page.iter().all(|e| e.at >= T0 + 3));
    assert_eq!(store.purge_audit(T0 + 3).expect("purge"), 0);
}
