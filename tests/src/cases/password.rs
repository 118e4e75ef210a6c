//! `POST /password`.

use super::prelude::*;
use crate::native::{COMMON_PASSWORDS, INVALID_CREDENTIALS};

cases!("password" needs [Native]:
    wrong_current_password_forbidden,
    short_new_password_rejected,
    missing_fields_rejected,
    change_revokes_other_sessions,
    change_replaces_credentials,
    common_new_password_rejected,
);

/// `POST /password` with `bearer` and `body`.
async fn change_raw(ctx: &Ctx, bearer: &str, body: &Value) -> Result<Resp, Failure> {
    ctx.native(Method::POST, "/password")
        .bearer(bearer)
        .json(body)
        .send()
        .await
}

/// Changes `account`'s password through its registration session, expecting 204.
async fn change(ctx: &Ctx, account: &Account, new_password: &str) -> Result<(), Failure> {
    change_raw(
        ctx,
        &account.pair.access,
        &json!({"current_password": account.password, "new_password": new_password}),
    )
    .await?
    .expect_no_content()
}

async fn wrong_current_password_forbidden(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let body = json!({"current_password": unique_password(), "new_password": unique_password()});
    change_raw(&ctx, &account.pair.access, &body)
        .await?
        .expect_problem(403, INVALID_CREDENTIALS)?;
    ctx.login(&account, None).await?;
    Ok(())
}

async fn short_new_password_rejected(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let body = json!({"current_password": account.password, "new_password": "p".repeat(7)});
    change_raw(&ctx, &account.pair.access, &body)
        .await?
        .expect_validation("new_password")?;
    ctx.login(&account, None).await?;
    Ok(())
}

async fn missing_fields_rejected(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    change_raw(
        &ctx,
        &account.pair.access,
        &json!({"current_password": account.password}),
    )
    .await?
    .expect_validation("new_password")?;
    change_raw(
        &ctx,
        &account.pair.access,
        &json!({"new_password": unique_password()}),
    )
    .await?
    .expect_validation("current_password")?;
    Ok(())
}

async fn change_revokes_other_sessions(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let other = ctx.login(&account, None).await?;
    let personal = ctx.create_token(&account, None).await?;
    change(&ctx, &account, &unique_password()).await?;

    ctx.expect_accepted(&account.pair.access, &account)
        .await
        .step("the session that changed the password")?;
    ctx.expect_rejected(&other.access)
        .await
        .step("another session's access token")?;
    ctx.refresh_raw(&other.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("another session's refresh token")?;
    ctx.expect_accepted(&personal.token, &account)
        .await
        .step("a personal token")?;
    ctx.refresh(&account.pair.refresh).await?;
    Ok(())
}

async fn change_replaces_credentials(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let new_password = unique_password();
    change(&ctx, &account, &new_password).await?;
    ctx.expect_login_refused(&account.email, &account.password)
        .await?;
    let changed = Account {
        password: new_password,
        ..account
    };
    ctx.login(&changed, None).await?;
    Ok(())
}

/// Issue 10, rule 10: a default server refuses a common new password, and the old one
/// keeps working.
async fn common_new_password_rejected(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    for password in COMMON_PASSWORDS {
        let body = json!({"current_password": account.password, "new_password": password});
        change_raw(&ctx, &account.pair.access, &body)
            .await?
            .expect_validation("new_password")
            .step(&format!("changing to {password:?}"))?;
    }
    ctx.login(&account, None)
        .await
        .step("the old password after the refusals")?;
    Ok(())
}
