//! `GET /sessions` and `DELETE /sessions/{id}`.

use super::prelude::*;
use crate::http::DEFAULT_USER_AGENT;
use crate::native::ids;
use crate::shape::SESSION;

cases!("sessions" needs [Native]:
    lists_sessions_with_current,
    delete_other_session,
    delete_unknown_session,
    delete_other_users_session,
    refresh_keeps_session,
);

/// A User-Agent no other session has.
fn unique_user_agent() -> String {
    format!("conformance-agent-{}", Uuid::new_v4().simple())
}

/// The id of the listed session whose `current` is `current` (there must be exactly one).
fn only_session(resp: &Resp, items: &[Value], current: bool) -> Result<String, Failure> {
    let matching: Vec<&Value> = items.iter().filter(|s| s["current"] == current).collect();
    match matching.as_slice() {
        [one] => Ok(one["id"].as_str().unwrap_or_default().to_owned()),
        _ => Err(resp.fail(format!("exactly one session with `current: {current}`"))),
    }
}

async fn lists_sessions_with_current(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let agent = unique_user_agent();
    let pair = ctx.login(&account, Some(&agent)).await?;
    let resp = ctx.sessions(&pair.access).await?;
    let items = resp.expect_list_of(&SESSION)?;
    let current = items.iter().find(|s| s["current"] == true);
    let other = items.iter().find(|s| s["current"] == false);
    let as_expected = items.len() == 2
        && items.iter().filter(|s| s["current"] == true).count() == 1
        && current.is_some_and(|s| s["user_agent"] == agent.as_str())
        && other.is_some_and(|s| s["user_agent"] == DEFAULT_USER_AGENT)
        && items[0]["id"] != items[1]["id"];
    if !as_expected {
        return Err(resp
            .fail(format!(
                "two sessions: the current one with user_agent {agent:?}, and the \
                 registration's (current: false) with user_agent {DEFAULT_USER_AGENT:?}"
            ))
            .into());
    }
    Ok(())
}

async fn delete_other_session(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let pair = ctx.login(&account, Some(&unique_user_agent())).await?;
    let resp = ctx.sessions(&pair.access).await?;
    let items = resp.expect_list_of(&SESSION)?;
    let registration = only_session(&resp, items, false)?;
    let current = only_session(&resp, items, true)?;

    ctx.delete(&format!("/sessions/{registration}"), &pair.access)
        .await?
        .expect_no_content()?;
    ctx.expect_rejected(&account.pair.access)
        .await
        .step("the deleted session's access token")?;
    ctx.refresh_raw(&account.pair.refresh)
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("the deleted session's refresh token")?;
    let resp = ctx.sessions(&pair.access).await?;
    if ids(resp.expect_list_of(&SESSION)?) != [current.as_str()] {
        return Err(resp
            .fail(format!("only the remaining session {current} is listed"))
            .into());
    }
    Ok(())
}

async fn delete_unknown_session(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    for id in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        ctx.delete(&format!("/sessions/{id}"), &account.pair.access)
            .await?
            .expect_problem(404, "NOT_FOUND")?;
    }
    Ok(())
}

async fn delete_other_users_session(ctx: Ctx) -> CaseResult {
    let (alice, bob) = (ctx.register().await?, ctx.register().await?);
    let resp = ctx.sessions(&bob.pair.access).await?;
    let bobs = only_session(&resp, resp.expect_list_of(&SESSION)?, true)?;
    ctx.delete(&format!("/sessions/{bobs}"), &alice.pair.access)
        .await?
        .expect_problem(404, "NOT_FOUND")?;
    ctx.expect_accepted(&bob.pair.access, &bob)
        .await
        .step("the other user's session")?;
    Ok(())
}

async fn refresh_keeps_session(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = ctx.sessions(&account.pair.access).await?;
    let before = only_session(&resp, resp.expect_list_of(&SESSION)?, true)?;
    let next = ctx.refresh(&account.pair.refresh).await?;
    let resp = ctx.sessions(&next.access).await?;
    let items = resp.expect_list_of(&SESSION)?;
    if ids(items) != [before.as_str()] || !items.iter().all(|s| s["current"] == true) {
        return Err(resp
            .fail(format!(
                "the same single session {before}, current, after a refresh"
            ))
            .into());
    }
    Ok(())
}
