//! `POST /login`.

use super::prelude::*;
use crate::native::pair_at;
use crate::shape::AUTH;

cases!("login" needs [Native]:
    returns_user_and_new_session,
    email_case_and_whitespace_ignored,
    wrong_password_same_as_unknown_email,
    empty_password_rejected,
    overlong_password_rejected,
    missing_fields_rejected,
);

async fn returns_user_and_new_session(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = ctx
        .login_raw(&json!({"email": account.email, "password": account.password}))
        .await?;
    resp.expect_shape(200, &AUTH)?;
    resp.expect_at("/user", &account.user)?;
    let pair = pair_at(&resp, "/token")?;
    if pair.access == account.pair.access || pair.refresh == account.pair.refresh {
        return Err(resp
            .fail("tokens of a new session, unlike those registration answered")
            .into());
    }
    ctx.expect_accepted(&pair.access, &account)
        .await
        .step("the login's access token")?;
    Ok(())
}

async fn email_case_and_whitespace_ignored(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = ctx
        .login_raw(&json!({
            "email": format!("  {}  ", account.email.to_uppercase()),
            "password": account.password,
        }))
        .await?;
    resp.expect_shape(200, &AUTH)?;
    resp.expect_at("/user/email", &json!(account.email))?;
    Ok(())
}

async fn wrong_password_same_as_unknown_email(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    ctx.expect_wrong_password_indistinguishable(&account)
        .await?;
    Ok(())
}

async fn empty_password_rejected(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    ctx.login_raw(&json!({"email": account.email, "password": ""}))
        .await?
        .expect_validation("password")?;
    Ok(())
}

async fn overlong_password_rejected(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    ctx.login_raw(&json!({"email": account.email, "password": "p".repeat(1025)}))
        .await?
        .expect_validation("password")?;
    Ok(())
}

async fn missing_fields_rejected(ctx: Ctx) -> CaseResult {
    ctx.login_raw(&json!({"email": unique_email()}))
        .await?
        .expect_validation("password")?;
    ctx.login_raw(&json!({"password": unique_password()}))
        .await?
        .expect_validation("email")?;
    Ok(())
}
