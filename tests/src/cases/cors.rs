//! CORS for browser apps on other origins (issue 12, rule 1): an exact allow-list, answers
//! with credentials, so never a wildcard. A preflight from a listed origin is answered 204
//! with what the page may do; every actual answer to it, errors included, says who may read
//! it; an origin not on the list gets no CORS header at all and its preflight keeps the
//! profile's 405. Every case needs the target's allowed origin.

use super::prelude::*;

cases!("cors" needs [Native]:
    preflight_from_an_allowed_origin_is_answered,
    answers_to_an_allowed_origin_say_who_may_read_them,
    errors_to_an_allowed_origin_expose_their_headers,
    an_origin_not_on_the_list_gets_no_cors_headers,
    options_without_a_preflight_stays_405,
);

/// An origin no deployment allows.
const STRANGER: &str = "http://stranger.conformance.test";

/// Whether a comma-separated header value lists `item` (case-insensitively).
fn lists(value: &str, item: &str) -> bool {
    value
        .split(',')
        .any(|entry| entry.trim().eq_ignore_ascii_case(item))
}

/// The one value of a header, or a failure naming it.
fn one(resp: &Resp, name: &str) -> Result<String, Failure> {
    match resp.header_values(name).as_slice() {
        [value] => Ok(value.clone()),
        [] => Err(resp.fail(format!("a `{name}` header"))),
        _ => Err(resp.fail(format!("one `{name}` header"))),
    }
}

/// `Vary` names `Origin`.
fn expect_vary_origin(resp: &Resp) -> Result<(), Failure> {
    let varies = resp
        .header_values("vary")
        .iter()
        .any(|value| lists(value, "origin"));
    if varies {
        Ok(())
    } else {
        Err(resp.fail("`Vary: Origin`"))
    }
}

/// The one header `name` (shown as `display`) lists every one of `items`.
fn expect_lists(resp: &Resp, name: &str, display: &str, items: &[&str]) -> Result<(), Failure> {
    let value = one(resp, name)?;
    match items.iter().find(|item| !lists(&value, item)) {
        Some(item) => Err(resp.fail(format!("`{display}` listing {item}"))),
        None => Ok(()),
    }
}

/// The answer allows exactly `origin`, with credentials, and says `Vary: Origin`: what a
/// preflight and an actual answer to a listed origin share.
fn expect_allowed(resp: &Resp, origin: &str) -> Result<(), Failure> {
    if one(resp, "access-control-allow-origin")? != origin {
        return Err(resp.fail(format!("`Access-Control-Allow-Origin: {origin}`")));
    }
    if one(resp, "access-control-allow-credentials")? != "true" {
        return Err(resp.fail("`Access-Control-Allow-Credentials: true`"));
    }
    expect_vary_origin(resp)
}

/// The answer lets `origin` read it: allowed ([`expect_allowed`]), and `WWW-Authenticate` and
/// `Retry-After` exposed.
fn expect_readable_by(resp: &Resp, origin: &str) -> Result<(), Failure> {
    expect_allowed(resp, origin)?;
    expect_lists(
        resp,
        "access-control-expose-headers",
        "Access-Control-Expose-Headers",
        &["WWW-Authenticate", "Retry-After", "X-Request-Id"],
    )
}

/// `POST /register` of a fresh account, sent with `Origin: origin`.
async fn register_from(ctx: &Ctx, origin: &str) -> Result<Resp, Failure> {
    let (email, password) = (unique_email(), unique_password());
    ctx.native(Method::POST, "/register")
        .header("origin", origin)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
}

/// The answer carries no `Access-Control-*` header.
fn expect_no_cors(resp: &Resp) -> Result<(), Failure> {
    let cors = [
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-expose-headers",
        "access-control-max-age",
    ];
    match cors
        .iter()
        .find(|name| !resp.header_values(name).is_empty())
    {
        Some(name) => Err(resp.fail(format!("no `{name}` for an origin not on the list"))),
        None => Ok(()),
    }
}

/// `OPTIONS` of a native route as a browser's preflight from `origin` for `method`.
async fn preflight(ctx: &Ctx, origin: &str, route: &str, method: &str) -> Result<Resp, Failure> {
    ctx.native(Method::OPTIONS, route)
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "content-type,x-csrf-token",
        )
        .send()
        .await
}

async fn preflight_from_an_allowed_origin_is_answered(ctx: Ctx) -> CaseResult {
    let origin = ctx.require_cors_origin()?;
    for (route, method) in [
        ("/register", "POST"),
        ("/me", "GET"),
        ("/sessions/x", "DELETE"),
    ] {
        let resp = preflight(&ctx, &origin, route, method).await?;
        let step = format!("a preflight of {method} {route}");
        resp.expect_status(204).step(&step)?;
        expect_allowed(&resp, &origin).step(&step)?;
        expect_lists(
            &resp,
            "access-control-allow-methods",
            "Access-Control-Allow-Methods",
            &[method],
        )
        .step(&step)?;
        expect_lists(
            &resp,
            "access-control-allow-headers",
            "Access-Control-Allow-Headers",
            &[
                "Authorization",
                "Content-Type",
                "X-CSRF-Token",
                "X-Request-Id",
            ],
        )
        .step(&step)?;
        let max_age = one(&resp, "access-control-max-age").step(&step)?;
        if max_age.parse::<u32>().map_or(true, |secs| secs == 0) {
            return Err(resp.fail("a positive `Access-Control-Max-Age`").into());
        }
    }
    Ok(())
}

async fn answers_to_an_allowed_origin_say_who_may_read_them(ctx: Ctx) -> CaseResult {
    let origin = ctx.require_cors_origin()?;
    let resp = register_from(&ctx, &origin).await?;
    resp.expect_status(201)
        .step("POST /register from the allowed origin")?;
    expect_readable_by(&resp, &origin).step("POST /register from the allowed origin")?;
    Ok(())
}

async fn errors_to_an_allowed_origin_expose_their_headers(ctx: Ctx) -> CaseResult {
    let origin = ctx.require_cors_origin()?;
    let resp = ctx
        .native(Method::GET, "/me")
        .header("origin", origin.to_string())
        .send()
        .await?;
    resp.expect_unauthorized(Challenge::Missing)
        .step("GET /me without a token from the allowed origin")?;
    expect_readable_by(&resp, &origin).step("the 401 to the allowed origin")?;
    let resp = ctx
        .native(Method::POST, "/login")
        .header("origin", origin.to_string())
        .json(&json!({"email": "not an email"}))
        .send()
        .await?;
    resp.expect_validation("email")
        .step("an invalid login from the allowed origin")?;
    expect_readable_by(&resp, &origin).step("the 422 to the allowed origin")?;
    Ok(())
}

async fn an_origin_not_on_the_list_gets_no_cors_headers(ctx: Ctx) -> CaseResult {
    ctx.require_cors_origin()?;
    let resp = register_from(&ctx, STRANGER).await?;
    resp.expect_status(201)
        .step("POST /register from an origin not on the list")?;
    expect_no_cors(&resp).step("POST /register from an origin not on the list")?;
    expect_vary_origin(&resp).step("POST /register from an origin not on the list")?;
    let resp = preflight(&ctx, STRANGER, "/register", "POST").await?;
    resp.expect_problem_any_code(405)
        .step("a preflight from an origin not on the list: the profile's 405")?;
    resp.expect_allow(&["POST"])?;
    expect_no_cors(&resp).step("a preflight from an origin not on the list")?;
    Ok(())
}

async fn options_without_a_preflight_stays_405(ctx: Ctx) -> CaseResult {
    let origin = ctx.require_cors_origin()?;
    let resp = ctx
        .native(Method::OPTIONS, "/login")
        .header("origin", origin.to_string())
        .send()
        .await?;
    resp.expect_problem_any_code(405)
        .step("OPTIONS /login with Origin but no Access-Control-Request-Method")?;
    resp.expect_allow(&["POST"])?;
    Ok(())
}
