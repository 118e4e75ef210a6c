//! Rate limiting as the shared rules say: failed logins per email and client IP, per email
//! from anywhere and per client IP; registrations and refreshes per client IP. A limited
//! attempt gets 429 with `Retry-After` and the profile's rate-limit error, whether the email
//! exists or not; a successful login clears the email's failures.
//!
//! Every case needs client IPs of its own ([`crate::Target::forwarded_for`]) and the
//! target's limits ([`crate::Target::limits`]); a case whose limit is off or above
//! [`Limits::MAX_EXERCISED`] is Skipped.

use std::future::Future;
use std::time::Duration;

use futures_util::future::join_all;

use super::common::post;
use super::prelude::*;
use crate::native::INVALID_CREDENTIALS;
use crate::profile::Profile;
use crate::shape::TOKEN_PAIR;
use crate::users::User;
use crate::{Limit, Limits};

cases!("rate_limits" needs [Native]:
    login_limited_per_email_and_ip,
    login_success_clears_failures,
    login_limited_per_ip,
    login_limited_per_email_from_anywhere,
    register_limited_per_ip,
    refresh_limited_per_ip,
    refresh_refusals_cost_nothing,
    wrong_current_passwords_count_as_failed_logins,
    envelope_login_limited needs [Envelope],
    rbac_login_limited needs [Rbac],
    jwt_user_login_limited needs [JwtUser],
    personal_token_login_limited needs [PersonalToken],
);

/// Problem code of a limited attempt.
const RATE_LIMITED: &str = "RATE_LIMITED";
/// Failed attempts sent at once (the server hashes each).
const PARALLEL: u32 = 4;

/// The target's limits, when this case can run against it.
pub(super) fn limits(ctx: &Ctx) -> Result<Limits, CaseError> {
    ctx.require_forwarded_for()?;
    ctx.require_limits()
}

/// `limit`'s `max`, when a case can exhaust it quickly.
pub(super) fn exercised(limit: Limit, what: &str) -> Result<u32, CaseError> {
    if !limit.enabled() {
        return Err(CaseError::Skipped(format!("the {what} limit is off")));
    }
    if limit.max > Limits::MAX_EXERCISED {
        return Err(CaseError::Skipped(format!(
            "the {what} limit ({limit}) allows more than {} attempts",
            Limits::MAX_EXERCISED
        )));
    }
    Ok(limit.max)
}

/// The tightest of the enabled limits among `limits`: failures for one email from one IP
/// count towards all three login limits, so the first to fill decides. Its `max`, and the
/// longest window among those of that `max` (the bound on `Retry-After`).
fn tightest(limits: &[Limit], what: &str) -> Result<Limit, CaseError> {
    let enabled: Vec<Limit> = limits.iter().copied().filter(Limit::enabled).collect();
    let Some(max) = enabled.iter().map(|l| l.max).min() else {
        return Err(CaseError::Skipped(format!("the {what} limits are off")));
    };
    let window = enabled
        .iter()
        .filter(|l| l.max == max)
        .map(|l| l.window)
        .max()
        .unwrap_or_default();
    let limit = Limit { max, window };
    exercised(limit, what)?;
    Ok(limit)
}

/// The limit that applies to failures for one email from one client IP.
pub(super) fn email_ip_limit(limits: &Limits) -> Result<Limit, CaseError> {
    tightest(
        &[limits.login_email_ip, limits.login_email, limits.login_ip],
        "login per email and IP",
    )
}

/// Runs `attempt(0..count)`, at most [`PARALLEL`] at a time; each checks its own answer.
/// Sending a limit's worth at once is safe: each attempt is checked against the failures
/// recorded before it, which are fewer than the limit.
pub(super) async fn attempts<F, Fut>(count: u32, attempt: F) -> Result<(), Failure>
where
    F: Fn(u32) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let mut start = 0;
    while start < count {
        let end = (start + PARALLEL).min(count);
        for result in join_all((start..end).map(&attempt)).await {
            result?;
        }
        start = end;
    }
    Ok(())
}

/// `count` failed `native` logins for `email` from `ctx`'s client IP, each 401
/// `INVALID_CREDENTIALS`.
pub(super) async fn fail_native_logins(ctx: &Ctx, email: &str, count: u32) -> Result<(), Failure> {
    attempts(count, |i| async move {
        ctx.expect_login_refused(email, &unique_password())
            .await
            .map(drop)
            .step(&format!(
                "failed login {} of {count} for one email from one client IP",
                i + 1
            ))
    })
    .await
}

/// Exactly one `Retry-After` of whole seconds, from 1 to `window`.
fn expect_retry_after(resp: &Resp, window: Duration) -> Result<u64, Failure> {
    let values = resp.header_values("retry-after");
    let seconds = match values.as_slice() {
        [one] => one.trim().parse::<u64>().ok(),
        _ => None,
    };
    match seconds {
        Some(seconds) if (1..=window.as_secs()).contains(&seconds) => Ok(seconds),
        _ => Err(resp.fail(format!(
            "exactly one `Retry-After` of whole seconds from 1 to {}",
            window.as_secs()
        ))),
    }
}

/// `native`'s rate-limit answer: 429 `RATE_LIMITED` with `Retry-After` within `window`.
pub(super) fn expect_native_limited(resp: &Resp, window: Duration) -> Result<(), Failure> {
    resp.expect_problem(429, RATE_LIMITED)?;
    resp.expect_at("/detail", &json!("Too many requests"))?;
    expect_retry_after(resp, window)?;
    Ok(())
}

/// The same answer apart from `Date`, `Content-Length` and the value (not the presence) of
/// `Retry-After`, with a body equal byte for byte.
fn expect_same_limited_answer(a: &Resp, b: &Resp, situations: &str) -> Result<(), Failure> {
    // Compared as for any two indistinguishable answers, but for Retry-After's value (the
    // second may come a second later).
    let headers = |resp: &Resp| {
        let mut headers = crate::check::comparable_headers(resp);
        for (name, value) in &mut headers {
            if name == "retry-after" {
                value.clear();
            }
        }
        headers
    };
    if a.status == b.status && a.body == b.body && headers(a) == headers(b) {
        return Ok(());
    }
    Err(Failure::new(
        format!(
            "the same status, headers (Retry-After present in both) and body, byte for byte, \
             for {situations}"
        ),
        format!("{}\nversus {}", a.describe(), b.describe()),
    ))
}

async fn login_limited_per_email_and_ip(ctx: Ctx) -> CaseResult {
    let limit = email_ip_limit(&limits(&ctx)?)?;
    let n = limit.max;
    let account = ctx.register().await?;
    fail_native_logins(&ctx, &account.email, n).await?;
    let limited = ctx
        .login_raw(&json!({"email": account.email, "password": account.password}))
        .await?;
    expect_native_limited(&limited, limit.window).step(&format!(
        "the right password after {n} failures for the email from this client IP"
    ))?;

    let elsewhere = ctx.another_client()?;
    let unknown = unique_email();
    fail_native_logins(&elsewhere, &unknown, n).await?;
    let unknown_limited = elsewhere
        .login_raw(&json!({"email": unknown, "password": unique_password()}))
        .await?;
    expect_native_limited(&unknown_limited, limit.window)
        .step(&format!("an unknown email after {n} failures"))?;
    expect_same_limited_answer(
        &limited,
        &unknown_limited,
        "a limited existing email and a limited unknown email",
    )?;

    ctx.another_client()?
        .login(&account, None)
        .await
        .step("the limited email with the right password from another client IP")?;
    Ok(())
}

async fn login_success_clears_failures(ctx: Ctx) -> CaseResult {
    let limit = email_ip_limit(&limits(&ctx)?)?;
    let below = limit.max - 1;
    let account = ctx.register().await?;
    fail_native_logins(&ctx, &account.email, below).await?;
    ctx.login(&account, None)
        .await
        .step(&format!("the right password after {below} failures"))?;
    // Without the clearing, the limit would be reached within these.
    fail_native_logins(&ctx, &account.email, below)
        .await
        .step("after a successful login cleared the earlier failures")?;
    ctx.login(&account, None).await.step(&format!(
        "the right password after {below} failures, a success and {below} failures"
    ))?;
    Ok(())
}

async fn login_limited_per_ip(ctx: Ctx) -> CaseResult {
    let limits = limits(&ctx)?;
    let limit = limits.login_ip;
    let n = exercised(limit, "login per IP")?;
    let account = ctx.register().await?;
    attempts(n, |i| {
        let ctx = &ctx;
        async move {
            ctx.expect_login_refused(&unique_email(), &unique_password())
                .await
                .map(drop)
                .step(&format!(
                    "failed login {} of {n} from one client IP, each for another email",
                    i + 1
                ))
        }
    })
    .await?;
    let existing = ctx
        .login_raw(&json!({"email": account.email, "password": account.password}))
        .await?;
    expect_native_limited(&existing, limit.window).step(&format!(
        "a registered email with the right password from a client IP with {n} failures"
    ))?;
    let unknown = ctx
        .login_raw(&json!({"email": unique_email(), "password": unique_password()}))
        .await?;
    expect_native_limited(&unknown, limit.window).step(&format!(
        "an unknown email from a client IP with {n} failures"
    ))?;
    ctx.another_client()?
        .login(&account, None)
        .await
        .step("the same user from another client IP")?;
    Ok(())
}

/// The failures one client IP may send for an email without reaching a per-IP limit first
/// (at most `n`); Skipped when the per-IP limits allow none.
pub(super) fn per_ip_share(limits: &Limits, n: u32) -> Result<u32, CaseError> {
    let per_ip = [limits.login_email_ip, limits.login_ip]
        .iter()
        .filter(|l| l.enabled())
        .map(|l| l.max - 1)
        .min()
        .unwrap_or(n)
        .min(n);
    if per_ip == 0 {
        return Err(CaseError::Skipped(
            "the per-IP login limits allow no failure before the per-email one".to_owned(),
        ));
    }
    Ok(per_ip)
}

/// `n` failed logins for `email`, at most `per_ip` from each of as many fresh client IPs as
/// that takes, all at once; how many IPs sent them.
pub(super) async fn fail_from_many_clients(
    ctx: &Ctx,
    email: &str,
    n: u32,
    per_ip: u32,
) -> Result<usize, CaseError> {
    let mut clients = Vec::new();
    let mut left = n;
    while left > 0 {
        let take = left.min(per_ip);
        clients.push((ctx.another_client()?, take));
        left -= take;
    }
    let ips = clients.len();
    join_all(
        clients
            .iter()
            .map(|(client, count)| fail_native_logins(client, email, *count)),
    )
    .await
    .into_iter()
    .collect::<Result<Vec<()>, Failure>>()
    .step(&format!(
        "{n} failures for one email from {ips} client IPs, at most {per_ip} from each"
    ))?;
    Ok(ips)
}

async fn login_limited_per_email_from_anywhere(ctx: Ctx) -> CaseResult {
    let limits = limits(&ctx)?;
    let limit = limits.login_email;
    let n = exercised(limit, "login per email")?;
    let per_ip = per_ip_share(&limits, n)?;
    let account = ctx.register().await?;
    let ips = fail_from_many_clients(&ctx, &account.email, n, per_ip).await?;
    let fresh = ctx.another_client()?;
    let resp = fresh
        .login_raw(&json!({"email": account.email, "password": account.password}))
        .await?;
    expect_native_limited(&resp, limit.window).step(&format!(
        "the right password from a fresh client IP after {n} failures for the email from \
         {ips} others"
    ))?;
    Ok(())
}

async fn register_limited_per_ip(ctx: Ctx) -> CaseResult {
    let limit = limits(&ctx)?.register_ip;
    let n = exercised(limit, "registration per IP")?;
    for i in 0..n {
        ctx.register()
            .await
            .step(&format!("registration {} of {n} from one client IP", i + 1))?;
    }
    let body = json!({"email": unique_email(), "password": unique_password()});
    let resp = ctx.register_raw(&body).await?;
    expect_native_limited(&resp, limit.window)
        .step(&format!("registration {} from one client IP", n + 1))?;
    ctx.another_client()?
        .register_raw(&body)
        .await?
        .expect_status(201)
        .step("the same registration from another client IP")?;
    Ok(())
}

async fn refresh_limited_per_ip(ctx: Ctx) -> CaseResult {
    let limit = limits(&ctx)?.refresh_ip;
    let n = exercised(limit, "refresh per IP")?;
    let account = ctx.register().await?;
    let mut refresh = account.pair.refresh.clone();
    for i in 0..n {
        refresh = ctx
            .refresh(&refresh)
            .await
            .step(&format!("refresh {} of {n} from one client IP", i + 1))?
            .refresh;
    }
    let resp = ctx.refresh_raw(&refresh).await?;
    expect_native_limited(&resp, limit.window)
        .step(&format!("refresh {} from one client IP", n + 1))?;
    ctx.another_client()?
        .refresh_raw(&refresh)
        .await?
        .expect_shape(200, &TOKEN_PAIR)
        .step("the same refresh token from another client IP")?;
    Ok(())
}

/// Most requests a case sends to exhaust a limit it may cross cheaply.
const MAX_CHEAP_ATTEMPTS: u32 = 1_000;

/// A refresh with no token, or with something that is not a refresh token, is refused before
/// any write: such requests never use up the client's refresh limit (issue 10, rule 13).
async fn refresh_refusals_cost_nothing(ctx: Ctx) -> CaseResult {
    let limit = limits(&ctx)?.refresh_ip;
    if !limit.enabled() {
        return Err(CaseError::Skipped(
            "the refresh per IP limit is off".to_owned(),
        ));
    }
    if limit.max >= MAX_CHEAP_ATTEMPTS {
        return Err(CaseError::Skipped(format!(
            "the refresh per IP limit ({limit}) allows {MAX_CHEAP_ATTEMPTS} attempts or more"
        )));
    }
    let account = ctx.register().await?;
    for i in 0..=limit.max {
        let resp = match i % 3 {
            0 => ctx.refresh_raw("not-a-refresh-token").await?,
            1 => ctx.post_json("/refresh", &json!({})).await?,
            _ => {
                ctx.native(Method::POST, "/refresh")
                    .bearer("garbage")
                    .send()
                    .await?
            }
        };
        resp.expect_problem(401, UNAUTHORIZED)
            .step(&format!("refused refresh {} from one client IP", i + 1))?;
    }
    ctx.refresh(&account.pair.refresh)
        .await
        .step("a real refresh from the same client IP after the refusals")?;
    Ok(())
}

/// Wrong current passwords given to `POST /password` and `POST /tokens` count as failed logins
/// of the account: past the limit, those routes and the login answer 429 (issue 10, rule 5).
async fn wrong_current_passwords_count_as_failed_logins(ctx: Ctx) -> CaseResult {
    let limit = email_ip_limit(&limits(&ctx)?)?;
    let n = limit.max;
    let account = ctx.register().await?;
    for i in 0..n {
        let wrong =
            json!({"current_password": "not the password", "new_password": unique_password()});
        let resp = if i % 2 == 0 {
            ctx.native(Method::POST, "/password")
                .bearer(&account.pair.access)
                .json(&wrong)
                .send()
                .await?
        } else {
            ctx.create_token_raw(
                &account.pair.access,
                &json!({"name": "guess", "current_password": "not the password"}),
            )
            .await?
        };
        resp.expect_problem(403, INVALID_CREDENTIALS)
            .step(&format!("wrong current password {} of {n}", i + 1))?;
    }
    let right = json!({"current_password": account.password, "new_password": unique_password()});
    let limited = ctx
        .native(Method::POST, "/password")
        .bearer(&account.pair.access)
        .json(&right)
        .send()
        .await?;
    expect_native_limited(&limited, limit.window)
        .step(&format!("the right current password after {n} wrong ones"))?;
    let login = ctx
        .login_raw(&json!({"email": account.email, "password": account.password}))
        .await?;
    expect_native_limited(&login, limit.window).step(&format!(
        "a login from the same client IP after {n} wrong current passwords"
    ))?;
    Ok(())
}

/// A profile's login route with its bad-credentials and rate-limit answers.
struct ProfileLogin {
    profile: Profile,
    route: &'static str,
    refused_status: u16,
    refused: fn() -> Value,
    limited: fn() -> Value,
}

/// `n` failed logins through `login` for one user from one client IP, then the right
/// password: 429 with exactly the profile's rate-limit body and `Retry-After`.
async fn expect_profile_login_limited(ctx: &Ctx, login: &ProfileLogin) -> CaseResult {
    let limit = email_ip_limit(&limits(ctx)?)?;
    let n = limit.max;
    let user: User = ctx.new_user().await?;
    let name = login.profile.name();
    attempts(n, |i| {
        let user = &user;
        async move {
            post(ctx, login.profile, login.route, &user.with_wrong_password())
                .await?
                .expect_exact(login.refused_status, &(login.refused)())
                .map(drop)
                .step(&format!(
                    "{name}: failed login {} of {n} for one email from one client IP",
                    i + 1
                ))
        }
    })
    .await?;
    let resp = post(ctx, login.profile, login.route, &user.credentials()).await?;
    resp.expect_exact(429, &(login.limited)())
        .step(&format!("{name}: the right password after {n} failures"))?;
    expect_retry_after(&resp, limit.window)?;
    Ok(())
}

async fn envelope_login_limited(ctx: Ctx) -> CaseResult {
    expect_profile_login_limited(
        &ctx,
        &ProfileLogin {
            profile: Profile::Envelope,
            route: "/token",
            refused_status: 401,
            refused: || json!({"message": "Invalid credentials", "error": {"code": INVALID_CREDENTIALS}}),
            limited: || json!({"message": "Too many requests", "error": {"code": RATE_LIMITED}}),
        },
    )
    .await
}

async fn rbac_login_limited(ctx: Ctx) -> CaseResult {
    expect_profile_login_limited(
        &ctx,
        &ProfileLogin {
            profile: Profile::Rbac,
            route: "/login",
            refused_status: 401,
            refused: || json!({"detail": "Incorrect email or password"}),
            limited: || json!({"detail": "Too many requests"}),
        },
    )
    .await
}

async fn jwt_user_login_limited(ctx: Ctx) -> CaseResult {
    expect_profile_login_limited(
        &ctx,
        &ProfileLogin {
            profile: Profile::JwtUser,
            route: "/login",
            refused_status: 401,
            refused: || json!({"success": false, "message": "Invalid credentials"}),
            limited: || json!({"success": false, "message": "Too many requests"}),
        },
    )
    .await
}

async fn personal_token_login_limited(ctx: Ctx) -> CaseResult {
    expect_profile_login_limited(
        &ctx,
        &ProfileLogin {
            profile: Profile::PersonalToken,
            route: "/login",
            refused_status: 403,
            refused: || json!({"error": "Invalid credentials"}),
            limited: || json!({"message": "Too Many Attempts."}),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::resp;

    #[test]
    fn the_tightest_login_limit_decides() {
        let limit = email_ip_limit(&Limits::CONTRACT).unwrap();
        assert_eq!(limit, Limit::per(10, 900));
        let mut limits = Limits::CONTRACT;
        limits.login_email_ip = Limit::per(0, 1);
        limits.login_ip = Limit::per(100, 7200);
        assert_eq!(email_ip_limit(&limits).unwrap(), Limit::per(100, 7200));
        limits.login_email = Limit::per(0, 1);
        limits.login_ip = Limit::per(0, 1);
        assert!(matches!(
            email_ip_limit(&limits),
            Err(CaseError::Skipped(_))
        ));
        assert!(matches!(
            exercised(Limit::per(300, 900), "refresh per IP"),
            Err(CaseError::Skipped(why)) if why.contains("300/900")
        ));
    }

    #[test]
    fn retry_after_is_whole_seconds_within_the_window() {
        let window = Duration::from_secs(900);
        let with = |value: &str| resp(429, &[("retry-after", value)], "{}");
        assert_eq!(expect_retry_after(&with("900"), window).unwrap(), 900);
        assert_eq!(expect_retry_after(&with("1"), window).unwrap(), 1);
        for bad in ["0", "901", "1.5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"] {
            assert!(expect_retry_after(&with(bad), window).is_err(), "{bad}");
        }
        assert!(expect_retry_after(&resp(429, &[], "{}"), window).is_err());
    }

    #[test]
    fn limited_answers_may_differ_only_in_the_retry_after_value() {
        let ct = ("content-type", "application/problem+json");
        let a = resp(
            429,
            &[ct, ("retry-after", "900"), ("date", "x")],
            r#"{"a":1}"#,
        );
        let b = resp(429, &[ct, ("retry-after", "899")], r#"{"a":1}"#);
        assert!(expect_same_limited_answer(&a, &b, "x").is_ok());
        let spaced = resp(429, &[ct, ("retry-after", "899")], r#"{"a": 1}"#);
        assert!(expect_same_limited_answer(&a, &spaced, "x").is_err());
        let without = resp(429, &[ct], r#"{"a":1}"#);
        assert!(expect_same_limited_answer(&a, &without, "x").is_err());
    }
}
