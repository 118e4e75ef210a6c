//! `POST /register`.

use super::prelude::*;
use crate::native::{COMMON_PASSWORDS, FULL_NAME};
use crate::shape::{AUTH, USER};

cases!("register" needs [Native]:
    creates_user_with_token_pair,
    email_trimmed_and_case_preserved,
    full_name_optional,
    password_length_bounds_accepted,
    password_too_short_rejected,
    password_too_long_rejected,
    invalid_email_rejected,
    email_length_limit,
    missing_fields_rejected,
    duplicate_email_any_case_rejected,
    common_password_rejected,
);

/// Longest accepted email.
const MAX_EMAIL_LEN: usize = 254;

async fn creates_user_with_token_pair(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = ctx.me(&account.pair.access).await?;
    resp.expect_shape(200, &USER)?;
    resp.expect_at("", &account.user)?;
    resp.expect_at("/email", &json!(account.email))?;
    resp.expect_at("/full_name", &json!(FULL_NAME))?;
    resp.expect_at("/is_active", &json!(true))?;
    resp.expect_at("/organization_id", &Value::Null)?;
    Ok(())
}

async fn email_trimmed_and_case_preserved(ctx: Ctx) -> CaseResult {
    let email = format!(
        "C-{}@Example.COM",
        Uuid::new_v4().simple().to_string().to_uppercase()
    );
    let resp = ctx
        .register_raw(&json!({"email": format!("  {email}\t "), "password": unique_password()}))
        .await?;
    resp.expect_shape(201, &AUTH)?;
    resp.expect_at("/user/email", &json!(email))?;
    Ok(())
}

async fn full_name_optional(ctx: Ctx) -> CaseResult {
    let resp = ctx
        .register_raw(&json!({"email": unique_email(), "password": unique_password()}))
        .await?;
    resp.expect_shape(201, &AUTH)?;
    resp.expect_at("/user/full_name", &Value::Null)?;
    Ok(())
}

async fn password_length_bounds_accepted(ctx: Ctx) -> CaseResult {
    for len in [8, 1024] {
        let credentials = json!({"email": unique_email(), "password": "p".repeat(len)});
        ctx.register_raw(&credentials)
            .await?
            .expect_shape(201, &AUTH)?;
        ctx.login_raw(&credentials)
            .await?
            .expect_shape(200, &AUTH)?;
    }
    Ok(())
}

async fn password_too_short_rejected(ctx: Ctx) -> CaseResult {
    let email = unique_email();
    ctx.register_raw(&json!({"email": email, "password": "p".repeat(7)}))
        .await?
        .expect_validation("password")?;
    // Nothing was half-written: the address is still free.
    ctx.register_raw(&json!({"email": email, "password": unique_password()}))
        .await?
        .expect_shape(201, &AUTH)?;
    Ok(())
}

async fn password_too_long_rejected(ctx: Ctx) -> CaseResult {
    ctx.register_raw(&json!({"email": unique_email(), "password": "p".repeat(1025)}))
        .await?
        .expect_validation("password")?;
    Ok(())
}

async fn invalid_email_rejected(ctx: Ctx) -> CaseResult {
    let local = format!("c-{}", Uuid::new_v4().simple());
    let invalid = [
        local.clone(),
        format!("{local}@"),
        "@example.com".to_owned(),
        format!("{local}@localhost"),
        String::new(),
        "   ".to_owned(),
    ];
    for email in invalid {
        ctx.register_raw(&json!({"email": email, "password": unique_password()}))
            .await?
            .expect_validation("email")?;
    }
    Ok(())
}

async fn email_length_limit(ctx: Ctx) -> CaseResult {
    ctx.register_raw(&json!({"email": long_email(MAX_EMAIL_LEN), "password": unique_password()}))
        .await?
        .expect_shape(201, &AUTH)?;
    ctx.register_raw(
        &json!({"email": long_email(MAX_EMAIL_LEN + 1), "password": unique_password()}),
    )
    .await?
    .expect_validation("email")?;
    Ok(())
}

async fn missing_fields_rejected(ctx: Ctx) -> CaseResult {
    ctx.register_raw(&json!({"password": unique_password(), "full_name": "x"}))
        .await?
        .expect_validation("email")?;
    ctx.register_raw(&json!({"email": unique_email()}))
        .await?
        .expect_validation("password")?;
    Ok(())
}

async fn duplicate_email_any_case_rejected(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    for email in [
        account.email.clone(),
        format!(" {} ", account.email.to_uppercase()),
    ] {
        let resp = ctx
            .register_raw(&json!({"email": email, "password": unique_password()}))
            .await?;
        resp.expect_problem(400, "EMAIL_TAKEN")?;
        resp.expect_at("/detail", &json!("Email already registered"))?;
    }
    Ok(())
}

/// A unique, syntactically valid address of exactly `len` characters (at least 50), with
/// no DNS label over 63 characters.
fn long_email(len: usize) -> String {
    let local = format!("c-{}", Uuid::new_v4().simple());
    let mut left = len.saturating_sub(local.len() + 1 + ".com".len());
    let mut labels = Vec::new();
    while left > 0 {
        let take = if left <= 63 { left } else { 60.min(left - 2) };
        labels.push("x".repeat(take));
        left -= take + usize::from(left > take);
    }
    format!("{local}@{}.com", labels.join("."))
}

/// Issue 10, rule 10: a default server refuses the most common passwords, in any letter
/// case, and creates no account.
async fn common_password_rejected(ctx: Ctx) -> CaseResult {
    for password in COMMON_PASSWORDS {
        let email = unique_email();
        ctx.register_raw(&json!({"email": email, "password": password}))
            .await?
            .expect_validation("password")
            .step(&format!("registering with {password:?}"))?;
        ctx.expect_login_refused(&email, password)
            .await
            .step("logging in as the refused registration")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_emails_have_the_exact_length_and_short_labels() {
        for len in [50, 100, 254, 255] {
            let email = long_email(len);
            assert_eq!(email.len(), len, "{email}");
            let (_, domain) = email.split_once('@').unwrap();
            assert!(
                domain.split('.').all(|l| (1..=63).contains(&l.len())),
                "{email}"
            );
        }
    }
}
