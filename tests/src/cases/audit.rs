//! `GET /api/v1/admin/audit` (role `admin`): the audit log of security events. Every case
//! works on a user of its own and reads the events naming it, so cases running side by side
//! (and earlier runs on the same database) do not disturb each other.

use super::admin::{admin, get};
use super::prelude::*;

cases!("audit" needs [Native]:
    admin_role_required,
    logins_are_recorded_with_target_ip_and_user_agent,
    a_password_change_is_recorded,
    admin_actions_have_the_admin_as_actor,
    filters_and_pages,
    bad_filters_rejected,
);

/// The user agent the cases send where they check it.
const USER_AGENT: &str = "auth-conformance-audit/1.0";

/// `GET /audit?query` with the admin's `token`, expecting 200 `{items: [...], total}`;
/// returns the items and the total.
async fn audit(ctx: &Ctx, token: &str, query: &str) -> Result<(Vec<Value>, u64), Failure> {
    let resp = get(ctx, token, &format!("/audit?{query}")).await?;
    let body = resp.expect_json(200)?;
    let (Some(items), Some(total)) = (body["items"].as_array(), body["total"].as_u64()) else {
        return Err(resp.fail("200 {items: [...], total}"));
    };
    for item in items {
        check_event(item).map_err(|why| resp.fail(format!("every item an audit event: {why}")))?;
    }
    Ok((items.clone(), total))
}

/// The shape of one event: a UUID id, an RFC 3339 UTC `at`, a kind, UUIDs or null for actor
/// and target, strings or null for ip and user agent, an object or null for detail.
fn check_event(item: &Value) -> Result<(), String> {
    let uuid_or_null = |key: &str| {
        item[key].is_null()
            || item[key]
                .as_str()
                .is_some_and(|s| Uuid::parse_str(s).is_ok())
    };
    let string_or_null = |key: &str| item[key].is_null() || item[key].is_string();
    let at = item["at"].as_str().unwrap_or_default();
    let at_ok = at.len() == 20 && at.ends_with('Z') && at.as_bytes().get(10) == Some(&b'T');
    let ok = item["id"]
        .as_str()
        .is_some_and(|s| Uuid::parse_str(s).is_ok())
        && at_ok
        && item["kind"].is_string()
        && uuid_or_null("actor_id")
        && uuid_or_null("target_id")
        && string_or_null("ip")
        && string_or_null("user_agent")
        && (item["detail"].is_null() || item["detail"].is_object());
    if ok { Ok(()) } else { Err(format!("{item}")) }
}

/// The events naming `target` (newest first, at most 100).
async fn about(ctx: &Ctx, token: &str, target: &str) -> Result<Vec<Value>, Failure> {
    Ok(audit(ctx, token, &format!("target_id={target}&limit=100"))
        .await?
        .0)
}

/// The event of `kind` the case caused (else the first of that kind), or a failure saying
/// what was there.
fn find<'a>(events: &'a [Value], kind: &str, what: &str) -> Result<&'a Value, Failure> {
    let of_kind = || events.iter().filter(|e| e["kind"] == kind);
    // The case's own requests carry its user agent; events of one second come in no set
    // order, and making the user (a registration, or an admin creation and a login) may
    // have recorded one of the same kind.
    let own = of_kind().find(|e| e["user_agent"] == USER_AGENT);
    own.or_else(|| of_kind().next()).ok_or_else(|| {
        let kinds: Vec<&Value> = events.iter().map(|e| &e["kind"]).collect();
        Failure::new(
            format!("a {kind} event {what}"),
            format!("events of kinds {kinds:?}"),
        )
    })
}

/// `event[key]` is `expected`.
fn expect_field(event: &Value, key: &str, expected: &Value, what: &str) -> Result<(), Failure> {
    if &event[key] == expected {
        Ok(())
    } else {
        Err(Failure::new(
            format!("{what}: {key} {expected}"),
            format!("event {event}"),
        ))
    }
}

/// The event came from this context's client: its IP when the target believes the suite's
/// `X-Forwarded-For` (otherwise any), and the cases' user agent.
fn expect_origin(ctx: &Ctx, event: &Value, what: &str) -> Result<(), Failure> {
    if let Ok(ip) = ctx.client_ip_sent() {
        expect_field(event, "ip", &json!(ip.to_string()), what)?;
    } else if !event["ip"].is_string() {
        return Err(Failure::new(
            format!("{what}: an ip"),
            format!("event {event}"),
        ));
    }
    expect_field(event, "user_agent", &json!(USER_AGENT), what)
}

/// No event mentions any of `secrets` (a password, a token).
fn expect_no_secret(events: &[Value], secrets: &[&str]) -> Result<(), Failure> {
    for event in events {
        let text = event.to_string();
        if secrets.iter().any(|secret| text.contains(secret)) {
            return Err(Failure::new(
                "no event holds a password or token",
                format!("event {text}"),
            ));
        }
    }
    Ok(())
}

/// `POST /login` for `email` with `password`, sending the cases' user agent.
async fn login(ctx: &Ctx, email: &str, password: &str) -> Result<Resp, Failure> {
    ctx.native(Method::POST, "/login")
        .header("user-agent", USER_AGENT)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
}

/// The admin's token and user id.
async fn admin_identity(ctx: &Ctx) -> Result<(String, String), CaseError> {
    let token = ctx.admin_token().await?;
    let resp = ctx.me(&token).await?;
    let id = resp.expect_json(200)?["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| resp.fail("the admin's user with an id"))?;
    Ok((token, id))
}

async fn admin_role_required(ctx: Ctx) -> CaseResult {
    admin(&ctx, Method::GET, "/audit")
        .send()
        .await?
        .expect_unauthorized(Challenge::Missing)
        .step("GET /audit without a token")?;
    let account = ctx.register().await?;
    admin(&ctx, Method::GET, "/audit")
        .bearer(&account.pair.access)
        .send()
        .await?
        .expect_problem(403, "FORBIDDEN")
        .step("GET /audit with a non-admin token")?;
    Ok(())
}

async fn logins_are_recorded_with_target_ip_and_user_agent(ctx: Ctx) -> CaseResult {
    let (token, _) = admin_identity(&ctx).await?;
    let account = ctx.register().await?;
    let wrong = unique_password();
    login(&ctx, &account.email, &wrong)
        .await?
        .expect_problem_any_code(401)
        .step("a wrong password")?;
    login(&ctx, &account.email, &account.password)
        .await?
        .expect_json(200)
        .step("the right password")?;
    let events = about(&ctx, &token, &account.id).await?;
    let failed = find(&events, "login.failed", "for the wrong password")?;
    expect_field(failed, "target_id", &json!(account.id), "the failed login")?;
    expect_field(failed, "actor_id", &Value::Null, "the failed login")?;
    expect_field(
        failed,
        "detail",
        &json!({"reason": "invalid_credentials"}),
        "the failed login",
    )?;
    expect_origin(&ctx, failed, "the failed login")?;
    let succeeded = find(&events, "login.succeeded", "for the right password")?;
    expect_field(succeeded, "target_id", &json!(account.id), "the login")?;
    expect_field(succeeded, "actor_id", &json!(account.id), "the login")?;
    expect_origin(&ctx, succeeded, "the login")?;
    expect_no_secret(&events, &[&account.password, &wrong, &account.pair.access])?;
    Ok(())
}

async fn a_password_change_is_recorded(ctx: Ctx) -> CaseResult {
    let (token, _) = admin_identity(&ctx).await?;
    let account = ctx.register().await?;
    let new_password = unique_password();
    ctx.native(Method::POST, "/password")
        .bearer(&account.pair.access)
        .header("user-agent", USER_AGENT)
        .json(&json!({"current_password": account.password, "new_password": new_password}))
        .send()
        .await?
        .expect_no_content()
        .step("changing the password")?;
    let events = about(&ctx, &token, &account.id).await?;
    let changed = find(&events, "password.changed", "after POST /password")?;
    expect_field(changed, "actor_id", &json!(account.id), "the change")?;
    expect_origin(&ctx, changed, "the change")?;
    expect_no_secret(&events, &[&account.password, &new_password])?;
    Ok(())
}

async fn admin_actions_have_the_admin_as_actor(ctx: Ctx) -> CaseResult {
    let (token, admin_id) = admin_identity(&ctx).await?;
    let password = unique_password();
    let resp = admin(&ctx, Method::POST, "/users")
        .bearer(&token)
        .header("user-agent", USER_AGENT)
        .json(&json!({"email": unique_email(), "password": password}))
        .send()
        .await?;
    let id = resp.expect_json(201)?["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| resp.fail("201 with the user's id"))?;
    let send = |method: Method, route: String, body: Option<Value>| {
        let mut req = admin(&ctx, method, &route)
            .bearer(&token)
            .header("user-agent", USER_AGENT);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send()
    };
    send(
        Method::PATCH,
        format!("/users/{id}"),
        Some(json!({"full_name": "Audited"})),
    )
    .await?
    .expect_json(200)
    .step("PATCH the user")?;
    send(Method::DELETE, format!("/users/{id}/sessions"), None)
        .await?
        .expect_no_content()
        .step("revoking the user's sessions")?;
    send(Method::DELETE, format!("/users/{id}"), None)
        .await?
        .expect_no_content()
        .step("deleting the user")?;
    let events = about(&ctx, &token, &id).await?;
    for kind in [
        "admin.user_created",
        "admin.user_updated",
        "admin.sessions_revoked",
        "admin.user_deleted",
    ] {
        let event = find(&events, kind, "after the admin's action")?;
        expect_field(event, "actor_id", &json!(admin_id), kind)?;
        expect_origin(&ctx, event, kind)?;
    }
    let updated = find(&events, "admin.user_updated", "")?;
    if !updated["detail"]["fields"]
        .as_array()
        .is_some_and(|fields| fields.contains(&json!("full_name")))
    {
        return Err(Failure::new(
            "admin.user_updated naming the changed field full_name in detail.fields",
            format!("event {updated}"),
        )
        .into());
    }
    let resp = send(
        Method::POST,
        "/organizations".to_owned(),
        Some(json!({"name": "Audited"})),
    )
    .await?;
    let organization = resp.expect_json(201)?["id"].clone();
    let (created, _) = audit(
        &ctx,
        &token,
        &format!("kind=admin.organization_created&actor_id={admin_id}&limit=100"),
    )
    .await?;
    if !created
        .iter()
        .any(|e| e["detail"]["organization_id"] == organization)
    {
        return Err(Failure::new(
            format!("an admin.organization_created event for {organization}"),
            format!("{} events without it", created.len()),
        )
        .into());
    }
    expect_no_secret(&events, &[&password])?;
    Ok(())
}

async fn filters_and_pages(ctx: Ctx) -> CaseResult {
    let (token, _) = admin_identity(&ctx).await?;
    let account = ctx.register().await?;
    for _ in 0..3 {
        login(&ctx, &account.email, &unique_password())
            .await?
            .expect_problem_any_code(401)
            .step("a wrong password")?;
    }
    login(&ctx, &account.email, &account.password)
        .await?
        .expect_json(200)
        .step("the right password")?;
    let target = &account.id;
    let (all, total) = audit(&ctx, &token, &format!("target_id={target}&limit=100")).await?;
    if total < 4 || usize::try_from(total).ok() != Some(all.len()) {
        return Err(Failure::new(
            "at least 4 events naming the user, total equal to the items",
            format!("total {total}, {} items", all.len()),
        )
        .into());
    }
    if let Some(stranger) = all.iter().find(|e| e["target_id"] != json!(target)) {
        return Err(Failure::new("only events naming the user", format!("{stranger}")).into());
    }
    let newest_first = all
        .windows(2)
        .all(|pair| pair[0]["at"].as_str() >= pair[1]["at"].as_str());
    if !newest_first {
        return Err(Failure::new("newest first", format!("{all:?}")).into());
    }
    // Pages of one from every offset cut the same list.
    for (offset, expected) in all.iter().enumerate() {
        let (page, page_total) = audit(
            &ctx,
            &token,
            &format!("target_id={target}&limit=1&offset={offset}"),
        )
        .await?;
        if page_total != total || page.len() != 1 || page[0]["id"] != expected["id"] {
            return Err(Failure::new(
                format!(
                    "page {offset} of one: event {} of total {total}",
                    expected["id"]
                ),
                format!("total {page_total}, {page:?}"),
            )
            .into());
        }
    }
    let (failed, failed_total) = audit(
        &ctx,
        &token,
        &format!("target_id={target}&kind=login.failed"),
    )
    .await?;
    if failed_total != 3 || failed.iter().any(|e| e["kind"] != "login.failed") {
        return Err(Failure::new(
            "kind=login.failed: the three failed logins only",
            format!("total {failed_total}, {failed:?}"),
        )
        .into());
    }
    let (_, later) = audit(
        &ctx,
        &token,
        &format!("target_id={target}&since=2999-01-01T00:00:00Z"),
    )
    .await?;
    let (_, earlier) = audit(
        &ctx,
        &token,
        &format!("target_id={target}&until=2000-01-01T00:00:00%2B01:00"),
    )
    .await?;
    let (_, window) = audit(
        &ctx,
        &token,
        &format!("target_id={target}&since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00Z"),
    )
    .await?;
    if (later, earlier, window) != (0, 0, total) {
        return Err(Failure::new(
            format!("since the future 0, until the past 0, the window between {total}"),
            format!("{later}, {earlier}, {window}"),
        )
        .into());
    }
    Ok(())
}

async fn bad_filters_rejected(ctx: Ctx) -> CaseResult {
    let token = ctx.admin_token().await?;
    for (query, field) in [
        ("kind=no.such.kind", "kind"),
        ("actor_id=not-a-uuid", "actor_id"),
        ("target_id=42", "target_id"),
        ("since=yesterday", "since"),
        ("until=1700000000", "until"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("offset=-1", "offset"),
    ] {
        get(&ctx, &token, &format!("/audit?{query}"))
            .await?
            .expect_validation(field)
            .step(&format!("GET /audit?{query}"))?;
    }
    Ok(())
}
