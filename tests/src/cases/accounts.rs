//! Account state through the target's hooks: deactivated users cannot log in or use old
//! credentials, and the state is never revealed to someone without the password.

use std::sync::Arc;

use super::prelude::*;
use crate::Hooks;

cases!("accounts" needs [Native]:
    inactive_right_password_forbidden,
    inactive_wrong_password_indistinguishable,
    deactivation_revokes_credentials,
    reactivation_allows_fresh_login,
);

/// The target's hooks, or a skip when it has none.
fn hooks(ctx: &Ctx) -> Result<Arc<dyn Hooks>, CaseError> {
    ctx.hooks().cloned().ok_or_else(|| {
        CaseError::Skipped("the target offers no hook to (de)activate users".to_owned())
    })
}

/// How long a change made out of band (by another process sharing the database, such as the
/// server's command line) may take to reach a running instance: servers may trust an
/// authenticated token for up to one second without asking the database again, and must
/// apply other instances' revocations within that second. Changes made through the instance
/// itself (the admin API) are checked without any wait, in the admin group.
const OUT_OF_BAND_PROPAGATION: std::time::Duration = std::time::Duration::from_millis(1_200);

/// Activates or deactivates `account` out of band, and waits for the change to propagate.
async fn set_active(hooks: &dyn Hooks, account: &Account, active: bool) -> Result<(), Failure> {
    hooks
        .set_active(&account.email, active)
        .await
        .map_err(|error| Failure::new(format!("the set_active({active}) hook succeeds"), error))?;
    tokio::time::sleep(OUT_OF_BAND_PROPAGATION).await;
    Ok(())
}

/// Registers a user and deactivates them.
async fn inactive_account(ctx: &Ctx, hooks: &dyn Hooks) -> Result<Account, Failure> {
    let account = ctx.register().await?;
    set_active(hooks, &account, false).await?;
    Ok(account)
}

async fn inactive_right_password_forbidden(ctx: Ctx) -> CaseResult {
    let hooks = hooks(&ctx)?;
    let account = inactive_account(&ctx, hooks.as_ref()).await?;
    ctx.login_raw(&json!({"email": account.email, "password": account.password}))
        .await?
        .expect_problem(403, "ACCOUNT_INACTIVE")?;
    Ok(())
}

async fn inactive_wrong_password_indistinguishable(ctx: Ctx) -> CaseResult {
    let hooks = hooks(&ctx)?;
    let account = inactive_account(&ctx, hooks.as_ref()).await?;
    ctx.expect_wrong_password_indistinguishable(&account)
        .await?;
    Ok(())
}

async fn deactivation_revokes_credentials(ctx: Ctx) -> CaseResult {
    let hooks = hooks(&ctx)?;
    let account = ctx.register().await?;
    let personal = ctx.create_token(&account, None).await?;
    set_active(hooks.as_ref(), &account, false).await?;
    ctx.expect_rejected(&account.pair.access)
        .await
        .step("a deactivated user's access token")?;
    ctx.expect_rejected(&personal.token)
        .await
        .step("a deactivated user's personal token")?;
    ctx.refresh_raw(&account.pair.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("a deactivated user's refresh token")?;
    Ok(())
}

async fn reactivation_allows_fresh_login(ctx: Ctx) -> CaseResult {
    let hooks = hooks(&ctx)?;
    let account = inactive_account(&ctx, hooks.as_ref()).await?;
    set_active(hooks.as_ref(), &account, true).await?;
    let pair = ctx.login(&account, None).await?;
    ctx.expect_accepted(&pair.access, &account)
        .await
        .step("the access token of a login after reactivation")?;
    ctx.expect_rejected(&account.pair.access)
        .await
        .step("a deactivated user's access token")?;
    Ok(())
}
