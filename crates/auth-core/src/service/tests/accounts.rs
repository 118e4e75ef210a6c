//! Cascades decided by the core: deactivation, password change; the admin capability.

use super::{ACCESS_TTL, PASSWORD, TERMS, World};
use crate::error::Error;
use crate::store::UserPatch;

#[tokio::test]
async fn deactivation_revokes_every_session_and_personal_token() {
    let world = World::new();
    world.account("gone@example.com", &[]).await;
    let grant = world.login("gone@example.com").await;
    let pat = world
        .auth
        .personal_tokens()
        .create(grant.user.id, "ci".to_owned(), None)
        .await
        .expect("created");
    world
        .auth
        .operator()
        .set_active_by_email("GONE@example.com", false)
        .await
        .expect("deactivated");
    assert!(!world.authenticates(&grant.tokens.access_token).await);
    assert!(!world.authenticates(&pat.secret).await);
    assert_eq!(
        world
            .auth
            .sessions()
            .refresh(&grant.tokens.refresh_token, super::client(1), ACCESS_TTL)
            .await,
        Err(Error::InvalidToken)
    );
    // Reactivation brings nothing back.
    world
        .auth
        .operator()
        .update_user(
            grant.user.id,
            UserPatch {
                is_active: Some(true),
                ..UserPatch::default()
            },
        )
        .await
        .expect("reactivated");
    assert!(!world.authenticates(&pat.secret).await);
}

#[tokio::test]
async fn a_password_change_keeps_only_the_callers_session_and_personal_tokens() {
    let world = World::new();
    world.account("pw@example.com", &[]).await;
    let other = world.login("pw@example.com").await;
    let mine = world.login("pw@example.com").await;
    let pat = world
        .auth
        .personal_tokens()
        .create(mine.user.id, "ci".to_owned(), None)
        .await
        .expect("created");
    let sessions = world.auth.sessions();
    let me = sessions
        .authenticate(World::bearer(&mine.tokens.access_token).as_deref())
        .await
        .expect("authenticated");
    let accounts = world.auth.accounts();
    assert_eq!(
        accounts
            .change_password(
                &me,
                "wrong password".to_owned(),
                "a new password".to_owned(),
                super::client(1),
            )
            .await,
        Err(Error::WrongCurrentPassword)
    );
    accounts
        .change_password(
            &me,
            PASSWORD.to_owned(),
            "a new password".to_owned(),
            super::client(1),
        )
        .await
        .expect("changed");
    assert!(world.authenticates(&mine.tokens.access_token).await);
    assert!(world.authenticates(&pat.secret).await);
    assert!(!world.authenticates(&other.tokens.access_token).await);
}

#[tokio::test]
async fn only_admins_get_the_admin_capability() {
    let world = World::new();
    world.account("user@example.com", &["user"]).await;
    world.account("root@example.com", &["admin"]).await;
    let sessions = world.auth.sessions();
    let user = world.login("user@example.com").await;
    let user = sessions
        .authenticate(World::bearer(&user.tokens.access_token).as_deref())
        .await
        .expect("authenticated");
    assert!(matches!(world.auth.admin(&user), Err(Error::Forbidden)));
    let root = world.login("root@example.com").await;
    let root = sessions
        .authenticate(World::bearer(&root.tokens.access_token).as_deref())
        .await
        .expect("authenticated");
    let (users, total) = world
        .auth
        .admin(&root)
        .expect("admin")
        .users(None, 10, 0)
        .await
        .expect("listed");
    assert_eq!((users.len(), total), (2, 2));
}

#[tokio::test]
async fn emails_are_taken_in_any_letter_case() {
    let world = World::new();
    world.account("case@example.com", &[]).await;
    let again = world
        .auth
        .accounts()
        .register(
            " CASE@example.com ".to_owned(),
            PASSWORD.to_owned(),
            None,
            super::client(2),
            TERMS,
        )
        .await;
    assert!(matches!(again, Err(Error::EmailTaken)));
}
