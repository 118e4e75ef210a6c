//! Who the client is, for the per-IP limits (issue 10, rule 4): IPv6 clients are one client
//! per /64; several `X-Forwarded-For` lines are one list in order (RFC 9110 §5.3) whose
//! right-most entry that is not a trusted proxy is the client; entries with a port name
//! their address; trusted proxies may be given as ranges.
//!
//! Each case sends failed logins for one email in a way that must count as one client, then
//! the right password as that client: 429 proves the attempts were counted together.
//! Every case needs the target to believe the suite's `X-Forwarded-For`.

use std::net::IpAddr;

use super::prelude::*;
use super::rate_limits::{attempts, email_ip_limit, expect_native_limited, limits};
use crate::Limit;

cases!("client_addresses" needs [Native]:
    ipv6_clients_are_counted_per_64,
    forwarded_for_lines_are_one_list,
    forwarded_for_entries_may_carry_a_port,
    trusted_proxies_may_be_ranges,
);

/// A random /64 of the IPv6 documentation range, as its first four groups.
fn random_v6_prefix() -> String {
    let bits = Uuid::new_v4().as_u128();
    format!("2001:db8:{:x}:{:x}", (bits >> 16) & 0xffff, bits & 0xffff)
}

/// `limit.max` failed logins for a fresh account, the `i`-th sent as `sender(i)`, then the
/// right password as `last`: limited (429), since they are all one client.
async fn expect_one_client(
    ctx: &Ctx,
    limit: Limit,
    sender: impl Fn(u32) -> Result<Ctx, CaseError>,
    last: Ctx,
    what: &str,
) -> CaseResult {
    let account = ctx.register().await?;
    let n = limit.max;
    let senders = (0..n)
        .map(&sender)
        .collect::<Result<Vec<Ctx>, CaseError>>()?;
    attempts(n, |i| {
        let (sender, email) = (&senders[i as usize], &account.email);
        async move {
            sender
                .expect_login_refused(email, &unique_password())
                .await
                .map(drop)
                .step(&format!("failed login {} of {n} {what}", i + 1))
        }
    })
    .await?;
    let resp = last
        .login_raw(&json!({"email": account.email, "password": account.password}))
        .await?;
    expect_native_limited(&resp, limit.window).step(&format!(
        "the right password after {n} failures {what}: they are one client"
    ))?;
    Ok(())
}

/// One `X-Forwarded-For` line.
fn line(value: impl Into<String>) -> Vec<String> {
    vec![value.into()]
}

async fn ipv6_clients_are_counted_per_64(ctx: Ctx) -> CaseResult {
    let limit = email_ip_limit(&limits(&ctx)?)?;
    let prefix = random_v6_prefix();
    let sender = |i: u32| ctx.forwarding(&line(format!("{prefix}::{:x}", i + 1)));
    let last = ctx.forwarding(&line(format!("{prefix}:ffff:ffff:ffff:ffff")))?;
    expect_one_client(&ctx, limit, sender, last, "from addresses of one IPv6 /64").await
}

async fn forwarded_for_lines_are_one_list(ctx: Ctx) -> CaseResult {
    let limit = email_ip_limit(&limits(&ctx)?)?;
    let client = ctx.another_client()?;
    let client_ip = client.client_ip_sent()?;
    // The first line is whatever the client claims (a fresh address each time); the proxy
    // appended the client's real address as a second line.
    let sender = |_: u32| {
        let claimed = ctx.another_client()?.client_ip_sent()?;
        ctx.forwarding(&[claimed.to_string(), client_ip.to_string()])
    };
    expect_one_client(
        &ctx,
        limit,
        sender,
        client,
        "with two X-Forwarded-For lines",
    )
    .await
}

async fn forwarded_for_entries_may_carry_a_port(ctx: Ctx) -> CaseResult {
    let limit = email_ip_limit(&limits(&ctx)?)?;
    let client = ctx.another_client()?;
    let client_ip = client.client_ip_sent()?;
    let sender = |i: u32| ctx.forwarding(&line(format!("{client_ip}:{}", 40_000 + i)));
    expect_one_client(&ctx, limit, sender, client, "with a port on the address").await?;

    let prefix = random_v6_prefix();
    let sender = |i: u32| ctx.forwarding(&line(format!("[{prefix}::1]:{}", 40_000 + i)));
    let last = ctx.forwarding(&line(format!("{prefix}::1")))?;
    expect_one_client(&ctx, limit, sender, last, "from [IPv6]:port").await
}

async fn trusted_proxies_may_be_ranges(ctx: Ctx) -> CaseResult {
    let limit = email_ip_limit(&limits(&ctx)?)?;
    let proxy: IpAddr = ctx.require_another_proxy()?;
    let client = ctx.another_client()?;
    let client_ip = client.client_ip_sent()?;
    // The client's address, then a second proxy of the trusted range: the second is
    // skipped, so the client is the entry before it.
    let sender = |_: u32| ctx.forwarding(&line(format!("{client_ip}, {proxy}")));
    expect_one_client(
        &ctx,
        limit,
        sender,
        client,
        &format!("through a second trusted proxy, {proxy}"),
    )
    .await
}
