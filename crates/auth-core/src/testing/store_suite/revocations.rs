//! Cases of what a [`Revocation`] carried by `update_user` deletes: exactly what it says,
//! in the same write (the store decides nothing on its own).

use uuid::Uuid;

use super::support::{T0, make_session, make_user, personal_token, seen, session_of, strings};
use crate::store::{Revocation, SessionRevocation, Store, UserPatch};

/// A patch setting a new password hash.
fn password(hash: &str) -> UserPatch {
    UserPatch {
        password_hash: Some(hash.to_owned()),
        ..UserPatch::default()
    }
}

/// Deactivating with [`Revocation::EVERYTHING`] deletes the user's sessions, refresh tokens
/// and personal tokens in the same write, and nobody else's; an unknown user is `None`.
pub fn deactivation_deletes_sessions_and_tokens(store: &dyn Store) {
    let user = make_user(store, "deact@example.com");
    let bystander = make_user(store, "stay@example.com");
    let t = T0;
    let (s1, _) = make_session(store, user.id, t);
    let (s2, _) = make_session(store, user.id, t);
    let (bs, _) = make_session(store, bystander.id, t);
    let pat = personal_token(user.id, "ci", t);
    store.create_personal_token(&pat).expect("pat");
    let bpat = personal_token(bystander.id, "ci", t);
    store.create_personal_token(&bpat).expect("pat");

    let deactivate = UserPatch {
        is_active: Some(false),
        ..UserPatch::default()
    };
    let updated = store
        .update_user(user.id, &deactivate, Revocation::EVERYTHING, t + 5, None)
        .expect("deactivate")
        .expect("exists");
    let found = store.find_user(user.id).expect("find").expect("exists");
    assert_eq!(found, updated);
    assert!(!found.is_active);
    assert_eq!(found.updated_at, t + 5);
    assert!(store.list_sessions(user.id, t).expect("list").is_empty());
    assert!(session_of(store, s1.id, t).is_none());
    assert!(store.find_refresh_token(s1.id).expect("find").is_none());
    assert!(store.find_refresh_token(s2.id).expect("find").is_none());
    assert!(
        store
            .list_personal_tokens(user.id)
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .personal_token_with_user(&pat.hash, seen(t))
            .expect("lookup")
            .is_none()
    );

    // Others are untouched.
    assert!(session_of(store, bs.id, t).is_some());
    assert!(store.find_refresh_token(bs.id).expect("find").is_some());
    assert_eq!(
        store
            .list_personal_tokens(bystander.id)
            .expect("list")
            .len(),
        1
    );

    // Reactivation only flips the flag; unknown users report None.
    let activate = UserPatch {
        is_active: Some(true),
        ..UserPatch::default()
    };
    store
        .update_user(user.id, &activate, Revocation::NOTHING, t + 6, None)
        .expect("activate")
        .expect("exists");
    assert!(
        store
            .find_user(user.id)
            .expect("find")
            .expect("exists")
            .is_active
    );
    assert_eq!(
        store
            .update_user(Uuid::new_v4(), &deactivate, Revocation::EVERYTHING, t, None)
            .expect("unknown"),
        None
    );
}

/// A password change revoking [`SessionRevocation::AllExcept`] the caller's session keeps
/// exactly that one (and its refresh token) and the personal tokens; `All` leaves none.
pub fn change_password_keeps_only_given_session(store: &dyn Store) {
    let user = make_user(store, "pw@example.com");
    let t = T0;
    let (s1, _) = make_session(store, user.id, t);
    let (s2, _) = make_session(store, user.id, t + 1);
    let (s3, _) = make_session(store, user.id, t + 2);
    let pat = personal_token(user.id, "keep me", t);
    store.create_personal_token(&pat).expect("pat");

    let keep_s2 = Revocation {
        sessions: SessionRevocation::AllExcept(s2.id),
        personal_tokens: false,
    };
    store
        .update_user(user.id, &password("$argon2id$new"), keep_s2, t + 10, None)
        .expect("change")
        .expect("exists");
    let found = store.find_user(user.id).expect("find").expect("exists");
    assert_eq!(found.password_hash, "$argon2id$new");
    assert_eq!(found.updated_at, t + 10);
    let ids: Vec<Uuid> = store
        .list_sessions(user.id, t)
        .expect("list")
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, vec![s2.id]);
    assert!(session_of(store, s1.id, t).is_none());
    assert!(session_of(store, s3.id, t).is_none());
    assert!(store.find_refresh_token(s2.id).expect("find").is_some());
    assert!(store.find_refresh_token(s3.id).expect("find").is_none());
    assert_eq!(store.list_personal_tokens(user.id).expect("list").len(), 1);

    let all_sessions = Revocation {
        sessions: SessionRevocation::All,
        personal_tokens: false,
    };
    store
        .update_user(
            user.id,
            &password("$argon2id$newer"),
            all_sessions,
            t + 20,
            None,
        )
        .expect("change again")
        .expect("exists");
    assert!(store.list_sessions(user.id, t).expect("list").is_empty());
    assert_eq!(store.list_personal_tokens(user.id).expect("list").len(), 1);
}

/// A patch with several fields and [`Revocation::EVERYTHING`] applies them all and revokes
/// every credential of the user; reactivating with [`Revocation::NOTHING`] flips the flag only.
pub fn update_user_deactivation_deletes_sessions_and_tokens(store: &dyn Store) {
    let user = make_user(store, "off@example.com");
    let bystander = make_user(store, "on@example.com");
    let t = T0;
    let (s1, _) = make_session(store, user.id, t);
    let (s2, _) = make_session(store, user.id, t);
    let (bs, _) = make_session(store, bystander.id, t);
    let pat = personal_token(user.id, "ci", t);
    store.create_personal_token(&pat).expect("pat");
    let bpat = personal_token(bystander.id, "ci", t);
    store.create_personal_token(&bpat).expect("pat");

    let patch = UserPatch {
        is_active: Some(false),
        full_name: Some(Some("Gone Dark".to_owned())),
        roles: Some(strings(&["suspended"])),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::EVERYTHING, t + 5, None)
        .expect("deactivate")
        .expect("exists");
    assert!(!u.is_active);
    assert_eq!(u.full_name.as_deref(), Some("Gone Dark"));
    assert_eq!(u.roles, strings(&["suspended"]));
    assert_eq!(u.updated_at, t + 5);

    assert!(store.list_sessions(user.id, t).expect("list").is_empty());
    assert!(session_of(store, s1.id, t).is_none());
    assert!(store.find_refresh_token(s1.id).expect("find").is_none());
    assert!(store.find_refresh_token(s2.id).expect("find").is_none());
    assert!(
        store
            .list_personal_tokens(user.id)
            .expect("list")
            .is_empty()
    );
    assert!(
        store
            .personal_token_with_user(&pat.hash, seen(t))
            .expect("lookup")
            .is_none()
    );

    // Others are untouched.
    assert!(session_of(store, bs.id, t).is_some());
    assert!(store.find_refresh_token(bs.id).expect("find").is_some());
    assert_eq!(
        store
            .list_personal_tokens(bystander.id)
            .expect("list")
            .len(),
        1
    );

    // Reactivating only flips the flag.
    let patch = UserPatch {
        is_active: Some(true),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &patch, Revocation::NOTHING, t + 6, None)
        .expect("activate")
        .expect("exists");
    assert!(u.is_active);
    assert_eq!(u.roles, strings(&["suspended"]));
}

/// A store deletes what the revocation says and nothing more: deactivating with
/// [`Revocation::NOTHING`] keeps every credential; personal tokens and sessions go separately;
/// `AllExcept` naming another user's session deletes all of this user's and none of theirs.
pub fn revocation_is_carried_out_as_given(store: &dyn Store) {
    let user = make_user(store, "given@example.com");
    let other = make_user(store, "other-given@example.com");
    let t = T0;
    let (s1, _) = make_session(store, user.id, t);
    let (os, _) = make_session(store, other.id, t);
    let pat = personal_token(user.id, "ci", t);
    store.create_personal_token(&pat).expect("pat");
    let live = |id| session_of(store, id, t).is_some();
    let has_pat = || {
        store
            .personal_token_with_user(&pat.hash, seen(t))
            .expect("lookup")
            .is_some()
    };

    let deactivate = UserPatch {
        is_active: Some(false),
        ..UserPatch::default()
    };
    let u = store
        .update_user(user.id, &deactivate, Revocation::NOTHING, t + 1, None)
        .expect("deactivate")
        .expect("exists");
    assert!(!u.is_active);
    assert!(
        live(s1.id) && has_pat(),
        "the core decides what goes, not the store"
    );
    assert!(store.find_refresh_token(s1.id).expect("find").is_some());

    let tokens_only = Revocation {
        sessions: SessionRevocation::None,
        personal_tokens: true,
    };
    store
        .update_user(user.id, &UserPatch::default(), tokens_only, t + 2, None)
        .expect("tokens")
        .expect("exists");
    assert!(live(s1.id) && !has_pat());

    let not_mine = Revocation {
        sessions: SessionRevocation::AllExcept(os.id),
        personal_tokens: false,
    };
    store
        .update_user(user.id, &UserPatch::default(), not_mine, t + 3, None)
        .expect("sessions")
        .expect("exists");
    assert!(!live(s1.id));
    assert!(store.find_refresh_token(s1.id).expect("find").is_none());
    assert!(live(os.id));
    assert!(store.find_refresh_token(os.id).expect("find").is_some());
    assert_eq!(
        store
            .find_user(user.id)
            .expect("find")
            .map(|u| u.updated_at),
        Some(t + 3)
    );
}
