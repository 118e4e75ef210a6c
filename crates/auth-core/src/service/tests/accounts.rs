//! Cascades decided by the core: deactivation, password change, credential revocation;
//! the admin capability and the last admin; the common-password policy.

use super::{ACCESS_TTL, PASSWORD, TERMS, World};
use crate::config::Config;
use crate::error::{Error, Input, Rule};
use crate::service::NewAccount;
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
                &crate::service::SecondFactor::default(),
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
            &crate::service::SecondFactor::default(),
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

/// The refusal of a common password for `input`.
fn too_common(input: Input) -> Error {
    Error::Invalid(input, Rule::NotCommon)
}

#[tokio::test]
async fn common_passwords_are_refused_by_default_wherever_one_is_set() {
    let world = World::new();
    assert!(world.auth.config().refuse_common_passwords);
    let registered = world
        .auth
        .accounts()
        .register(
            "new@example.com".to_owned(),
            "Password123".to_owned(),
            None,
            super::client(3),
            TERMS,
        )
        .await;
    assert_eq!(registered.err(), Some(too_common(Input::Password)));
    let created = world
        .auth
        .operator()
        .create_user(NewAccount {
            email: "made@example.com".to_owned(),
            password: "qwertyuiop".to_owned(),
            is_active: true,
            ..NewAccount::default()
        })
        .await;
    assert_eq!(created.err(), Some(too_common(Input::Password)));
    world.account("changer@example.com", &[]).await;
    let grant = world.login("changer@example.com").await;
    let me = world
        .auth
        .sessions()
        .authenticate(World::bearer(&grant.tokens.access_token).as_deref())
        .await
        .expect("authenticated");
    let changed = world
        .auth
        .accounts()
        .change_password(
            &me,
            PASSWORD.to_owned(),
            "sunshine".to_owned(),
            &crate::service::SecondFactor::default(),
            super::client(1),
        )
        .await;
    assert_eq!(changed, Err(too_common(Input::NewPassword)));
}

#[tokio::test]
async fn common_passwords_are_accepted_only_when_turned_off() {
    let world = World::with(Config {
        refuse_common_passwords: false,
        ..super::config()
    });
    world
        .auth
        .operator()
        .create_user(NewAccount {
            email: "weak@example.com".to_owned(),
            password: "password123".to_owned(),
            is_active: true,
            ..NewAccount::default()
        })
        .await
        .expect("created with the policy off");
}

#[tokio::test]
async fn the_last_active_admin_stays_whoever_asks() {
    let world = World::new();
    world.account("root@example.com", &["admin"]).await;
    let root = world.login("root@example.com").await;
    let operator = world.auth.operator();
    let id = root.user.id;
    let refusals = [
        operator
            .set_active_by_email("root@example.com", false)
            .await
            .err(),
        operator.update_user(id, roles(&[])).await.err(),
        operator.delete_user(id).await.err(),
    ];
    assert!(
        refusals.iter().all(|r| r == &Some(Error::LastAdmin)),
        "{refusals:?}"
    );
    assert!(world.authenticates(&root.tokens.access_token).await);
    // With a second active admin, either may go.
    world.account("deputy@example.com", &["admin"]).await;
    operator
        .update_user(id, roles(&["user"]))
        .await
        .expect("demoted beside a deputy");
}

#[tokio::test]
async fn revoking_credentials_keeps_the_account() {
    let world = World::new();
    world.account("kept@example.com", &[]).await;
    let first = world.login("kept@example.com").await;
    let pat = world
        .auth
        .personal_tokens()
        .create(first.user.id, "ci".to_owned(), None)
        .await
        .expect("created");
    // Cached now: the revocation must evict it.
    assert!(world.authenticates(&pat.secret).await);
    let operator = world.auth.operator();
    operator
        .revoke_credentials(first.user.id)
        .await
        .expect("revoked");
    assert!(!world.authenticates(&first.tokens.access_token).await);
    assert!(!world.authenticates(&pat.secret).await);
    let refreshed = world
        .auth
        .sessions()
        .refresh(&first.tokens.refresh_token, super::client(1), ACCESS_TTL)
        .await;
    assert_eq!(refreshed.err(), Some(Error::InvalidToken));
    let again = world.login("kept@example.com").await;
    assert!(world.authenticates(&again.tokens.access_token).await);
    assert_eq!(
        operator.revoke_credentials(uuid::Uuid::new_v4()).await,
        Err(Error::NotFound)
    );
}

/// A patch setting the roles.
fn roles(names: &[&str]) -> UserPatch {
    UserPatch {
        roles: Some(names.iter().map(|n| (*n).to_owned()).collect()),
        ..UserPatch::default()
    }
}
