//! `POST /refresh`: rotation, replay within the reuse interval, reuse detection, and the
//! bearer form.

use std::time::Duration;

use super::common::post;
use super::prelude::*;
use crate::native::pair_at;
use crate::profile::Profile;
use crate::shape::TOKEN_PAIR;
use crate::users::jwt_claims;

cases!("refresh" needs [Native]:
    body_form_rotates_tokens,
    replay_within_interval_is_identical,
    reuse_detection_revokes_session,
    reuse_after_interval_revokes_session,
    bearer_form_rotates_tokens,
    empty_object_body_uses_bearer,
    personal_token_refused_as_bearer,
    no_token_refused,
    unknown_refresh_token_refused,
    personal_token_refused_as_refresh_token,
    bearer_refresh_supersedes_the_refresh_token,
    no_refresh_outlives_the_opening_profile needs [Native, Rbac],
);

/// Longest reuse interval the suite is willing to wait out.
const MAX_WAIT: Duration = Duration::from_secs(15);

/// `next` must differ from `previous` in both tokens.
fn expect_rotated(previous: &Pair, next: &Pair) -> Result<(), Failure> {
    if previous.access != next.access && previous.refresh != next.refresh {
        return Ok(());
    }
    Err(Failure::new(
        "a new access token and a new refresh token",
        format!(
            "access token {}, refresh token {}",
            if previous.access == next.access {
                "unchanged"
            } else {
                "new"
            },
            if previous.refresh == next.refresh {
                "unchanged"
            } else {
                "new"
            },
        ),
    ))
}

/// The body-less `POST /refresh` with `bearer`, optionally with a JSON body.
async fn refresh_with_bearer(
    ctx: &Ctx,
    bearer: &str,
    body: Option<&Value>,
) -> Result<Resp, Failure> {
    let mut req = ctx.native(Method::POST, "/refresh").bearer(bearer);
    if let Some(body) = body {
        req = req.json(body);
    }
    req.send().await
}

/// A bearer-form refresh of `account`'s registration session rotates it completely.
async fn expect_bearer_rotation(ctx: &Ctx, body: Option<&Value>) -> CaseResult {
    let account = ctx.register().await?;
    let resp = refresh_with_bearer(ctx, &account.pair.access, body).await?;
    resp.expect_shape(200, &TOKEN_PAIR)?;
    let next = pair_at(&resp, "")?;
    expect_rotated(&account.pair, &next)?;
    ctx.expect_accepted(&next.access, &account)
        .await
        .step("the new access token")?;
    ctx.expect_rejected(&account.pair.access)
        .await
        .step("the access token from before the refresh")?;
    ctx.refresh(&next.refresh)
        .await
        .step("the new refresh token")?;
    Ok(())
}

async fn body_form_rotates_tokens(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let next = ctx.refresh(&account.pair.refresh).await?;
    expect_rotated(&account.pair, &next)?;
    ctx.expect_accepted(&next.access, &account)
        .await
        .step("the new access token")?;
    ctx.expect_rejected(&account.pair.access)
        .await
        .step("the access token from before the refresh")?;
    ctx.refresh(&next.refresh).await?;
    Ok(())
}

async fn replay_within_interval_is_identical(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let first = ctx.refresh_raw(&account.pair.refresh).await?;
    first.expect_shape(200, &TOKEN_PAIR)?;
    for attempt in 1..=2 {
        let again = ctx.refresh_raw(&account.pair.refresh).await?;
        if again.status != 200 || again.body != first.body {
            return Err(Failure::new(
                "200 with the first refresh's body, byte for byte",
                format!(
                    "first: {}\nreplay {attempt}: {}",
                    first.describe(),
                    again.describe()
                ),
            )
            .into());
        }
    }
    let next = pair_at(&first, "")?;
    ctx.expect_accepted(&next.access, &account)
        .await
        .step("the new access token")?;
    Ok(())
}

async fn reuse_detection_revokes_session(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let second = ctx.refresh(&account.pair.refresh).await?;
    let third = ctx.refresh(&second.refresh).await?;
    ctx.refresh_raw(&account.pair.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("a refresh token presented again after its successor was used")?;
    ctx.refresh_raw(&third.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("the latest refresh token after reuse detection")?;
    ctx.expect_rejected(&third.access)
        .await
        .step("the latest access token after reuse detection")?;
    Ok(())
}

async fn reuse_after_interval_revokes_session(ctx: Ctx) -> CaseResult {
    let interval = match ctx.reuse_interval() {
        None => return Err(CaseError::Skipped("reuse interval unknown".to_owned())),
        Some(interval) if interval > MAX_WAIT => {
            return Err(CaseError::Skipped(format!(
                "reuse interval {} s is longer than {} s",
                interval.as_secs_f64(),
                MAX_WAIT.as_secs()
            )));
        }
        Some(interval) => interval,
    };
    let account = ctx.register().await?;
    let next = ctx.refresh(&account.pair.refresh).await?;
    tokio::time::sleep(interval + Duration::from_secs(1)).await;
    ctx.refresh_raw(&account.pair.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("a refresh token presented again after the reuse interval")?;
    ctx.refresh_raw(&next.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("the latest refresh token after reuse detection")?;
    ctx.expect_rejected(&next.access)
        .await
        .step("the latest access token after reuse detection")?;
    Ok(())
}

async fn bearer_form_rotates_tokens(ctx: Ctx) -> CaseResult {
    expect_bearer_rotation(&ctx, None).await
}

async fn empty_object_body_uses_bearer(ctx: Ctx) -> CaseResult {
    expect_bearer_rotation(&ctx, Some(&json!({}))).await
}

async fn personal_token_refused_as_bearer(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let personal = ctx.create_token(&account, None).await?;
    refresh_with_bearer(&ctx, &personal.token, None)
        .await?
        .expect_problem(401, UNAUTHORIZED)?;
    ctx.expect_accepted(&personal.token, &account)
        .await
        .step("the personal token afterwards")?;
    Ok(())
}

async fn no_token_refused(ctx: Ctx) -> CaseResult {
    ctx.native(Method::POST, "/refresh")
        .send()
        .await?
        .expect_problem(401, UNAUTHORIZED)?;
    Ok(())
}

async fn unknown_refresh_token_refused(ctx: Ctx) -> CaseResult {
    for token in [
        format!("rt-{}", Uuid::new_v4().simple()),
        "not a token".to_owned(),
    ] {
        ctx.refresh_raw(&token)
            .await?
            .expect_problem(401, UNAUTHORIZED)?;
    }
    Ok(())
}

async fn personal_token_refused_as_refresh_token(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let personal = ctx.create_token(&account, None).await?;
    ctx.refresh_raw(&personal.token)
        .await?
        .expect_problem(401, UNAUTHORIZED)?;
    ctx.expect_accepted(&personal.token, &account)
        .await
        .step("the personal token afterwards")?;
    Ok(())
}

/// Issue 10, rule 1: a bearer-form refresh (someone holding only the access token) supersedes
/// the session's refresh token as used, with no replay. When its owner presents it, that is
/// reuse, and the whole session dies, the taker's new tokens with it.
async fn bearer_refresh_supersedes_the_refresh_token(ctx: Ctx) -> CaseResult {
    let owner = ctx.register().await?;
    let resp = refresh_with_bearer(&ctx, &owner.pair.access, None).await?;
    resp.expect_shape(200, &TOKEN_PAIR)
        .step("a bearer-form refresh with the owner's access token")?;
    let taken = pair_at(&resp, "")?;
    ctx.refresh_raw(&owner.pair.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("the owner's refresh token, superseded by the bearer-form refresh")?;
    ctx.expect_rejected(&taken.access)
        .await
        .step("the taker's access token after the owner's token was presented")?;
    ctx.refresh_raw(&taken.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("the taker's refresh token after the owner's token was presented")?;
    Ok(())
}

/// Issue 10, rule 1: a session remembers the profile that opened it; no refresh mints a
/// token living longer than that profile's (an `rbac` 30-minute token refreshed through
/// native's 7-day `/refresh` comes back as at most a 30-minute one).
async fn no_refresh_outlives_the_opening_profile(ctx: Ctx) -> CaseResult {
    const RBAC_LIFETIME_SECS: i64 = 1800;
    let user = ctx.new_user().await?;
    let login = post(&ctx, Profile::Rbac, "/login", &user.credentials()).await?;
    if login.status != 200 {
        return Err(Failure::new("200 from the rbac login", login.describe()).into());
    }
    let token = login.str_at("/access_token")?.to_owned();
    let resp = refresh_with_bearer(&ctx, &token, None).await?;
    resp.expect_json(200)
        .step("native's bearer-form refresh of an rbac session")?;
    let expires_in = resp.json().and_then(|body| body["expires_in"].as_i64());
    let claims = jwt_claims(resp.str_at("/access_token")?)?;
    let lifetime = claims["exp"]
        .as_i64()
        .zip(claims["iat"].as_i64())
        .map(|(e, i)| e - i);
    let within = |v: Option<i64>| v.is_some_and(|v| (1..=RBAC_LIFETIME_SECS).contains(&v));
    if within(expires_in) && within(lifetime) {
        return Ok(());
    }
    Err(Failure::new(
        format!("expires_in and exp - iat at most {RBAC_LIFETIME_SECS} (the rbac lifetime)"),
        format!("expires_in {expires_in:?}, exp - iat {lifetime:?}"),
    )
    .into())
}
