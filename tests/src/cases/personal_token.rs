//! The `personal-token` profile (seed 001): `POST /login` answering an opaque personal access
//! token, with `{"error"}` for bad credentials and Laravel's validation errors.

use super::common::{
    MALFORMED_BODIES, expect_bad_credentials_indistinguishable, expect_other_media_types_refused,
    expect_oversized_body_refused, expect_unknown_paths_not_found, expect_wrong_methods_refused,
    post, post_raw,
};
use super::prelude::*;
use crate::profile::Profile;
use crate::shape::{LARAVEL_VALIDATION, LISTED_PERSONAL_TOKEN, PERSONAL_TOKEN_LOGIN, parse_utc};
use crate::users::User;

cases!("personal-token" needs [PersonalToken]:
    login_seed_example,
    login_without_options,
    token_accepted_by_other_profiles,
    listed_by_native_tokens needs [PersonalToken, Native],
    wrong_password_same_as_unknown_email,
    inactive_right_password_forbidden,
    inactive_wrong_password_indistinguishable,
    missing_email_rejected,
    missing_password_rejected,
    two_failing_fields_counted,
    invalid_email_rejected,
    non_positive_expiration_rejected,
    non_integer_expiration_rejected,
    token_name_length_limit,
    malformed_body_rejected,
    unknown_path_not_found,
    wrong_method_lists_allowed,
    other_media_type_rejected,
    body_over_64_kib_rejected,
    token_is_not_cached,
);

const PROFILE: Profile = Profile::PersonalToken;
const LOGIN: &str = "/login";
/// The seed's example request.
const SEED_EMAIL: &str = "user@example.com";
const SEED_PASSWORD: &str = "password123";
/// The recognisable start of every personal access token.
const TOKEN_PREFIX: &str = "authpat_";
/// Shortest acceptable token: the prefix and at least 128 random bits.
const MIN_TOKEN_LEN: usize = 30;
/// Tolerance on `expires_at - created_at`, for a clock tick between the two.
const EXPIRY_SLACK_SECS: i64 = 2;

fn invalid_credentials() -> Value {
    json!({"error": "Invalid credentials"})
}

/// Laravel's answer when only `field` fails, with `message`.
fn one_error(field: &str, message: &str) -> Value {
    json!({"message": message, "errors": {field: [message]}})
}

/// `POST /login` with `body`.
async fn login(ctx: &Ctx, body: &Value) -> Result<Resp, Failure> {
    post(ctx, PROFILE, LOGIN, body).await
}

/// `body` logs in: 201 with exactly `{"token"}`, a personal token with the prefix.
async fn expect_token(ctx: &Ctx, body: &Value) -> Result<String, Failure> {
    let resp = login(ctx, body).await?;
    resp.expect_shape(201, &PERSONAL_TOKEN_LOGIN)?;
    let token = resp.str_at("/token")?;
    if !token.starts_with(TOKEN_PREFIX) || token.len() < MIN_TOKEN_LEN {
        return Err(resp.fail(format!(
            "a token starting with {TOKEN_PREFIX:?}, at least {MIN_TOKEN_LEN} characters long"
        )));
    }
    Ok(token.to_owned())
}

/// A body whose only failing field is `expiration`, with `value`.
fn with_expiration(user: &User, value: Value) -> Value {
    let mut body = user.credentials();
    body["expiration"] = value;
    body
}

/// The answer is a validation failure of `field` alone, whatever the wording: 422 in
/// Laravel's shape, `errors` naming only `field`, and `message` its first message.
fn expect_only_field_failed(resp: &Resp, field: &str) -> Result<(), Failure> {
    let body = resp.expect_shape(422, &LARAVEL_VALIDATION)?;
    let errors = body["errors"].as_object();
    let first = body["errors"][field][0].as_str();
    let only_field = errors.is_some_and(|e| e.len() == 1 && e.contains_key(field));
    if only_field && first.is_some() && body["message"].as_str() == first {
        Ok(())
    } else {
        Err(resp.fail(format!(
            "422 whose `errors` name only {field:?}, with `message` its first message"
        )))
    }
}

async fn login_seed_example(ctx: Ctx) -> CaseResult {
    let creation = ctx.ensure_seed_user(SEED_EMAIL, SEED_PASSWORD).await?;
    let seed = json!({
        "email": SEED_EMAIL,
        "password": SEED_PASSWORD,
        "expiration": 3600,
        "token_name": "MyAppToken",
    });
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

async fn login_without_options(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let first = expect_token(&ctx, &user.credentials()).await?;
    let second = expect_token(&ctx, &user.credentials()).await?;
    if first == second {
        return Err(Failure::new(
            "a new token for every login",
            "two logins answered the same token",
        )
        .into());
    }
    Ok(())
}

async fn token_accepted_by_other_profiles(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let token = expect_token(&ctx, &user.credentials()).await?;
    ctx.expect_accepted_elsewhere(PROFILE, &token, &user.email)
        .await
}

async fn listed_by_native_tokens(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let user = User {
        email: account.email.clone(),
        password: account.password.clone(),
        full_name: None,
    };
    let name = format!("pt-{}", Uuid::new_v4().simple());
    let mut body = user.credentials();
    body["token_name"] = json!(name);
    body["expiration"] = json!(3600);
    expect_token(&ctx, &body).await?;
    let agent = format!("conformance-agent-{}", Uuid::new_v4().simple());
    let resp = ctx
        .at(PROFILE, Method::POST, LOGIN)
        .header("user-agent", agent.as_str())
        .json(&user.credentials())
        .send()
        .await?;
    resp.expect_shape(201, &PERSONAL_TOKEN_LOGIN)?;

    let resp = ctx
        .native(Method::GET, "/tokens")
        .bearer(&account.pair.access)
        .send()
        .await?;
    let items = resp.expect_list_of(&LISTED_PERSONAL_TOKEN)?;
    let named = items.iter().find(|t| t["name"] == name.as_str());
    let lifetime = named.and_then(|t| {
        let created = parse_utc(t["created_at"].as_str()?)?;
        Some(parse_utc(t["expires_at"].as_str()?)? - created)
    });
    let by_agent = items
        .iter()
        .find(|t| t["name"] == agent.as_str())
        .is_some_and(|t| t["expires_at"].is_null());
    if items.len() != 2
        || lifetime.is_none_or(|secs| (secs - 3600).abs() > EXPIRY_SLACK_SECS)
        || !by_agent
    {
        return Err(resp
            .fail(format!(
                "exactly two tokens: {name:?} expiring 3600 s after its creation, and one \
                 named after the User-Agent {agent:?} that never expires"
            ))
            .into());
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
        403,
        &invalid_credentials(),
    )
    .await
}

async fn inactive_right_password_forbidden(ctx: Ctx) -> CaseResult {
    let user = ctx.new_inactive_user().await?;
    login(&ctx, &user.credentials())
        .await?
        .expect_exact(403, &json!({"error": "User account is not active"}))?;
    Ok(())
}

async fn inactive_wrong_password_indistinguishable(ctx: Ctx) -> CaseResult {
    let user = ctx.new_inactive_user().await?;
    expect_bad_credentials_indistinguishable(
        &ctx,
        PROFILE,
        LOGIN,
        &user,
        403,
        &invalid_credentials(),
    )
    .await
}

async fn missing_email_rejected(ctx: Ctx) -> CaseResult {
    login(&ctx, &json!({"password": SEED_PASSWORD}))
        .await?
        .expect_exact(422, &one_error("email", "The email field is required."))?;
    Ok(())
}

async fn missing_password_rejected(ctx: Ctx) -> CaseResult {
    login(&ctx, &json!({"email": User::fresh().email}))
        .await?
        .expect_exact(
            422,
            &one_error("password", "The password field is required."),
        )?;
    Ok(())
}

async fn two_failing_fields_counted(ctx: Ctx) -> CaseResult {
    login(&ctx, &json!({})).await?.expect_exact(
        422,
        &json!({
            "message": "The email field is required. (and 1 more error)",
            "errors": {
                "email": ["The email field is required."],
                "password": ["The password field is required."],
            },
        }),
    )?;
    Ok(())
}

async fn invalid_email_rejected(ctx: Ctx) -> CaseResult {
    let expected = one_error("email", "The email field must be a valid email address.");
    for email in ["not-an-email", "user@"] {
        login(&ctx, &json!({"email": email, "password": SEED_PASSWORD}))
            .await?
            .expect_exact(422, &expected)
            .step(&format!("email {email:?}"))?;
    }
    Ok(())
}

async fn non_positive_expiration_rejected(ctx: Ctx) -> CaseResult {
    let user = User::fresh();
    for value in [json!(0), json!(-60)] {
        let resp = login(&ctx, &with_expiration(&user, value.clone())).await?;
        expect_only_field_failed(&resp, "expiration").step(&format!("expiration {value}"))?;
    }
    Ok(())
}

async fn non_integer_expiration_rejected(ctx: Ctx) -> CaseResult {
    let user = User::fresh();
    let expected = one_error("expiration", "The expiration field must be an integer.");
    for value in [json!("x"), json!(1.5)] {
        login(&ctx, &with_expiration(&user, value.clone()))
            .await?
            .expect_exact(422, &expected)
            .step(&format!("expiration {value}"))?;
    }
    Ok(())
}

async fn token_name_length_limit(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let named = |len: usize| {
        let mut body = user.credentials();
        body["token_name"] = json!("n".repeat(len));
        body
    };
    expect_token(&ctx, &named(255))
        .await
        .step("a token_name of 255 characters")?;
    login(&ctx, &named(256)).await?.expect_exact(
        422,
        &one_error(
            "token_name",
            "The token_name field must not be greater than 255 characters.",
        ),
    )?;
    Ok(())
}

async fn malformed_body_rejected(ctx: Ctx) -> CaseResult {
    for body in MALFORMED_BODIES {
        let resp = post_raw(&ctx, PROFILE, LOGIN, body).await?;
        let answer = resp
            .expect_shape(422, &LARAVEL_VALIDATION)
            .step(&format!("body {body:?}"))?;
        if answer["errors"].as_object().is_none_or(|e| e.is_empty()) {
            return Err(resp
                .fail(format!(
                    "body {body:?}: 422 naming at least one field in `errors`"
                ))
                .into());
        }
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
            (Method::PUT, LOGIN, &["POST"]),
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

/// The login answer (a personal token) says `Cache-Control: no-store` (issue 10, rule 11).
async fn token_is_not_cached(ctx: Ctx) -> CaseResult {
    let user = ctx.new_user().await?;
    let resp = login(&ctx, &user.credentials()).await?;
    resp.expect_shape(201, &PERSONAL_TOKEN_LOGIN)?;
    resp.expect_no_store()?;
    Ok(())
}
