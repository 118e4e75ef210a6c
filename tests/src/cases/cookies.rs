//! The cookie transport of browser apps (issue 12, rule 2). `register`, `login` and `refresh`
//! with `"transport": "cookie"` answer `{user, expires_in, csrf_token}` and put the tokens in
//! `HttpOnly` cookies: the access token's on `Path=/`, the refresh token's on the refresh
//! path only. Every authenticated route takes the access cookie when no `Authorization`
//! header is sent; a state-changing request authenticated by it must carry the session's
//! `X-CSRF-Token`, or it is refused with 403 `CSRF_FAILED` and changes nothing. `logout`
//! clears both cookies. Bearer requests are unchanged. The seed profiles never read cookies.
//!
//! Cookie names: `__Host-auth_access` and `__Secure-auth_refresh` when the cookies are
//! `Secure` (the default), `auth_access` and `auth_refresh` on a deployment that turned
//! `Secure` off for plain-HTTP development; the suite accepts either pair, and holds a
//! `__Host-`/`__Secure-` name to what its prefix promises.

use super::prelude::*;
use crate::profile::Profile;
use crate::shape::COOKIE_SESSION;

cases!("cookies" needs [Native]:
    cookie_register_answers_no_token,
    cookie_login_sets_http_only_cookies,
    the_access_cookie_authenticates,
    a_state_change_by_cookie_needs_the_csrf_token,
    logout_by_cookie_clears_both_cookies,
    refresh_by_cookie_rotates_and_resets_the_cookies,
    refresh_cookie_reuse_revokes_the_session,
    bearer_requests_need_no_csrf_token,
    transport_must_be_cookie_or_bearer,
    seed_profiles_ignore_the_cookies needs [Native, Rbac],
    admin_routes_take_the_cookie needs [Native, Admin],
);

/// The two possible names of each cookie: `Secure`, then plain.
const ACCESS_NAMES: [&str; 2] = ["__Host-auth_access", "auth_access"];
const REFRESH_NAMES: [&str; 2] = ["__Secure-auth_refresh", "auth_refresh"];

/// One `Set-Cookie` header, parsed.
#[derive(Debug, Clone)]
struct SetCookie {
    name: String,
    value: String,
    /// Attribute names (lower case) with their values (`""` for flags).
    attributes: Vec<(String, String)>,
    /// The header as sent, for failure reports.
    raw: String,
}

impl SetCookie {
    fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.split(';');
        let (name, value) = parts.next()?.split_once('=')?;
        let attributes = parts
            .map(|part| {
                let (name, value) = part.split_once('=').unwrap_or((part, ""));
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        Some(Self {
            name: name.trim().to_owned(),
            value: value.trim().to_owned(),
            attributes,
            raw: raw.to_owned(),
        })
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn max_age(&self) -> Option<i64> {
        self.attribute("max-age")?.parse().ok()
    }

    /// `name=value`, as a `Cookie` header carries it.
    fn pair(&self) -> String {
        format!("{}={}", self.name, self.value)
    }

    fn fail(&self, expected: impl Into<String>) -> Failure {
        Failure::new(expected, format!("Set-Cookie: {}", self.raw))
    }
}

/// The answer's `Set-Cookie` of one of `names`; a failure when there is not exactly one.
fn set_cookie(resp: &Resp, names: &[&str; 2]) -> Result<SetCookie, Failure> {
    let found: Vec<SetCookie> = resp
        .header_values("set-cookie")
        .iter()
        .filter_map(|raw| SetCookie::parse(raw))
        .filter(|cookie| names.contains(&cookie.name.as_str()))
        .collect();
    match found.as_slice() {
        [cookie] => Ok(cookie.clone()),
        [] => Err(resp.fail(format!(
            "a `Set-Cookie` of `{}` or `{}`",
            names[0], names[1]
        ))),
        _ => Err(resp.fail(format!("one `Set-Cookie` of `{}`", names[0]))),
    }
}

/// What every cookie of a session must be: `HttpOnly`, a `SameSite` (`None` only with
/// `Secure`), on `path`, and true to its name's prefix (`__Host-`: `Secure`, `Path=/`, no
/// `Domain`; `__Secure-`: `Secure`).
fn expect_session_cookie(cookie: &SetCookie, path: &str) -> Result<(), Failure> {
    if cookie.attribute("httponly").is_none() {
        return Err(cookie.fail("an `HttpOnly` cookie (page scripts must never read it)"));
    }
    let secure = cookie.attribute("secure").is_some();
    match cookie.attribute("samesite").map(str::to_ascii_lowercase) {
        Some(same_site) if same_site == "lax" || same_site == "strict" => {}
        Some(same_site) if same_site == "none" && secure => {}
        _ => return Err(cookie.fail("`SameSite=Lax` or `Strict` (`None` only with `Secure`)")),
    }
    if cookie.attribute("path") != Some(path) {
        return Err(cookie.fail(format!("`Path={path}`")));
    }
    if cookie.name.starts_with("__") && !secure {
        return Err(cookie.fail("`Secure`, as the name's prefix promises"));
    }
    if cookie.name.starts_with("__Host-") && cookie.attribute("domain").is_some() {
        return Err(cookie.fail("no `Domain` on a `__Host-` cookie"));
    }
    Ok(())
}

/// A browser's view of one cookie session: the cookies it holds and the CSRF token the page
/// keeps.
#[derive(Debug, Clone)]
struct CookieSession {
    user_id: String,
    access: SetCookie,
    refresh: SetCookie,
    csrf_token: String,
}

impl CookieSession {
    /// Reads a cookie answer: `{user, expires_in, csrf_token}` with `status`, no token in the
    /// body, and both cookies as they must be.
    fn read(ctx: &Ctx, resp: &Resp, status: u16) -> Result<Self, Failure> {
        let body = resp.expect_shape(status, &COOKIE_SESSION)?;
        let text = String::from_utf8_lossy(&resp.body);
        if text.contains("authrt_") || text.contains("eyJ") {
            return Err(resp.fail("no token string anywhere in the body"));
        }
        let expires_in = body["expires_in"].as_i64().unwrap_or_default();
        let csrf_token = resp.str_at("/csrf_token")?.to_owned();
        if csrf_token.len() < 16 {
            return Err(resp.fail("a `csrf_token` of at least 16 characters"));
        }
        let access = set_cookie(resp, &ACCESS_NAMES)?;
        expect_session_cookie(&access, "/")?;
        if access.max_age() != Some(expires_in) {
            return Err(access.fail(format!("`Max-Age={expires_in}` (the body's expires_in)")));
        }
        let refresh = set_cookie(resp, &REFRESH_NAMES)?;
        let refresh_path = format!("{}/refresh", native_prefix(ctx));
        expect_session_cookie(&refresh, &refresh_path)?;
        if refresh.max_age().is_none_or(|secs| secs < expires_in) {
            return Err(refresh.fail("a `Max-Age` no shorter than the access cookie's"));
        }
        Ok(Self {
            user_id: resp.str_at("/user/id")?.to_owned(),
            access,
            refresh,
            csrf_token,
        })
    }

    /// The `Cookie` header a browser sends to every route but refresh.
    fn cookie(&self) -> String {
        self.access.pair()
    }

    /// The `Cookie` header a browser sends to the refresh path (both cookies match it).
    fn refresh_cookie(&self) -> String {
        format!("{}; {}", self.access.pair(), self.refresh.pair())
    }
}

fn native_prefix(ctx: &Ctx) -> String {
    ctx.prefix(Profile::Native)
        .unwrap_or(Profile::Native.default_prefix())
        .to_owned()
}

/// Registers a fresh account with the cookie transport.
async fn cookie_register(ctx: &Ctx) -> Result<(Account, CookieSession), Failure> {
    let (email, password) = (unique_email(), unique_password());
    let resp = ctx
        .register_raw(&json!({"email": email, "password": password, "transport": "cookie"}))
        .await?;
    let session = CookieSession::read(ctx, &resp, 201).step("POST /register, cookie transport")?;
    resp.expect_at("/user/email", &json!(email))?;
    resp.expect_no_store()?;
    let account = Account {
        id: session.user_id.clone(),
        user: resp.json().map_or(Value::Null, |body| body["user"].clone()),
        email,
        password,
        pair: Pair {
            access: String::new(),
            refresh: String::new(),
        },
    };
    Ok((account, session))
}

/// A fresh account signed in with the cookie transport: registered with it or, when the
/// suite makes its users through the admin API ([`Ctx::users_via_admin`], so that the
/// deployment's per-IP registration limit is spent only by the cases about registering),
/// made there and logged in with it.
async fn cookie_account(ctx: &Ctx) -> Result<(Account, CookieSession), Failure> {
    if !ctx.users_via_admin() {
        return cookie_register(ctx).await;
    }
    let account = ctx.register().await?;
    let session = cookie_login(ctx, &account).await?;
    Ok((account, session))
}

/// Logs `account` in with the cookie transport.
async fn cookie_login(ctx: &Ctx, account: &Account) -> Result<CookieSession, Failure> {
    let resp = ctx
        .login_raw(&json!({
            "email": account.email,
            "password": account.password,
            "transport": "cookie",
        }))
        .await?;
    let session = CookieSession::read(ctx, &resp, 200).step("POST /login, cookie transport")?;
    if session.user_id != account.id {
        return Err(resp.fail("the logged-in user"));
    }
    Ok(session)
}

/// `GET /me` with a `Cookie` header only.
async fn me_by_cookie(ctx: &Ctx, cookie: &str) -> Result<Resp, Failure> {
    ctx.native(Method::GET, "/me")
        .header("cookie", cookie)
        .send()
        .await
}

/// `method route` with the session's cookie and, when given, `X-CSRF-Token: csrf`.
async fn by_cookie(
    ctx: &Ctx,
    method: Method,
    route: &str,
    session: &CookieSession,
    csrf: Option<&str>,
) -> Result<Resp, Failure> {
    let mut req = ctx.native(method, route).header("cookie", session.cookie());
    if let Some(csrf) = csrf {
        req = req.header("x-csrf-token", csrf);
    }
    req.send().await
}

/// `POST /refresh` with no body, as a browser sends it: both cookies.
async fn refresh_by_cookie(ctx: &Ctx, cookie: &str) -> Result<Resp, Failure> {
    ctx.native(Method::POST, "/refresh")
        .header("cookie", cookie)
        .send()
        .await
}

/// `GET /me` with the session's cookie answers its user.
async fn expect_signed_in(ctx: &Ctx, session: &CookieSession) -> Result<(), Failure> {
    let resp = me_by_cookie(ctx, &session.cookie()).await?;
    resp.expect_json(200)?;
    resp.expect_at("/id", &json!(session.user_id))
}

/// A 403 `CSRF_FAILED` problem.
fn expect_csrf_failed(resp: &Resp) -> Result<(), Failure> {
    resp.expect_problem(403, "CSRF_FAILED").map(|_| ())
}

async fn cookie_register_answers_no_token(ctx: Ctx) -> CaseResult {
    let (_, session) = cookie_register(&ctx).await?;
    expect_signed_in(&ctx, &session)
        .await
        .step("GET /me with the registration's access cookie")?;
    Ok(())
}

async fn cookie_login_sets_http_only_cookies(ctx: Ctx) -> CaseResult {
    let (account, first) = cookie_account(&ctx).await?;
    let session = cookie_login(&ctx, &account).await?;
    if session.access.value == first.access.value || session.csrf_token == first.csrf_token {
        return Err(Failure::new(
            "a login opens a session of its own: a new access cookie and CSRF token",
            "the registration's",
        )
        .into());
    }
    expect_signed_in(&ctx, &session)
        .await
        .step("GET /me with the login's access cookie")?;
    Ok(())
}

async fn the_access_cookie_authenticates(ctx: Ctx) -> CaseResult {
    let (_, session) = cookie_account(&ctx).await?;
    let resp = by_cookie(&ctx, Method::GET, "/sessions", &session, None).await?;
    let listed = resp.expect_json(200).step("GET /sessions by cookie")?;
    let current = listed
        .as_array()
        .is_some_and(|list| list.iter().filter(|s| s["current"] == true).count() == 1);
    if !current {
        return Err(resp.fail("the cookie's session listed as current").into());
    }
    me_by_cookie(&ctx, &session.refresh.pair())
        .await?
        .expect_unauthorized(Challenge::Missing)
        .step("GET /me with only the refresh cookie")?;
    let forged = format!("{}=not-a-token", session.access.name);
    me_by_cookie(&ctx, &forged)
        .await?
        .expect_unauthorized(Challenge::InvalidToken)
        .step("GET /me with a forged access cookie")?;
    Ok(())
}

async fn a_state_change_by_cookie_needs_the_csrf_token(ctx: Ctx) -> CaseResult {
    let (account, session) = cookie_account(&ctx).await?;
    let other = cookie_login(&ctx, &account).await?;
    let attempts: [(&str, Option<&str>); 4] = [
        ("no X-CSRF-Token", None),
        ("an empty X-CSRF-Token", Some("")),
        (
            "a wrong X-CSRF-Token",
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        ),
        ("another session's X-CSRF-Token", Some(&other.csrf_token)),
    ];
    for (what, csrf) in attempts {
        let resp = by_cookie(&ctx, Method::POST, "/logout", &session, csrf).await?;
        expect_csrf_failed(&resp).step(&format!("POST /logout by cookie with {what}"))?;
        let route = format!("/sessions/{}", Uuid::new_v4());
        let resp = by_cookie(&ctx, Method::DELETE, &route, &session, csrf).await?;
        expect_csrf_failed(&resp)
            .step(&format!("DELETE /sessions/{{id}} by cookie with {what}"))?;
    }
    let resp = ctx
        .native(Method::POST, "/password")
        .header("cookie", session.cookie())
        .json(&json!({"current_password": account.password, "new_password": unique_password()}))
        .send()
        .await?;
    expect_csrf_failed(&resp).step("POST /password by cookie without X-CSRF-Token")?;
    expect_signed_in(&ctx, &session)
        .await
        .step("the session after refused state changes")?;
    expect_signed_in(&ctx, &other)
        .await
        .step("the other session after refused state changes")?;
    ctx.login(&account, None)
        .await
        .step("the password after a refused change")?;
    Ok(())
}

async fn logout_by_cookie_clears_both_cookies(ctx: Ctx) -> CaseResult {
    let (_, session) = cookie_account(&ctx).await?;
    let resp = by_cookie(
        &ctx,
        Method::POST,
        "/logout",
        &session,
        Some(&session.csrf_token),
    )
    .await?;
    resp.expect_no_content()
        .step("POST /logout by cookie with the CSRF token")?;
    for (names, path) in [
        (&ACCESS_NAMES, "/".to_owned()),
        (&REFRESH_NAMES, format!("{}/refresh", native_prefix(&ctx))),
    ] {
        let cleared = set_cookie(&resp, names).step("the logout's answer")?;
        if cleared.max_age() != Some(0) || cleared.attribute("path") != Some(path.as_str()) {
            return Err(cleared
                .fail(format!("the cookie cleared: `Max-Age=0` on `Path={path}`"))
                .into());
        }
    }
    me_by_cookie(&ctx, &session.cookie())
        .await?
        .expect_unauthorized(Challenge::InvalidToken)
        .step("GET /me with the logged-out access cookie")?;
    refresh_by_cookie(&ctx, &session.refresh_cookie())
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("POST /refresh with the logged-out refresh cookie")?;
    Ok(())
}

async fn refresh_by_cookie_rotates_and_resets_the_cookies(ctx: Ctx) -> CaseResult {
    let (_, session) = cookie_account(&ctx).await?;
    let resp = refresh_by_cookie(&ctx, &session.refresh_cookie()).await?;
    let next = CookieSession::read(&ctx, &resp, 200).step("POST /refresh by cookie")?;
    resp.expect_no_store()?;
    if next.user_id != session.user_id {
        return Err(resp.fail("the session's user").into());
    }
    if next.access.value == session.access.value || next.refresh.value == session.refresh.value {
        return Err(resp
            .fail("a new access cookie and a new refresh cookie")
            .into());
    }
    if next.csrf_token != session.csrf_token {
        return Err(resp
            .fail("the same `csrf_token`: it is bound to the session, not to its tokens")
            .into());
    }
    expect_signed_in(&ctx, &next)
        .await
        .step("GET /me with the refreshed access cookie")?;
    me_by_cookie(&ctx, &session.cookie())
        .await?
        .expect_unauthorized(Challenge::InvalidToken)
        .step("GET /me with the access cookie the refresh replaced")?;
    let resp = ctx
        .native(Method::POST, "/refresh")
        .header("cookie", next.refresh_cookie())
        .json(&json!({"transport": "bearer"}))
        .send()
        .await?;
    resp.expect_shape(200, &crate::shape::TOKEN_PAIR)
        .step("POST /refresh by cookie asking bearer")?;
    let pair = crate::native::pair_at(&resp, "")?;
    ctx.me(&pair.access)
        .await?
        .expect_json(200)
        .step("GET /me with the bearer token a cookie refresh answered")?;
    Ok(())
}

async fn refresh_cookie_reuse_revokes_the_session(ctx: Ctx) -> CaseResult {
    let (_, first) = cookie_account(&ctx).await?;
    let resp = refresh_by_cookie(&ctx, &first.refresh_cookie()).await?;
    let second = CookieSession::read(&ctx, &resp, 200).step("the first cookie refresh")?;
    let resp = refresh_by_cookie(&ctx, &second.refresh_cookie()).await?;
    let third = CookieSession::read(&ctx, &resp, 200).step("the second cookie refresh")?;
    refresh_by_cookie(&ctx, &first.refresh_cookie())
        .await?
        .expect_problem(401, UNAUTHORIZED)
        .step("POST /refresh with a refresh cookie two generations old")?;
    me_by_cookie(&ctx, &third.cookie())
        .await?
        .expect_unauthorized(Challenge::InvalidToken)
        .step("GET /me after refresh-cookie reuse revoked the session")?;
    Ok(())
}

async fn bearer_requests_need_no_csrf_token(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    let resp = ctx
        .native(Method::GET, "/me")
        .bearer(&account.pair.access)
        .header("cookie", format!("{}=not-a-token", ACCESS_NAMES[0]))
        .send()
        .await?;
    resp.expect_json(200)
        .step("GET /me with a bearer token beside a stray cookie: the header wins")?;
    ctx.native(Method::POST, "/logout")
        .bearer(&account.pair.access)
        .send()
        .await?
        .expect_no_content()
        .step("POST /logout by bearer token without X-CSRF-Token")?;
    let resp = ctx
        .login_raw(&json!({
            "email": account.email,
            "password": account.password,
            "transport": "bearer",
        }))
        .await?;
    resp.expect_shape(200, &crate::shape::AUTH)
        .step("POST /login with \"transport\": \"bearer\"")?;
    if !resp.header_values("set-cookie").is_empty() {
        return Err(resp.fail("no `Set-Cookie` for the bearer transport").into());
    }
    Ok(())
}

async fn transport_must_be_cookie_or_bearer(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    for transport in [json!("jar"), json!("Cookie"), json!(1), json!({})] {
        let resp = ctx
            .login_raw(&json!({
                "email": account.email,
                "password": account.password,
                "transport": transport,
            }))
            .await?;
        resp.expect_validation("transport")
            .step(&format!("POST /login with \"transport\": {transport}"))?;
        if !resp.header_values("set-cookie").is_empty() {
            return Err(resp.fail("no `Set-Cookie` on a refused login").into());
        }
    }
    let resp = ctx
        .register_raw(&json!({
            "email": unique_email(),
            "password": unique_password(),
            "transport": "jar",
        }))
        .await?;
    resp.expect_validation("transport")
        .step("POST /register with \"transport\": \"jar\"")?;
    let resp = ctx
        .native(Method::POST, "/refresh")
        .json(&json!({"refresh_token": account.pair.refresh, "transport": "jar"}))
        .send()
        .await?;
    resp.expect_validation("transport")
        .step("POST /refresh with \"transport\": \"jar\"")?;
    ctx.refresh(&account.pair.refresh)
        .await
        .step("the refresh token after a refused refresh")?;
    Ok(())
}

async fn seed_profiles_ignore_the_cookies(ctx: Ctx) -> CaseResult {
    let (_, session) = cookie_account(&ctx).await?;
    let resp = ctx
        .at(Profile::Rbac, Method::GET, "/me")
        .header("cookie", session.cookie())
        .send()
        .await?;
    if resp.status != 401 {
        return Err(resp
            .fail("401: a seed profile reads bearer tokens only, never the access cookie")
            .into());
    }
    Ok(())
}

async fn admin_routes_take_the_cookie(ctx: Ctx) -> CaseResult {
    let Some(admin) = ctx.admin_credentials() else {
        return Err(CaseError::Skipped(
            "the target gave no admin credentials".to_owned(),
        ));
    };
    let resp = ctx
        .login_raw(&json!({
            "email": admin.email,
            "password": admin.password,
            "transport": "cookie",
        }))
        .await?;
    let session = CookieSession::read(&ctx, &resp, 200).step("the admin's cookie login")?;
    let admin_route = |method: Method, route: &str| {
        ctx.at(Profile::Admin, method, route)
            .header("cookie", session.cookie())
    };
    admin_route(Method::GET, "/users?limit=1")
        .send()
        .await?
        .expect_json(200)
        .step("GET /users of the admin API by cookie")?;
    let route = format!("/users/{}", Uuid::new_v4());
    let resp = admin_route(Method::DELETE, &route).send().await?;
    expect_csrf_failed(&resp).step("DELETE /users/{id} of the admin API by cookie, no CSRF")?;
    admin_route(Method::DELETE, &route)
        .header("x-csrf-token", session.csrf_token.clone())
        .send()
        .await?
        .expect_problem(404, "NOT_FOUND")
        .step("DELETE /users/{unknown id} of the admin API by cookie with the CSRF token")?;
    Ok(())
}
