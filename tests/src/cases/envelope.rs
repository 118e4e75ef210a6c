//! The `envelope` profile (seed 000): `POST /token` and errors in a
//! `{"message", "error": {"code"}}` envelope.

use super::common::{
    MALFORMED_BODIES, expect_bad_credentials_indistinguishable, expect_other_media_types_refused,
    expect_oversized_body_refused, expect_unknown_paths_not_found, expect_wrong_methods_refused,
    post, post_raw,
};
use super::prelude::*;
use crate::profile::Profile;
use crate::shape::ENVELOPE_TOKEN;
use crate::users::{User, expect_jwt_lifetime};

cases!("envelope" needs [Envelope]:
    token_seed_example,
    token_for_new_user,
    token_accepted_by_other_profiles,
    missing_fields_rejected,
    malformed_body_rejected,
    invalid_email_rejected,
    wrong_password_same_as_unknown_email,
    inactive_right_password_forbidden,
    inactive_wrong_password_indistinguishable,
    unknown_path_not_found,
    wrong_method_lists_allowed,
    other_media_type_rejected,
    body_over_64_kib_rejected,
    token_is_not_cached,
);

const PROFILE: Profile = Profile::Envelope;
const TOKEN: &str = "/token";
/// The seed's example request.
const SEED_EMAIL: &str = "john@doe.com";
const SEED_PASSWORD: &str = "JohnDoe123!";
/// The default access-token lifetime.
const LIFETIME_SECS: i64 = 86_400;

fn missing_parameters() -> Value {
    json!({"message": "Missing parameters", "error": {"code": "INVALID_REQUEST"}})
}

fn invalid_credentials() -> Value {
    json!({"message": "Invalid credentials", "error": {"code": "INVALID_CREDENTIALS"}})
}

/// `POST /token` with `body`.
async fn token(ctx: &Ctx, body: &Value) -> Result<Resp, Failure> {
    post(ctx, PROFILE, TOKEN, body).await
}

/// A token for `user`: 200 in the seed's exact shape, a JWT living 86400 s.
async fn expect_token(ctx: &Ctx, user: &User) -> Result<(String, Value), Failure> {
    let resp = token(ctx, &user.credentials()).await?;
    resp.expect_shape(200, &ENVELOPE_TOKEN)?;
    let access = resp.str_at("/data/access_token")?.to_owned();
    let claims = expect_jwt_lifetime(&access, LIFETIME_SECS)?;
    Ok((access, claims))
}

async fn token_seed_example(ctx: Ctx) -> CaseResult {
    let creation = ctx.ensure_seed_user(SEED_EMAIL, SEED_PASSWORD).await?;
    let seed = User {
        email: SEED_EMAIL.to_owned(),
        password: SEED_PASSWORD.to_owned(),
        full_name: None,
    };
    expect_token(&ctx, &seed)
        .await
        .map_err(|failure| match creation {
            Some(why) => Failure {
                got: format!("{} (creating the seed user had failed: {why})", failure.got),
                ..failure
            },
            None => failure,
        })?;
    Ok(())
}

async fn token_for_new_user(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let (_, claims) = expect_token(&ctx, &user).await?;
    if claims["email"] != user.email.as_str() || !claims["sub"].is_string() {
        return Err(Failure::new(
            format!("claims with sub and email {:?}", user.email),
            format!("claims {claims}"),
        )
        .into());
    }
    Ok(())
}

async fn token_accepted_by_other_profiles(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let (access, _) = expect_token(&ctx, &user).await?;
    ctx.expect_accepted_elsewhere(PROFILE, &access, &user.email)
        .await
}

async fn missing_fields_rejected(ctx: Ctx) -> CaseResult {
    let user = User::fresh();
    for body in [
        json!({"email": user.email}),
        json!({"password": user.password}),
        json!({}),
    ] {
        token(&ctx, &body)
            .await?
            .expect_exact(400, &missing_parameters())
            .step(&format!("body {body}"))?;
    }
    Ok(())
}

async fn malformed_body_rejected(ctx: Ctx) -> CaseResult {
    for body in MALFORMED_BODIES {
        post_raw(&ctx, PROFILE, TOKEN, body)
            .await?
            .expect_exact(400, &missing_parameters())
            .step(&format!("body {body:?}"))?;
    }
    Ok(())
}

async fn invalid_email_rejected(ctx: Ctx) -> CaseResult {
    for email in ["not-an-email", "john@", "@doe.com", ""] {
        token(&ctx, &json!({"email": email, "password": SEED_PASSWORD}))
            .await?
            .expect_exact(400, &missing_parameters())
            .step(&format!("email {email:?}"))?;
    }
    Ok(())
}

async fn wrong_password_same_as_unknown_email(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    expect_bad_credentials_indistinguishable(
        &ctx,
        PROFILE,
        TOKEN,
        &user,
        401,
        &invalid_credentials(),
    )
    .await
}

async fn inactive_right_password_forbidden(ctx: Ctx) -> CaseResult {
    let user = ctx.new_inactive_user().await?;
    token(&ctx, &user.credentials()).await?.expect_exact(
        403,
        &json!({"message": "User account is not active", "error": {"code": "ACCOUNT_INACTIVE"}}),
    )?;
    Ok(())
}

async fn inactive_wrong_password_indistinguishable(ctx: Ctx) -> CaseResult {
    let user = ctx.new_inactive_user().await?;
    expect_bad_credentials_indistinguishable(
        &ctx,
        PROFILE,
        TOKEN,
        &user,
        401,
        &invalid_credentials(),
    )
    .await
}

async fn unknown_path_not_found(ctx: Ctx) -> CaseResult {
    expect_unknown_paths_not_found(&ctx, PROFILE, TOKEN).await
}

async fn wrong_method_lists_allowed(ctx: Ctx) -> CaseResult {
    expect_wrong_methods_refused(
        &ctx,
        PROFILE,
        &[
            (Method::GET, TOKEN, &["POST"]),
            (Method::DELETE, TOKEN, &["POST"]),
        ],
    )
    .await
}

async fn other_media_type_rejected(ctx: Ctx) -> CaseResult {
    expect_other_media_types_refused(&ctx, PROFILE, TOKEN).await
}

async fn body_over_64_kib_rejected(ctx: Ctx) -> CaseResult {
    expect_oversized_body_refused(&ctx, PROFILE, TOKEN).await
}

/// The token answer says `Cache-Control: no-store` (issue 10, rule 11).
async fn token_is_not_cached(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let resp = token(&ctx, &user.credentials()).await?;
    resp.expect_shape(200, &ENVELOPE_TOKEN)?;
    resp.expect_no_store()?;
    Ok(())
}
