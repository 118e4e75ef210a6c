//! Attacks on access tokens, each presented to `native`'s `GET /me`, which must answer 401
//! `UNAUTHORIZED` with `WWW-Authenticate: Bearer error="invalid_token"`: unsigned and
//! re-signed tokens, algorithm confusion, hostile `kid`, `jku`, `x5u` and `jwk` headers,
//! claims the verifier must check (with the target's HS256 secret, so that the claim under
//! test is the only thing wrong), malformed and huge tokens. After its attacks every case
//! checks that the genuine token still works and a normal login still answers.
//!
//! `Authorization` missing, with `Basic` and a bare `Bearer` are the `bearer` group's.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tokio::net::TcpListener;

use super::prelude::*;
use crate::jwt::{HmacAlg, Jwt};

cases!("attacks" needs [Native]:
    alg_none_in_every_casing,
    stripped_signature,
    payload_changed_under_old_signature,
    resigned_with_hs384_and_hs512,
    resigned_with_another_or_empty_secret,
    hs256_signed_with_the_public_key,
    kid_path_traversal,
    kid_sql_text,
    embedded_jwk_not_trusted,
    jku_not_fetched,
    x5u_not_fetched,
    expired_beyond_leeway,
    exp_as_string,
    nbf_in_the_future,
    wrong_or_missing_issuer,
    missing_required_claims,
    wrong_segment_counts,
    token_of_100_kb,
);

/// How long a listener named in a header must stay unvisited after the answers.
const NO_CONNECTION_WITHIN: Duration = Duration::from_secs(1);
/// Seconds past `exp` for an expired token: beyond the contract's largest leeway (30 s).
const EXPIRED_SECS_AGO: i64 = 120;
/// Seconds ahead for a future `nbf`.
const NOT_BEFORE_IN: i64 = 3600;
/// Approximate length of the oversized token.
const HUGE_TOKEN_BYTES: usize = 100 * 1024;

/// A fresh user with their genuine access token, its header and claims.
struct Victim {
    account: Account,
    jwt: Jwt,
    header: Value,
    claims: Value,
}

impl Victim {
    /// The genuine token's `alg`.
    fn alg(&self) -> &str {
        self.header["alg"].as_str().unwrap_or_default()
    }

    /// The genuine token with `header` and `claims` in place of its own, signature unchanged.
    fn forged(&self, header: &Value, claims: &Value) -> Jwt {
        self.jwt.clone().with_header(header).with_claims(claims)
    }

    /// The genuine header with `field` set to `value`.
    fn header_with(&self, field: &str, value: Value) -> Value {
        let mut header = self.header.clone();
        header[field] = value;
        header
    }
}

/// Registers a user, logs them in and takes the fresh session's access token apart.
async fn victim(ctx: &Ctx) -> Result<Victim, Failure> {
    let mut account = ctx.register().await?;
    account.pair = ctx.login(&account, None).await?;
    let jwt = Jwt::parse(&account.pair.access).map_err(not_a_jwt)?;
    let header = jwt.header().map_err(not_a_jwt)?;
    let claims = jwt.claims().map_err(not_a_jwt)?;
    if !header.is_object() || !claims.is_object() {
        return Err(Failure::new(
            "an access token whose header and claims are JSON objects",
            format!("header {header}, claims {claims}"),
        ));
    }
    Ok(Victim {
        account,
        jwt,
        header,
        claims,
    })
}

fn not_a_jwt(why: String) -> Failure {
    Failure::new(
        "an access token that is a JWT with JSON header and claims",
        why,
    )
}

/// A token the suite could not build (a bug of the suite, reported as a failure).
fn unbuildable(why: String) -> Failure {
    Failure::new("a crafted token", why)
}

/// `jwt`'s header `alg` set to `alg`, signed under `key`.
fn signed(jwt: Jwt, alg: HmacAlg, key: &[u8]) -> Result<String, Failure> {
    Ok(jwt.signed(alg, key).map_err(unbuildable)?.encode())
}

/// `jwt` with one bit of its signature flipped.
fn flipped(jwt: Jwt) -> Result<String, Failure> {
    Ok(jwt.with_flipped_signature().map_err(unbuildable)?.encode())
}

/// 32 random bytes: a secret the server cannot know.
fn random_key() -> Vec<u8> {
    let mut key = Uuid::new_v4().as_bytes().to_vec();
    key.extend_from_slice(Uuid::new_v4().as_bytes());
    key
}

/// Now, in Unix seconds.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// `token` on `GET /me` gets 401 `invalid_token`; a failure names the attack.
async fn refused(ctx: &Ctx, token: &str, attack: &str) -> Result<(), Failure> {
    ctx.expect_rejected(token).await.step(attack)
}

/// The server survived the attacks: the genuine token still works and a login answers.
async fn still_serves(ctx: &Ctx, victim: &Victim) -> CaseResult {
    ctx.expect_accepted(&victim.account.pair.access, &victim.account)
        .await
        .step("the genuine access token after the attacks")?;
    ctx.login(&victim.account, None)
        .await
        .step("a normal login after the attacks")?;
    Ok(())
}

async fn alg_none_in_every_casing(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = victim.header_with("alg", json!(alg));
        let token = victim.forged(&header, &victim.claims).without_signature();
        refused(
            &ctx,
            &token.encode(),
            &format!("the genuine claims with alg {alg:?} and an empty signature"),
        )
        .await?;
    }
    still_serves(&ctx, &victim).await
}

async fn stripped_signature(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    let token = victim.jwt.clone().without_signature().encode();
    refused(
        &ctx,
        &token,
        "the genuine token without its signature (`h.p.`)",
    )
    .await?;
    still_serves(&ctx, &victim).await
}

async fn payload_changed_under_old_signature(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    let other = ctx.register().await?;
    let mut as_other = victim.claims.clone();
    as_other["sub"] = json!(other.id);
    let token = victim.forged(&victim.header, &as_other).encode();
    refused(&ctx, &token, "another user's `sub` under the old signature").await?;
    as_other["email"] = json!(other.email);
    let token = victim.forged(&victim.header, &as_other).encode();
    refused(
        &ctx,
        &token,
        "another user's `sub` and `email` under the old signature",
    )
    .await?;
    let mut admin = victim.claims.clone();
    admin["roles"] = json!(["admin"]);
    let token = victim.forged(&victim.header, &admin).encode();
    refused(&ctx, &token, "`roles: [\"admin\"]` under the old signature").await?;
    still_serves(&ctx, &victim).await
}

async fn resigned_with_hs384_and_hs512(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    // With the server's own secret the only thing wrong is the algorithm.
    let mut keys = vec![("a random secret", random_key())];
    if let Some(secret) = ctx.jwt_secret() {
        keys.push(("the server's own secret", secret.to_vec()));
    }
    for alg in [HmacAlg::Hs384, HmacAlg::Hs512] {
        for (which, key) in &keys {
            let token = signed(victim.jwt.clone(), alg, key)?;
            let attack = format!(
                "the genuine claims re-signed with {} and {which}",
                alg.name()
            );
            refused(&ctx, &token, &attack).await?;
        }
    }
    still_serves(&ctx, &victim).await
}

async fn resigned_with_another_or_empty_secret(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    for (which, key) in [
        ("another secret", random_key()),
        ("an empty secret", Vec::new()),
    ] {
        let token = signed(victim.jwt.clone(), HmacAlg::Hs256, &key)?;
        refused(
            &ctx,
            &token,
            &format!("the genuine claims re-signed with HS256 and {which}"),
        )
        .await?;
    }
    still_serves(&ctx, &victim).await
}

async fn hs256_signed_with_the_public_key(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    if victim.alg() != "EdDSA" {
        return Err(CaseError::Skipped(format!(
            "the server signs with {} and publishes no public key",
            victim.alg()
        )));
    }
    let jwks = ctx
        .request(Method::GET, "/.well-known/jwks.json")
        .send()
        .await?;
    let expected = "200 with a JWKS holding the token's `kid` as an Ed25519 key with `x`";
    let body = jwks.expect_json(200).step("GET /.well-known/jwks.json")?;
    let kid = &victim.header["kid"];
    let jwk = body["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|key| key["kid"] == *kid))
        .ok_or_else(|| jwks.fail_because(expected, &format!("no key with kid {kid}")))?;
    let x = jwk["x"]
        .as_str()
        .ok_or_else(|| jwks.fail_because(expected, "the key has no string `x`"))?;
    let raw = URL_SAFE_NO_PAD
        .decode(x)
        .map_err(|e| jwks.fail_because(expected, &format!("`x` is not base64url: {e}")))?;
    let keys: [(&str, Vec<u8>); 4] = [
        ("the raw 32 bytes of the public key", raw),
        ("the public key's base64url text", x.as_bytes().to_vec()),
        ("the JWK's JSON text", jwk.to_string().into_bytes()),
        ("the JWKS document as served", jwks.body.clone()),
    ];
    for (which, key) in keys {
        let token = signed(victim.jwt.clone(), HmacAlg::Hs256, &key)?;
        refused(
            &ctx,
            &token,
            &format!("the genuine claims signed with HS256 using {which} as the secret"),
        )
        .await?;
    }
    still_serves(&ctx, &victim).await
}

/// `kid` values naming files, and keys an attacker guesses they resolve to.
async fn hostile_kids(ctx: &Ctx, victim: &Victim, kids: &[(&str, &[&str])]) -> CaseResult {
    for (kid, guesses) in kids {
        for key in *guesses {
            let header = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
            let token = signed(
                victim.forged(&header, &victim.claims),
                HmacAlg::Hs256,
                key.as_bytes(),
            )?;
            let attack = format!("kid {kid:?} with an HS256 signature under the key {key:?}");
            refused(ctx, &token, &attack).await?;
        }
        let header = victim.header_with("kid", json!(kid));
        let token = flipped(victim.forged(&header, &victim.claims))?;
        let attack = format!("the genuine header with kid {kid:?} and a forged signature");
        refused(ctx, &token, &attack).await?;
    }
    Ok(())
}

async fn kid_path_traversal(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    // `/dev/null` reads as the empty key.
    hostile_kids(
        &ctx,
        &victim,
        &[
            ("../../../../dev/null", &[""]),
            ("/dev/null", &[""]),
            ("../../../../../../../../etc/hostname", &["", "localhost"]),
        ],
    )
    .await?;
    still_serves(&ctx, &victim).await
}

async fn kid_sql_text(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    hostile_kids(
        &ctx,
        &victim,
        &[
            ("' OR '1'='1", &["", "1"]),
            ("x' UNION SELECT 'attacker-key' --", &["attacker-key"]),
            ("'; DROP TABLE users; --", &[""]),
        ],
    )
    .await?;
    still_serves(&ctx, &victim).await
}

async fn embedded_jwk_not_trusted(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    let key = random_key();
    let jwk = json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode(&key), "kid": "attacker"});
    for header in [
        json!({"alg": "HS256", "typ": "JWT", "jwk": jwk}),
        json!({"alg": "HS256", "typ": "JWT", "kid": "attacker", "jwk": jwk}),
        victim.header_with("jwk", jwk.clone()),
    ] {
        let token = signed(victim.forged(&header, &victim.claims), HmacAlg::Hs256, &key)?;
        refused(
            &ctx,
            &token,
            &format!("header {header} with an HS256 signature under the embedded key"),
        )
        .await?;
    }
    still_serves(&ctx, &victim).await
}

/// Tokens whose header `field` points at a listener on 127.0.0.1 are refused, and the
/// listener sees no connection within [`NO_CONNECTION_WITHIN`] after the answers.
async fn url_header_not_fetched(ctx: &Ctx, field: &str, file: &str) -> CaseResult {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::new("a TCP listener on 127.0.0.1", e.to_string()))?;
    let port = listener
        .local_addr()
        .map_err(|e| Failure::new("the listener's port", e.to_string()))?
        .port();
    let url = format!("http://127.0.0.1:{port}/{file}");
    let victim = victim(ctx).await?;
    let key = random_key();

    let mut pointing = victim.header_with(field, json!(url));
    pointing["kid"] = json!("attacker");
    let resigned = signed(
        victim.forged(&pointing, &victim.claims),
        HmacAlg::Hs256,
        &key,
    )?;
    let forged = flipped(victim.forged(&victim.header_with(field, json!(url)), &victim.claims))?;
    let rs256_header = json!({"alg": "RS256", "typ": "JWT", "kid": "attacker", field: url});
    let rs256 = victim
        .forged(&rs256_header, &victim.claims)
        .signed_as_is(HmacAlg::Hs512, &key)
        .map_err(unbuildable)?
        .encode();
    for (token, attack) in [
        (resigned, "HS256 under the attacker's key"),
        (forged, "the genuine algorithm with a forged signature"),
        (rs256, "RS256 with a made-up signature"),
    ] {
        refused(ctx, &token, &format!("`{field}: {url}` and {attack}")).await?;
    }

    match tokio::time::timeout(NO_CONNECTION_WITHIN, listener.accept()).await {
        Err(_elapsed) => {}
        Ok(Ok((_, peer))) => {
            return Err(Failure::new(
                format!(
                    "no connection to the `{field}` URL {url} within {} s after the answers",
                    NO_CONNECTION_WITHIN.as_secs()
                ),
                format!("the listener accepted a connection from {peer}"),
            )
            .into());
        }
        Ok(Err(e)) => {
            return Err(Failure::new("the listener keeps listening", e.to_string()).into());
        }
    }
    still_serves(ctx, &victim).await
}

async fn jku_not_fetched(ctx: Ctx) -> CaseResult {
    url_header_not_fetched(&ctx, "jku", "jwks.json").await
}

async fn x5u_not_fetched(ctx: Ctx) -> CaseResult {
    url_header_not_fetched(&ctx, "x5u", "cert.pem").await
}

/// A victim whose token the suite can re-sign validly: Skipped without the target's HS256
/// secret or when the server signs otherwise. Checks first that the genuine claims,
/// serialized differently and signed by the suite, are accepted, so that in what follows the
/// changed claim is the only reason to refuse.
async fn resignable_victim(ctx: &Ctx) -> Result<(Victim, Arc<[u8]>), CaseError> {
    let secret = ctx.require_jwt_secret()?;
    let victim = victim(ctx).await?;
    if victim.alg() != "HS256" {
        return Err(CaseError::Skipped(format!(
            "the server signs with {}: crafted tokens need its HS256 secret",
            victim.alg()
        )));
    }
    // The same claims in reverse order: other bytes, the same meaning.
    let reordered: serde_json::Map<String, Value> = victim
        .claims
        .as_object()
        .map(|claims| {
            claims
                .iter()
                .rev()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let control = signed(
        victim.forged(&victim.header, &Value::Object(reordered)),
        HmacAlg::Hs256,
        &secret,
    )?;
    ctx.expect_accepted(&control, &victim.account).await.step(
        "the genuine claims (reordered) signed by the suite with the HS256 secret the \
             target gave (if refused, that secret is wrong)",
    )?;
    Ok((victim, secret))
}

/// The victim's claims changed by `change`, validly signed, are refused.
async fn changed_claims_refused(
    ctx: &Ctx,
    victim: &Victim,
    secret: &[u8],
    attack: &str,
    change: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> Result<(), Failure> {
    let mut claims = victim.claims.clone();
    if let Some(fields) = claims.as_object_mut() {
        change(fields);
    }
    let token = signed(
        victim.forged(&victim.header, &claims),
        HmacAlg::Hs256,
        secret,
    )?;
    refused(
        ctx,
        &token,
        &format!("a validly signed token with {attack}"),
    )
    .await
}

async fn expired_beyond_leeway(ctx: Ctx) -> CaseResult {
    let (victim, secret) = resignable_victim(&ctx).await?;
    let exp = unix_now() - EXPIRED_SECS_AGO;
    changed_claims_refused(
        &ctx,
        &victim,
        &secret,
        &format!("exp {EXPIRED_SECS_AGO} s ago ({exp})"),
        |claims| {
            claims.insert("exp".to_owned(), json!(exp));
        },
    )
    .await?;
    still_serves(&ctx, &victim).await
}

async fn exp_as_string(ctx: Ctx) -> CaseResult {
    let (victim, secret) = resignable_victim(&ctx).await?;
    let exp = victim.claims["exp"].to_string();
    changed_claims_refused(
        &ctx,
        &victim,
        &secret,
        &format!("exp as the string {exp:?}"),
        |claims| {
            claims.insert("exp".to_owned(), json!(exp));
        },
    )
    .await?;
    still_serves(&ctx, &victim).await
}

async fn nbf_in_the_future(ctx: Ctx) -> CaseResult {
    let (victim, secret) = resignable_victim(&ctx).await?;
    let nbf = unix_now() + NOT_BEFORE_IN;
    changed_claims_refused(
        &ctx,
        &victim,
        &secret,
        &format!("nbf {NOT_BEFORE_IN} s from now ({nbf})"),
        |claims| {
            claims.insert("nbf".to_owned(), json!(nbf));
        },
    )
    .await?;
    still_serves(&ctx, &victim).await
}

async fn wrong_or_missing_issuer(ctx: Ctx) -> CaseResult {
    let (victim, secret) = resignable_victim(&ctx).await?;
    let wrong = format!(
        "{}-attacker",
        victim.claims["iss"].as_str().unwrap_or("iss")
    );
    changed_claims_refused(
        &ctx,
        &victim,
        &secret,
        &format!("iss {wrong:?}"),
        |claims| {
            claims.insert("iss".to_owned(), json!(wrong));
        },
    )
    .await?;
    changed_claims_refused(&ctx, &victim, &secret, "no iss", |claims| {
        claims.remove("iss");
    })
    .await?;
    still_serves(&ctx, &victim).await
}

async fn missing_required_claims(ctx: Ctx) -> CaseResult {
    let (victim, secret) = resignable_victim(&ctx).await?;
    for claim in ["sid", "sub", "exp"] {
        changed_claims_refused(&ctx, &victim, &secret, &format!("no {claim}"), |claims| {
            claims.remove(claim);
        })
        .await?;
    }
    still_serves(&ctx, &victim).await
}

async fn wrong_segment_counts(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    let token = victim.jwt.encode();
    let signature = token.rsplit('.').next().unwrap_or_default();
    for (attack, token) in [
        (
            "2 segments (`h.p`)",
            victim.jwt.encode_unsigned_two_segments(),
        ),
        ("4 segments (`h.p.s.s`)", format!("{token}.{signature}")),
        ("4 segments (`h.p.s.`)", format!("{token}.")),
        (
            "5 segments (`h.p.s.s.s`)",
            format!("{token}.{signature}.{signature}"),
        ),
    ] {
        refused(&ctx, &token, &format!("the genuine token as {attack}")).await?;
    }
    still_serves(&ctx, &victim).await
}

async fn token_of_100_kb(ctx: Ctx) -> CaseResult {
    let victim = victim(&ctx).await?;
    let mut claims = victim.claims.clone();
    // Base64url turns 3 bytes into 4.
    claims["pad"] = json!("A".repeat(HUGE_TOKEN_BYTES * 3 / 4));
    let token = flipped(victim.forged(&victim.header, &claims))?;
    refused(
        &ctx,
        &token,
        &format!("a forged token of {} bytes", token.len()),
    )
    .await?;
    still_serves(&ctx, &victim).await
}
