//! The `rbac` profile (seed 003): `POST /login` and `GET /me` with roles and organization,
//! `{"detail"}` errors and FastAPI's validation errors.

use super::admin::patch_user;
use super::common::{
    MALFORMED_BODIES, expect_bad_credentials_indistinguishable, expect_other_media_types_refused,
    expect_oversized_body_refused, expect_unknown_paths_not_found, expect_wrong_methods_refused,
    post, post_raw,
};
use super::prelude::*;
use crate::jwt::Jwt;
use crate::native::FULL_NAME;
use crate::profile::Profile;
use crate::shape::{RBAC_ME, RBAC_TOKEN, RBAC_VALIDATION};
use crate::users::{User, expect_jwt_lifetime};

cases!("rbac" needs [Rbac]:
    login_seed_example,
    token_claims_name_the_user,
    token_accepted_by_other_profiles,
    me_returns_profile,
    me_shows_assigned_role needs [Rbac, Native],
    me_accepts_native_token needs [Rbac, Native],
    me_without_token_unauthorized,
    me_with_invalid_token_unauthorized,
    wrong_password_same_as_unknown_email,
    inactive_right_password_forbidden,
    inactive_wrong_password_indistinguishable,
    missing_fields_rejected,
    invalid_email_rejected,
    malformed_body_rejected,
    unknown_path_not_found,
    wrong_method_lists_allowed,
    other_media_type_rejected,
    body_over_64_kib_rejected,
    answers_are_not_cached,
);

const PROFILE: Profile = Profile::Rbac;
const LOGIN: &str = "/login";
/// The seed's example request.
const SEED_EMAIL: &str = "user@example.com";
const SEED_PASSWORD: &str = "password123";
/// The default access-token lifetime.
const LIFETIME_SECS: i64 = 1800;
/// A role name from the seed's example.
const SEED_ROLE: &str = "pmc_admin";

fn incorrect_credentials() -> Value {
    json!({"detail": "Incorrect email or password"})
}

fn could_not_validate() -> Value {
    json!({"detail": "Could not validate credentials"})
}

/// FastAPI's entry for a missing body field.
fn missing(field: &str) -> Value {
    json!({"loc": ["body", field], "msg": "Field required", "type": "missing"})
}

/// `POST /login` with `body`.
async fn login(ctx: &Ctx, body: &Value) -> Result<Resp, Failure> {
    post(ctx, PROFILE, LOGIN, body).await
}

/// Logs `user` in: 200 with exactly `{access_token, token_type: "bearer"}`, a JWT living
/// 1800 s; returns the token and its claims.
async fn expect_token(ctx: &Ctx, user: &User) -> Result<(String, Value), Failure> {
    let resp = login(ctx, &user.credentials()).await?;
    resp.expect_shape(200, &RBAC_TOKEN)?;
    let token = resp.str_at("/access_token")?.to_owned();
    let claims = expect_jwt_lifetime(&token, LIFETIME_SECS)?;
    Ok((token, claims))
}

/// What is wrong with `claims` for a token of `email`: `sub` a UUID, `email`, `roles` an
/// array of strings, `org_id` present (UUID or null).
fn claim_problems(claims: &Value, email: &str) -> Vec<&'static str> {
    let is_uuid = |v: &Value| v.as_str().is_some_and(|s| Uuid::parse_str(s).is_ok());
    let mut problems = Vec::new();
    if !is_uuid(&claims["sub"]) {
        problems.push("`sub` is not a UUID");
    }
    if claims["email"] != email {
        problems.push("`email` is not the user's");
    }
    let roles = claims["roles"].as_array();
    if roles.is_none_or(|roles| roles.iter().any(|r| !r.is_string())) {
        problems.push("`roles` is not an array of strings");
    }
    let org = claims.get("org_id");
    if org.is_none_or(|o| !o.is_null() && !is_uuid(o)) {
        problems.push("`org_id` is not a UUID or null");
    }
    problems
}

/// `claims` pass [`claim_problems`].
fn expect_claims(claims: &Value, email: &str) -> Result<(), Failure> {
    let problems = claim_problems(claims, email);
    if problems.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        format!("claims with sub (UUID), email {email:?}, roles (array), org_id"),
        format!("claims {claims}: {}", problems.join("; ")),
    ))
}

async fn login_seed_example(ctx: Ctx) -> CaseResult {
    let creation = ctx.ensure_seed_user(SEED_EMAIL, SEED_PASSWORD).await?;
    let seed = User {
        email: SEED_EMAIL.to_owned(),
        password: SEED_PASSWORD.to_owned(),
        full_name: None,
    };
    let (_, claims) = expect_token(&ctx, &seed)
        .await
        .map_err(|failure| match creation {
            Some(why) => Failure {
                got: format!("{} (creating the seed user had failed: {why})", failure.got),
                ..failure
            },
            None => failure,
        })?;
    expect_claims(&claims, SEED_EMAIL)?;
    Ok(())
}

async fn token_claims_name_the_user(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let (_, claims) = expect_token(&ctx, &user).await?;
    expect_claims(&claims, &user.email)?;
    if claims["roles"] != json!([]) || !claims["org_id"].is_null() {
        return Err(Failure::new(
            "roles [] and org_id null for a new user",
            format!("claims {claims}"),
        )
        .into());
    }
    Ok(())
}

async fn token_accepted_by_other_profiles(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let (token, _) = expect_token(&ctx, &user).await?;
    ctx.expect_accepted_elsewhere(PROFILE, &token, &user.email)
        .await
}

async fn me_returns_profile(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let (token, claims) = expect_token(&ctx, &user).await?;
    let resp = ctx.rbac_me(&token).await?;
    resp.expect_shape(200, &RBAC_ME)?;
    let expected = [
        ("/user/id", claims["sub"].clone()),
        ("/user/email", json!(user.email)),
        ("/user/full_name", json!(FULL_NAME)),
        ("/user/phone", Value::Null),
        ("/user/organization_id", Value::Null),
        ("/user/status", json!("active")),
        ("/user/onboarding_completed", json!(false)),
        ("/user/onboarding_step", json!(0)),
        ("/user/onboarding_data", Value::Null),
        ("/roles", json!([])),
        ("/organization_id", Value::Null),
    ];
    for (pointer, value) in expected {
        resp.expect_at(pointer, &value)?;
    }
    Ok(())
}

async fn me_shows_assigned_role(ctx: Ctx) -> CaseResult {
    let admin = ctx.admin_token().await?;
    let account = ctx.register().await?;
    patch_user(&ctx, &admin, &account.id, &json!({"roles": [SEED_ROLE]}))
        .await?
        .expect_shape(200, &crate::shape::USER)
        .step("assigning a role through the admin API")?;
    let user = User {
        email: account.email.clone(),
        password: account.password.clone(),
        full_name: None,
    };
    let (token, _) = expect_token(&ctx, &user).await?;
    let resp = ctx.rbac_me(&token).await?;
    resp.expect_shape(200, &RBAC_ME)?;
    let roles = resp.json().and_then(|b| b["roles"].as_array());
    let as_expected = roles.is_some_and(|roles| {
        roles.len() == 1 && roles[0]["name"] == SEED_ROLE && roles[0]["description"].is_null()
    });
    if !as_expected {
        return Err(resp
            .fail(format!(
                "roles: exactly [{{id: UUID, name: {SEED_ROLE:?}, description: null}}]"
            ))
            .into());
    }
    Ok(())
}

async fn me_accepts_native_token(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = ctx.rbac_me(&account.pair.access).await?;
    resp.expect_shape(200, &RBAC_ME)?;
    resp.expect_at("/user/id", &json!(account.id))?;
    Ok(())
}

async fn me_without_token_unauthorized(ctx: Ctx) -> CaseResult {
    let no_header = ctx.at(PROFILE, Method::GET, "/me").send().await?;
    let basic = ctx
        .at(PROFILE, Method::GET, "/me")
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await?;
    for (resp, what) in [
        (no_header, "no Authorization"),
        (basic, "Basic credentials"),
    ] {
        resp.expect_exact(401, &could_not_validate()).step(what)?;
        resp.expect_challenge(Challenge::Missing).step(what)?;
    }
    Ok(())
}

async fn me_with_invalid_token_unauthorized(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let (token, _) = expect_token(&ctx, &user).await?;
    let forged = Jwt::parse(&token)
        .and_then(Jwt::with_flipped_signature)
        .map_err(|why| Failure::new("a signed access token", why))?
        .encode();
    for (bearer, what) in [
        ("garbage".to_owned(), "a garbage token"),
        (Uuid::new_v4().to_string(), "a UUID as token"),
        (forged, "a token with a forged signature"),
        (String::new(), "`Bearer` without a token"),
    ] {
        let resp = ctx
            .at(PROFILE, Method::GET, "/me")
            .header("authorization", format!("Bearer {bearer}").trim_end())
            .send()
            .await?;
        resp.expect_exact(401, &could_not_validate()).step(what)?;
        resp.expect_challenge(Challenge::InvalidToken).step(what)?;
    }
    Ok(())
}

async fn wrong_password_same_as_unknown_email(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    expect_bad_credentials_indistinguishable(
        &ctx,
        PROFILE,
        LOGIN,
        &user,
        401,
        &incorrect_credentials(),
    )
    .await
}

async fn inactive_right_password_forbidden(ctx: Ctx) -> CaseResult {
    let user = ctx.new_inactive_user().await?;
    login(&ctx, &user.credentials())
        .await?
        .expect_exact(403, &json!({"detail": "User account is not active"}))?;
    Ok(())
}

async fn inactive_wrong_password_indistinguishable(ctx: Ctx) -> CaseResult {
    let user = ctx.new_inactive_user().await?;
    expect_bad_credentials_indistinguishable(
        &ctx,
        PROFILE,
        LOGIN,
        &user,
        401,
        &incorrect_credentials(),
    )
    .await
}

async fn missing_fields_rejected(ctx: Ctx) -> CaseResult {
    let user = User::fresh();
    let probes = [
        (
            json!({"password": user.password}),
            json!([missing("email")]),
        ),
        (json!({"email": user.email}), json!([missing("password")])),
        (json!({}), json!([missing("email"), missing("password")])),
    ];
    for (body, detail) in probes {
        login(&ctx, &body)
            .await?
            .expect_exact(422, &json!({"detail": detail}))
            .step(&format!("body {body}"))?;
    }
    Ok(())
}

async fn invalid_email_rejected(ctx: Ctx) -> CaseResult {
    for email in ["not-an-email", "user@"] {
        let resp = login(&ctx, &json!({"email": email, "password": SEED_PASSWORD})).await?;
        let body = resp
            .expect_shape(422, &RBAC_VALIDATION)
            .step(&format!("email {email:?}"))?;
        if body["detail"].as_array().map(Vec::len) != Some(1)
            || body["detail"][0]["loc"] != json!(["body", "email"])
        {
            return Err(resp
                .fail(format!(
                    "email {email:?}: one entry in `detail`, with loc [\"body\", \"email\"]"
                ))
                .into());
        }
    }
    Ok(())
}

async fn malformed_body_rejected(ctx: Ctx) -> CaseResult {
    for body in MALFORMED_BODIES {
        let resp = post_raw(&ctx, PROFILE, LOGIN, body).await?;
        let answer = resp
            .expect_shape(422, &RBAC_VALIDATION)
            .step(&format!("body {body:?}"))?;
        if answer["detail"][0]["loc"][0] != "body" {
            return Err(resp
                .fail(format!(
                    "body {body:?}: a non-empty `detail` whose first loc starts with \"body\""
                ))
                .into());
        }
    }
    Ok(())
}

async fn unknown_path_not_found(ctx: Ctx) -> CaseResult {
    expect_unknown_paths_not_found(&ctx, PROFILE, "/me").await
}

async fn wrong_method_lists_allowed(ctx: Ctx) -> CaseResult {
    expect_wrong_methods_refused(
        &ctx,
        PROFILE,
        &[
            (Method::GET, LOGIN, &["POST"]),
            (Method::POST, "/me", &["GET"]),
            (Method::DELETE, "/me", &["GET"]),
        ],
    )
    .await
}

async fn other_media_type_rejected(ctx: Ctx) -> CaseResult {
    expect_other_media_types_refused(&ctx, PROFILE, LOGIN).await
}

async fn body_over_64_kib_rejected(ctx: Ctx) -> CaseResult {
    expect_oversized_body_refused(&ctx, PROFILE, LOGIN).await
}

/// The login and `/me` answers say `Cache-Control: no-store` (issue 10, rule 11).
async fn answers_are_not_cached(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let resp = login(&ctx, &user.credentials()).await?;
    resp.expect_shape(200, &RBAC_TOKEN)?;
    resp.expect_no_store().step("POST /login")?;
    let token = resp.str_at("/access_token")?.to_owned();
    ctx.rbac_me(&token)
        .await?
        .expect_no_store()
        .step("GET /me")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_are_checked() {
        let good = json!({
            "sub": "3f1c2a9e-5b7d-4c1e-9a2b-0d4e6f8a1b2c", "email": "a@example.com",
            "roles": ["r"], "org_id": null,
        });
        assert!(claim_problems(&good, "a@example.com").is_empty());
        let bad = json!({"sub": "7", "email": "b@example.com", "roles": "r"});
        assert_eq!(claim_problems(&bad, "a@example.com").len(), 4);
    }
}
