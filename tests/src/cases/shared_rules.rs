//! Rules shared by every profile, checked on `native` routes: health checks, content type,
//! body size, malformed bodies, unknown paths and methods.

use super::common::{BODY_LIMIT, padded};
use super::prelude::*;
use crate::shape::AUTH;

cases!("shared_rules" needs [Native]:
    healthz needs [],
    livez_and_readyz needs [],
    other_media_type_rejected,
    missing_content_type_rejected,
    charset_parameter_accepted,
    body_of_64_kib_accepted,
    body_over_64_kib_rejected,
    malformed_json_rejected,
    non_object_json_rejected,
    empty_json_body_rejected,
    unknown_path_in_prefix,
    wrong_method_lists_allowed,
    request_id_is_echoed_or_made,
);

/// Credentials of nobody.
fn unknown_credentials() -> Value {
    json!({"email": unique_email(), "password": unique_password()})
}

fn credentials(account: &Account) -> Value {
    json!({"email": account.email, "password": account.password})
}

async fn healthz(ctx: Ctx) -> CaseResult {
    let resp = ctx.request(Method::GET, "/healthz").send().await?;
    resp.expect_json(200)?;
    resp.expect_at("", &json!({"status": "ok"}))?;
    Ok(())
}

/// `/livez` (the process answers) and `/readyz` (the database answers) say so in the shape
/// of `/healthz`, are never cached, and answer only `GET` (and `HEAD`).
async fn livez_and_readyz(ctx: Ctx) -> CaseResult {
    for path in ["/livez", "/readyz"] {
        let resp = ctx.request(Method::GET, path).send().await?;
        resp.expect_json(200)?;
        resp.expect_at("", &json!({"status": "ok"}))?;
        if resp.header_values("cache-control") != ["no-store"] {
            return Err(resp
                .fail(format!("{path} with Cache-Control: no-store"))
                .into());
        }
        // 405 in the shape of whichever profile is mounted first; only the status and
        // `Allow` are common to all.
        let resp = ctx.request(Method::POST, path).send().await?;
        if resp.status != 405 {
            return Err(resp.fail(format!("POST {path}: status 405")).into());
        }
        resp.expect_allow(&["GET"])?;
    }
    Ok(())
}

async fn other_media_type_rejected(ctx: Ctx) -> CaseResult {
    for route in ["/login", "/register"] {
        let body = unknown_credentials().to_string().into_bytes();
        ctx.native(Method::POST, route)
            .raw(Some("text/plain"), body)
            .send()
            .await?
            .expect_problem(415, "UNSUPPORTED_MEDIA_TYPE")?;
    }
    Ok(())
}

async fn missing_content_type_rejected(ctx: Ctx) -> CaseResult {
    let body = unknown_credentials().to_string().into_bytes();
    ctx.native(Method::POST, "/login")
        .raw(None, body)
        .send()
        .await?
        .expect_problem(415, "UNSUPPORTED_MEDIA_TYPE")?;
    Ok(())
}

async fn charset_parameter_accepted(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let body = credentials(&account).to_string().into_bytes();
    ctx.native(Method::POST, "/login")
        .raw(Some("application/json; charset=utf-8"), body)
        .send()
        .await?
        .expect_shape(200, &AUTH)?;
    Ok(())
}

async fn body_of_64_kib_accepted(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let body = padded(&credentials(&account), BODY_LIMIT)?;
    ctx.native(Method::POST, "/login")
        .raw(Some("application/json"), body)
        .send()
        .await?
        .expect_shape(200, &AUTH)?;
    Ok(())
}

async fn body_over_64_kib_rejected(ctx: Ctx) -> CaseResult {
    let body = padded(&unknown_credentials(), BODY_LIMIT + 1)?;
    ctx.native(Method::POST, "/login")
        .raw(Some("application/json"), body)
        .send()
        .await?
        .expect_problem(413, "PAYLOAD_TOO_LARGE")?;
    Ok(())
}

/// Sends each raw body to `POST /login` as JSON and expects `400 INVALID_REQUEST`.
async fn expect_invalid_requests(ctx: &Ctx, bodies: &[&str]) -> CaseResult {
    for body in bodies {
        ctx.native(Method::POST, "/login")
            .raw(Some("application/json"), body.as_bytes().to_vec())
            .send()
            .await?
            .expect_problem(400, "INVALID_REQUEST")?;
    }
    Ok(())
}

async fn malformed_json_rejected(ctx: Ctx) -> CaseResult {
    expect_invalid_requests(
        &ctx,
        &[
            r#"{"email": "a@example.com", "password": "#,
            r#"{"email": "a@example.com" "password": "secret-password"}"#,
        ],
    )
    .await
}

async fn non_object_json_rejected(ctx: Ctx) -> CaseResult {
    expect_invalid_requests(
        &ctx,
        &[
            "[]",
            r#"["a@example.com"]"#,
            r#""text""#,
            "42",
            "null",
            "true",
        ],
    )
    .await
}

async fn empty_json_body_rejected(ctx: Ctx) -> CaseResult {
    expect_invalid_requests(&ctx, &[""]).await
}

async fn unknown_path_in_prefix(ctx: Ctx) -> CaseResult {
    let unknown = format!("/no-such-route-{}", Uuid::new_v4().simple());
    ctx.native(Method::GET, &unknown)
        .send()
        .await?
        .expect_problem(404, "NOT_FOUND")?;
    ctx.native(Method::POST, &unknown)
        .json(&json!({}))
        .send()
        .await?
        .expect_problem(404, "NOT_FOUND")?;
    ctx.native(Method::GET, "/me/extra")
        .send()
        .await?
        .expect_problem(404, "NOT_FOUND")?;
    Ok(())
}

async fn wrong_method_lists_allowed(ctx: Ctx) -> CaseResult {
    let some_id = format!("/sessions/{}", Uuid::new_v4());
    let probes: [(Method, &str, &[&str]); 9] = [
        (Method::GET, "/login", &["POST"]),
        (Method::GET, "/register", &["POST"]),
        (Method::PUT, "/me", &["GET"]),
        (Method::GET, "/refresh", &["POST"]),
        (Method::GET, "/logout", &["POST"]),
        (Method::POST, "/sessions", &["GET"]),
        (Method::GET, &some_id, &["DELETE"]),
        (Method::GET, "/password", &["POST"]),
        (Method::PUT, "/tokens", &["GET", "POST"]),
    ];
    for (method, route, allowed) in probes {
        let resp = ctx.native(method, route).send().await?;
        resp.expect_problem_any_code(405)?;
        resp.expect_allow(allowed)?;
    }
    Ok(())
}

/// Every answer carries `X-Request-Id`: the one the client sent when it is a sane token
/// (letters, digits, `-_.:/+=@`, at most 128), else one the server made; made ones differ.
async fn request_id_is_echoed_or_made(ctx: Ctx) -> CaseResult {
    let id_of = |resp: &Resp| -> Result<String, Failure> {
        match resp.header_values("x-request-id").as_slice() {
            [id] if !id.is_empty() => Ok(id.clone()),
            _ => Err(resp.fail("one non-empty `X-Request-Id` header")),
        }
    };
    let sent = ctx
        .native(Method::POST, "/login")
        .header("x-request-id", "conformance-7.a:b")
        .json(&unknown_credentials())
        .send()
        .await?;
    if id_of(&sent)? != "conformance-7.a:b" {
        return Err(sent
            .fail("the `X-Request-Id` sent (`conformance-7.a:b`), echoed")
            .into());
    }
    let forged = ctx
        .request(Method::GET, "/healthz")
        .header("x-request-id", "two words")
        .send()
        .await?;
    let made = id_of(&forged)?;
    if made == "two words" {
        return Err(forged
            .fail("a new id instead of the unsafe one sent")
            .into());
    }
    let again = id_of(&ctx.request(Method::GET, "/healthz").send().await?)?;
    if again == made {
        return Err(forged.fail("a different id for each request").into());
    }
    Ok(())
}
