//! Cases of a user's address as the email flows change it: the verification time
//! ([`UserRecord::email_verified_at`]) and a new address ([`UserPatch::email`]).

use super::support::{T0, make_session, make_user, personal_token, seen, session_of};
use crate::store::{NewEmail, Revocation, Store, StoreError, UserPatch, UserQuery, UserRecord};

/// A patch setting the verification time.
fn verified(at: Option<i64>) -> UserPatch {
    UserPatch {
        email_verified_at: Some(at),
        ..UserPatch::default()
    }
}

/// A patch setting a new address (normalized by lower-casing).
fn new_address(email: &str) -> UserPatch {
    UserPatch {
        email: Some(NewEmail {
            email: email.to_owned(),
            email_key: email.to_lowercase(),
        }),
        ..UserPatch::default()
    }
}

/// The users listed under `email_key`.
fn listed(store: &dyn Store, email_key: &str) -> Vec<UserRecord> {
    let query = UserQuery {
        email_key: Some(email_key.to_owned()),
        limit: 10,
        offset: 0,
    };
    store.list_users(&query).expect("list").0
}

/// A new user has no verification time; a patch sets it (and every lookup carries it:
/// by id, by email, in a list, with a session or a personal token), `None` leaves it, and
/// `Some(None)` clears it.
pub fn email_verified_at_round_trips(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "Verify@Example.com");
    assert_eq!(user.email_verified_at, None);
    let (session, _) = make_session(store, user.id, t);
    let pat = personal_token(user.id, "ci", t);
    store.create_personal_token(&pat).expect("pat");

    let u = store
        .update_user(
            user.id,
            &verified(Some(t + 5)),
            Revocation::NOTHING,
            t + 6,
            None,
        )
        .expect("verify")
        .expect("exists");
    assert_eq!((u.email_verified_at, u.updated_at), (Some(t + 5), t + 6));
    assert_eq!(
        u,
        UserRecord {
            email_verified_at: Some(t + 5),
            updated_at: t + 6,
            ..user.clone()
        }
    );
    assert_eq!(store.find_user(user.id).expect("find"), Some(u.clone()));
    let by_email = store
        .find_user_by_email("verify@example.com")
        .expect("find");
    assert_eq!(by_email, Some(u.clone()));
    assert_eq!(listed(store, "verify@example.com"), vec![u.clone()]);
    let (_, with_session) = store
        .session_with_user(session.id, seen(t))
        .expect("session")
        .expect("live");
    assert_eq!(with_session, u);
    let (_, with_token) = store
        .personal_token_with_user(&pat.hash, seen(t))
        .expect("lookup")
        .expect("exists");
    assert_eq!(with_token, u);

    // None leaves it; Some(None) clears it.
    let name = UserPatch {
        full_name: Some(Some("Named".to_owned())),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &name, Revocation::NOTHING, t + 7, None)
        .expect("name")
        .expect("exists");
    assert_eq!(u.email_verified_at, Some(t + 5));
    let u = store
        .update_user(user.id, &verified(None), Revocation::NOTHING, t + 8, None)
        .expect("clear")
        .expect("exists");
    assert_eq!(u.email_verified_at, None);
    assert_eq!(u.full_name.as_deref(), Some("Named"));
    assert_eq!(store.find_user(user.id).expect("find"), Some(u));
}

/// A patch's new address replaces the email and its key: the user is found under the new
/// key, no longer under the old one, which is free for another user. A change of case only
/// (the same key) is no conflict. The address and its verification time change together.
pub fn update_user_changes_the_email(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "old.address@example.com");
    let (session, _) = make_session(store, user.id, t);
    let patch = UserPatch {
        email_verified_at: Some(Some(t + 1)),
        ..new_address("New.Address@Example.com")
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 1, None)
        .expect("change")
        .expect("exists");
    assert_eq!(
        u,
        UserRecord {
            email: "New.Address@Example.com".to_owned(),
            email_verified_at: Some(t + 1),
            updated_at: t + 1,
            ..user.clone()
        }
    );
    let by_new = store
        .find_user_by_email("new.address@example.com")
        .expect("find");
    assert_eq!(by_new, Some(u.clone()));
    assert_eq!(listed(store, "new.address@example.com"), vec![u.clone()]);
    let by_old = store
        .find_user_by_email("old.address@example.com")
        .expect("find");
    assert_eq!(by_old, None);
    assert!(listed(store, "old.address@example.com").is_empty());
    assert_eq!(store.find_user(user.id).expect("find"), Some(u.clone()));
    assert!(
        session_of(store, session.id, t).is_some(),
        "nothing revoked"
    );

    // The same key in another case is the user's own: no conflict.
    let u = store
        .update_user(
            user.id,
            &new_address("new.address@example.com"),
            Revocation::NOTHING,
            t + 2,
            None,
        )
        .expect("case only")
        .expect("exists");
    assert_eq!(u.email, "new.address@example.com");
    assert_eq!(u.email_verified_at, Some(t + 1), "left alone");

    // The old address is free again.
    let other = make_user(store, "old.address@example.com");
    assert_ne!(other.id, user.id);
}

/// A new address whose key another user has is a `Conflict`, and nothing of the patch is
/// written (neither the address nor the other fields, nor the revocation); the other user
/// is untouched. An unknown user is `None`.
pub fn a_taken_email_is_a_conflict_and_writes_nothing(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "mine@example.com");
    let owner = make_user(store, "Taken@Example.com");
    let (session, _) = make_session(store, user.id, t);
    let patch = UserPatch {
        full_name: Some(Some("Never".to_owned())),
        roles: Some(vec!["never".to_owned()]),
        email_verified_at: Some(Some(t + 1)),
        ..new_address("TAKEN@example.com")
    };
    match store.update_user(user.id, &patch, Revocation::EVERYTHING, t + 1, None) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.find_user(user.id).expect("find"), Some(user.clone()));
    assert_eq!(
        store.find_user_by_email("mine@example.com").expect("find"),
        Some(user.clone())
    );
    assert_eq!(
        store.find_user_by_email("taken@example.com").expect("find"),
        Some(owner.clone())
    );
    assert!(
        session_of(store, session.id, t).is_some(),
        "nothing revoked"
    );
    assert!(
        store
            .user_roles(user.id)
            .expect("roles")
            .iter()
            .all(|r| r.name != "never")
    );

    // An unknown user is None, whatever the address.
    let ghost = store
        .update_user(
            uuid::Uuid::new_v4(),
            &new_address("taken@example.com"),
            Revocation::NOTHING,
            t,
            None,
        )
        .expect("unknown");
    assert_eq!(ghost, None);
    assert_eq!(store.find_user(owner.id).expect("find"), Some(owner));
}
