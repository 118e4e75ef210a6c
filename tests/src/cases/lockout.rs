//! What a guessing run can and cannot do to an account (issue 10, rules 3 and 6): concurrent
//! wrong logins cannot slip past the limit (each attempt is reserved before its password is
//! hashed), and a distributed run that fills the per-email limit does not lock the owner
//! out at an address they logged in from recently.
//!
//! Every case needs client IPs of its own and the target's limits.

use futures_util::future::join_all;

use super::prelude::*;
use super::rate_limits::{
    email_ip_limit, exercised, expect_native_limited, fail_from_many_clients, limits, per_ip_share,
};

cases!("lockout" needs [Native]:
    concurrent_wrong_logins_cannot_pass_the_limit,
    owner_at_a_known_address_is_not_locked_out,
);

/// Wrong logins sent at once, per allowed failure.
const CONCURRENT_PER_ALLOWED: u32 = 4;

async fn concurrent_wrong_logins_cannot_pass_the_limit(ctx: Ctx) -> CaseResult {
    let limit = email_ip_limit(&limits(&ctx)?)?;
    let n = limit.max;
    let sent = n * CONCURRENT_PER_ALLOWED;
    let account = ctx.register().await?;
    let body = |_| json!({"email": account.email, "password": unique_password()});
    let answers = join_all((0..sent).map(|i| {
        let (ctx, body) = (&ctx, body(i));
        async move { ctx.login_raw(&body).await }
    }))
    .await;
    let mut refused = 0;
    let mut limited = 0;
    for resp in answers {
        let resp = resp?;
        match resp.status {
            401 => refused += 1,
            429 => {
                expect_native_limited(&resp, limit.window)?;
                limited += 1;
            }
            _ => {
                return Err(resp
                    .fail("401 or 429 for each of the concurrent wrong logins")
                    .into());
            }
        }
    }
    if refused > n || refused + limited != sent {
        return Err(Failure::new(
            format!("of {sent} concurrent wrong logins, at most {n} answered 401, the rest 429"),
            format!("{refused} answered 401 and {limited} 429"),
        )
        .into());
    }
    Ok(())
}

async fn owner_at_a_known_address_is_not_locked_out(ctx: Ctx) -> CaseResult {
    let limits = limits(&ctx)?;
    let limit = limits.login_email;
    let n = exercised(limit, "login per email")?;
    let per_ip = per_ip_share(&limits, n)?;
    let account = ctx.register().await?;
    ctx.login(&account, None)
        .await
        .step("the owner logging in from their usual address")?;
    fail_from_many_clients(&ctx, &account.email, n, per_ip).await?;
    let stranger = ctx
        .another_client()?
        .login_raw(&json!({"email": account.email, "password": account.password}))
        .await?;
    expect_native_limited(&stranger, limit.window)
        .step("the right password from a never-seen address while the per-email limit holds")?;
    ctx.login(&account, None)
        .await
        .step("the right password from the owner's usual address")?;
    Ok(())
}
