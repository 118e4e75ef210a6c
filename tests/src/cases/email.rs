//! The account lifecycle over email (issue 13), against a real SMTP server the target sends
//! to (the run's mailbox): verification, forgotten passwords, magic links, email change, the
//! security notices, and the per-address limit. Links carry one-time tokens: single use,
//! and for reset and magic link only the newest works. Bad, used or expired tokens get 400
//! `INVALID_TOKEN`. Requests naming an address answer the same whether or not it has an
//! account. Every case needs the mailbox.

use std::sync::Arc;
use std::time::Duration;

use super::prelude::*;
use crate::mailbox::{Mailbox, ReceivedMail};
use crate::native::INVALID_CREDENTIALS;
use crate::shape::{AUTH, USER};

cases!("email" needs [Native]:
    registration_mails_a_verification_link,
    verification_tokens_are_single_use_and_checked,
    resend_mails_a_new_verification_link,
    forgot_password_does_not_tell_whether_an_account_exists,
    reset_sets_the_password_and_revokes_everything,
    only_the_newest_reset_link_works,
    magic_link_signs_in_once,
    email_change_waits_for_the_new_address,
    password_change_sends_a_notice,
    mails_to_one_address_are_limited,
);

/// How long a mail may take to arrive.
const MAIL_WAIT: Duration = Duration::from_secs(15);
/// How long "no mail came" is waited for.
const QUIET_WAIT: Duration = Duration::from_secs(2);

/// The next mail to `to`, or a failure naming what was expected.
pub(super) async fn mail_to(
    mailbox: &Arc<dyn Mailbox>,
    to: &str,
    what: &str,
) -> Result<ReceivedMail, Failure> {
    mailbox
        .next_to(to, MAIL_WAIT)
        .await
        .ok_or_else(|| Failure::new(format!("{what} mailed to {to}"), "no mail within 15 s"))
}

/// The link token of a mail.
pub(super) fn token_of(mail: &ReceivedMail, what: &str) -> Result<String, Failure> {
    mail.token().ok_or_else(|| {
        Failure::new(
            format!("{what}: a link with a `token` (or the bare token)"),
            format!("subject {:?}, text {:?}", mail.subject, mail.text),
        )
    })
}

/// A mail's text must not show the password or any bearer token of the account.
fn expect_no_secret(mail: &ReceivedMail, account: &Account) -> Result<(), Failure> {
    let raw = &mail.raw;
    if raw.contains(&account.password)
        || (!account.pair.access.is_empty() && raw.contains(&account.pair.access))
    {
        return Err(Failure::new(
            "a mail without the password or a bearer token",
            format!("subject {:?}", mail.subject),
        ));
    }
    Ok(())
}

/// `POST route` with `body`, no credentials.
async fn post(ctx: &Ctx, route: &str, body: &Value) -> Result<Resp, Failure> {
    ctx.post_json(route, body).await
}

/// A registered account whose verification mail was taken from the mailbox.
async fn registered(
    ctx: &Ctx,
    mailbox: &Arc<dyn Mailbox>,
) -> Result<(Account, ReceivedMail), Failure> {
    let account = ctx.register().await?;
    let mail = mail_to(mailbox, &account.email, "the verification mail").await?;
    Ok((account, mail))
}

/// A 400 `INVALID_TOKEN` problem.
fn expect_invalid_token(resp: &Resp) -> Result<(), Failure> {
    resp.expect_problem(400, "INVALID_TOKEN").map(|_| ())
}

/// A 202 with the one accepted body.
fn expect_accepted(resp: &Resp) -> Result<Value, Failure> {
    let body = resp.expect_json(202)?.clone();
    if !body["message"].is_string() {
        return Err(resp.fail("202 with a `message`"));
    }
    Ok(body)
}

async fn registration_mails_a_verification_link(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (account, mail) = registered(&ctx, &mailbox).await?;
    expect_no_secret(&mail, &account)?;
    if account.user["email_verified_at"] != Value::Null {
        return Err(Failure::new(
            "a new account's `email_verified_at` null",
            account.user.to_string(),
        )
        .into());
    }
    let token = token_of(&mail, "the verification mail")?;
    post(&ctx, "/verify-email", &json!({"token": token}))
        .await?
        .expect_no_content()
        .step("POST /verify-email with the mailed token")?;
    let resp = ctx.me(&account.pair.access).await?;
    resp.expect_shape(200, &USER)?;
    if !resp
        .json()
        .is_some_and(|user| user["email_verified_at"].is_string())
    {
        return Err(resp
            .fail("`email_verified_at` set after verification")
            .into());
    }
    Ok(())
}

async fn verification_tokens_are_single_use_and_checked(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (_, mail) = registered(&ctx, &mailbox).await?;
    let token = token_of(&mail, "the verification mail")?;
    post(&ctx, "/verify-email", &json!({"token": token}))
        .await?
        .expect_no_content()?;
    expect_invalid_token(&post(&ctx, "/verify-email", &json!({"token": token})).await?)
        .step("the verification token used a second time")?;
    expect_invalid_token(
        &post(
            &ctx,
            "/verify-email",
            &json!({"token": "not-a-token-at-all-xxxxxxxx"}),
        )
        .await?,
    )
    .step("an unknown verification token")?;
    post(&ctx, "/verify-email", &json!({}))
        .await?
        .expect_validation("token")
        .step("POST /verify-email without a token")?;
    Ok(())
}

async fn resend_mails_a_new_verification_link(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (account, first) = registered(&ctx, &mailbox).await?;
    let resp = ctx
        .native(Method::POST, "/verify-email/resend")
        .bearer(&account.pair.access)
        .send()
        .await?;
    expect_accepted(&resp).step("POST /verify-email/resend")?;
    let second = mail_to(&mailbox, &account.email, "the resent verification mail").await?;
    let (first, second) = (token_of(&first, "first")?, token_of(&second, "resent")?);
    if first == second {
        return Err(Failure::new("a new token in the resent mail", "the same token").into());
    }
    post(&ctx, "/verify-email", &json!({"token": second}))
        .await?
        .expect_no_content()
        .step("the resent token")?;
    ctx.native(Method::POST, "/verify-email/resend")
        .send()
        .await?
        .expect_unauthorized(Challenge::Missing)
        .step("POST /verify-email/resend without a token")?;
    Ok(())
}

async fn forgot_password_does_not_tell_whether_an_account_exists(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (account, _) = registered(&ctx, &mailbox).await?;
    let stranger = unique_email();
    let unknown = post(&ctx, "/password/forgot", &json!({"email": stranger})).await?;
    let unknown_body = expect_accepted(&unknown).step("forgot password of an unknown address")?;
    let known = post(&ctx, "/password/forgot", &json!({"email": account.email})).await?;
    let known_body = expect_accepted(&known).step("forgot password of an account")?;
    if unknown_body != known_body {
        return Err(known
            .fail(format!(
                "the same body as for an unknown address: {unknown_body}"
            ))
            .into());
    }
    let mail = mail_to(&mailbox, &account.email, "the reset mail").await?;
    expect_no_secret(&mail, &account)?;
    tokio::time::sleep(QUIET_WAIT).await;
    if mailbox.count_to(&stranger) != 0 {
        return Err(Failure::new("no mail to an address without an account", "a mail").into());
    }
    Ok(())
}

async fn reset_sets_the_password_and_revokes_everything(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (account, _) = registered(&ctx, &mailbox).await?;
    let other = ctx.login(&account, None).await?;
    expect_accepted(&post(&ctx, "/password/forgot", &json!({"email": account.email})).await?)?;
    let token = token_of(
        &mail_to(&mailbox, &account.email, "the reset mail").await?,
        "reset",
    )?;
    post(
        &ctx,
        "/password/reset",
        &json!({"token": token, "new_password": "short"}),
    )
    .await?
    .expect_validation("new_password")
    .step("a reset to a password the rules refuse")?;
    let new_password = unique_password();
    post(
        &ctx,
        "/password/reset",
        &json!({"token": token, "new_password": new_password}),
    )
    .await?
    .expect_no_content()
    .step("the reset token after a refused password: still good")?;
    for (what, bearer) in [
        ("the registration's", &account.pair.access),
        ("another session's", &other.access),
    ] {
        ctx.expect_rejected(bearer)
            .await
            .step(&format!("{what} access token after a reset"))?;
    }
    ctx.login_raw(&json!({"email": account.email, "password": account.password}))
        .await?
        .expect_problem(401, INVALID_CREDENTIALS)
        .step("the old password after a reset")?;
    let resp = ctx
        .login_raw(&json!({"email": account.email, "password": new_password}))
        .await?;
    resp.expect_shape(200, &AUTH)
        .step("the new password after a reset")?;
    let notice = mail_to(&mailbox, &account.email, "the password-changed notice").await?;
    if notice.token().is_some_and(|t| t == token) {
        return Err(Failure::new("a notice without the reset token", notice.subject).into());
    }
    expect_invalid_token(
        &post(
            &ctx,
            "/password/reset",
            &json!({"token": token, "new_password": unique_password()}),
        )
        .await?,
    )
    .step("the reset token used a second time")?;
    Ok(())
}

async fn only_the_newest_reset_link_works(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (account, _) = registered(&ctx, &mailbox).await?;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        expect_accepted(&post(&ctx, "/password/forgot", &json!({"email": account.email})).await?)?;
        tokens.push(token_of(
            &mail_to(&mailbox, &account.email, "a reset mail").await?,
            "reset",
        )?);
    }
    expect_invalid_token(
        &post(
            &ctx,
            "/password/reset",
            &json!({"token": tokens[0], "new_password": unique_password()}),
        )
        .await?,
    )
    .step("the older of two reset tokens")?;
    post(
        &ctx,
        "/password/reset",
        &json!({"token": tokens[1], "new_password": unique_password()}),
    )
    .await?
    .expect_no_content()
    .step("the newer of two reset tokens")?;
    Ok(())
}

async fn magic_link_signs_in_once(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (account, _) = registered(&ctx, &mailbox).await?;
    let stranger = post(&ctx, "/magic-link", &json!({"email": unique_email()})).await?;
    let stranger_body = expect_accepted(&stranger).step("a magic link for an unknown address")?;
    let resp = post(&ctx, "/magic-link", &json!({"email": account.email})).await?;
    if expect_accepted(&resp)? != stranger_body {
        return Err(resp.fail("the same body as for an unknown address").into());
    }
    let token = token_of(
        &mail_to(&mailbox, &account.email, "the sign-in mail").await?,
        "magic link",
    )?;
    let resp = post(&ctx, "/magic-link/verify", &json!({"token": token})).await?;
    resp.expect_shape(200, &AUTH)
        .step("POST /magic-link/verify: the answer of /login")?;
    resp.expect_at("/user/id", &json!(account.id))?;
    let access = resp.str_at("/token/access_token")?.to_owned();
    ctx.expect_accepted(&access, &account)
        .await
        .step("the magic link's access token")?;
    expect_invalid_token(&post(&ctx, "/magic-link/verify", &json!({"token": token})).await?)
        .step("the magic-link token used a second time")?;
    Ok(())
}

async fn email_change_waits_for_the_new_address(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (account, _) = registered(&ctx, &mailbox).await?;
    let new_email = unique_email();
    let change = |password: String| {
        ctx.native(Method::POST, "/email")
            .bearer(&account.pair.access)
            .json(&json!({"new_email": new_email, "current_password": password}))
            .send()
    };
    change(unique_password())
        .await?
        .expect_problem(403, INVALID_CREDENTIALS)
        .step("POST /email with a wrong current password")?;
    expect_accepted(&change(account.password.clone()).await?).step("POST /email")?;
    let mail = mail_to(
        &mailbox,
        &new_email,
        "the confirmation mail to the new address",
    )
    .await?;
    let token = token_of(&mail, "email change")?;
    ctx.me(&account.pair.access)
        .await?
        .expect_at("/email", &json!(account.email))
        .step("the address before confirmation")?;
    let resp = post(&ctx, "/email/confirm", &json!({"token": token})).await?;
    resp.expect_shape(200, &USER).step("POST /email/confirm")?;
    resp.expect_at("/email", &json!(new_email))?;
    if !resp
        .json()
        .is_some_and(|user| user["email_verified_at"].is_string())
    {
        return Err(resp.fail("the confirmed address verified").into());
    }
    let notice = mail_to(&mailbox, &account.email, "the notice to the old address").await?;
    if notice.token().is_some() && notice.text.contains("token=") {
        return Err(Failure::new("a notice without a link token", notice.subject).into());
    }
    ctx.login_raw(&json!({"email": new_email, "password": account.password}))
        .await?
        .expect_shape(200, &AUTH)
        .step("login with the new address")?;
    expect_invalid_token(&post(&ctx, "/email/confirm", &json!({"token": token})).await?)
        .step("the confirmation token used a second time")?;
    Ok(())
}

async fn password_change_sends_a_notice(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (account, _) = registered(&ctx, &mailbox).await?;
    let new_password = unique_password();
    ctx.native(Method::POST, "/password")
        .bearer(&account.pair.access)
        .json(&json!({"current_password": account.password, "new_password": new_password}))
        .send()
        .await?
        .expect_no_content()?;
    let notice = mail_to(&mailbox, &account.email, "the password-changed notice").await?;
    if notice.raw.contains(&new_password) {
        return Err(Failure::new("a notice without the new password", notice.subject).into());
    }
    Ok(())
}

async fn mails_to_one_address_are_limited(ctx: Ctx) -> CaseResult {
    let mailbox = ctx.require_mailbox()?;
    let (account, _) = registered(&ctx, &mailbox).await?;
    for attempt in 1..=6 {
        expect_accepted(&post(&ctx, "/password/forgot", &json!({"email": account.email})).await?)
            .step(&format!(
            "forgot password #{attempt}: 202 also past the limit"
        ))?;
    }
    for n in 1..=5 {
        mail_to(&mailbox, &account.email, &format!("reset mail #{n}")).await?;
    }
    tokio::time::sleep(QUIET_WAIT).await;
    let extra = mailbox.count_to(&account.email);
    if extra != 0 {
        return Err(Failure::new(
            "5 reset mails to one address within the hour, then none",
            format!("{extra} more"),
        )
        .into());
    }
    Ok(())
}
