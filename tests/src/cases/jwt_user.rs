//! The `jwt-user` profile (seed 004): `POST /login` answering a JWT and the user, with
//! `{"success": false, "message"}` errors.

use super::common::{
    MALFORMED_BODIES, expect_bad_credentials_indistinguishable, expect_other_media_types_refused,
    expect_oversized_body_refused, expect_unknown_paths_not_found, expect_wrong_methods_refused,
    post, post_raw,
};
use super::prelude::*;
use crate::native::FULL_NAME;
use crate::profile::Profile;
use crate::shape::{JWT_USER_ERROR, JWT_USER_LOGIN, parse_utc};
use crate::users::{User, expect_jwt_lifetime};

cases!("jwt-user" needs [JwtUser]:
    login_returns_token_and_user,
    token_accepted_by_other_profiles,
    wrong_password_same_as_unknown_email,
    inactive_right_password_forbidden,
    inactive_wrong_password_indistinguishable,
    missing_password_rejected,
    missing_email_rejected,
    missing_both_names_email,
    invalid_email_rejected,
    malformed_body_rejected,
    unknown_path_not_found,
    wrong_method_lists_allowed,
    other_media_type_rejected,
    body_over_64_kib_rejected,
    login_is_not_cached,
);

const PROFILE: Profile = Profile::JwtUser;
const LOGIN: &str = "/login";
/// The default access-token lifetime.
const LIFETIME_SECS: i64 = 3600;

fn invalid_credentials() -> Value {
    json!({"success": false, "message": "Invalid credentials"})
}

fn failure(message: &str) -> Value {
    json!({"success": false, "message": message})
}

/// `POST /login` with `body`.
async fn login(ctx: &Ctx, body: &Value) -> Result<Resp, Failure> {
    post(ctx, PROFILE, LOGIN, body).await
}

/// Logs `user` in: 200 in the seed's shape, a JWT living 3600 s; returns the answer and
/// the token's claims.
async fn expect_login(ctx: &Ctx, user: &User) -> Result<(Resp, Value), Failure> {
    let resp = login(ctx, &user.credentials()).await?;
    resp.expect_shape(200, &JWT_USER_LOGIN)?;
    let claims = expect_jwt_lifetime(resp.str_at("/access_token")?, LIFETIME_SECS)?;
    Ok((resp, claims))
}

async fn login_returns_token_and_user(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let (resp, claims) = expect_login(&ctx, &user).await?;
    resp.expect_at("/user/name", &json!(FULL_NAME))?;
    resp.expect_at("/user/email", &json!(user.email))?;
    resp.expect_at("/user/id", &claims["sub"])
        .step("the user id is the token's `sub`")?;
    let created = parse_utc(resp.str_at("/user/created_at")?);
    let updated = parse_utc(resp.str_at("/user/updated_at")?);
    if created.zip(updated).is_none_or(|(c, u)| u < c) {
        return Err(resp.fail("updated_at not before created_at").into());
    }
    Ok(())
}

async fn token_accepted_by_other_profiles(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let (resp, _) = expect_login(&ctx, &user).await?;
    ctx.expect_accepted_elsewhere(PROFILE, resp.str_at("/access_token")?, &user.email)
        .await
}

async fn wrong_password_same_as_unknown_email(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    expect_bad_credentials_indistinguishable(
        &ctx,
        PROFILE,
        LOGIN,
        &user,
        401,
        &invalid_credentials(),
    )
    .await
}

async fn inactive_right_password_forbidden(ctx: Ctx) -> CaseResult {
    let user = ctx.new_inactive_user().await?;
    login(&ctx, &user.credentials())
        .await?
        .expect_exact(403, &failure("User account is not active"))?;
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
        &invalid_credentials(),
    )
    .await
}

async fn missing_password_rejected(ctx: Ctx) -> CaseResult {
    login(&ctx, &json!({"email": User::fresh().email}))
        .await?
        .expect_exact(422, &failure("The password field is required."))?;
    Ok(())
}

async fn missing_email_rejected(ctx: Ctx) -> CaseResult {
    login(&ctx, &json!({"password": User::fresh().password}))
        .await?
        .expect_exact(422, &failure("The email field is required."))?;
    Ok(())
}

async fn missing_both_names_email(ctx: Ctx) -> CaseResult {
    login(&ctx, &json!({}))
        .await?
        .expect_exact(422, &failure("The email field is required."))?;
    Ok(())
}

async fn invalid_email_rejected(ctx: Ctx) -> CaseResult {
    for email in ["not-an-email", "user@"] {
        login(
            &ctx,
            &json!({"email": email, "password": User::fresh().password}),
        )
        .await?
        .expect_exact(
            422,
            &failure("The email field must be a valid email address."),
        )
        .step(&format!("email {email:?}"))?;
    }
    Ok(())
}

async fn malformed_body_rejected(ctx: Ctx) -> CaseResult {
    for body in MALFORMED_BODIES {
        let resp = post_raw(&ctx, PROFILE, LOGIN, body).await?;
        resp.expect_shape(422, &JWT_USER_ERROR)
            .step(&format!("body {body:?}"))?;
        resp.expect_at("/success", &json!(false))
            .step(&format!("body {body:?}"))?;
    }
    Ok(())
}

async fn unknown_path_not_found(ctx: Ctx) -> CaseResult {
    expect_unknown_paths_not_found(&ctx, PROFILE, LOGIN).await
}

async fn wrong_method_lists_allowed(ctx: Ctx) -> CaseResult {
    expect_wrong_methods_refused(
        &ctx,
        PROFILE,
        &[
            (Method::GET, LOGIN, &["POST"]),
            (Method::PATCH, LOGIN, &["POST"]),
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

/// The login answer (a token and the user) says `Cache-Control: no-store` (issue 10, rule 11).
async fn login_is_not_cached(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let (resp, _) = expect_login(&ctx, &user).await?;
    resp.expect_no_store()?;
    Ok(())
}
