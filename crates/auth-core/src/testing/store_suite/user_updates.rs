//! Cases of [`UserStore::update_user`](crate::store::UserStore::update_user) that change a
//! user without revoking anything: patches, roles, password hashes.

use uuid::Uuid;

use super::support::{T0, make_session, make_user, new_user, organization, session_of, strings};
use crate::store::{Revocation, Store, StoreError, UserPatch, UserRecord};

/// `update_user` changes exactly the fields a patch names (`Some(None)` clears a nullable
/// one) and sets `updated_at`; an unknown organization is `Other` and rolls the whole patch
/// back; attributes must be an object; an unknown user is `None` with nothing written.
pub fn update_user_patches_each_field(store: &dyn Store) {
    let t = T0;
    let org = organization("Acme", t);
    store.create_organization(&org).expect("org");
    let user = store
        .create_user(&new_user("patch@example.com", &["user"], t))
        .expect("create");
    let bystander = make_user(store, "untouched@example.com");

    // An empty patch only moves updated_at.
    let same = store
        .update_user(
            user.id,
            &UserPatch::default(),
            Revocation::NOTHING,
            t + 1,
            None,
        )
        .expect("empty patch")
        .expect("exists");
    assert_eq!(
        same,
        UserRecord {
            updated_at: t + 1,
            ..user.clone()
        }
    );

    let patch = UserPatch {
        full_name: Some(Some("Patched Name".to_owned())),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 2, None)
        .expect("name")
        .expect("exists");
    assert_eq!(u.full_name.as_deref(), Some("Patched Name"));
    assert_eq!(u.updated_at, t + 2);

    let patch = UserPatch {
        phone: Some(Some("+1 555 0100".to_owned())),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 3, None)
        .expect("phone")
        .expect("exists");
    assert_eq!(u.phone.as_deref(), Some("+1 555 0100"));
    assert_eq!(u.full_name.as_deref(), Some("Patched Name"), "left alone");

    let patch = UserPatch {
        organization_id: Some(Some(org.id)),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 4, None)
        .expect("org")
        .expect("exists");
    assert_eq!(u.organization_id, Some(org.id));

    let attributes = serde_json::json!({"team": "blue", "level": 3, "tags": ["a", "b"]});
    let patch = UserPatch {
        attributes: Some(attributes.clone()),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 5, None)
        .expect("attrs")
        .expect("exists");
    assert_eq!(u.attributes, attributes);
    let patch = UserPatch {
        attributes: Some(serde_json::json!({"team": "red"})),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 6, None)
        .expect("attrs")
        .expect("exists");
    assert_eq!(
        u.attributes,
        serde_json::json!({"team": "red"}),
        "replaced, not merged"
    );

    // An active user's sessions survive `is_active: Some(true)`.
    let (session, _) = make_session(store, user.id, t);
    let patch = UserPatch {
        is_active: Some(true),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 7, None)
        .expect("active")
        .expect("exists");
    assert!(u.is_active);
    assert!(session_of(store, session.id, t).is_some());

    // Some(None) clears the nullable fields.
    let patch = UserPatch {
        full_name: Some(None),
        phone: Some(None),
        organization_id: Some(None),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 8, None)
        .expect("clear")
        .expect("exists");
    assert_eq!(
        (&u.full_name, &u.phone, u.organization_id),
        (&None, &None, None)
    );
    assert_eq!(u.attributes, serde_json::json!({"team": "red"}));
    assert_eq!(u.roles, strings(&["user"]));
    assert_eq!(
        (u.email.as_str(), u.created_at, u.updated_at),
        ("patch@example.com", t, t + 8)
    );
    assert_eq!(u.password_hash, user.password_hash);
    assert_eq!(store.find_user(user.id).expect("find"), Some(u.clone()));

    // Everything at once.
    let patch = UserPatch {
        password_hash: Some("$argon2id$all".to_owned()),
        full_name: Some(Some("All".to_owned())),
        phone: Some(Some("1".to_owned())),
        is_active: Some(true),
        roles: Some(strings(&["ops"])),
        organization_id: Some(Some(org.id)),
        attributes: Some(serde_json::json!({"x": null})),
        ..UserPatch::default()
    };
    let all = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 9, None)
        .expect("all")
        .expect("exists");
    assert_eq!(all.password_hash, "$argon2id$all");
    assert_eq!(all.full_name.as_deref(), Some("All"));
    assert_eq!(all.phone.as_deref(), Some("1"));
    assert_eq!(all.roles, strings(&["ops"]));
    assert_eq!(all.organization_id, Some(org.id));
    assert_eq!(all.attributes, serde_json::json!({"x": null}));
    assert_eq!(all.updated_at, t + 9);

    // An unknown organization is Other, and the whole patch is rolled back.
    let patch = UserPatch {
        full_name: Some(Some("Never".to_owned())),
        roles: Some(strings(&["never"])),
        organization_id: Some(Some(Uuid::new_v4())),
        ..UserPatch::default()
    };
    match store.update_user(user.id, &patch, Revocation::NOTHING, t + 10, None) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }
    assert_eq!(store.find_user(user.id).expect("find"), Some(all));

    // Attributes must be an object.
    let patch = UserPatch {
        attributes: Some(serde_json::json!([1, 2])),
        ..UserPatch::default()
    };
    assert!(matches!(
        store.update_user(user.id, &patch, Revocation::NOTHING, t + 11, None),
        Err(StoreError::Other(_))
    ));

    // Unknown user: None, nothing written (nor revoked).
    let patch = UserPatch {
        full_name: Some(Some("Ghost".to_owned())),
        roles: Some(strings(&["ghost-role"])),
        is_active: Some(false),
        ..UserPatch::default()
    };
    let ghost = Uuid::new_v4();
    assert_eq!(
        store
            .update_user(ghost, &patch, Revocation::EVERYTHING, t, None)
            .expect("unknown"),
        None
    );
    assert!(store.find_user(ghost).expect("find").is_none());
    assert_eq!(
        store.find_user(bystander.id).expect("find"),
        Some(bystander)
    );
}

/// A patch's roles replace the user's set: unknown names are created, existing ones reused,
/// duplicates collapse; `None` leaves the roles, an empty set clears them.
pub fn update_user_replaces_roles(store: &dyn Store) {
    let t = T0;
    let user = store
        .create_user(&new_user("roles@example.com", &["user", "viewer"], t))
        .expect("create");
    let other = store
        .create_user(&new_user("shares@example.com", &["admin", "viewer"], t))
        .expect("other");
    let admin_id = store.user_roles(other.id).expect("roles")[0].id;

    // Replaces the set: unknown names are created, duplicates collapse, dropped ones go.
    let patch = UserPatch {
        roles: Some(strings(&["editor", "admin", "editor", "viewer"])),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 1, None)
        .expect("roles")
        .expect("exists");
    assert_eq!(u.roles, strings(&["admin", "editor", "viewer"]));
    assert_eq!(u.updated_at, t + 1);
    let roles = store.user_roles(user.id).expect("roles");
    assert_eq!(
        roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["admin", "editor", "viewer"]
    );
    // The existing role is reused, not duplicated.
    assert_eq!(roles[0].id, admin_id);
    assert_eq!(store.find_user(user.id).expect("find").expect("exists"), u);

    // The other user's roles are untouched.
    assert_eq!(
        store
            .find_user(other.id)
            .expect("find")
            .expect("exists")
            .roles,
        strings(&["admin", "viewer"])
    );

    // A role created by update_user can be reused by create_user.
    let later = store
        .create_user(&new_user("later@example.com", &["editor"], t))
        .expect("later");
    assert_eq!(
        store.user_roles(later.id).expect("roles")[0].id,
        roles[1].id
    );

    // None leaves the roles; an empty set clears them.
    let patch = UserPatch {
        full_name: Some(None),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 2, None)
        .expect("name")
        .expect("exists");
    assert_eq!(u.roles, strings(&["admin", "editor", "viewer"]));
    let patch = UserPatch {
        roles: Some(Vec::new()),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 3, None)
        .expect("clear")
        .expect("exists");
    assert!(u.roles.is_empty());
    assert!(store.user_roles(user.id).expect("roles").is_empty());
    assert_eq!(
        store
            .find_user(other.id)
            .expect("find")
            .expect("exists")
            .roles,
        strings(&["admin", "viewer"])
    );
}

/// A password-hash patch with [`Revocation::NOTHING`] (a rehash on login) changes the hash
/// and keeps every session and refresh token.
pub fn update_password_hash_keeps_sessions(store: &dyn Store) {
    let user = make_user(store, "upgrade@example.com");
    let t = T0;
    let (s1, _) = make_session(store, user.id, t);
    let patch = UserPatch {
        password_hash: Some("$argon2id$upgraded".to_owned()),
        ..UserPatch::default()
    };
    let updated = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 3, None)
        .expect("update hash")
        .expect("exists");
    let found = store.find_user(user.id).expect("find").expect("exists");
    assert_eq!(found, updated);
    assert_eq!(found.password_hash, "$argon2id$upgraded");
    assert_eq!(found.updated_at, t + 3);
    assert!(session_of(store, s1.id, t).is_some());
    assert!(store.find_refresh_token(s1.id).expect("find").is_some());
    // An unknown user is not an error.
    assert_eq!(
        store
            .update_user(Uuid::new_v4(), &patch, Revocation::NOTHING, t, None)
            .expect("unknown user"),
        None
    );
}
