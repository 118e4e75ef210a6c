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

/// The answer lets `origin` read it: its exact origin allowed, with credentials, `Vary:
/// Origin`, and `WWW-Authenticate` and `Retry-After` exposed.
fn expect_readable_by(resp: &Resp, origin: &str) -> Result<(), Failure> {
    let allowed = one(resp, "access-control-allow-origin")?;
    if allowed != origin {
        return Err(resp.fail(format!("`Access-Control-Allow-Origin: {origin}`")));
    }
    if one(resp, "access-control-allow-credentials")? != "true" {
        return Err(resp.fail("`Access-Control-Allow-Credentials: true`"));
    }
    expect_vary_origin(resp)?;
    let exposed = one(resp, "access-control-expose-headers")?;
    for header in ["WWW-Authenticate", "Retry-After"] {
        if !lists(&exposed, header) {
            return Err(resp.fail(format!("`Access-Control-Expose-Headers` listing {header}")));
        }
    }
    Ok(())
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
        let allowed = one(&resp, "access-control-allow-origin").step(&step)?;
        if allowed != *origin {
            return Err(resp
                .fail(format!("`Access-Control-Allow-Origin: {origin}`"))
                .into());
        }
        if one(&resp, "access-control-allow-credentials").step(&step)? != "true" {
            return Err(resp.fail("`Access-Control-Allow-Credentials: true`").into());
        }
        let methods = one(&resp, "access-control-allow-methods").step(&step)?;
        if !lists(&methods, method) {
            return Err(resp
                .fail(format!("`Access-Control-Allow-Methods` listing {method}"))
                .into());
        }
        let headers = one(&resp, "access-control-allow-headers").step(&step)?;
        for header in ["Authorization", "Content-Type", "X-CSRF-Token"] {
            if !lists(&headers, header) {
                return Err(resp
                    .fail(format!("`Access-Control-Allow-Headers` listing {header}"))
                    .into());
            }
        }
        let max_age = one(&resp, "access-control-max-age").step(&step)?;
        if max_age.parse::<u32>().map_or(true, |secs| secs == 0) {
            return Err(resp.fail("a positive `Access-Control-Max-Age`").into());
        }
        expect_vary_origin(&resp).step(&step)?;
    }
    Ok(())
}

async fn answers_to_an_allowed_origin_say_who_may_read_them(ctx: Ctx) -> CaseResult {
    let origin = ctx.require_cors_origin()?;
    let (email, password) = (unique_email(), unique_password());
    let resp = ctx
        .native(Method::POST, "/register")
        .header("origin", origin.to_string())
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?;
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
    let (email, password) = (unique_email(), unique_password());
    let resp = ctx
        .native(Method::POST, "/register")
        .header("origin", STRANGER)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await?;
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
