//! Passkeys over HTTP without a browser (issue 15, rule 3): the options name the relying
//! party and carry a fresh challenge, registration excludes nothing for a new account,
//! challenges are single use and bound to their account, and anything that is not a real
//! credential is refused in the profile's shape. The ceremonies with a real authenticator
//! are `cargo xtask browser`'s passkey flow (headless Chromium's virtual authenticator).
//! Every case is skipped against a deployment without a relying party (404).

use super::prelude::*;

cases!("passkeys" needs [Native]:
    registration_options_name_the_relying_party_and_the_user,
    registration_needs_the_current_password,
    sign_in_options_are_discoverable_without_an_email,
    challenges_are_fresh_single_use_and_bound_to_their_account,
    forged_credentials_are_refused,
    list_and_removal_of_a_new_account,
    ceremony_starts_are_limited_per_ip,
);

/// `POST route` with `body` (and `bearer`), skipping the case when passkeys are off.
async fn post(
    ctx: &Ctx,
    route: &str,
    bearer: Option<&str>,
    body: &Value,
) -> Result<Resp, CaseError> {
    let mut req = ctx.native(Method::POST, route).json(body);
    if let Some(bearer) = bearer {
        req = req.bearer(bearer);
    }
    let resp = req.send().await?;
    if resp.status == 404 && route.ends_with("/start") {
        return Err(CaseError::Skipped(
            "the deployment has no WebAuthn relying party (--webauthn-rp-id)".to_owned(),
        ));
    }
    Ok(resp)
}

/// `{challenge_token, options}` of a ceremony's start.
fn ceremony(resp: &Resp) -> Result<(String, Value), Failure> {
    let body = resp.expect_json(200)?;
    let token = resp.str_at("/challenge_token")?.to_owned();
    let options = body["options"].clone();
    let challenge = options["challenge"].as_str().unwrap_or_default();
    // 16 random bytes or more, base64url.
    if challenge.len() < 22 || !options.is_object() {
        return Err(resp.fail("options with a base64url challenge of at least 16 bytes"));
    }
    Ok((token, options))
}

async fn registration_options_name_the_relying_party_and_the_user(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = post(
        &ctx,
        "/passkeys/register/start",
        Some(&account.pair.access),
        &json!({"current_password": account.password}),
    )
    .await?;
    let (_, options) = ceremony(&resp)?;
    if options["rp"]["id"] != json!(crate::matrix::WEBAUTHN_RP_ID) && ctx.hooks().is_some() {
        return Err(resp.fail("options.rp.id the relying party's id").into());
    }
    if options["user"]["name"] != json!(account.email) || !options["user"]["id"].is_string() {
        return Err(resp.fail("options.user naming the account").into());
    }
    let algorithms: Vec<i64> = options["pubKeyCredParams"]
        .as_array()
        .map(|params| params.iter().filter_map(|p| p["alg"].as_i64()).collect())
        .unwrap_or_default();
    if !algorithms.contains(&-7) {
        return Err(resp.fail("ES256 (-7) among pubKeyCredParams").into());
    }
    if options["authenticatorSelection"]["userVerification"] != json!("required") {
        return Err(resp.fail("user verification required").into());
    }
    Ok(())
}

async fn sign_in_options_are_discoverable_without_an_email(ctx: Ctx) -> CaseResult {
    let resp = post(&ctx, "/passkeys/login/start", None, &json!({})).await?;
    let (_, options) = ceremony(&resp)?;
    if options["allowCredentials"]
        .as_array()
        .is_some_and(|list| !list.is_empty())
    {
        return Err(resp
            .fail("no allowCredentials: any passkey of the site may answer")
            .into());
    }
    // An account without passkeys gets the same discoverable form.
    let account = ctx.register().await?;
    let resp = post(
        &ctx,
        "/passkeys/login/start",
        None,
        &json!({"email": account.email}),
    )
    .await?;
    let (_, options) = ceremony(&resp)?;
    if options["allowCredentials"]
        .as_array()
        .is_some_and(|list| !list.is_empty())
    {
        return Err(resp
            .fail("no allowCredentials for an account without passkeys")
            .into());
    }
    Ok(())
}

async fn challenges_are_fresh_single_use_and_bound_to_their_account(ctx: Ctx) -> CaseResult {
    let (ada, bob) = (ctx.register().await?, ctx.register().await?);
    let first = post(
        &ctx,
        "/passkeys/register/start",
        Some(&ada.pair.access),
        &json!({"current_password": ada.password}),
    )
    .await?;
    let second = post(
        &ctx,
        "/passkeys/register/start",
        Some(&ada.pair.access),
        &json!({"current_password": ada.password}),
    )
    .await?;
    let ((token, options), (_, again)) = (ceremony(&first)?, ceremony(&second)?);
    if options["challenge"] == again["challenge"] {
        return Err(second.fail("a new challenge for every ceremony").into());
    }
    let finish = |bearer: String, token: String| {
        let ctx = &ctx;
        async move {
            ctx.native(Method::POST, "/passkeys/register/finish")
                .bearer(&bearer)
                .json(&json!({"challenge_token": token, "credential": {"id": "AAAA", "type": "public-key"}}))
                .send()
                .await
        }
    };
    finish(bob.pair.access.clone(), token.clone())
        .await?
        .expect_problem(400, "INVALID_CHALLENGE")
        .step("another account finishing Ada's ceremony")?;
    // Taken by that attempt: a challenge works once, whoever presents it.
    finish(ada.pair.access.clone(), token)
        .await?
        .expect_problem(400, "INVALID_CHALLENGE")
        .step("the challenge once more")?;
    finish(ada.pair.access.clone(), "authpkc_unknown".to_owned())
        .await?
        .expect_problem(400, "INVALID_CHALLENGE")
        .step("an unknown challenge")?;
    Ok(())
}

async fn forged_credentials_are_refused(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = post(
        &ctx,
        "/passkeys/register/start",
        Some(&account.pair.access),
        &json!({"current_password": account.password}),
    )
    .await?;
    let (token, _) = ceremony(&resp)?;
    ctx.native(Method::POST, "/passkeys/register/finish")
        .bearer(&account.pair.access)
        .json(&json!({
            "challenge_token": token,
            "credential": {
                "id": "AAAA", "rawId": "AAAA", "type": "public-key",
                "response": {"attestationObject": "AAAA", "clientDataJSON": "AAAA"},
            },
        }))
        .send()
        .await?
        .expect_problem(400, "INVALID_PASSKEY")
        .step("a made-up attestation")?;
    let resp = post(&ctx, "/passkeys/login/start", None, &json!({})).await?;
    let (token, _) = ceremony(&resp)?;
    let login = ctx
        .post_json(
            "/passkeys/login/finish",
            &json!({
                "challenge_token": token,
                "credential": {
                    "id": "AAAA", "rawId": "AAAA", "type": "public-key",
                    "response": {"authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA"},
                },
            }),
        )
        .await?;
    login
        .expect_problem(401, "INVALID_CREDENTIALS")
        .step("an assertion of an unregistered credential")?;
    ctx.post_json("/passkeys/login/finish", &json!({"challenge_token": token}))
        .await?
        .expect_validation("credential")
        .step("no credential")?;
    Ok(())
}

async fn list_and_removal_of_a_new_account(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    post(&ctx, "/passkeys/login/start", None, &json!({})).await?;
    ctx.native(Method::GET, "/passkeys")
        .bearer(&account.pair.access)
        .send()
        .await?
        .expect_exact(200, &json!([]))?;
    ctx.delete(
        &format!("/passkeys/{}", Uuid::new_v4()),
        &account.pair.access,
    )
    .await?
    .expect_problem(404, "NOT_FOUND")?;
    ctx.native(Method::POST, "/passkeys/step-up/start")
        .bearer(&account.pair.access)
        .send()
        .await?
        .expect_problem(404, "NOT_FOUND")
        .step("a step-up without a passkey")?;
    Ok(())
}

async fn registration_needs_the_current_password(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let bearer = Some(account.pair.access.as_str());
    post(&ctx, "/passkeys/register/start", bearer, &json!({}))
        .await?
        .expect_validation("current_password")
        .step("without the current password: a bearer token alone adds no credential")?;
    post(
        &ctx,
        "/passkeys/register/start",
        bearer,
        &json!({"current_password": unique_password()}),
    )
    .await?
    .expect_problem(403, crate::native::INVALID_CREDENTIALS)
    .step("with a wrong current password")?;
    let token = ctx.create_token(&account, None).await?;
    post(
        &ctx,
        "/passkeys/register/start",
        Some(&token.token),
        &json!({"current_password": account.password}),
    )
    .await?
    .expect_problem(403, "FORBIDDEN")
    .step("through a personal access token")?;
    Ok(())
}

/// Every ceremony start stores a challenge, so starts are limited per client IP (the target's
/// `passkey_ip`): past it a sign-in start and a registration start get 429 with the
/// profile's rate-limit problem and `Retry-After` within the window; another client is not
/// held back.
async fn ceremony_starts_are_limited_per_ip(ctx: Ctx) -> CaseResult {
    let limit = super::rate_limits::limits(&ctx)?.passkey_ip;
    let n = super::rate_limits::exercised(limit, "passkey ceremonies per IP")?;
    // Registered first: the registration start below comes from the limited client.
    let account = ctx.register().await?;
    for i in 0..n {
        let resp = post(&ctx, "/passkeys/login/start", None, &json!({})).await?;
        ceremony(&resp).step(&format!(
            "sign-in start {} of {n} from one client IP",
            i + 1
        ))?;
    }
    let resp = post(&ctx, "/passkeys/login/start", None, &json!({})).await?;
    super::rate_limits::expect_native_limited(&resp, limit.window)
        .step(&format!("sign-in start {} from one client IP", n + 1))?;
    let body = json!({"current_password": account.password});
    let resp = post(
        &ctx,
        "/passkeys/register/start",
        Some(&account.pair.access),
        &body,
    )
    .await?;
    super::rate_limits::expect_native_limited(&resp, limit.window)
        .step("a registration start from the same client IP")?;
    let other = ctx.another_client()?;
    let resp = post(&other, "/passkeys/login/start", None, &json!({})).await?;
    ceremony(&resp).step("a sign-in start from another client IP")?;
    Ok(())
}
