//! `native`'s admin routes (under `/api/v1/admin`, role `admin`): users and organizations.

use super::prelude::*;
use crate::check::VALIDATION_ERROR;
use crate::http::Req;
use crate::native::{COMMON_PASSWORDS, FULL_NAME};
use crate::profile::Profile;
use crate::shape::{AUTH, ORGANIZATION, RBAC_ME, USER, USER_PAGE};
use crate::users::jwt_claims;

cases!("admin" needs [Native]:
    token_required,
    admin_role_required,
    create_user,
    create_user_with_defaults,
    create_inactive_user,
    create_duplicate_email_rejected,
    create_invalid_fields_rejected,
    create_with_common_password_rejected,
    unknown_organization_rejected,
    find_user_by_email,
    list_total_counts_all_matches,
    list_paging_bounds,
    get_user,
    unknown_user_not_found,
    patch_deactivation_revokes_tokens,
    patch_replaces_roles,
    patch_profile_fields,
    delete_user_revokes_everything,
    revoke_sessions_keeps_the_account,
    organizations,
    organization_name_required,
    unknown_path_not_found,
    wrong_method_lists_allowed,
    answers_are_not_cached,
);

/// Problem code of a refusal for want of the `admin` role.
const FORBIDDEN: &str = "FORBIDDEN";
/// Roles the suite assigns; unknown names are created on first use.
const ROLE_A: &str = "conformance-a";
const ROLE_B: &str = "conformance-b";
const ROLE_C: &str = "conformance-c";

/// A request to `route` under the admin prefix.
pub(crate) fn admin(ctx: &Ctx, method: Method, route: &str) -> Req {
    ctx.at(Profile::Admin, method, route)
}

/// `PATCH /users/{id}` with the admin's `token`.
pub(crate) async fn patch_user(
    ctx: &Ctx,
    token: &str,
    id: &str,
    body: &Value,
) -> Result<Resp, Failure> {
    admin(ctx, Method::PATCH, &format!("/users/{id}"))
        .bearer(token)
        .json(body)
        .send()
        .await
}

/// `POST /users` with the admin's `token`.
async fn create_raw(ctx: &Ctx, token: &str, body: &Value) -> Result<Resp, Failure> {
    admin(ctx, Method::POST, "/users")
        .bearer(token)
        .json(body)
        .send()
        .await
}

/// Creates a user through the admin API from `body` (a fresh email and password are added),
/// expecting 201 and a user; returns the user object and the password.
async fn create(ctx: &Ctx, token: &str, mut body: Value) -> Result<(Value, String), Failure> {
    let password = unique_password();
    body["email"] = json!(unique_email());
    body["password"] = json!(password);
    let resp = create_raw(ctx, token, &body).await?;
    let user = resp.expect_shape(201, &USER)?.clone();
    resp.expect_at("/email", &body["email"])?;
    Ok((user, password))
}

/// `GET route` with the admin's `token`.
pub(crate) async fn get(ctx: &Ctx, token: &str, route: &str) -> Result<Resp, Failure> {
    admin(ctx, Method::GET, route).bearer(token).send().await
}

/// Logs in through `native` with `email` and `password`, expecting 200.
async fn native_login(ctx: &Ctx, email: &str, password: &str) -> Result<Resp, Failure> {
    let resp = ctx
        .login_raw(&json!({"email": email, "password": password}))
        .await?;
    resp.expect_shape(200, &AUTH)?;
    Ok(resp)
}

/// Every admin route with a body that would be valid, for the authorization checks.
fn every_route() -> Vec<(Method, String, Option<Value>)> {
    let id = Uuid::new_v4();
    vec![
        (
            Method::POST,
            "/users".to_owned(),
            Some(json!({"email": unique_email(), "password": unique_password()})),
        ),
        (Method::GET, "/users".to_owned(), None),
        (Method::GET, format!("/users/{id}"), None),
        (
            Method::PATCH,
            format!("/users/{id}"),
            Some(json!({"full_name": "x"})),
        ),
        (Method::DELETE, format!("/users/{id}"), None),
        (Method::DELETE, format!("/users/{id}/sessions"), None),
        (
            Method::POST,
            "/organizations".to_owned(),
            Some(json!({"name": "x"})),
        ),
        (Method::GET, "/organizations".to_owned(), None),
        (Method::GET, "/audit".to_owned(), None),
    ]
}

/// Percent-encodes a query parameter value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn token_required(ctx: Ctx) -> CaseResult {
    for (method, route, body) in every_route() {
        let mut req = admin(&ctx, method.clone(), &route);
        if let Some(body) = &body {
            req = req.json(body);
        }
        req.send()
            .await?
            .expect_unauthorized(Challenge::Missing)
            .step(&format!("{method} {route} without a token"))?;
    }
    admin(&ctx, Method::GET, "/users")
        .bearer("garbage")
        .send()
        .await?
        .expect_unauthorized(Challenge::InvalidToken)
        .step("a garbage token")?;
    Ok(())
}

async fn admin_role_required(ctx: Ctx) -> CaseResult {
    let account = ctx.register().await?;
    for (method, route, body) in every_route() {
        let mut req = admin(&ctx, method.clone(), &route).bearer(&account.pair.access);
        if let Some(body) = &body {
            req = req.json(body);
        }
        req.send()
            .await?
            .expect_problem(403, FORBIDDEN)
            .step(&format!("{method} {route} with a non-admin token"))?;
    }
    Ok(())
}

async fn create_user(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let (user, password) = create(
        &ctx,
        &token,
        json!({"full_name": FULL_NAME, "roles": [ROLE_B, ROLE_A], "is_active": true}),
    )
    .await?;
    let expected = [
        ("full_name", json!(FULL_NAME)),
        ("roles", json!([ROLE_A, ROLE_B])),
        ("is_active", json!(true)),
        ("organization_id", Value::Null),
    ];
    for (key, value) in expected {
        if user[key] != value {
            return Err(Failure::new(
                format!("the created user with {key} {value}"),
                format!("user {user}"),
            )
            .into());
        }
    }
    let email = user["email"].as_str().unwrap_or_default();
    let resp = native_login(&ctx, email, &password)
        .await
        .step("the created user logs in")?;
    resp.expect_at("/user", &user)?;
    let claims = jwt_claims(resp.str_at("/token/access_token")?)?;
    if claims["roles"] != json!([ROLE_A, ROLE_B]) {
        return Err(Failure::new(
            format!("access-token claim roles == [{ROLE_A:?}, {ROLE_B:?}]"),
            format!("claims {claims}"),
        )
        .into());
    }
    Ok(())
}

async fn create_user_with_defaults(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let (user, _) = create(&ctx, &token, json!({})).await?;
    let defaults =
        json!({"full_name": null, "roles": [], "is_active": true, "organization_id": null});
    for (key, value) in defaults.as_object().into_iter().flatten() {
        if &user[key] != value {
            return Err(Failure::new(
                "a user with full_name null, roles [], is_active true, organization_id null",
                format!("user {user}"),
            )
            .into());
        }
    }
    Ok(())
}

async fn create_inactive_user(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let (user, password) = create(&ctx, &token, json!({"is_active": false})).await?;
    if user["is_active"] != false {
        return Err(Failure::new("a user with is_active false", format!("user {user}")).into());
    }
    ctx.login_raw(&json!({"email": user["email"], "password": password}))
        .await?
        .expect_problem(403, "ACCOUNT_INACTIVE")
        .step("the inactive user logs in")?;
    Ok(())
}

async fn create_duplicate_email_rejected(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let account = ctx.register().await?;
    let resp = create_raw(
        &ctx,
        &token,
        &json!({"email": account.email.to_uppercase(), "password": unique_password()}),
    )
    .await?;
    resp.expect_problem(400, "EMAIL_TAKEN")?;
    Ok(())
}

async fn create_invalid_fields_rejected(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let probes = [
        (
            json!({"email": "not-an-email", "password": unique_password()}),
            "email",
        ),
        (json!({"password": unique_password()}), "email"),
        (
            json!({"email": unique_email(), "password": "p".repeat(7)}),
            "password",
        ),
        (json!({"email": unique_email()}), "password"),
    ];
    for (body, field) in probes {
        create_raw(&ctx, &token, &body)
            .await?
            .expect_validation(field)
            .step(&format!("body {body}"))?;
    }
    Ok(())
}

/// Issue 10, rule 10: the admin API refuses common passwords like registration does.
async fn create_with_common_password_rejected(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    for password in COMMON_PASSWORDS {
        let email = unique_email();
        create_raw(&ctx, &token, &json!({"email": email, "password": password}))
            .await?
            .expect_validation("password")
            .step(&format!("creating a user with {password:?}"))?;
        let found = get(&ctx, &token, &format!("/users?email={}", encode(&email))).await?;
        found.expect_shape(200, &USER_PAGE)?;
        found
            .expect_at("/total", &json!(0))
            .step("the refused user looked up")?;
    }
    Ok(())
}

async fn unknown_organization_rejected(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let unknown = Uuid::new_v4().to_string();
    let body = json!({
        "email": unique_email(), "password": unique_password(), "organization_id": unknown,
    });
    create_raw(&ctx, &token, &body)
        .await?
        .expect_validation("organization_id")
        .step("creating a user in an unknown organization")?;
    let account = ctx.register().await?;
    patch_user(
        &ctx,
        &token,
        &account.id,
        &json!({"organization_id": unknown}),
    )
    .await?
    .expect_validation("organization_id")
    .step("moving a user to an unknown organization")?;
    Ok(())
}

async fn find_user_by_email(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let (user, _) = create(&ctx, &token, json!({"full_name": FULL_NAME})).await?;
    let email = user["email"].as_str().unwrap_or_default().to_uppercase();
    let resp = get(&ctx, &token, &format!("/users?email={}", encode(&email))).await?;
    resp.expect_shape(200, &USER_PAGE)?;
    resp.expect_at("", &json!({"items": [user], "total": 1}))?;
    let resp = get(
        &ctx,
        &token,
        &format!("/users?email={}", encode(&unique_email())),
    )
    .await?;
    resp.expect_shape(200, &USER_PAGE)?;
    resp.expect_at("", &json!({"items": [], "total": 0}))
        .step("an email nobody has")?;
    Ok(())
}

async fn list_total_counts_all_matches(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    create(&ctx, &token, json!({})).await?;
    create(&ctx, &token, json!({})).await?;
    // The admin and the two users just created, at least; other cases may add more.
    let at_least = 3;
    let resp = get(&ctx, &token, "/users?limit=1").await?;
    let page = resp.expect_shape(200, &USER_PAGE)?;
    if page["items"].as_array().map(Vec::len) != Some(1)
        || page["total"].as_i64().is_none_or(|t| t < at_least)
    {
        return Err(resp
            .fail(format!(
                "limit=1: one item and a total of at least {at_least}"
            ))
            .into());
    }
    let resp = get(&ctx, &token, "/users?offset=1000000").await?;
    let page = resp.expect_shape(200, &USER_PAGE)?;
    if page["items"] != json!([]) || page["total"].as_i64().is_none_or(|t| t < at_least) {
        return Err(resp
            .fail(format!(
                "an offset past the end: no item and still a total of at least {at_least}"
            ))
            .into());
    }
    let resp = get(&ctx, &token, "/users").await?;
    let page = resp.expect_shape(200, &USER_PAGE)?;
    let (items, total) = (
        page["items"].as_array().map_or(0, Vec::len),
        page["total"].as_u64().unwrap_or(0),
    );
    if items > 50 || (items as u64) > total {
        return Err(resp
            .fail("no limit: at most 50 items (the default), no more than the total")
            .into());
    }
    Ok(())
}

async fn list_paging_bounds(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let refused = [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("offset=abc", "offset"),
    ];
    for (query, field) in refused {
        get(&ctx, &token, &format!("/users?{query}"))
            .await?
            .expect_validation(field)
            .step(query)?;
    }
    for query in ["limit=1", "limit=100", "offset=0"] {
        get(&ctx, &token, &format!("/users?{query}"))
            .await?
            .expect_shape(200, &USER_PAGE)
            .step(query)?;
    }
    Ok(())
}

async fn get_user(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let (user, _) = create(&ctx, &token, json!({"roles": [ROLE_A]})).await?;
    let id = user["id"].as_str().unwrap_or_default();
    let resp = get(&ctx, &token, &format!("/users/{id}")).await?;
    resp.expect_shape(200, &USER)?;
    resp.expect_at("", &user)?;
    Ok(())
}

async fn unknown_user_not_found(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    for id in [Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let route = format!("/users/{id}");
        get(&ctx, &token, &route)
            .await?
            .expect_problem(404, "NOT_FOUND")?;
        patch_user(&ctx, &token, &id, &json!({"full_name": "x"}))
            .await?
            .expect_problem(404, "NOT_FOUND")?;
        admin(&ctx, Method::DELETE, &route)
            .bearer(&token)
            .send()
            .await?
            .expect_problem(404, "NOT_FOUND")?;
        admin(&ctx, Method::DELETE, &format!("{route}/sessions"))
            .bearer(&token)
            .send()
            .await?
            .expect_problem(404, "NOT_FOUND")
            .step("revoking an unknown user's sessions")?;
    }
    Ok(())
}

async fn patch_deactivation_revokes_tokens(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let account = ctx.register().await?;
    let personal = ctx.create_token(&account, None).await?;
    let resp = patch_user(&ctx, &token, &account.id, &json!({"is_active": false})).await?;
    resp.expect_shape(200, &USER)?;
    resp.expect_at("/is_active", &json!(false))?;
    ctx.expect_rejected(&account.pair.access)
        .await
        .step("a deactivated user's access token")?;
    ctx.expect_rejected(&personal.token)
        .await
        .step("a deactivated user's personal token")?;
    ctx.login_raw(&json!({"email": account.email, "password": account.password}))
        .await?
        .expect_problem(403, "ACCOUNT_INACTIVE")
        .step("a deactivated user logs in")?;
    patch_user(&ctx, &token, &account.id, &json!({"is_active": true}))
        .await?
        .expect_shape(200, &USER)?;
    ctx.login(&account, None)
        .await
        .step("the reactivated user logs in")?;
    Ok(())
}

async fn patch_replaces_roles(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let (user, _) = create(&ctx, &token, json!({"roles": [ROLE_C]})).await?;
    let id = user["id"].as_str().unwrap_or_default();
    for (roles, expected) in [
        (json!([ROLE_B, ROLE_A]), json!([ROLE_A, ROLE_B])),
        (json!([]), json!([])),
    ] {
        let resp = patch_user(&ctx, &token, id, &json!({"roles": roles})).await?;
        resp.expect_shape(200, &USER)?;
        resp.expect_at("/roles", &expected)?;
        let resp = get(&ctx, &token, &format!("/users/{id}")).await?;
        resp.expect_shape(200, &USER)?;
        resp.expect_at("/roles", &expected)
            .step("the user read back")?;
    }
    Ok(())
}

async fn patch_profile_fields(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let account = ctx.register().await?;
    let phone = "+1234567890";
    let resp = patch_user(
        &ctx,
        &token,
        &account.id,
        &json!({
            "full_name": "Renamed Tester",
            "phone": phone,
            "attributes": {"onboarding_completed": true, "onboarding_step": 5},
        }),
    )
    .await?;
    resp.expect_shape(200, &USER)?;
    let mut expected = account.user.clone();
    expected["full_name"] = json!("Renamed Tester");
    resp.expect_at("", &expected)?;
    if !ctx.mounted(Profile::Rbac) {
        return Ok(());
    }
    let resp = ctx.rbac_me(&account.pair.access).await?;
    resp.expect_shape(200, &RBAC_ME)
        .step("rbac GET /me after the change")?;
    for (pointer, value) in [
        ("/user/full_name", json!("Renamed Tester")),
        ("/user/phone", json!(phone)),
        ("/user/onboarding_completed", json!(true)),
        ("/user/onboarding_step", json!(5)),
        ("/user/onboarding_data", Value::Null),
    ] {
        resp.expect_at(pointer, &value)
            .step("rbac GET /me after the change")?;
    }
    Ok(())
}

async fn delete_user_revokes_everything(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let account = ctx.register().await?;
    let route = format!("/users/{}", account.id);
    admin(&ctx, Method::DELETE, &route)
        .bearer(&token)
        .send()
        .await?
        .expect_no_content()?;
    ctx.expect_rejected(&account.pair.access)
        .await
        .step("a deleted user's access token")?;
    ctx.expect_login_refused(&account.email, &account.password)
        .await
        .step("a deleted user logs in")?;
    get(&ctx, &token, &route)
        .await?
        .expect_problem(404, "NOT_FOUND")
        .step("the deleted user read back")?;
    admin(&ctx, Method::DELETE, &route)
        .bearer(&token)
        .send()
        .await?
        .expect_problem(404, "NOT_FOUND")
        .step("deleting again")?;
    Ok(())
}

/// Issue 10, rule 12: an admin revokes every session, refresh token and personal token of
/// a user at once, without deactivating them: every credential is refused at once (even
/// one just used, which this instance would otherwise still trust for a moment), and the
/// user logs in again.
async fn revoke_sessions_keeps_the_account(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let account = ctx.register().await?;
    let other = ctx.login(&account, None).await?;
    let personal = ctx.create_token(&account, None).await?;
    for bearer in [&account.pair.access, &other.access, &personal.token] {
        ctx.expect_accepted(bearer, &account)
            .await
            .step("a credential before the revocation")?;
    }
    admin(
        &ctx,
        Method::DELETE,
        &format!("/users/{}/sessions", account.id),
    )
    .bearer(&token)
    .send()
    .await?
    .expect_no_content()?;
    for (what, bearer) in [
        (
            "the registration session's access token",
            &account.pair.access,
        ),
        ("another session's access token", &other.access),
        ("a personal token", &personal.token),
    ] {
        ctx.expect_rejected(bearer).await.step(what)?;
    }
    for (what, refresh) in [
        (
            "the registration session's refresh token",
            &account.pair.refresh,
        ),
        ("another session's refresh token", &other.refresh),
    ] {
        ctx.refresh_raw(refresh)
            .await?
            .expect_problem(401, UNAUTHORIZED)
            .step(what)?;
    }
    let resp = get(&ctx, &token, &format!("/users/{}", account.id)).await?;
    resp.expect_shape(200, &USER)?;
    resp.expect_at("", &account.user)
        .step("the user read back, unchanged")?;
    let fresh = ctx.login(&account, None).await.step("logging in again")?;
    ctx.expect_accepted(&fresh.access, &account)
        .await
        .step("the new session's access token")?;
    Ok(())
}

async fn organizations(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let name = format!("Conformance Org {}", Uuid::new_v4().simple());
    let resp = admin(&ctx, Method::POST, "/organizations")
        .bearer(&token)
        .json(&json!({"name": name}))
        .send()
        .await?;
    let organization = resp.expect_shape(201, &ORGANIZATION)?.clone();
    resp.expect_at("/name", &json!(name))?;
    let org_id = organization["id"].clone();

    let resp = get(&ctx, &token, "/organizations").await?;
    let listed = resp.expect_list_of(&ORGANIZATION)?;
    if !listed.contains(&organization) {
        return Err(resp
            .fail(format!("a list containing {organization}"))
            .into());
    }

    let (user, password) = create(&ctx, &token, json!({"organization_id": org_id})).await?;
    if user["organization_id"] != org_id {
        return Err(Failure::new(
            format!("the created user with organization_id {org_id}"),
            format!("user {user}"),
        )
        .into());
    }
    let email = user["email"].as_str().unwrap_or_default();
    let resp = native_login(&ctx, email, &password).await?;
    resp.expect_at("/user/organization_id", &org_id)?;
    let access = resp.str_at("/token/access_token")?.to_owned();
    let claims = jwt_claims(&access)?;
    if claims["org_id"] != org_id {
        return Err(Failure::new(
            format!("access-token claim org_id == {org_id}"),
            format!("claims {claims}"),
        )
        .into());
    }
    if ctx.mounted(Profile::Rbac) {
        let resp = ctx.rbac_me(&access).await?;
        resp.expect_shape(200, &RBAC_ME)?;
        resp.expect_at("/user/organization_id", &org_id)?;
        resp.expect_at("/organization_id", &org_id)?;
    }
    Ok(())
}

async fn organization_name_required(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    admin(&ctx, Method::POST, "/organizations")
        .bearer(&token)
        .json(&json!({}))
        .send()
        .await?
        .expect_problem(422, VALIDATION_ERROR)?;
    Ok(())
}

async fn unknown_path_not_found(ctx: Ctx) -> CaseResult {
    let unknown = format!("/no-such-route-{}", Uuid::new_v4().simple());
    for route in [unknown, format!("/users/{}/extra", Uuid::new_v4())] {
        admin(&ctx, Method::GET, &route)
            .send()
            .await?
            .expect_problem(404, "NOT_FOUND")
            .step(&format!("GET {route}"))?;
    }
    Ok(())
}

async fn wrong_method_lists_allowed(ctx: Ctx) -> CaseResult {
    let some_user = format!("/users/{}", Uuid::new_v4());
    let sessions = format!("{some_user}/sessions");
    let probes: [(Method, &str, &[&str]); 4] = [
        (Method::PUT, "/users", &["GET", "POST"]),
        (Method::POST, &some_user, &["GET", "PATCH", "DELETE"]),
        (Method::DELETE, "/organizations", &["GET", "POST"]),
        (Method::GET, &sessions, &["DELETE"]),
    ];
    for (method, route, allowed) in probes {
        let resp = admin(&ctx, method, route).send().await?;
        resp.expect_problem_any_code(405)?;
        resp.expect_allow(allowed)?;
    }
    Ok(())
}

/// Admin answers carrying users say `Cache-Control: no-store` (issue 10, rule 11).
async fn answers_are_not_cached(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    let created = create_raw(
        &ctx,
        &token,
        &json!({"email": unique_email(), "password": unique_password()}),
    )
    .await?;
    created.expect_shape(201, &USER)?;
    created.expect_no_store().step("POST /users")?;
    let id = created.str_at("/id")?.to_owned();
    get(&ctx, &token, "/users")
        .await?
        .expect_no_store()
        .step("GET /users")?;
    get(&ctx, &token, &format!("/users/{id}"))
        .await?
        .expect_no_store()
        .step("GET /users/{id}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("C-1@Example.COM"), "C-1%40Example.COM");
        assert_eq!(encode("a+b c"), "a%2Bb%20c");
    }
}
