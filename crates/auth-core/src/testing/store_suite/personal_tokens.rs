//! Cases of [`PersonalTokenStore`](crate::store::PersonalTokenStore), and of what both
//! credential lookups return about their user.

use uuid::Uuid;

use super::support::{
    T0, make_session, make_user, new_user, personal_token, random_hash, seen, strings,
};
use crate::store::{Store, StoreError, Use};

/// Personal tokens read back by hash with their user (touched as [`Use`] says, expiry left to
/// the caller), list oldest first, are unique by hash, need an existing user, and are
/// deleted only by their owner.
pub fn personal_tokens(store: &dyn Store) {
    let user = make_user(store, "pat@example.com");
    let other = make_user(store, "notme@example.com");
    let t = T0;
    let first = personal_token(user.id, "first", t);
    let mut second = personal_token(user.id, "second", t + 1);
    second.expires_at = None;
    let created = store.create_personal_token(&first).expect("create");
    assert_eq!(created.id, first.id);
    assert_eq!(created.name, "first");
    assert_eq!(created.expires_at, Some(t + 86_400));
    assert_eq!(created.last_used_at, None);
    store.create_personal_token(&second).expect("create");

    // A second token with the same hash is a conflict.
    let mut dup = personal_token(user.id, "dup", t);
    dup.hash = first.hash;
    match store.create_personal_token(&dup) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }

    // A token of an unknown user is refused, and it is not a conflict.
    match store.create_personal_token(&personal_token(Uuid::new_v4(), "orphan", t)) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }

    let listed = store.list_personal_tokens(user.id).expect("list");
    assert_eq!(
        listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        vec!["first", "second"]
    );
    assert_eq!(listed[1].expires_at, None);
    assert!(
        store
            .list_personal_tokens(other.id)
            .expect("list")
            .is_empty()
    );

    // Lookup joins the user and records use at most once a minute.
    let (token, owner) = store
        .personal_token_with_user(&first.hash, seen(t + 5))
        .expect("lookup")
        .expect("found");
    assert_eq!(owner, user);
    assert_eq!(token.id, first.id);
    assert_eq!(token.last_used_at, Some(t + 5));
    let again = store
        .personal_token_with_user(&first.hash, seen(t + 30))
        .expect("lookup")
        .expect("found");
    assert_eq!(again.0.last_used_at, Some(t + 5));
    let later = store
        .personal_token_with_user(&first.hash, seen(t + 70))
        .expect("lookup")
        .expect("found");
    assert_eq!(later.0.last_used_at, Some(t + 70));
    assert_eq!(
        store.list_personal_tokens(user.id).expect("list")[0].last_used_at,
        Some(t + 70)
    );
    // Exactly: a `last_used_at` equal to `touch_before` stays.
    let exact = Use {
        now: t + 200,
        touch_before: t + 70,
    };
    let (kept, _) = store
        .personal_token_with_user(&first.hash, exact)
        .expect("lookup")
        .expect("found");
    assert_eq!(kept.last_used_at, Some(t + 70));
    assert!(
        store
            .personal_token_with_user(&random_hash(), seen(t))
            .expect("lookup")
            .is_none()
    );

    // Deleting: only the owner's.
    assert!(
        !store
            .delete_personal_token(other.id, first.id)
            .expect("delete")
    );
    assert!(
        store
            .delete_personal_token(user.id, first.id)
            .expect("delete")
    );
    assert!(
        !store
            .delete_personal_token(user.id, first.id)
            .expect("again")
    );
    assert!(
        store
            .personal_token_with_user(&first.hash, seen(t))
            .expect("lookup")
            .is_none()
    );
    assert_eq!(store.list_personal_tokens(user.id).expect("list").len(), 1);
}

/// Session and personal-token lookups carry the user's roles (sorted), also none.
pub fn credential_lookups_carry_the_users_roles(store: &dyn Store) {
    let t = T0;
    let many = store
        .create_user(&new_user(
            "many@example.com",
            &["writer", "admin", "viewer"],
            t,
        ))
        .expect("create");
    let none = store
        .create_user(&new_user("none@example.com", &[], t))
        .expect("create");
    let other = store
        .create_user(&new_user("other@example.com", &["auditor"], t))
        .expect("create");
    for user in [&many, &none, &other] {
        let (session, _) = make_session(store, user.id, t);
        let pat = personal_token(user.id, "roles", t);
        store.create_personal_token(&pat).expect("pat");
        let (found_session, by_session) = store
            .session_with_user(session.id, seen(t))
            .expect("lookup")
            .expect("live session");
        assert_eq!(found_session.id, session.id);
        let (found_token, by_token) = store
            .personal_token_with_user(&pat.hash, seen(t))
            .expect("lookup")
            .expect("live token");
        assert_eq!(found_token.id, pat.id);
        for found in [by_session, by_token] {
            assert_eq!(found.id, user.id);
            assert_eq!(found.roles, user.roles, "roles of {}", user.email);
        }
    }
    assert_eq!(many.roles, strings(&["admin", "viewer", "writer"]));
    assert!(none.roles.is_empty());
}
