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
    imported_bcrypt_hash_verifies_exactly,
    operator_refuses_common_password needs [],
);

/// The longest password bcrypt tells apart: it ignores every byte after the 72nd.
const BCRYPT_MAX_BYTES: usize = 72;
/// The cheapest bcrypt cost, enough for a hash to import.
const BCRYPT_COST: u32 = 4;

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

/// A fresh password of exactly [`BCRYPT_MAX_BYTES`] bytes.
fn password_of_72_bytes() -> String {
    let mut password = unique_password();
    while password.len() < BCRYPT_MAX_BYTES {
        password.push_str(&Uuid::new_v4().simple().to_string());
    }
    password.truncate(BCRYPT_MAX_BYTES);
    password
}

/// A bcrypt hash of `password`, as another system would have stored it.
fn bcrypt_hash(password: &str) -> Result<String, Failure> {
    bcrypt::hash(password, BCRYPT_COST)
        .map_err(|error| Failure::new("a bcrypt hash to import", error.to_string()))
}

/// Issue 10, rule 9: an imported bcrypt hash matches its password and nothing else, though
/// bcrypt itself ignores what follows the 72nd byte; the upgrade to argon2id at the first
/// login stores the password that was verified, so the longer one stays refused.
async fn imported_bcrypt_hash_verifies_exactly(ctx: Ctx) -> CaseResult {
    let (email, password) = (unique_email(), password_of_72_bytes());
    let longer = format!("{password}-and-more");
    ctx.import_user(&email, &bcrypt_hash(&password)?).await?;
    ctx.expect_login_refused(&email, &longer)
        .await
        .step("the 72-byte password with more bytes after it")?;
    for attempt in ["first", "second"] {
        let resp = ctx
            .login_raw(&json!({"email": email, "password": password}))
            .await?;
        resp.expect_shape(200, &crate::shape::AUTH)
            .step(&format!("the exact password, {attempt} login"))?;
        ctx.expect_login_refused(&email, &longer)
            .await
            .step(&format!("the longer password after the {attempt} login"))?;
    }
    Ok(())
}

/// Issue 10, rule 10: the operator's `user create` refuses common passwords too.
async fn operator_refuses_common_password(ctx: Ctx) -> CaseResult {
    let hooks = hooks(&ctx)?;
    for password in crate::native::COMMON_PASSWORDS {
        let created = hooks
            .create_user(&unique_email(), password, None, &[])
            .await;
        if created.is_ok() {
            return Err(Failure::new(
                format!("the create_user hook refuses the common password {password:?}"),
                "the user was created",
            )
            .into());
        }
    }
    Ok(())
}
