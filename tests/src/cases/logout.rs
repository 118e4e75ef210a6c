//! `POST /logout`.

use super::prelude::*;

cases!("logout" needs [Native]: revokes_only_that_session, personal_token_revokes_only_itself);

async fn logout(ctx: &Ctx, bearer: &str) -> Result<Resp, Failure> {
    ctx.native(Method::POST, "/logout")
        .bearer(bearer)
        .send()
        .await
}

async fn revokes_only_that_session(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let other = ctx.login(&account, None).await?;
    logout(&ctx, &account.pair.access)
        .await?
        .expect_no_content()?;
    ctx.expect_rejected(&account.pair.access)
        .await
        .step("the logged-out access token")?;
    ctx.refresh_raw(&account.pair.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("the logged-out session's refresh token")?;
    logout(&ctx, &account.pair.access)
        .await?
        .expect_unauthorized(Challenge::InvalidToken)?;
    ctx.expect_accepted(&other.access, &account)
        .await
        .step("another session's access token")?;
    Ok(())
}

async fn personal_token_revokes_only_itself(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let personal = ctx.create_token(&account, None).await?;
    logout(&ctx, &personal.token).await?.expect_no_content()?;
    ctx.expect_rejected(&personal.token)
        .await
        .step("the logged-out personal token")?;
    ctx.expect_accepted(&account.pair.access, &account)
        .await
        .step("the session's access token")?;
    Ok(())
}
