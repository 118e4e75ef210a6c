//! The audit log on the memory store with the fixed clock: each kind of event is recorded
//! with its actor, target, IP, user agent and time; nothing secret reaches a detail; the
//! purger deletes events past the retention.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

use super::email_flows::{take_mail, token_to};
use super::{PASSWORD, TERMS, World, client, config};
use crate::clock::Clock as _;
use crate::error::Error;
use crate::principal::Principal;
use crate::service::NewAccount;
use crate::store::{AuditEventRecord, AuditQuery, AuditStore, UserPatch};
use crate::testing::MemoryStore;

const DAY: i64 = 86_400;

/// Every event in the store, oldest first.
fn events(store: &MemoryStore) -> Vec<AuditEventRecord> {
    let (mut page, _) = store
        .list_audit(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .expect("list");
    page.reverse();
    page
}

/// The events of `kind`, oldest first.
fn of_kind(store: &MemoryStore, kind: &str) -> Vec<AuditEventRecord> {
    events(store)
        .into_iter()
        .filter(|e| e.kind == kind)
        .collect()
}

/// The one event of `kind`.
fn only(store: &MemoryStore, kind: &str) -> AuditEventRecord {
    let mut found = of_kind(store, kind);
    assert_eq!(found.len(), 1, "one {kind}: {found:?}");
    found.remove(0)
}

/// Checks the origin of `event`: `client(n)` of the tests at the clock's time.
fn assert_from(event: &AuditEventRecord, n: u8, world: &World) {
    assert_eq!(event.ip.as_deref(), Some(format!("10.0.0.{n}").as_str()));
    assert_eq!(event.user_agent.as_deref(), Some("tests"));
    assert_eq!(event.at, world.clock.now());
}

/// A world on a store the test reads.
fn world() -> (World, Arc<MemoryStore>) {
    let store = Arc::new(MemoryStore::new());
    (World::on(store.clone(), config()), store)
}

/// The principal of an access token.
async fn principal(world: &World, token: &str) -> Principal {
    world
        .auth
        .sessions()
        .authenticate(World::bearer(token).as_deref())
        .await
        .expect("authenticated")
}

#[tokio::test]
async fn logins_are_recorded_with_target_reason_and_origin() {
    let (world, store) = world();
    world.account("who@example.com", &[]).await;
    let sessions = world.auth.sessions();
    let wrong = sessions
        .login(
            "who@example.com",
            "not the password".to_owned(),
            client(3),
            TERMS,
        )
        .await;
    assert_eq!(wrong.err(), Some(Error::InvalidCredentials));
    // Events of one second are ordered by id: a second between them keeps them apart.
    world.clock.advance(1);
    let unknown = sessions
        .login("nobody@example.com", PASSWORD.to_owned(), client(3), TERMS)
        .await;
    assert_eq!(unknown.err(), Some(Error::InvalidCredentials));
    let grant = world.login("who@example.com").await;
    let failed = of_kind(&store, "login.failed");
    assert_eq!(failed.len(), 2);
    assert_eq!(
        failed[0].target_id,
        Some(grant.user.id),
        "the address has an account"
    );
    assert_eq!(failed[0].actor_id, None);
    assert_eq!(
        failed[0].detail,
        Some(json!({"reason": "invalid_credentials"}))
    );
    assert_eq!(failed[1].target_id, None, "an unknown address names nobody");
    assert_from(&failed[1], 3, &world);
    assert_eq!(failed[0].at, world.clock.now() - 1);
    let ok = only(&store, "login.succeeded");
    assert_eq!(
        (ok.actor_id, ok.target_id),
        (Some(grant.user.id), Some(grant.user.id))
    );
    assert_from(&ok, 1, &world);

    // An inactive account with the right password.
    world
        .auth
        .operator()
        .set_active_by_email("who@example.com", false)
        .await
        .expect("deactivated");
    world.clock.advance(1);
    let inactive = sessions
        .login("who@example.com", PASSWORD.to_owned(), client(4), TERMS)
        .await;
    assert_eq!(inactive.err(), Some(Error::AccountInactive));
    let last = of_kind(&store, "login.failed").pop().expect("recorded");
    assert_eq!(last.detail, Some(json!({"reason": "account_inactive"})));
    assert_eq!(last.target_id, Some(grant.user.id));

    // A long user agent is cut to 512 characters.
    world.clock.advance(1);
    let long = "é".repeat(600);
    let from_long = crate::service::Client {
        user_agent: Some(&long),
        ..client(4)
    };
    let _ = sessions
        .login("nobody@example.com", PASSWORD.to_owned(), from_long, TERMS)
        .await;
    let last = of_kind(&store, "login.failed").pop().expect("recorded");
    assert_eq!(last.user_agent, Some("é".repeat(512)));
}

#[tokio::test]
async fn a_rate_limit_refusal_is_recorded_with_its_bucket() {
    let (world, store) = world();
    world.account("limited@example.com", &[]).await;
    let sessions = world.auth.sessions();
    let mut refused = false;
    for _ in 0..20 {
        let outcome = sessions
            .login(
                "limited@example.com",
                "wrong password".to_owned(),
                client(5),
                TERMS,
            )
            .await;
        if matches!(outcome, Err(Error::RateLimited(_))) {
            refused = true;
            break;
        }
    }
    assert!(refused, "the login limit trips");
    let tripped = only(&store, "rate_limit.tripped");
    assert_eq!(tripped.detail, Some(json!({"bucket": "login"})));
    assert_eq!((tripped.actor_id, tripped.target_id), (None, None));
    assert_from(&tripped, 5, &world);
}

#[tokio::test]
async fn password_tokens_and_sessions_are_recorded_for_their_user() {
    let (world, store) = world();
    world.account("me@example.com", &[]).await;
    let first = world.login("me@example.com").await;
    let second = world.login("me@example.com").await;
    let me = principal(&world, &first.tokens.access_token).await;
    let id = me.user.id;
    let tokens = world.auth.personal_tokens();
    let issued = tokens
        .create_for(
            &me,
            PASSWORD.to_owned(),
            &crate::service::SecondFactor::default(),
            client(6),
            "ci".to_owned(),
            None,
        )
        .await
        .expect("token");
    let created = only(&store, "token.created");
    assert_eq!((created.actor_id, created.target_id), (Some(id), Some(id)));
    assert_eq!(created.detail, Some(json!({"token_id": issued.record.id})));
    assert_from(&created, 6, &world);
    tokens
        .revoke(&me, issued.record.id, client(6))
        .await
        .expect("revoked");
    assert_eq!(only(&store, "token.revoked").target_id, Some(id));

    let other = second.tokens.session_id().expect("a session");
    world
        .auth
        .sessions()
        .revoke(&me, other, client(7))
        .await
        .expect("revoked");
    let revoked = only(&store, "session.revoked");
    assert_eq!((revoked.actor_id, revoked.target_id), (Some(id), Some(id)));
    assert_from(&revoked, 7, &world);

    world
        .auth
        .accounts()
        .change_password(
            &me,
            PASSWORD.to_owned(),
            "a whole new secret".to_owned(),
            &crate::service::SecondFactor::default(),
            client(8),
        )
        .await
        .expect("changed");
    let changed = only(&store, "password.changed");
    assert_eq!((changed.actor_id, changed.target_id), (Some(id), Some(id)));
    assert_from(&changed, 8, &world);
    let others = only(&store, "sessions.revoked_all");
    assert_eq!((others.actor_id, others.target_id), (Some(id), Some(id)));
    assert_eq!(
        others.detail,
        Some(json!({"via": "password.changed", "kept_current": true}))
    );
    assert_from(&others, 8, &world);

    world.clock.advance(1);
    world
        .auth
        .sessions()
        .logout(&me, client(9))
        .await
        .expect("logged out");
    let logout = of_kind(&store, "session.revoked").pop().expect("recorded");
    assert_eq!(logout.detail, Some(json!({"via": "logout"})));
    assert_from(&logout, 9, &world);
    assert_nothing_secret(&store, &[PASSWORD, "a whole new secret", &issued.secret]);
}

#[tokio::test]
async fn a_password_reset_is_recorded_for_its_account() {
    let (world, store) = world();
    world.account("reset@example.com", &[]).await;
    let flows = world.auth.email_flows();
    flows
        .forgot_password("reset@example.com", client(2))
        .await
        .expect("202");
    let token = token_to(&take_mail(&store), "reset@example.com");
    flows
        .reset_password(&token, "another fine password".to_owned(), client(2))
        .await
        .expect("reset");
    let reset = only(&store, "password.reset");
    assert!(reset.target_id.is_some());
    let revoked = only(&store, "sessions.revoked_all");
    assert_eq!(revoked.target_id, reset.target_id);
    assert_eq!(revoked.detail, Some(json!({"via": "password.reset"})));
    assert_eq!(reset.actor_id, None);
    assert_from(&reset, 2, &world);
    assert_nothing_secret(&store, &["another fine password", &token]);
}

#[tokio::test]
async fn admin_actions_are_recorded_with_the_admin_as_actor() {
    let (world, store) = world();
    world.account("root@example.com", &["admin"]).await;
    let grant = world.login("root@example.com").await;
    let root = principal(&world, &grant.tokens.access_token).await;
    let admin = world
        .auth
        .admin(&root)
        .expect("admin")
        .with_client(client(7));
    let user = admin
        .create_user(NewAccount {
            email: "managed@example.com".to_owned(),
            password: "managed password".to_owned(),
            is_active: true,
            ..NewAccount::default()
        })
        .await
        .expect("created");
    let patch = UserPatch {
        full_name: Some(Some("Managed".to_owned())),
        roles: Some(vec!["support".to_owned()]),
        ..UserPatch::default()
    };
    admin.update_user(user.id, patch).await.expect("updated");
    admin.revoke_credentials(user.id).await.expect("revoked");
    let organization = admin
        .create_organization("Acme".to_owned())
        .await
        .expect("organization");
    world.clock.advance(1);
    admin.delete_user(user.id).await.expect("deleted");
    assert_eq!(
        admin.delete_user(Uuid::new_v4()).await,
        Err(Error::NotFound)
    );
    for kind in [
        "admin.user_created",
        "admin.user_updated",
        "admin.sessions_revoked",
        "admin.user_deleted",
    ] {
        // The operator's own creation of the admin account is recorded too (no actor).
        let mut found: Vec<_> = of_kind(&store, kind)
            .into_iter()
            .filter(|e| e.actor_id.is_some())
            .collect();
        assert_eq!(found.len(), 1, "{kind}");
        let event = found.remove(0);
        assert_eq!(
            (event.actor_id, event.target_id),
            (Some(root.user.id), Some(user.id))
        );
        assert_eq!(event.ip.as_deref(), Some("10.0.0.7"));
        assert_eq!(event.user_agent.as_deref(), Some("tests"));
    }
    assert_eq!(
        only(&store, "admin.user_updated").detail,
        Some(json!({"fields": ["full_name", "roles"]}))
    );
    let org = only(&store, "admin.organization_created");
    assert_eq!(org.actor_id, Some(root.user.id));
    assert_eq!(
        org.detail,
        Some(json!({"organization_id": organization.id}))
    );
    // The admin reads them back, newest first, filtered.
    let (page, total) = admin
        .audit(AuditQuery {
            target_id: Some(user.id),
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .expect("listed");
    assert_eq!(total, 4);
    assert_eq!(page[0].kind, "admin.user_deleted");
    assert_nothing_secret(&store, &["managed password", PASSWORD]);
}

#[tokio::test]
async fn the_purger_deletes_events_past_the_retention() {
    let store = Arc::new(MemoryStore::new());
    let config = crate::config::Config {
        audit_retention: Duration::from_secs(10 * 86_400),
        ..config()
    };
    let world = World::on(store.clone(), config);
    world.account("old@example.com", &[]).await;
    world.login("old@example.com").await;
    world.clock.advance(9 * DAY);
    world.login("old@example.com").await;
    assert_eq!(world.auth.purge().await.expect("purge").audit_events, 0);
    world.clock.advance(DAY + 1);
    // The account's creation and the first login.
    assert_eq!(world.auth.purge().await.expect("purge").audit_events, 2);
    let left = events(&store);
    assert_eq!(left.len(), 1, "the newer login stays");
    assert_eq!(left[0].at, world.clock.now() - DAY - 1);

    // Zero keeps them forever.
    let store = Arc::new(MemoryStore::new());
    let config = crate::config::Config {
        audit_retention: Duration::ZERO,
        ..super::config()
    };
    let world = World::on(store.clone(), config);
    world.account("kept@example.com", &[]).await;
    world.login("kept@example.com").await;
    world.clock.advance(10_000 * DAY);
    assert_eq!(world.auth.purge().await.expect("purge").audit_events, 0);
    assert_eq!(events(&store).len(), 2);
}

#[tokio::test]
async fn a_failed_audit_write_never_fails_the_request() {
    let (world, store) = world();
    world.account("quiet@example.com", &["admin"]).await;
    store.fail_audit_appends();
    let grant = world.login("quiet@example.com").await;
    let me = principal(&world, &grant.tokens.access_token).await;
    let wrong = world
        .auth
        .sessions()
        .login(
            "quiet@example.com",
            "not it at all".to_owned(),
            client(2),
            TERMS,
        )
        .await;
    assert_eq!(
        wrong.err(),
        Some(Error::InvalidCredentials),
        "the login's own answer"
    );
    world
        .auth
        .accounts()
        .change_password(
            &me,
            PASSWORD.to_owned(),
            "still a good secret".to_owned(),
            &crate::service::SecondFactor::default(),
            client(2),
        )
        .await
        .expect("changed all the same");
    world
        .auth
        .admin(&me)
        .expect("admin")
        .create_organization("Quiet".to_owned())
        .await
        .expect("created all the same");
    assert_eq!(
        events(&store).len(),
        1,
        "only the account's creation, before the failure"
    );
}

/// No event's detail (nor any other field) contains any of `secrets`, a password hash or a
/// token prefix.
fn assert_nothing_secret(store: &MemoryStore, secrets: &[&str]) {
    for event in events(store) {
        let text = format!("{event:?}");
        for secret in secrets {
            assert!(!text.contains(secret), "{text} contains a secret");
        }
        assert!(!text.contains("$argon2"), "{text} contains a hash");
    }
}
