//! `GET /me`.

use super::prelude::*;
use crate::shape::USER;

cases!("me" needs [Native]:
    returns_current_user,
    same_user_from_every_session,
    answers_with_tokens_or_users_are_not_cached,
);

async fn returns_current_user(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = ctx.me(&account.pair.access).await?;
    resp.expect_shape(200, &USER)?;
    resp.expect_at("", &account.user)?;
    Ok(())
}

async fn same_user_from_every_session(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let pair = ctx.login(&account, None).await?;
    let resp = ctx.me(&pair.access).await?;
    resp.expect_shape(200, &USER)?;
    resp.expect_at("", &account.user)?;
    Ok(())
}

/// Every `native` answer that carries a token or a user says `Cache-Control: no-store`
/// (issue 10, rule 11).
async fn answers_with_tokens_or_users_are_not_cached(ctx: Ctx) -> CaseResult {
    let (email, password) = (unique_email(), unique_password());
    let registered = ctx
        .register_raw(&json!({"email": email, "password": password}))
        .await?;
    registered.expect_no_store().step("POST /register")?;
    let login = ctx
        .login_raw(&json!({"email": email, "password": password}))
        .await?;
    login.expect_no_store().step("POST /login")?;
    let access = login.str_at("/token/access_token")?.to_owned();
    let refresh_token = login.str_at("/token/refresh_token")?.to_owned();
    ctx.me(&access).await?.expect_no_store().step("GET /me")?;
    let created = ctx
        .create_token_raw(
            &access,
            &json!({"name": "cache", "current_password": password}),
        )
        .await?;
    created.expect_no_store().step("POST /tokens")?;
    ctx.native(Method::GET, "/tokens")
        .bearer(&access)
        .send()
        .await?
        .expect_no_store()
        .step("GET /tokens")?;
    ctx.native(Method::POST, "/refresh")
        .json(&json!({"refresh_token": refresh_token}))
        .send()
        .await?
        .expect_no_store()
        .step("POST /refresh")?;
    Ok(())
}
