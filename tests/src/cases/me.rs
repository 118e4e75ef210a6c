//! `GET /me`.

use super::prelude::*;
use crate::shape::USER;

cases!("me" needs [Native]: returns_current_user, same_user_from_every_session);

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
