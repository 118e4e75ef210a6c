//! Second factors (issue 15): TOTP set up and confirmed, recovery codes, the second step of a
//! login, step-up of sensitive operations, the seed profiles' refusal, and the admin reset.
//! TOTP codes come from the suite's own implementation ([`crate::totp`]), never the server's.
//!
//! A code is accepted once and steps only ascend, so every code a case sends comes from
//! [`Totp::fresh_code`], which spends the steps in order and keeps clear of step boundaries.

use super::common::post;
use super::prelude::*;
use crate::native::INVALID_CREDENTIALS;
use crate::profile::Profile;
use crate::totp::Totp;

cases!("mfa" needs [Native]:
    setup_changes_nothing_until_confirmed,
    confirm_needs_a_right_code_and_gives_ten_recovery_codes,
    login_then_asks_for_the_second_step,
    second_step_with_a_code_opens_the_session_once,
    a_code_is_accepted_once,
    recovery_codes_work_once,
    new_recovery_codes_void_the_old_ones,
    wrong_answers_kill_the_mfa_token,
    wrong_codes_count_as_failed_logins,
    setup_refused_while_enabled,
    disabling_needs_the_password_and_a_code,
    sensitive_operations_need_a_step_up,
    status_lists_the_factors,
    magic_link_asks_for_the_second_step,
    seed_rbac_login_refused needs [Native, Rbac],
    seed_jwt_user_login_refused needs [Native, JwtUser],
    seed_personal_token_login_refused needs [Native, PersonalToken],
    seed_envelope_login_refused needs [Native, Envelope],
    admin_reset_removes_every_factor needs [Native, Admin],
);

/// What every profile says to a login it cannot finish.
const MFA_REQUIRED_MESSAGE: &str = "Multi-factor authentication required";

/// An account with TOTP on: its authenticator and its recovery codes.
struct Enrolled {
    account: Account,
    totp: Totp,
    /// The code the confirmation spent.
    confirm_code: String,
    recovery_codes: Vec<String>,
}

/// `method route` as `account` with `body`.
async fn send(
    ctx: &Ctx,
    method: Method,
    route: &str,
    bearer: &str,
    body: &Value,
) -> Result<Resp, Failure> {
    ctx.native(method, route)
        .bearer(bearer)
        .json(body)
        .send()
        .await
}

/// Starts a setup: `{secret, otpauth_uri}`, read into the suite's authenticator.
async fn setup(ctx: &Ctx, account: &Account) -> Result<Totp, Failure> {
    let resp = send(
        ctx,
        Method::POST,
        "/mfa/totp/setup",
        &account.pair.access,
        &json!({"current_password": account.password}),
    )
    .await?;
    resp.expect_json(200)?;
    let secret = resp.str_at("/secret")?.to_owned();
    let uri = resp.str_at("/otpauth_uri")?;
    if !uri.starts_with("otpauth://totp/") || !uri.contains(&format!("secret={secret}")) {
        return Err(resp.fail("an otpauth://totp/ URI carrying the secret"));
    }
    Totp::from_base32(&secret).ok_or_else(|| resp.fail("a base32 secret"))
}

/// A new account with TOTP on.
async fn enrolled(ctx: &Ctx) -> Result<Enrolled, Failure> {
    let account = ctx.register().await?;
    let totp = setup(ctx, &account).await?;
    let confirm_code = totp.fresh_code().await;
    let resp = send(
        ctx,
        Method::POST,
        "/mfa/totp/confirm",
        &account.pair.access,
        &json!({"code": confirm_code}),
    )
    .await?;
    resp.expect_json(200).step("confirming TOTP")?;
    let codes = resp
        .json()
        .and_then(|body| body["recovery_codes"].as_array())
        .map(|codes| {
            codes
                .iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if codes.len() != 10 {
        return Err(resp.fail("ten recovery codes"));
    }
    Ok(Enrolled {
        account,
        totp,
        confirm_code,
        recovery_codes: codes,
    })
}

/// Logs in with the password and expects the second step: the `mfa_token`.
async fn first_step(ctx: &Ctx, account: &Account) -> Result<String, Failure> {
    let resp = ctx
        .login_raw(&json!({"email": account.email, "password": account.password}))
        .await?;
    let body = resp.expect_json(200)?;
    if body.get("token").is_some() || body["mfa_required"] != json!(true) {
        return Err(resp.fail("{mfa_required: true, mfa_token, methods} and no token"));
    }
    Ok(resp.str_at("/mfa_token")?.to_owned())
}

/// `POST /mfa/verify`.
async fn verify(ctx: &Ctx, body: &Value) -> Result<Resp, Failure> {
    ctx.post_json("/mfa/verify", body).await
}

async fn setup_changes_nothing_until_confirmed(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    send(
        &ctx,
        Method::POST,
        "/mfa/totp/setup",
        &account.pair.access,
        &json!({"current_password": unique_password()}),
    )
    .await?
    .expect_problem(403, INVALID_CREDENTIALS)
    .step("a setup with a wrong password")?;
    setup(&ctx, &account).await?;
    // Pending: the login still gives tokens at once.
    ctx.login(&account, None).await?;
    Ok(())
}

async fn confirm_needs_a_right_code_and_gives_ten_recovery_codes(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let totp = setup(&ctx, &account).await?;
    let wrong = totp.wrong_code();
    send(
        &ctx,
        Method::POST,
        "/mfa/totp/confirm",
        &account.pair.access,
        &json!({"code": wrong}),
    )
    .await?
    .expect_problem(403, "INVALID_MFA_CODE")
    .step("a wrong code")?;
    ctx.login(&account, None)
        .await
        .step("still off after a wrong code")?;
    let resp = send(
        &ctx,
        Method::POST,
        "/mfa/totp/confirm",
        &account.pair.access,
        &json!({"code": totp.fresh_code().await}),
    )
    .await?;
    let body = resp.expect_json(200)?;
    let codes: std::collections::HashSet<&str> = body["recovery_codes"]
        .as_array()
        .map(|codes| codes.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if codes.len() != 10 {
        return Err(resp.fail("ten distinct recovery codes").into());
    }
    Ok(())
}

async fn login_then_asks_for_the_second_step(ctx: Ctx) -> CaseResult {
    let enrolled = enrolled(&ctx).await?;
    let resp = ctx
        .login_raw(&json!({"email": enrolled.account.email, "password": enrolled.account.password}))
        .await?;
    let body = resp.expect_json(200)?;
    let methods: Vec<&str> = body["methods"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if body["mfa_required"] != json!(true)
        || body.get("token").is_some()
        || !body["mfa_token"].is_string()
        || !methods.contains(&"totp")
        || !methods.contains(&"recovery_code")
    {
        return Err(resp
            .fail("{mfa_required: true, mfa_token, methods: [totp, recovery_code]} and no token")
            .into());
    }
    // A wrong password is still the plain refusal.
    ctx.expect_login_refused(&enrolled.account.email, &unique_password())
        .await?;
    Ok(())
}

async fn second_step_with_a_code_opens_the_session_once(ctx: Ctx) -> CaseResult {
    let enrolled = enrolled(&ctx).await?;
    let mfa_token = first_step(&ctx, &enrolled.account).await?;
    let resp = verify(
        &ctx,
        &json!({"mfa_token": mfa_token, "code": enrolled.totp.fresh_code().await}),
    )
    .await?;
    resp.expect_shape(200, &crate::shape::AUTH)?;
    resp.expect_at("/user/id", &json!(enrolled.account.id))?;
    let access = resp.str_at("/token/access_token")?.to_owned();
    ctx.expect_accepted(&access, &enrolled.account).await?;
    verify(
        &ctx,
        &json!({"mfa_token": mfa_token, "code": enrolled.totp.fresh_code().await}),
    )
    .await?
    .expect_problem(401, "INVALID_MFA_TOKEN")
    .step("the same mfa_token again")?;
    verify(
        &ctx,
        &json!({"mfa_token": "authmfa_unknown", "code": "123456"}),
    )
    .await?
    .expect_problem(401, "INVALID_MFA_TOKEN")
    .step("an unknown mfa_token")?;
    verify(
        &ctx,
        &json!({"mfa_token": first_step(&ctx, &enrolled.account).await?}),
    )
    .await?
    .expect_validation("code")
    .step("no answer at all")?;
    Ok(())
}

async fn a_code_is_accepted_once(ctx: Ctx) -> CaseResult {
    let enrolled = enrolled(&ctx).await?;
    let code = enrolled.totp.fresh_code().await;
    let first = first_step(&ctx, &enrolled.account).await?;
    verify(&ctx, &json!({"mfa_token": first, "code": code}))
        .await?
        .expect_status(200)?;
    let second = first_step(&ctx, &enrolled.account).await?;
    verify(&ctx, &json!({"mfa_token": second, "code": code}))
        .await?
        .expect_problem(401, "INVALID_MFA_CODE")
        .step("the same code again, within its window")?;
    // The code the confirmation used is spent too.
    verify(
        &ctx,
        &json!({"mfa_token": second, "code": enrolled.confirm_code}),
    )
    .await?
    .expect_problem(401, "INVALID_MFA_CODE")
    .step("the confirmation's code")?;
    verify(
        &ctx,
        &json!({"mfa_token": second, "code": enrolled.totp.fresh_code().await}),
    )
    .await?
    .expect_status(200)
    .step("the next step's code")?;
    Ok(())
}

async fn recovery_codes_work_once(ctx: Ctx) -> CaseResult {
    let enrolled = enrolled(&ctx).await?;
    let code = enrolled.recovery_codes[3].clone();
    let first = first_step(&ctx, &enrolled.account).await?;
    verify(
        &ctx,
        &json!({"mfa_token": first, "recovery_code": code.to_uppercase()}),
    )
    .await?
    .expect_shape(200, &crate::shape::AUTH)
    .step("a recovery code, typed in capitals")?;
    let second = first_step(&ctx, &enrolled.account).await?;
    verify(&ctx, &json!({"mfa_token": second, "recovery_code": code}))
        .await?
        .expect_problem(401, "INVALID_MFA_CODE")
        .step("the same recovery code again")?;
    verify(
        &ctx,
        &json!({"mfa_token": second, "recovery_code": enrolled.recovery_codes[4]}),
    )
    .await?
    .expect_status(200)
    .step("another recovery code")?;
    Ok(())
}

async fn new_recovery_codes_void_the_old_ones(ctx: Ctx) -> CaseResult {
    let enrolled = enrolled(&ctx).await?;
    let bearer = &enrolled.account.pair.access;
    send(
        &ctx,
        Method::POST,
        "/mfa/recovery-codes",
        bearer,
        &json!({"current_password": enrolled.account.password}),
    )
    .await?
    .expect_problem(403, "MFA_REQUIRED")
    .step("without a code")?;
    let resp = send(
        &ctx,
        Method::POST,
        "/mfa/recovery-codes",
        bearer,
        &json!({"current_password": enrolled.account.password, "code": enrolled.totp.fresh_code().await}),
    )
    .await?;
    let fresh = resp
        .expect_json(200)?
        .get("recovery_codes")
        .and_then(Value::as_array)
        .and_then(|codes| codes.first())
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| resp.fail("{recovery_codes: [...]}"))?;
    let mfa_token = first_step(&ctx, &enrolled.account).await?;
    verify(
        &ctx,
        &json!({"mfa_token": mfa_token, "recovery_code": enrolled.recovery_codes[0]}),
    )
    .await?
    .expect_problem(401, "INVALID_MFA_CODE")
    .step("an old recovery code")?;
    verify(
        &ctx,
        &json!({"mfa_token": mfa_token, "recovery_code": fresh}),
    )
    .await?
    .expect_status(200)
    .step("a new recovery code")?;
    Ok(())
}

async fn wrong_answers_kill_the_mfa_token(ctx: Ctx) -> CaseResult {
    let ctx = ctx.with_fresh_ip();
    let enrolled = enrolled(&ctx).await?;
    let mfa_token = first_step(&ctx, &enrolled.account).await?;
    for attempt in 1..=5 {
        let resp = verify(
            &ctx,
            &json!({"mfa_token": mfa_token, "recovery_code": "aaaaa-aaaaa"}),
        )
        .await?;
        if resp.status == 429 {
            return Err(CaseError::Skipped(
                "the deployment's login limit is below five failures".to_owned(),
            ));
        }
        resp.expect_problem(401, "INVALID_MFA_CODE")
            .step(&format!("wrong answer {attempt}"))?;
    }
    verify(
        &ctx,
        &json!({"mfa_token": mfa_token, "code": enrolled.totp.fresh_code().await}),
    )
    .await?
    .expect_problem(401, "INVALID_MFA_TOKEN")
    .step("the right code after five wrong ones")?;
    Ok(())
}

async fn wrong_codes_count_as_failed_logins(ctx: Ctx) -> CaseResult {
    let limit = super::rate_limits::email_ip_limit(&super::rate_limits::limits(&ctx)?)?;
    let ctx = ctx.with_fresh_ip();
    let enrolled = enrolled(&ctx).await?;
    let mut mfa_token = first_step(&ctx, &enrolled.account).await?;
    for attempt in 0..limit.max {
        if attempt > 0 && attempt % 4 == 0 {
            // A fresh attempt (a right password clears no failure).
            mfa_token = first_step(&ctx, &enrolled.account).await?;
        }
        verify(
            &ctx,
            &json!({"mfa_token": mfa_token, "recovery_code": "aaaaa-aaaaa"}),
        )
        .await?
        .expect_problem(401, "INVALID_MFA_CODE")?;
    }
    let resp = ctx
        .login_raw(&json!({"email": enrolled.account.email, "password": enrolled.account.password}))
        .await?;
    super::rate_limits::expect_native_limited(&resp, limit.window)
        .step("the password login after the limit's worth of wrong codes")?;
    Ok(())
}

async fn setup_refused_while_enabled(ctx: Ctx) -> CaseResult {
    let enrolled = enrolled(&ctx).await?;
    send(
        &ctx,
        Method::POST,
        "/mfa/totp/setup",
        &enrolled.account.pair.access,
        &json!({"current_password": enrolled.account.password}),
    )
    .await?
    .expect_problem(409, "MFA_ALREADY_ENABLED")?;
    Ok(())
}

async fn disabling_needs_the_password_and_a_code(ctx: Ctx) -> CaseResult {
    let enrolled = enrolled(&ctx).await?;
    let (account, bearer) = (&enrolled.account, &enrolled.account.pair.access);
    let ctx_ref = &ctx;
    let disable = |body: Value| async move {
        send(ctx_ref, Method::DELETE, "/mfa/totp", bearer, &body).await
    };
    disable(json!({"current_password": account.password}))
        .await?
        .expect_problem(403, "MFA_REQUIRED")
        .step("without a code")?;
    disable(json!({"current_password": account.password, "code": enrolled.confirm_code}))
        .await?
        .expect_problem(403, "INVALID_MFA_CODE")
        .step("with a used code")?;
    // The refused password spends no code: the same one then succeeds.
    let code = enrolled.totp.fresh_code().await;
    disable(json!({"current_password": unique_password(), "code": code}))
        .await?
        .expect_problem(403, INVALID_CREDENTIALS)
        .step("with a wrong password")?;
    disable(json!({"current_password": account.password, "code": code}))
        .await?
        .expect_no_content()?;
    ctx.login(account, None)
        .await
        .step("a login after disabling")?;
    Ok(())
}

async fn sensitive_operations_need_a_step_up(ctx: Ctx) -> CaseResult {
    let enrolled = enrolled(&ctx).await?;
    let (account, bearer) = (&enrolled.account, &enrolled.account.pair.access);
    let password = json!({"current_password": account.password, "new_password": unique_password()});
    send(&ctx, Method::POST, "/password", bearer, &password)
        .await?
        .expect_problem(403, "MFA_REQUIRED")
        .step("a password change without a code")?;
    send(
        &ctx,
        Method::POST,
        "/tokens",
        bearer,
        &json!({"name": "ci", "current_password": account.password}),
    )
    .await?
    .expect_problem(403, "MFA_REQUIRED")
    .step("a personal token without a code")?;
    send(
        &ctx,
        Method::POST,
        "/email",
        bearer,
        &json!({"new_email": unique_email(), "current_password": account.password}),
    )
    .await?
    .expect_problem(403, "MFA_REQUIRED")
    .step("an email change without a code")?;
    send(
        &ctx,
        Method::POST,
        "/tokens",
        bearer,
        &json!({"name": "ci", "current_password": account.password, "code": enrolled.totp.fresh_code().await}),
    )
    .await?
    .expect_status(201)
    .step("a personal token with a code")?;
    let mut with_code = password.clone();
    with_code["recovery_code"] = json!(enrolled.recovery_codes[0]);
    send(&ctx, Method::POST, "/password", bearer, &with_code)
        .await?
        .expect_no_content()
        .step("a password change with a recovery code")?;
    Ok(())
}

async fn status_lists_the_factors(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let status = |bearer: String| {
        let ctx = &ctx;
        async move { ctx.native(Method::GET, "/mfa").bearer(&bearer).send().await }
    };
    status(account.pair.access.clone()).await?.expect_exact(
        200,
        &json!({"totp": false, "recovery_codes_left": 0, "passkeys": 0}),
    )?;
    let enrolled = enrolled(&ctx).await?;
    status(enrolled.account.pair.access.clone())
        .await?
        .expect_exact(
            200,
            &json!({"totp": true, "recovery_codes_left": 10, "passkeys": 0}),
        )?;
    Ok(())
}

/// Logging in to `enrolled` through a seed `profile`'s `route` is refused with its 403.
async fn seed_refused(ctx: &Ctx, profile: Profile, route: &str) -> CaseResult {
    let enrolled = enrolled(ctx).await?;
    let body = json!({"email": enrolled.account.email, "password": enrolled.account.password});
    let resp = post(ctx, profile, route, &body).await?;
    if resp.status != 403 || !resp.describe().contains(MFA_REQUIRED_MESSAGE) {
        return Err(resp
            .fail(format!(
                "403 saying \"{MFA_REQUIRED_MESSAGE}\" in the profile's shape"
            ))
            .into());
    }
    Ok(())
}

async fn seed_rbac_login_refused(ctx: Ctx) -> CaseResult {
    seed_refused(&ctx, Profile::Rbac, "/login").await
}

async fn seed_jwt_user_login_refused(ctx: Ctx) -> CaseResult {
    seed_refused(&ctx, Profile::JwtUser, "/login").await
}

async fn seed_personal_token_login_refused(ctx: Ctx) -> CaseResult {
    seed_refused(&ctx, Profile::PersonalToken, "/login").await
}

async fn seed_envelope_login_refused(ctx: Ctx) -> CaseResult {
    seed_refused(&ctx, Profile::Envelope, "/token").await
}

async fn admin_reset_removes_every_factor(ctx: Ctx) -> CaseResult {
    let enrolled = enrolled(&ctx).await?;
    let route = format!("/users/{}/mfa", enrolled.account.id);
    ctx.at(Profile::Admin, Method::DELETE, &route)
        .bearer(&enrolled.account.pair.access)
        .send()
        .await?
        .expect_problem(403, "FORBIDDEN")
        .step("a user resetting their own factors through the admin API")?;
    let admin = ctx.admin_bearer(false).await?;
    ctx.at(Profile::Admin, Method::DELETE, &route)
        .bearer(&admin)
        .send()
        .await?
        .expect_no_content()?;
    ctx.login(&enrolled.account, None)
        .await
        .step("a login after the reset")?;
    ctx.at(
        Profile::Admin,
        Method::DELETE,
        &format!("/users/{}/mfa", Uuid::new_v4()),
    )
    .bearer(&admin)
    .send()
    .await?
    .expect_problem(404, "NOT_FOUND")?;
    Ok(())
}

async fn magic_link_asks_for_the_second_step(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let enrolled = enrolled(&ctx).await?;
    let email = &enrolled.account.email;
    ctx.post_json("/magic-link", &json!({"email": email}))
        .await?
        .expect_status(202)?;
    // The verification mail and the notice of the new factor come first.
    let mut token = None;
    for _ in 0..4 {
        let mail = super::email::mail_to(&mailbox, email, "the sign-in mail").await?;
        if mail.subject.contains("sign-in link") {
            token = Some(super::email::token_of(&mail, "magic link")?);
            break;
        }
    }
    let token = token.ok_or_else(|| Failure::new("a sign-in mail", "other mails only"))?;
    let resp = ctx
        .post_json("/magic-link/verify", &json!({"token": token}))
        .await?;
    let body = resp.expect_json(200)?;
    if body["mfa_required"] != json!(true) || body.get("token").is_some() {
        return Err(resp
            .fail("{mfa_required: true, mfa_token, methods} and no token: a link is one factor")
            .into());
    }
    let mfa_token = resp.str_at("/mfa_token")?.to_owned();
    verify(
        &ctx,
        &json!({"mfa_token": mfa_token, "code": enrolled.totp.fresh_code().await}),
    )
    .await?
    .expect_shape(200, &crate::shape::AUTH)
    .step("the second step of a magic-link sign-in")?;
    Ok(())
}
