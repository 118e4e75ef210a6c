//! `Authorization: Bearer` handling on authenticated routes: missing, malformed, forged and
//! misused tokens, and the access token's own claims.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::prelude::*;
use crate::jwt::Jwt;

cases!("bearer" needs [Native]:
    missing_token_on_every_route,
    garbage_token,
    forged_signature,
    tampered_claims,
    alg_none,
    expired_claims,
    basic_scheme,
    bearer_without_token,
    refresh_token_as_bearer,
    access_token_as_refresh_token,
    access_token_is_jwt_with_claims,
);

/// The access token's lifetime in `native`.
const ACCESS_LIFETIME_SECS: i64 = 604_800;

/// Parses `token` as a JWT, failing the case when it is not one.
fn parse(token: &str) -> Result<Jwt, Failure> {
    Jwt::parse(token).map_err(|why| Failure::new("an access token that is a JWT", why))
}

/// The decoded claims of `jwt`.
fn claims(jwt: &Jwt) -> Result<Value, Failure> {
    jwt.claims()
        .map_err(|why| Failure::new("an access token with JSON claims", why))
}

async fn missing_token_on_every_route(ctx: Ctx) -> CaseResult {
    let id = Uuid::new_v4();
    let password_body =
        json!({"current_password": unique_password(), "new_password": unique_password()});
    let token_body = json!({"name": "x"});
    let routes: [(Method, String, Option<&Value>); 8] = [
        (Method::GET, "/me".to_owned(), None),
        (Method::POST, "/logout".to_owned(), None),
        (Method::GET, "/sessions".to_owned(), None),
        (Method::DELETE, format!("/sessions/{id}"), None),
        (Method::POST, "/password".to_owned(), Some(&password_body)),
        (Method::POST, "/tokens".to_owned(), Some(&token_body)),
        (Method::GET, "/tokens".to_owned(), None),
        (Method::DELETE, format!("/tokens/{id}"), None),
    ];
    for (method, route, body) in routes {
        let mut req = ctx.native(method, &route);
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await?.expect_unauthorized(Challenge::Missing)?;
    }
    Ok(())
}

async fn garbage_token(ctx: Ctx) -> CaseResult {
    for token in [
        "garbage".to_owned(),
        "a.b.c".to_owned(),
        "eyJhbGciOiJIUzI1NiJ9.e30.".to_owned(),
        Uuid::new_v4().to_string(),
    ] {
        ctx.expect_rejected(&token).await?;
    }
    Ok(())
}

async fn forged_signature(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let forged = parse(&account.pair.access)?
        .with_flipped_signature()
        .map_err(|why| Failure::new("a signed access token", why))?;
    ctx.expect_rejected(&forged.encode()).await?;
    ctx.expect_accepted(&account.pair.access, &account)
        .await
        .step("the genuine access token")?;
    Ok(())
}

async fn tampered_claims(ctx: Ctx) -> CaseResult {
    let (account, other) = (ctx.register().await?, ctx.register().await?);
    let jwt = parse(&account.pair.access)?;
    let original = claims(&jwt)?;

    let mut as_other = original.clone();
    as_other["sub"] = json!(other.id);
    as_other["email"] = json!(other.email);
    ctx.expect_rejected(&jwt.clone().with_claims(&as_other).encode())
        .await
        .step("a token whose sub and email were changed")?;

    let mut longer = original.clone();
    longer["exp"] = json!(original["exp"].as_i64().unwrap_or(0) + 3600);
    ctx.expect_rejected(&jwt.with_claims(&longer).encode())
        .await
        .step("a token whose exp was extended")?;
    Ok(())
}

async fn alg_none(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let unsigned = parse(&account.pair.access)?
        .with_header(&json!({"alg": "none", "typ": "JWT"}))
        .without_signature();
    ctx.expect_rejected(&unsigned.encode()).await?;
    Ok(())
}

async fn expired_claims(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let jwt = parse(&account.pair.access)?;
    let mut expired = claims(&jwt)?;
    // 2001-09-09: long past, beyond any leeway.
    expired["iat"] = json!(999_996_400);
    expired["exp"] = json!(1_000_000_000);
    ctx.expect_rejected(&jwt.with_claims(&expired).encode())
        .await?;
    Ok(())
}

async fn basic_scheme(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let credentials = STANDARD.encode(format!("{}:{}", account.email, account.password));
    ctx.native(Method::GET, "/me")
        .header("authorization", format!("Basic {credentials}"))
        .send()
        .await?
        .expect_unauthorized(Challenge::Missing)?;
    Ok(())
}

async fn bearer_without_token(ctx: Ctx) -> CaseResult {
    ctx.native(Method::GET, "/me")
        .header("authorization", "Bearer")
        .send()
        .await?
        .expect_unauthorized(Challenge::InvalidToken)?;
    Ok(())
}

async fn refresh_token_as_bearer(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    ctx.expect_rejected(&account.pair.refresh)
        .await
        .step("a refresh token as bearer")?;
    Ok(())
}

async fn access_token_as_refresh_token(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    ctx.refresh_raw(&account.pair.access)
        .await?
        .expect_problem(401, UNAUTHORIZED)?;
    ctx.expect_accepted(&account.pair.access, &account)
        .await
        .step("the genuine access token")?;
    Ok(())
}

async fn access_token_is_jwt_with_claims(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let second = ctx.login(&account, None).await?;
    let first = parse(&account.pair.access)?;
    let header = first
        .header()
        .map_err(|why| Failure::new("an access token with a JSON header", why))?;
    let first_claims = claims(&first)?;
    let second_claims = claims(&parse(&second.access)?)?;

    let mut problems = header_problems(&header);
    problems.extend(claim_problems(&first_claims, &account));
    for claim in ["jti", "sid"] {
        if first_claims[claim] == second_claims[claim] {
            problems.push(format!("two sessions' tokens share `{claim}`"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        format!(
            "a JWT signed with HS256 or EdDSA (with `kid`), with claims iss, sub (the user \
             id), sid, jti, iat, exp = iat + {ACCESS_LIFETIME_SECS}, email, roles, org_id \
             (null), nbf only if valid; jti and sid differ between sessions"
        ),
        format!(
            "header {header}, claims {first_claims}: {}",
            problems.join("; ")
        ),
    )
    .into())
}

/// What is wrong with an access token's header.
fn header_problems(header: &Value) -> Vec<String> {
    match header["alg"].as_str() {
        Some("HS256") => Vec::new(),
        Some("EdDSA") if header["kid"].is_string() => Vec::new(),
        Some("EdDSA") => vec!["EdDSA header without a string `kid`".to_owned()],
        _ => vec!["`alg` is neither HS256 nor EdDSA".to_owned()],
    }
}

/// What is wrong with an access token's claims for `account`.
fn claim_problems(claims: &Value, account: &Account) -> Vec<String> {
    let mut problems = Vec::new();
    let mut require = |ok: bool, what: &str| {
        if !ok {
            problems.push(what.to_owned());
        }
    };
    for claim in ["iss", "sid", "jti", "email"] {
        require(
            claims[claim].is_string(),
            &format!("`{claim}` is not a string"),
        );
    }
    require(
        claims["sub"] == account.id.as_str(),
        "`sub` is not the user id",
    );
    require(
        claims["roles"]
            .as_array()
            .is_some_and(|roles| roles.iter().all(Value::is_string)),
        "`roles` is not an array of strings",
    );
    require(
        claims["org_id"].is_null() && claims.get("org_id").is_some(),
        "`org_id` is not null",
    );
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    require(
        iat.zip(exp)
            .is_some_and(|(iat, exp)| exp - iat == ACCESS_LIFETIME_SECS),
        "`exp` - `iat` is not the access-token lifetime",
    );
    if claims.get("nbf").is_some() {
        require(
            claims["nbf"]
                .as_i64()
                .zip(exp)
                .is_some_and(|(nbf, exp)| nbf < exp),
            "`nbf` is not an integer before `exp`",
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::Pair;

    fn account() -> Account {
        Account {
            email: "a@example.com".to_owned(),
            password: "p".to_owned(),
            user: Value::Null,
            id: "3f1c2a9e-5b7d-4c1e-9a2b-0d4e6f8a1b2c".to_owned(),
            pair: Pair {
                access: String::new(),
                refresh: String::new(),
            },
        }
    }

    fn good_claims() -> Value {
        json!({
            "iss": "auth", "sub": account().id, "sid": "s", "jti": "j",
            "iat": 100, "exp": 100 + ACCESS_LIFETIME_SECS,
            "email": "a@example.com", "roles": [], "org_id": null,
        })
    }

    #[test]
    fn good_claims_pass() {
        assert!(claim_problems(&good_claims(), &account()).is_empty());
        assert!(header_problems(&json!({"alg": "HS256", "typ": "JWT"})).is_empty());
        assert!(header_problems(&json!({"alg": "EdDSA", "kid": "k1"})).is_empty());
    }

    #[test]
    fn bad_claims_are_named() {
        let mut claims = good_claims();
        claims["sub"] = json!("someone else");
        claims["exp"] = json!(200);
        claims.as_object_mut().unwrap().remove("org_id");
        claims["nbf"] = json!("soon");
        assert_eq!(
            claim_problems(&claims, &account()),
            [
                "`sub` is not the user id",
                "`org_id` is not null",
                "`exp` - `iat` is not the access-token lifetime",
                "`nbf` is not an integer before `exp`",
            ]
        );
        assert_eq!(header_problems(&json!({"alg": "EdDSA"})).len(), 1);
        assert_eq!(header_problems(&json!({"alg": "RS256"})).len(), 1);
    }
}
