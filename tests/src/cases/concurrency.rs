//! Races the contract settles: one winner among concurrent registrations of one address,
//! and one consistent answer for concurrent refreshes with one refresh token.

use futures_util::future::join_all;

use super::prelude::*;
use crate::native::pair_at;
use crate::shape::{AUTH, TOKEN_PAIR};

cases!("concurrency" needs [Native]: registration_race, refresh_race);

const REGISTRATIONS: usize = 20;
const REFRESHES: usize = 10;

async fn registration_race(ctx: Ctx) -> CaseResult {
    let email = unique_email();
    let password = unique_password();
    let attempts = (0..REGISTRATIONS).map(|i| {
        let body = json!({"email": case_variant(&email, i), "password": password});
        let ctx = ctx.clone();
        async move { ctx.register_raw(&body).await }
    });
    let mut created = 0;
    for resp in join_all(attempts).await {
        let resp = resp?;
        if resp.status == 201 {
            resp.expect_shape(201, &AUTH)?;
            created += 1;
        } else {
            resp.expect_problem(400, "EMAIL_TAKEN")?;
        }
    }
    if created != 1 {
        return Err(Failure::new(
            format!(
                "exactly one 201 among {REGISTRATIONS} concurrent registrations of one \
                 address in different letter cases, 400 EMAIL_TAKEN for the rest"
            ),
            format!("{created} answered 201"),
        )
        .into());
    }
    Ok(())
}

async fn refresh_race(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let attempts = (0..REFRESHES).map(|_| {
        let (ctx, token) = (ctx.clone(), account.pair.refresh.clone());
        async move { ctx.refresh_raw(&token).await }
    });
    let answers = join_all(attempts)
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let Some(first) = answers.first() else {
        return Ok(());
    };
    first.expect_shape(200, &TOKEN_PAIR)?;
    if let Some(odd) = answers
        .iter()
        .find(|r| r.status != 200 || r.body != first.body)
    {
        return Err(Failure::new(
            format!("{REFRESHES} concurrent refreshes with one token all answer 200 with the same body, byte for byte"),
            format!("{}\nversus {}", first.describe(), odd.describe()),
        )
        .into());
    }
    let next = pair_at(first, "")?;
    ctx.expect_accepted(&next.access, &account)
        .await
        .step("the access token all refreshes answered")?;
    ctx.refresh(&next.refresh).await?;
    Ok(())
}

/// `email` with its letters' case flipped according to the bits of `variant` (distinct for
/// `variant` below 32 when the address has at least 5 letters).
fn case_variant(email: &str, variant: usize) -> String {
    let mut letter = 0;
    email
        .chars()
        .map(|c| {
            if !c.is_ascii_alphabetic() {
                return c;
            }
            let upper = (variant >> (letter % 5)) & 1 == 1;
            letter += 1;
            if upper { c.to_ascii_uppercase() } else { c }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn variants_differ_only_in_case() {
        let email = "c-0123456789@example.com";
        let variants: HashSet<String> =
            (0..REGISTRATIONS).map(|i| case_variant(email, i)).collect();
        assert_eq!(variants.len(), REGISTRATIONS);
        assert!(variants.iter().all(|v| v.eq_ignore_ascii_case(email)));
        assert_eq!(case_variant(email, 0), email);
    }
}
