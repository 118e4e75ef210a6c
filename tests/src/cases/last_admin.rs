//! Issue 10, rule 12: the last active admin stays. Whoever asks (the admin themselves
//! through the admin API, or the operator through the command line), a change that would
//! leave no active user with the role `admin` is refused with 409 `LAST_ADMIN`, also when
//! two admins demote each other at once.
//!
//! Every case here changes, or may change, who the target's admins are, which every admin
//! case relies on: they run alone. They expect the target's admin to be its only active
//! one (as on the workspace's matrix), and are Skipped on a target with others.

use super::admin::{admin, get, patch_user};
use super::prelude::*;
use crate::native::FULL_NAME;
use crate::shape::{AUTH, USER, USER_PAGE};

cases!("last_admin" needs [Native]:
    cannot_remove_themselves (alone),
    only_active_admins_count (alone),
    concurrent_mutual_demotion_keeps_an_admin (alone),
    operator_cannot_deactivate_the_last_admin (alone),
);

/// The problem code of the refusal.
const LAST_ADMIN: &str = "LAST_ADMIN";
/// The role that makes an admin.
const ADMIN_ROLE: &str = "admin";
/// Rounds of the concurrent mutual demotion.
const RACE_ROUNDS: usize = 3;
/// Largest page of `GET /users`.
const PAGE: usize = 100;

/// The target's admin: their token, id and user object.
struct Admin {
    token: String,
    id: String,
    user: Value,
}

/// Logs the target's admin in and checks they are its only active admin; Skipped when
/// there are others (a change to them could then succeed without breaking the rule).
async fn only_admin(ctx: &Ctx) -> Result<Admin, CaseError> {
    let token = ctx.admin_token().await?;
    let me = ctx.me(&token).await?;
    let user = me.expect_shape(200, &USER)?.clone();
    let id = me.str_at("/id")?.to_owned();
    let others: Vec<String> = active_admins(ctx, &token)
        .await?
        .into_iter()
        .filter(|admin| admin["id"] != json!(id))
        .map(|admin| admin["email"].as_str().unwrap_or_default().to_owned())
        .collect();
    if !others.is_empty() {
        return Err(CaseError::Skipped(format!(
            "the target has active admins besides the suite's: {}",
            others.join(", ")
        )));
    }
    Ok(Admin { token, id, user })
}

/// Every active user with the role `admin`, read page by page.
async fn active_admins(ctx: &Ctx, token: &str) -> Result<Vec<Value>, Failure> {
    let mut admins = Vec::new();
    for offset in (0..).step_by(PAGE) {
        let resp = get(ctx, token, &format!("/users?limit={PAGE}&offset={offset}")).await?;
        let page = resp.expect_shape(200, &USER_PAGE)?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let last = items.len() < PAGE;
        admins.extend(items.into_iter().filter(is_active_admin));
        if last {
            break;
        }
    }
    Ok(admins)
}

/// Whether a user object is an active admin.
fn is_active_admin(user: &Value) -> bool {
    user["is_active"] == true
        && user["roles"]
            .as_array()
            .is_some_and(|roles| roles.contains(&json!(ADMIN_ROLE)))
}

/// `DELETE /users/{id}` with `token`.
async fn delete_user(ctx: &Ctx, token: &str, id: &str) -> Result<Resp, Failure> {
    admin(ctx, Method::DELETE, &format!("/users/{id}"))
        .bearer(token)
        .send()
        .await
}

/// Creates a user with `roles` and `is_active`, logs them in when active, and returns their
/// id and (when active) access token.
async fn second_user(
    ctx: &Ctx,
    token: &str,
    roles: &[&str],
    active: bool,
) -> Result<(String, Option<String>), Failure> {
    let (email, password) = (unique_email(), unique_password());
    let body = json!({
        "email": email, "password": password, "full_name": FULL_NAME,
        "roles": roles, "is_active": active,
    });
    let resp = admin(ctx, Method::POST, "/users")
        .bearer(token)
        .json(&body)
        .send()
        .await?;
    resp.expect_shape(201, &USER)?;
    let id = resp.str_at("/id")?.to_owned();
    if !active {
        return Ok((id, None));
    }
    let login = ctx
        .login_raw(&json!({"email": email, "password": password}))
        .await?;
    login.expect_shape(200, &AUTH)?;
    Ok((id, Some(login.str_at("/token/access_token")?.to_owned())))
}

/// The admin is still an active admin, and their token still works on the admin API.
async fn still_admin(ctx: &Ctx, admin: &Admin) -> Result<(), Failure> {
    let resp = get(ctx, &admin.token, &format!("/users/{}", admin.id)).await?;
    resp.expect_shape(200, &USER)?;
    resp.expect_at("", &admin.user)
        .step("the admin read back, unchanged")
}

/// Each way the last admin could remove themselves is refused with 409 `LAST_ADMIN`, and
/// changes that keep them an active admin still go through.
async fn cannot_remove_themselves(ctx: Ctx) -> CaseResult {
    let me = only_admin(&ctx).await?;
    let refusals = [
        ("demoting themselves", json!({"roles": []})),
        ("swapping their roles", json!({"roles": ["conformance-a"]})),
        ("deactivating themselves", json!({"is_active": false})),
    ];
    for (what, body) in refusals {
        patch_user(&ctx, &me.token, &me.id, &body)
            .await?
            .expect_problem(409, LAST_ADMIN)
            .step(what)?;
    }
    delete_user(&ctx, &me.token, &me.id)
        .await?
        .expect_problem(409, LAST_ADMIN)
        .step("deleting themselves")?;
    still_admin(&ctx, &me).await?;
    let keeping = json!({"is_active": true, "roles": me.user["roles"]});
    patch_user(&ctx, &me.token, &me.id, &keeping)
        .await?
        .expect_shape(200, &USER)
        .step("a change that keeps them an active admin")?;
    Ok(())
}

/// An inactive admin does not count: with one, the last active admin still cannot demote
/// themselves. Another active admin does: the last one may demote that one, and delete an
/// inactive one.
async fn only_active_admins_count(ctx: Ctx) -> CaseResult {
    let me = only_admin(&ctx).await?;
    let (inactive, _) = second_user(&ctx, &me.token, &[ADMIN_ROLE], false).await?;
    patch_user(&ctx, &me.token, &me.id, &json!({"roles": []}))
        .await?
        .expect_problem(409, LAST_ADMIN)
        .step("demoting themselves beside an inactive admin")?;
    delete_user(&ctx, &me.token, &inactive)
        .await?
        .expect_no_content()
        .step("deleting the inactive admin")?;
    let (other, _) = second_user(&ctx, &me.token, &[ADMIN_ROLE], true).await?;
    patch_user(&ctx, &me.token, &other, &json!({"roles": []}))
        .await?
        .expect_shape(200, &USER)
        .step("demoting another active admin")?;
    delete_user(&ctx, &me.token, &other)
        .await?
        .expect_no_content()
        .step("deleting the demoted admin")?;
    still_admin(&ctx, &me).await?;
    Ok(())
}

/// Two admins demote each other at the same moment: exactly one demotion goes through; the
/// other is refused (409 `LAST_ADMIN`, or 403 when its caller was already demoted). Then
/// the suite's admin is restored and the other one removed. A few rounds.
async fn concurrent_mutual_demotion_keeps_an_admin(ctx: Ctx) -> CaseResult {
    let me = only_admin(&ctx).await?;
    for round in 1..=RACE_ROUNDS {
        mutual_demotion(&ctx, &me)
            .await
            .step(&format!("round {round}"))?;
    }
    still_admin(&ctx, &me).await?;
    Ok(())
}

/// One round of [`concurrent_mutual_demotion_keeps_an_admin`].
async fn mutual_demotion(ctx: &Ctx, me: &Admin) -> Result<(), Failure> {
    let (other, other_token) = second_user(ctx, &me.token, &[ADMIN_ROLE], true).await?;
    let other_token = other_token.unwrap_or_default();
    let demote = json!({"roles": []});
    let (mine, theirs) = tokio::join!(
        patch_user(ctx, &me.token, &other, &demote),
        patch_user(ctx, &other_token, &me.id, &demote),
    );
    let (mine, theirs) = (mine?, theirs?);
    let refused = |resp: &Resp| {
        resp.expect_problem(409, LAST_ADMIN).is_ok()
            || resp.expect_problem(403, "FORBIDDEN").is_ok()
    };
    match (mine.status, theirs.status) {
        (200, _) if refused(&theirs) => {}
        (_, 200) if refused(&mine) => {
            // The other admin won: they give the suite's admin their roles back.
            patch_user(
                ctx,
                &other_token,
                &me.id,
                &json!({"roles": me.user["roles"]}),
            )
            .await?
            .expect_shape(200, &USER)
            .step("the winner restores the suite's admin")?;
        }
        _ => {
            return Err(Failure::new(
                "exactly one of the two demotions succeeds, the other is 409 LAST_ADMIN \
                 (or 403 FORBIDDEN)",
                format!("{}; {}", mine.describe(), theirs.describe()),
            ));
        }
    }
    delete_user(ctx, &me.token, &other)
        .await?
        .expect_no_content()
        .step("removing the other admin")
}

/// The operator's `user deactivate` refuses to deactivate the last active admin, with a
/// message that says so.
async fn operator_cannot_deactivate_the_last_admin(ctx: Ctx) -> CaseResult {
    let hooks = ctx.require_hooks()?;
    let me = only_admin(&ctx).await?;
    let email = me.user["email"].as_str().unwrap_or_default();
    match hooks.set_active(email, false).await {
        Ok(()) => {
            return Err(Failure::new(
                "the set_active(false) hook refuses to deactivate the last active admin",
                "it succeeded",
            )
            .into());
        }
        Err(message) if !message.to_lowercase().contains("admin") => {
            return Err(Failure::new(
                "a refusal that says the user is the last active admin",
                message,
            )
            .into());
        }
        Err(_) => {}
    }
    still_admin(&ctx, &me).await?;
    Ok(())
}
