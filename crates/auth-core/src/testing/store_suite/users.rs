//! Cases of [`UserStore`](crate::store::UserStore) and
//! [`OrganizationStore`](crate::store::OrganizationStore): creating, finding, listing and
//! deleting users, roles, organizations.

use uuid::Uuid;

use super::support::{
    T0, THREADS, make_session, new_user, organization, personal_token, race, random_hash, rotation,
    seen, session_of, strings,
};
use crate::store::{OrganizationRecord, Store, StoreError, UserQuery, UserRecord};

/// A created user reads back the same by id and by email key: roles sorted and
/// distinct, created on first use and reused after; an unknown organization is `Other`.
pub fn user_roundtrip(store: &dyn Store) {
    let t = T0;
    let input = new_user("Alice@Example.com", &["writer", "admin", "writer"], t);
    let created = store.create_user(&input).expect("create");
    assert_eq!(created.id, input.id);
    assert_eq!(created.email, "Alice@Example.com");
    assert_eq!(created.password_hash, input.password_hash);
    assert_eq!(created.full_name.as_deref(), Some("Test User"));
    assert_eq!(created.phone, None);
    assert!(created.is_active);
    assert_eq!(created.roles, vec!["admin".to_owned(), "writer".to_owned()]);
    assert_eq!(created.organization_id, None);
    assert_eq!(created.attributes, serde_json::json!({}));
    assert_eq!((created.created_at, created.updated_at), (t, t));

    let by_id = store.find_user(input.id).expect("find").expect("exists");
    assert_eq!(by_id, created);
    let by_email = store
        .find_user_by_email("alice@example.com")
        .expect("find by email")
        .expect("exists");
    assert_eq!(by_email, created);
    assert!(store.find_user(Uuid::new_v4()).expect("find").is_none());
    assert!(
        store
            .find_user_by_email("nobody@example.com")
            .expect("find")
            .is_none()
    );

    // Existing roles are reused; a user may have none.
    let bob = store
        .create_user(&new_user("bob@example.com", &["admin"], t))
        .expect("bob");
    assert_eq!(bob.roles, vec!["admin".to_owned()]);
    let carol = store
        .create_user(&new_user("carol@example.com", &[], t))
        .expect("carol");
    assert!(carol.roles.is_empty());

    // An unknown organization is refused (foreign key), and it is not a conflict.
    let mut orphan = new_user("dave@example.com", &[], t);
    orphan.organization_id = Some(Uuid::new_v4());
    match store.create_user(&orphan) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }
    assert!(store.find_user(orphan.id).expect("find").is_none());
}

/// A taken `email_key` is a `Conflict` (the key is the lower-cased email), and nothing of
/// the refused user is written.
pub fn email_conflict_is_case_insensitive(store: &dyn Store) {
    store
        .create_user(&new_user("Erin@Example.com", &["a"], T0))
        .expect("first");
    let second = new_user("erin@EXAMPLE.com", &["b"], T0);
    match store.create_user(&second) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    // Nothing of the refused user was written.
    assert!(store.find_user(second.id).expect("find").is_none());
    let first = store
        .find_user_by_email("erin@example.com")
        .expect("find")
        .expect("exists");
    assert_eq!(first.email, "Erin@Example.com");
    assert_eq!(first.roles, vec!["a".to_owned()]);
}

/// Users racing for one email key: exactly one is created, every other gets `Conflict`.
pub fn concurrent_create_user_has_one_winner(store: &dyn Store) {
    let results: Vec<Result<UserRecord, StoreError>> = race(THREADS, |i| {
        let email = if i % 2 == 0 {
            "race@example.com"
        } else {
            "RACE@example.com"
        };
        store.create_user(&new_user(email, &["racer", &format!("r{i}")], T0))
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(StoreError::Conflict)))
        .count();
    assert_eq!((ok, conflicts), (1, THREADS - 1), "{results:?}");
    let winner = store
        .find_user_by_email("race@example.com")
        .expect("find")
        .expect("exists");
    assert_eq!(winner.roles.len(), 2);
}

/// `list_users` orders by creation time then id, pages with limit and offset, counts every
/// match, and filters by the exact normalized email.
pub fn list_users_pages_and_counts(store: &dyn Store) {
    let t = T0;
    assert_eq!(
        store
            .list_users(&UserQuery {
                email_key: None,
                limit: 10,
                offset: 0,
            })
            .expect("empty"),
        (Vec::new(), 0)
    );

    // Created out of order; two share a creation time (ordered by id then).
    let mut created = Vec::new();
    for (i, at) in [(0, t + 30), (1, t + 10), (2, t + 20), (3, t + 20), (4, t)] {
        let roles: &[&str] = if i % 2 == 0 {
            &["even", "all"]
        } else {
            &["all"]
        };
        created.push(
            store
                .create_user(&new_user(&format!("User{i}@Example.com"), roles, at))
                .expect("create"),
        );
    }
    let mut expected = created.clone();
    expected.sort_by_key(|u| (u.created_at, u.id));

    let page = |email_key: Option<&str>, limit: u32, offset: u64| {
        store
            .list_users(&UserQuery {
                email_key: email_key.map(str::to_owned),
                limit,
                offset,
            })
            .expect("list")
    };

    let (all, total) = page(None, 100, 0);
    assert_eq!(total, 5);
    assert_eq!(all, expected, "records equal find_user's, roles included");
    for user in &all {
        assert_eq!(store.find_user(user.id).expect("find").as_ref(), Some(user));
    }

    let mut walked = Vec::new();
    for offset in [0, 2, 4] {
        let (users, total) = page(None, 2, offset);
        assert_eq!(total, 5, "total counts every match, not the page");
        assert_eq!(users.len(), if offset == 4 { 1 } else { 2 });
        walked.extend(users);
    }
    assert_eq!(walked, expected);
    assert_eq!(page(None, 2, 5), (Vec::new(), 5));
    assert_eq!(page(None, 2, u64::MAX), (Vec::new(), 5));
    assert_eq!(page(None, 0, 0), (Vec::new(), 5));

    // The email filter matches the normalized key exactly.
    let target = &created[2];
    assert_eq!(
        page(Some("user2@example.com"), 10, 0),
        (vec![target.clone()], 1)
    );
    assert_eq!(page(Some("user2@example.com"), 10, 1), (Vec::new(), 1));
    assert_eq!(page(Some("user2@example.com"), 0, 0), (Vec::new(), 1));
    assert_eq!(page(Some("User2@Example.com"), 10, 0), (Vec::new(), 0));
    assert_eq!(page(Some("user2"), 10, 0), (Vec::new(), 0));
    assert_eq!(page(Some("nobody@example.com"), 10, 0), (Vec::new(), 0));
}

/// Deleting a user deletes their sessions, refresh tokens, personal tokens and role
/// assignments, and nothing of anyone else; the organization and the roles stay.
pub fn delete_user_cascades(store: &dyn Store) {
    let t = T0;
    let org = organization("Keeps", t);
    store.create_organization(&org).expect("org");
    let mut input = new_user("doomed@example.com", &["shared", "own"], t);
    input.organization_id = Some(org.id);
    let user = store.create_user(&input).expect("create");
    let bystander = store
        .create_user(&new_user("survivor@example.com", &["shared"], t))
        .expect("bystander");
    let (s1, h1) = make_session(store, user.id, t);
    assert!(
        store
            .rotate_refresh_token(&rotation(s1.id, 0, h1, random_hash(), "jti-2", t + 1))
            .expect("rotate")
    );
    let (s2, _) = make_session(store, user.id, t + 2);
    let pat = personal_token(user.id, "ci", t);
    store.create_personal_token(&pat).expect("pat");
    let (bs, _) = make_session(store, bystander.id, t);
    let bpat = personal_token(bystander.id, "ci", t);
    store.create_personal_token(&bpat).expect("pat");

    assert!(store.delete_user(user.id, None).expect("delete"));
    assert!(store.find_user(user.id).expect("find").is_none());
    assert!(
        store
            .find_user_by_email("doomed@example.com")
            .expect("find")
            .is_none()
    );
    assert!(session_of(store, s1.id, t + 2).is_none());
    assert!(session_of(store, s2.id, t + 2).is_none());
    assert!(store.list_sessions(user.id, t).expect("list").is_empty());
    for session in [s1.id, s2.id] {
        assert!(store.find_refresh_token(session).expect("find").is_none());
    }
    assert!(
        store
            .personal_token_with_user(&pat.hash, seen(t))
            .expect("lookup")
            .is_none()
    );
    assert!(
        store
            .list_personal_tokens(user.id)
            .expect("list")
            .is_empty()
    );
    assert!(store.user_roles(user.id).expect("roles").is_empty());
    assert!(!store.delete_user(user.id, None).expect("again"));
    assert!(!store.delete_user(Uuid::new_v4(), None).expect("unknown"));

    // The organization, the roles and other users' things stay.
    assert_eq!(store.find_organization(org.id).expect("org"), Some(org));
    assert_eq!(
        store.find_user(bystander.id).expect("find"),
        Some(bystander.clone())
    );
    assert!(session_of(store, bs.id, t).is_some());
    assert!(store.find_refresh_token(bs.id).expect("find").is_some());
    assert!(
        store
            .personal_token_with_user(&bpat.hash, seen(t))
            .expect("lookup")
            .is_some()
    );
    // The email is free again; the old roles are reused.
    let again = store
        .create_user(&new_user("Doomed@example.com", &["own"], t + 3))
        .expect("recreate");
    assert_eq!(again.roles, strings(&["own"]));
    assert_eq!(
        store
            .list_users(&UserQuery {
                email_key: None,
                limit: 10,
                offset: 0,
            })
            .expect("list")
            .1,
        2
    );
}

/// Organizations read back by id and list oldest first (ties by id); a taken id is a
/// `Conflict`; users can belong to one.
pub fn organizations(store: &dyn Store) {
    let t = T0;
    assert!(store.list_organizations().expect("empty").is_empty());
    let late = organization("Late", t + 10);
    let early = organization("Early", t);
    let (tie_a, tie_b) = {
        let a = organization("Tie A", t + 5);
        let b = organization("Tie B", t + 5);
        if a.id < b.id { (a, b) } else { (b, a) }
    };
    for org in [&late, &tie_b, &early, &tie_a] {
        store.create_organization(org).expect("create");
    }
    assert_eq!(
        store.list_organizations().expect("list"),
        vec![early.clone(), tie_a, tie_b, late.clone()]
    );
    assert_eq!(
        store.find_organization(late.id).expect("find"),
        Some(late.clone())
    );
    assert!(
        store
            .find_organization(Uuid::new_v4())
            .expect("find")
            .is_none()
    );

    // The same id again is a conflict.
    let dup = OrganizationRecord {
        name: "Other name".to_owned(),
        ..early.clone()
    };
    match store.create_organization(&dup) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        store.find_organization(early.id).expect("find"),
        Some(early.clone())
    );

    // Users can belong to one.
    let mut input = new_user("member@example.com", &[], t);
    input.organization_id = Some(early.id);
    let member = store.create_user(&input).expect("member");
    assert_eq!(member.organization_id, Some(early.id));
    assert_eq!(store.list_organizations().expect("list").len(), 4);
}

/// `user_roles` lists role records sorted by name in byte order, one id per role name
/// shared by every user; empty for no roles or no such user.
pub fn user_roles_have_ids_and_descriptions(store: &dyn Store) {
    let t = T0;
    let user = store
        .create_user(&new_user(
            "r@example.com",
            &["zeta", "Alpha", "mid", "alpha"],
            t,
        ))
        .expect("create");
    assert_eq!(user.roles, strings(&["Alpha", "alpha", "mid", "zeta"]));
    let roles = store.user_roles(user.id).expect("roles");
    assert_eq!(
        roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["Alpha", "alpha", "mid", "zeta"],
        "sorted by name (byte order)"
    );
    assert!(roles.iter().all(|r| r.description.is_none()));
    let mut ids: Vec<Uuid> = roles.iter().map(|r| r.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 4);

    // The same role has the same id for every user.
    let other = store
        .create_user(&new_user("r2@example.com", &["mid"], t))
        .expect("other");
    let other_roles = store.user_roles(other.id).expect("roles");
    assert_eq!(other_roles, vec![roles[2].clone()]);

    // No roles, or no such user: empty.
    let none = store
        .create_user(&new_user("r3@example.com", &[], t))
        .expect("none");
    assert!(store.user_roles(none.id).expect("roles").is_empty());
    assert!(store.user_roles(Uuid::new_v4()).expect("roles").is_empty());
}
