//! Personal access tokens: `POST /tokens`, `GET /tokens`, `DELETE /tokens/{id}`.

use std::time::Duration;

use super::prelude::*;
use crate::native::ids;
use crate::shape::{LISTED_PERSONAL_TOKEN, NEW_PERSONAL_TOKEN, parse_utc};

cases!("tokens" needs [Native]:
    create_returns_secret,
    create_with_expiry,
    list_hides_secret,
    list_shows_only_own_tokens,
    revoke_token,
    revoke_unknown_token,
    revoke_other_users_token,
    missing_name_rejected,
    expiry_is_exact,
    create_requires_current_password,
    create_with_wrong_current_password_is_refused,
    personal_token_cannot_create_tokens,
);

/// Tolerance on `expires_at - created_at`, for a clock tick between the two.
const EXPIRY_SLACK_SECS: i64 = 2;

/// `GET /tokens` with `bearer`, checked to be a list of tokens without secrets.
async fn list(ctx: &Ctx, bearer: &str) -> Result<(Resp, Vec<String>), Failure> {
    let resp = ctx
        .native(Method::GET, "/tokens")
        .bearer(bearer)
        .send()
        .await?;
    let listed = ids(resp.expect_list_of(&LISTED_PERSONAL_TOKEN)?)
        .into_iter()
        .map(str::to_owned)
        .collect();
    Ok((resp, listed))
}

async fn create_returns_secret(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let name = format!("laptop {}", Uuid::new_v4().simple());
    let resp = ctx
        .create_token_raw(
            &account.pair.access,
            &json!({"name": name, "current_password": account.password}),
        )
        .await?;
    resp.expect_shape(201, &NEW_PERSONAL_TOKEN)?;
    resp.expect_at("/name", &json!(name))?;
    resp.expect_at("/expires_at", &Value::Null)?;
    ctx.expect_accepted(resp.str_at("/token")?, &account)
        .await?;
    Ok(())
}

async fn create_with_expiry(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = ctx
        .create_token_raw(
            &account.pair.access,
            &json!({"name": "expiring", "expires_in": 3600, "current_password": account.password}),
        )
        .await?;
    resp.expect_shape(201, &NEW_PERSONAL_TOKEN)?;
    let created = parse_utc(resp.str_at("/created_at")?);
    let expires = parse_utc(resp.str_at("/expires_at")?);
    let lifetime = created.zip(expires).map(|(c, e)| e - c);
    if lifetime.is_none_or(|secs| (secs - 3600).abs() > EXPIRY_SLACK_SECS) {
        return Err(resp.fail("expires_at = created_at + 3600 s").into());
    }
    Ok(())
}

async fn list_hides_secret(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let first = ctx.create_token(&account, None).await?;
    let second = ctx.create_token(&account, Some(600)).await?;
    let (resp, listed) = list(&ctx, &account.pair.access).await?;
    if listed.len() != 2 || !listed.contains(&first.id) || !listed.contains(&second.id) {
        return Err(resp
            .fail(format!("exactly the tokens {} and {}", first.id, second.id))
            .into());
    }
    Ok(())
}

async fn list_shows_only_own_tokens(ctx: Ctx) -> CaseResult {
    let (alice, bob) = (ctx.register().await?, ctx.register().await?);
    ctx.create_token(&bob, None).await?;
    let (resp, listed) = list(&ctx, &alice.pair.access).await?;
    if !listed.is_empty() {
        return Err(resp.fail("an empty list for a user without tokens").into());
    }
    Ok(())
}

async fn revoke_token(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let personal = ctx.create_token(&account, None).await?;
    ctx.delete(&format!("/tokens/{}", personal.id), &account.pair.access)
        .await?
        .expect_no_content()?;
    ctx.expect_rejected(&personal.token)
        .await
        .step("the personal token")?;
    let (resp, listed) = list(&ctx, &account.pair.access).await?;
    if listed.contains(&personal.id) {
        return Err(resp
            .fail(format!("revoked token {} no longer listed", personal.id))
            .into());
    }
    Ok(())
}

async fn revoke_unknown_token(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    for id in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        ctx.delete(&format!("/tokens/{id}"), &account.pair.access)
            .await?
            .expect_problem(404, "NOT_FOUND")?;
    }
    Ok(())
}

async fn revoke_other_users_token(ctx: Ctx) -> CaseResult {
    let (alice, bob) = (ctx.register().await?, ctx.register().await?);
    let bobs = ctx.create_token(&bob, None).await?;
    ctx.delete(&format!("/tokens/{}", bobs.id), &alice.pair.access)
        .await?
        .expect_problem(404, "NOT_FOUND")?;
    ctx.expect_accepted(&bobs.token, &bob)
        .await
        .step("the other user's personal token")?;
    Ok(())
}

async fn missing_name_rejected(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let password = &account.password;
    for body in [
        json!({"current_password": password}),
        json!({"expires_in": 600, "current_password": password}),
    ] {
        ctx.create_token_raw(&account.pair.access, &body)
            .await?
            .expect_validation("name")?;
    }
    Ok(())
}

async fn expiry_is_exact(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let personal = ctx.create_token(&account, Some(1)).await?;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ctx.expect_rejected(&personal.token)
        .await
        .step("the personal token")?;
    Ok(())
}

/// A stolen access token alone cannot mint a long-lived credential: `current_password` is
/// required (issue 10, rule 2).
async fn create_requires_current_password(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    for body in [
        json!({"name": "no password"}),
        json!({"name": "null password", "current_password": null}),
    ] {
        ctx.create_token_raw(&account.pair.access, &body)
            .await?
            .expect_validation("current_password")?;
    }
    let (resp, listed) = list(&ctx, &account.pair.access).await?;
    if !listed.is_empty() {
        return Err(resp
            .fail("no token created without the current password")
            .into());
    }
    Ok(())
}

/// A wrong current password is refused like a wrong login password (issue 10, rule 2).
async fn create_with_wrong_current_password_is_refused(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    ctx.create_token_raw(
        &account.pair.access,
        &json!({"name": "guess", "current_password": "not the password"}),
    )
    .await?
    .expect_problem(403, "INVALID_CREDENTIALS")?;
    let (resp, listed) = list(&ctx, &account.pair.access).await?;
    if !listed.is_empty() {
        return Err(resp.fail("no token created with a wrong password").into());
    }
    Ok(())
}

/// A personal token cannot mint more personal tokens, even with the password (issue 10,
/// rule 2).
async fn personal_token_cannot_create_tokens(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let personal = ctx.create_token(&account, None).await?;
    ctx.create_token_raw(
        &personal.token,
        &json!({"name": "child", "current_password": account.password}),
    )
    .await?
    .expect_problem(403, "FORBIDDEN")?;
    Ok(())
}
