//! Checks the profiles with plain JSON errors (`envelope`, `personal-token`, `rbac`,
//! `jwt-user`) share: the shared rules' answers in each profile's own shape, bad credentials
//! that cannot be told apart from an unknown email, and inactive users.

use super::prelude::*;
use crate::profile::Profile;
use crate::users::{User, unknown_credentials};

/// The largest accepted body.
pub(crate) const BODY_LIMIT: usize = 64 * 1024;

/// `object` serialized and padded with whitespace inside the braces to exactly `len` bytes.
pub(crate) fn padded(object: &Value, len: usize) -> Result<Vec<u8>, Failure> {
    let text = object.to_string();
    let inner = text
        .strip_suffix('}')
        .filter(|_| text.len() <= len)
        .ok_or_else(|| Failure::new(format!("a JSON object of at most {len} bytes"), &text))?;
    Ok(format!("{inner}{}}}", " ".repeat(len - text.len())).into_bytes())
}

/// `profile`'s error body for an error its seed does not spell out.
fn plain_error(profile: Profile, reason: &str, code: &str) -> Result<Value, Failure> {
    profile.plain_error(reason, code).ok_or_else(|| {
        Failure::new(
            "a profile with plain JSON errors",
            format!("{} answers problem documents", profile.name()),
        )
    })
}

/// `POST route` under `profile` with `body` as JSON.
pub(crate) async fn post(
    ctx: &Ctx,
    profile: Profile,
    route: &str,
    body: &Value,
) -> Result<Resp, Failure> {
    ctx.at(profile, Method::POST, route).json(body).send().await
}

/// `POST route` under `profile` with a raw body sent as `application/json`.
pub(crate) async fn post_raw(
    ctx: &Ctx,
    profile: Profile,
    route: &str,
    body: &str,
) -> Result<Resp, Failure> {
    ctx.at(profile, Method::POST, route)
        .raw(Some("application/json"), body.as_bytes().to_vec())
        .send()
        .await
}

/// Bodies that are not JSON objects: malformed JSON, JSON of another type, nothing.
pub(crate) const MALFORMED_BODIES: &[&str] = &[
    r#"{"email": "a@example.com", "password": "#,
    r#"{"email": "a@example.com" "password": "secret-password"}"#,
    "[]",
    r#""text""#,
    "42",
    "null",
    "",
];

/// A path under the prefix that matches no route, with either method, and a known route
/// with an extra segment: 404 with "Not Found" in `profile`'s shape.
pub(crate) async fn expect_unknown_paths_not_found(
    ctx: &Ctx,
    profile: Profile,
    known: &str,
) -> CaseResult {
    let expected = plain_error(profile, "Not Found", "NOT_FOUND")?;
    let unknown = format!("/no-such-route-{}", Uuid::new_v4().simple());
    ctx.at(profile, Method::GET, &unknown)
        .send()
        .await?
        .expect_exact(404, &expected)?;
    ctx.at(profile, Method::POST, &unknown)
        .json(&json!({}))
        .send()
        .await?
        .expect_exact(404, &expected)?;
    ctx.at(profile, Method::GET, &format!("{known}/extra"))
        .send()
        .await?
        .expect_exact(404, &expected)?;
    Ok(())
}

/// Each `(method, route, allowed)` probe answers 405 with "Method Not Allowed" in
/// `profile`'s shape and an `Allow` header listing `allowed`.
pub(crate) async fn expect_wrong_methods_refused(
    ctx: &Ctx,
    profile: Profile,
    probes: &[(Method, &str, &[&str])],
) -> CaseResult {
    let expected = plain_error(profile, "Method Not Allowed", "METHOD_NOT_ALLOWED")?;
    for (method, route, allowed) in probes {
        let resp = ctx.at(profile, method.clone(), route).send().await?;
        resp.expect_exact(405, &expected)?;
        resp.expect_allow(allowed)?;
    }
    Ok(())
}

/// A `text/plain` body, and a body without `Content-Type`, to `POST route`: 415 with
/// "Unsupported Media Type" in `profile`'s shape.
pub(crate) async fn expect_other_media_types_refused(
    ctx: &Ctx,
    profile: Profile,
    route: &str,
) -> CaseResult {
    let expected = plain_error(profile, "Unsupported Media Type", "UNSUPPORTED_MEDIA_TYPE")?;
    for content_type in [Some("text/plain"), None] {
        let body = unknown_credentials().to_string().into_bytes();
        ctx.at(profile, Method::POST, route)
            .raw(content_type, body)
            .send()
            .await?
            .expect_exact(415, &expected)?;
    }
    Ok(())
}

/// A body one byte over 64 KiB to `POST route`: 413 with "Payload Too Large" in `profile`'s
/// shape.
pub(crate) async fn expect_oversized_body_refused(
    ctx: &Ctx,
    profile: Profile,
    route: &str,
) -> CaseResult {
    let expected = plain_error(profile, "Payload Too Large", "PAYLOAD_TOO_LARGE")?;
    let body = padded(&unknown_credentials(), BODY_LIMIT + 1)?;
    ctx.at(profile, Method::POST, route)
        .raw(Some("application/json"), body)
        .send()
        .await?
        .expect_exact(413, &expected)?;
    Ok(())
}

/// A wrong password for a real user and an unknown email, posted to `route`, both answer
/// `status` with exactly `expected`, and the two answers cannot be told apart.
pub(crate) async fn expect_bad_credentials_indistinguishable(
    ctx: &Ctx,
    profile: Profile,
    route: &str,
    user: &User,
    status: u16,
    expected: &Value,
) -> CaseResult {
    let wrong_password = post(ctx, profile, route, &user.with_wrong_password()).await?;
    wrong_password
        .expect_exact(status, expected)
        .step("a wrong password")?;
    let unknown_email = post(ctx, profile, route, &unknown_credentials()).await?;
    unknown_email
        .expect_exact(status, expected)
        .step("an unknown email")?;
    wrong_password.expect_same_as(&unknown_email, "a wrong password and an unknown email")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_reaches_the_exact_length_and_stays_json() {
        let object = json!({"email": "a@example.com", "password": "p"});
        for len in [BODY_LIMIT, BODY_LIMIT + 1] {
            let body = padded(&object, len).unwrap();
            assert_eq!(body.len(), len);
            assert_eq!(serde_json::from_slice::<Value>(&body).unwrap(), object);
        }
        assert!(padded(&object, 5).is_err());
    }

    #[test]
    fn malformed_bodies_are_not_json_objects() {
        for body in MALFORMED_BODIES {
            let parsed = serde_json::from_str::<Value>(body);
            assert!(parsed.is_err() || !parsed.unwrap().is_object(), "{body}");
        }
    }
}
