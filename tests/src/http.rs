//! HTTP plumbing: the per-suite context, a request builder and captured responses.

use std::error::Error as _;
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;
use uuid::Uuid;

use crate::mailbox::Mailbox;
use crate::profile::Profile;
use crate::report::Failure;
use crate::runner::CaseError;
use crate::{Credentials, Hooks, Limits, Mount, Target};

/// User-Agent sent unless a case chooses another one.
pub(crate) const DEFAULT_USER_AGENT: &str = "auth-conformance";
/// How much of a response body a failure report shows.
const BODY_PREVIEW_CHARS: usize = 400;
/// Upper bound for one request, well below the per-case timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// The first address of 198.18.0.0/15 (RFC 2544 benchmarking), where client IPs come from.
const CLIENT_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 0);
/// How many addresses 198.18.0.0/15 holds.
const CLIENT_NET_SIZE: u32 = 1 << 17;

/// Everything a case needs to talk to the target; cheap to clone.
#[derive(Clone)]
pub(crate) struct Ctx {
    client: reqwest::Client,
    base_url: Arc<str>,
    hooks: Option<Arc<dyn Hooks>>,
    reuse_interval: Option<Duration>,
    /// Mounted profiles with their prefixes (`admin` included when `native` brings it).
    mounts: Arc<[(Profile, String)]>,
    admin: Option<Arc<Credentials>>,
    /// Where client IPs come from, when the target believes `X-Forwarded-For`.
    client_ips: Option<Arc<ClientIps>>,
    /// The client IP this context sends as `X-Forwarded-For`.
    client_ip: Option<Ipv4Addr>,
    /// `X-Forwarded-For` lines sent instead of `client_ip`, when a case chose its own.
    forwarded_lines: Option<Arc<[String]>>,
    /// [`Target::another_proxy`].
    another_proxy: Option<std::net::IpAddr>,
    limits: Option<Limits>,
    jwt_secret: Option<Arc<[u8]>>,
    cors_origin: Option<Arc<str>>,
    mailbox: Option<Arc<dyn Mailbox>>,
    /// The admin's access token, once logged in, shared by every case of the run.
    admin_token: Arc<tokio::sync::Mutex<Option<String>>>,
    /// Where this case's requests note the first 429 they got (see [`Ctx::throttle_note`]).
    throttled: Option<ThrottleNote>,
}

/// The first "429 Too Many Requests" one case got, as "POST /path -> 429".
pub(crate) type ThrottleNote = Arc<std::sync::Mutex<Option<String>>>;

/// Hands out distinct client IPs from 198.18.0.0/15: consecutive addresses from a random
/// start, so no two contexts of one run share an address (up to 131,072 of them), and runs
/// against one persistent server rarely meet.
#[derive(Debug)]
struct ClientIps {
    next: AtomicU32,
}

impl ClientIps {
    fn new() -> Self {
        // The low 32 bits of a random UUID: random enough for a starting point.
        let start = Uuid::new_v4().as_u128() as u32;
        Self {
            next: AtomicU32::new(start),
        }
    }

    fn allocate(&self) -> Ipv4Addr {
        let offset = self.next.fetch_add(1, Ordering::Relaxed) % CLIENT_NET_SIZE;
        Ipv4Addr::from(u32::from(CLIENT_NET) + offset)
    }
}

impl Ctx {
    /// Builds the shared HTTP client for `target`.
    pub(crate) fn new(target: &Target) -> Result<Self, Failure> {
        let client = reqwest::Client::builder()
            .user_agent(DEFAULT_USER_AGENT)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| Failure::new("an HTTP client", error_chain(&e)))?;
        Ok(Self {
            client,
            base_url: target.base_url.trim_end_matches('/').into(),
            hooks: target.hooks.clone(),
            reuse_interval: target.reuse_interval,
            mounts: mounted(&target.profiles).into(),
            admin: target.admin.clone().map(Arc::new),
            client_ips: target.forwarded_for.then(|| Arc::new(ClientIps::new())),
            client_ip: None,
            forwarded_lines: None,
            another_proxy: target.another_proxy,
            limits: target.limits,
            jwt_secret: target.jwt_secret.as_deref().map(Arc::from),
            cors_origin: target.cors_origin.as_deref().map(Arc::from),
            mailbox: target.mailbox.clone(),
            admin_token: Arc::default(),
            throttled: None,
        }
        .with_fresh_ip())
    }

    /// This context with a client IP no other context of the run has (unchanged when the
    /// target does not believe `X-Forwarded-For`). The runner gives every case one.
    pub(crate) fn with_fresh_ip(mut self) -> Self {
        self.client_ip = self.client_ips.as_ref().map(|ips| ips.allocate());
        self
    }

    /// This context with a note of its own where its requests record the first 429 they get,
    /// when the target's per-IP limits count every case against one address (it does not
    /// believe `X-Forwarded-For`) and the run exercises no limit on purpose (no
    /// [`Target::limits`]): then a 429 says the deployment's limit for this machine is spent,
    /// not that the case's server broke the contract, and the runner reports the case
    /// Skipped with it. `None` otherwise.
    pub(crate) fn throttle_note(mut self) -> (Self, Option<ThrottleNote>) {
        self.throttled = (self.client_ips.is_none() && self.limits.is_none())
            .then(|| Arc::new(std::sync::Mutex::new(None)));
        let note = self.throttled.clone();
        (self, note)
    }

    /// A context like this one but for another client, with an IP of its own; Skipped when
    /// the target does not believe the suite's `X-Forwarded-For`.
    pub(crate) fn another_client(&self) -> Result<Ctx, CaseError> {
        self.require_forwarded_for()?;
        Ok(self.clone().with_fresh_ip())
    }

    /// A context like this one that sends `lines` as its `X-Forwarded-For` header lines, in
    /// order, instead of its client IP; Skipped when the target does not believe the suite's
    /// `X-Forwarded-For`.
    pub(crate) fn forwarding(&self, lines: &[String]) -> Result<Ctx, CaseError> {
        self.require_forwarded_for()?;
        let mut ctx = self.clone();
        ctx.forwarded_lines = Some(lines.into());
        Ok(ctx)
    }

    /// Skipped unless the target believes the suite's `X-Forwarded-For`, so that this case
    /// has a client IP of its own.
    pub(crate) fn require_forwarded_for(&self) -> Result<(), CaseError> {
        if self.client_ips.is_some() {
            Ok(())
        } else {
            Err(CaseError::Skipped(
                "the target does not believe the suite's X-Forwarded-For, so cases cannot \
                 have client IPs of their own"
                    .to_owned(),
            ))
        }
    }

    /// The client IP this context sends; Skipped when it sends none.
    pub(crate) fn client_ip_sent(&self) -> Result<Ipv4Addr, CaseError> {
        self.require_forwarded_for()?;
        self.client_ip
            .ok_or_else(|| CaseError::Skipped("this context sends no client IP".to_owned()))
    }

    /// Another address the target trusts as a proxy (besides the suite's own), for the
    /// chained-proxy case; Skipped when the target named none.
    pub(crate) fn require_another_proxy(&self) -> Result<std::net::IpAddr, CaseError> {
        self.another_proxy.ok_or_else(|| {
            CaseError::Skipped("the target named no other address it trusts as a proxy".to_owned())
        })
    }

    /// The client IP this context sends, if any.
    #[cfg(test)]
    pub(crate) fn client_ip(&self) -> Option<Ipv4Addr> {
        self.client_ip
    }

    /// The target's rate limits; Skipped when it did not give them.
    pub(crate) fn require_limits(&self) -> Result<Limits, CaseError> {
        self.limits
            .ok_or_else(|| CaseError::Skipped("the target gave no rate limits".to_owned()))
    }

    /// The target's HS256 secret; Skipped when it did not give it.
    pub(crate) fn require_jwt_secret(&self) -> Result<Arc<[u8]>, CaseError> {
        self.jwt_secret.clone().ok_or_else(|| {
            CaseError::Skipped("the target gave no HS256 secret to sign crafted tokens".to_owned())
        })
    }

    /// An origin on the target's CORS allow-list; Skipped when it gave none.
    pub(crate) fn require_cors_origin(&self) -> Result<Arc<str>, CaseError> {
        self.cors_origin.clone().ok_or_else(|| {
            CaseError::Skipped("the target gave no origin on its CORS allow-list".to_owned())
        })
    }

    /// Where the target's mail arrives; Skipped when the target gave no mailbox.
    pub(crate) fn require_mailbox(&self) -> Result<Arc<dyn Mailbox>, CaseError> {
        self.mailbox.clone().ok_or_else(|| {
            CaseError::Skipped(
                "no mailbox: the target's mail goes to no SMTP sink this run can read".to_owned(),
            )
        })
    }

    /// The target's HS256 secret, if it gave it.
    pub(crate) fn jwt_secret(&self) -> Option<&[u8]> {
        self.jwt_secret.as_deref()
    }

    /// The prefix `profile` is mounted at, if it is.
    pub(crate) fn prefix(&self, profile: Profile) -> Option<&str> {
        self.mounts
            .iter()
            .find(|(p, _)| *p == profile)
            .map(|(_, prefix)| prefix.as_str())
    }

    /// Whether `profile` is mounted.
    pub(crate) fn mounted(&self, profile: Profile) -> bool {
        self.prefix(profile).is_some()
    }

    /// The mounted profiles with their prefixes, in the target's order.
    pub(crate) fn mounts(&self) -> &[(Profile, String)] {
        &self.mounts
    }

    /// Starts a request to `route` (e.g. "/login") under `profile`'s prefix (its default
    /// prefix when it is not mounted, which the case registry prevents).
    pub(crate) fn at(&self, profile: Profile, method: Method, route: &str) -> Req {
        let prefix = self.prefix(profile).unwrap_or(profile.default_prefix());
        self.request(method, &format!("{prefix}{route}"))
    }

    /// The admin user's credentials, if the target gave them.
    pub(crate) fn admin_credentials(&self) -> Option<&Credentials> {
        self.admin.as_deref()
    }

    /// Starts a request to `path` (absolute, e.g. "/healthz") on the target, with this
    /// context's client IP as `X-Forwarded-For` when it has one.
    pub(crate) fn request(&self, method: Method, path: &str) -> Req {
        let req = Req {
            client: self.client.clone(),
            line: format!("{method} {path}"),
            url: format!("{}{path}", self.base_url),
            method,
            headers: Vec::new(),
            body: None,
            throttled: self.throttled.clone(),
        };
        if let Some(lines) = &self.forwarded_lines {
            return lines
                .iter()
                .fold(req, |req, line| req.header("x-forwarded-for", line.clone()));
        }
        match self.client_ip {
            Some(ip) => req.header("x-forwarded-for", ip.to_string()),
            None => req,
        }
    }

    /// The target's out-of-band hooks, if any.
    pub(crate) fn hooks(&self) -> Option<&Arc<dyn Hooks>> {
        self.hooks.as_ref()
    }

    /// Whether cases create their users through the admin API rather than `/register`: when
    /// the target gave admin credentials and mounts the admin routes but does not believe
    /// the suite's `X-Forwarded-For`, so every registration would count against one
    /// client IP's registration limit.
    pub(crate) fn users_via_admin(&self) -> bool {
        self.client_ips.is_none() && self.admin.is_some() && self.mounted(Profile::Admin)
    }

    /// The admin's access token: the one from the run's first admin login, or (`fresh`) a
    /// new one. Failed when the target gave no admin credentials or the login fails.
    pub(crate) async fn admin_bearer(&self, fresh: bool) -> Result<String, Failure> {
        let mut cached = self.admin_token.lock().await;
        if let Some(token) = cached.as_ref().filter(|_| !fresh) {
            return Ok(token.clone());
        }
        let Some(admin) = self.admin.as_deref() else {
            return Err(Failure::new("admin credentials", "the target gave none"));
        };
        let token = crate::cleanup::admin_login(self, admin)
            .await
            .map_err(|why| Failure::new("the admin user logs in", why))?;
        *cached = Some(token.clone());
        Ok(token)
    }

    /// The target's refresh-token reuse interval, if known.
    pub(crate) fn reuse_interval(&self) -> Option<Duration> {
        self.reuse_interval
    }
}

/// A request being built; nothing is sent before [`Req::send`].
pub(crate) struct Req {
    client: reqwest::Client,
    method: Method,
    url: String,
    /// "METHOD /path", for reports.
    line: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    /// [`Ctx::throttle_note`].
    throttled: Option<ThrottleNote>,
}

impl Req {
    /// Adds a header (invalid names or values surface as a failure from `send`).
    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Adds `Authorization: Bearer <token>`.
    pub(crate) fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// Sends `body` as `application/json`.
    pub(crate) fn json(self, body: &Value) -> Self {
        self.raw(Some("application/json"), body.to_string().into_bytes())
    }

    /// Sends raw bytes with the given `Content-Type` (none when `None`).
    pub(crate) fn raw(mut self, content_type: Option<&str>, body: Vec<u8>) -> Self {
        if let Some(content_type) = content_type {
            self = self.header("content-type", content_type);
        }
        self.body = Some(body);
        self
    }

    /// Sends the request and captures the whole response; transport errors become failures.
    pub(crate) async fn send(self) -> Result<Resp, Failure> {
        let mut builder = self.client.request(self.method, &self.url);
        for (name, value) in &self.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        if let Some(body) = self.body {
            builder = builder.body(body);
        }
        let transport = |e: reqwest::Error| {
            Failure::new(
                format!("a response to {}", self.line),
                format!("request error: {}", error_chain(&e)),
            )
        };
        let response = builder.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(transport)?;
        if status == 429
            && let Some(note) = &self.throttled
        {
            // No Retry-After value: it differs from case to case, and the skips of one
            // cause should be listed together.
            let mut note = note
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            note.get_or_insert_with(|| format!("{} -> 429", self.line));
        }
        Ok(Resp::new(self.line, status, headers, body.to_vec()))
    }
}

/// The innermost cause of `error` ("Connection refused (os error 111)"), for one-line
/// messages.
pub(crate) fn root_cause(error: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A fully read response, remembered together with the request line that produced it.
#[derive(Debug, Clone)]
pub(crate) struct Resp {
    /// "METHOD /path".
    pub(crate) request: String,
    /// HTTP status code.
    pub(crate) status: u16,
    /// Response headers.
    pub(crate) headers: HeaderMap,
    /// Raw body bytes.
    pub(crate) body: Vec<u8>,
    /// The body parsed as JSON, when it is JSON.
    json: Option<Value>,
}

impl Resp {
    /// Captures a response; the body is parsed as JSON when possible.
    pub(crate) fn new(request: String, status: u16, headers: HeaderMap, body: Vec<u8>) -> Self {
        let json = serde_json::from_slice(&body).ok();
        Self {
            request,
            status,
            headers,
            body,
            json,
        }
    }

    /// The body as JSON, if it parsed.
    pub(crate) fn json(&self) -> Option<&Value> {
        self.json.as_ref()
    }

    /// Every value of header `name`, in order (non-UTF-8 values are shown lossily).
    pub(crate) fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect()
    }

    /// The media type of `Content-Type` (lower case, without parameters).
    pub(crate) fn media_type(&self) -> Option<String> {
        let value = self.headers.get(CONTENT_TYPE)?.to_str().ok()?;
        let essence = value.split(';').next().unwrap_or_default();
        Some(essence.trim().to_ascii_lowercase())
    }

    /// One line describing the response for a failure report: request, status, relevant
    /// headers and the body, truncated.
    pub(crate) fn describe(&self) -> String {
        let mut text = format!("{} -> {}", self.request, self.status);
        for name in ["content-type", "www-authenticate", "allow", "retry-after"] {
            let values = self.header_values(name);
            if !values.is_empty() {
                let _ = write!(text, "; {name}: {}", values.join(", "));
            }
        }
        let body = String::from_utf8_lossy(&self.body);
        if body.is_empty() {
            text.push_str("; empty body");
        } else {
            let preview: String = body.chars().take(BODY_PREVIEW_CHARS).collect();
            let _ = write!(text, "; body: {preview}");
            if preview.len() < body.len() {
                let _ = write!(text, "... ({} bytes)", self.body.len());
            }
        }
        text
    }

    /// A failure saying what was `expected`, with this response as what was got.
    pub(crate) fn fail(&self, expected: impl Into<String>) -> Failure {
        Failure::new(expected, self.describe())
    }

    /// Like [`Resp::fail`], with a note on what exactly was wrong.
    pub(crate) fn fail_because(&self, expected: impl Into<String>, why: &str) -> Failure {
        Failure::new(expected, format!("{} [{why}]", self.describe()))
    }
}

/// The profiles `mounts` names that the suite knows, with `admin` added at its default prefix
/// when `native` is mounted and `admin` is not listed.
pub(crate) fn mounted(mounts: &[Mount]) -> Vec<(Profile, String)> {
    let mut known: Vec<(Profile, String)> = mounts
        .iter()
        .filter_map(|m| Profile::from_name(&m.name).map(|p| (p, m.prefix.clone())))
        .collect();
    let has = |profile| known.iter().any(|(p, _)| *p == profile);
    if has(Profile::Native) && !has(Profile::Admin) {
        known.push((Profile::Admin, Profile::Admin.default_prefix().to_owned()));
    }
    known
}

/// An error with all its sources, e.g. "error sending request: connection refused".
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use reqwest::header::{HeaderName, HeaderValue};

    /// A response as a test fixture.
    pub(crate) fn resp(status: u16, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        Resp::new("GET /x".to_owned(), status, map, body.as_bytes().to_vec())
    }

    #[test]
    fn describe_shows_status_relevant_headers_and_body() {
        let r = resp(
            401,
            &[
                ("content-type", "application/problem+json"),
                ("www-authenticate", "Bearer"),
                ("x-other", "hidden"),
            ],
            r#"{"a":1}"#,
        );
        assert_eq!(
            r.describe(),
            r#"GET /x -> 401; content-type: application/problem+json; www-authenticate: Bearer; body: {"a":1}"#
        );
    }

    #[test]
    fn describe_truncates_long_bodies() {
        let body = "é".repeat(1000);
        let text = resp(200, &[], &body).describe();
        assert!(text.ends_with("... (2000 bytes)"), "{text}");
        assert_eq!(text.matches('é').count(), 400);
    }

    #[test]
    fn describe_mentions_an_empty_body() {
        assert_eq!(resp(204, &[], "").describe(), "GET /x -> 204; empty body");
    }

    #[test]
    fn media_type_ignores_parameters_and_case() {
        let r = resp(
            200,
            &[("content-type", "Application/JSON ; charset=utf-8")],
            "",
        );
        assert_eq!(r.media_type().as_deref(), Some("application/json"));
        assert_eq!(resp(200, &[], "").media_type(), None);
    }

    #[test]
    fn base_url_loses_its_trailing_slash() {
        let ctx = Ctx::new(&Target {
            base_url: "http://127.0.0.1:1/".to_owned(),
            label: "t".to_owned(),
            hooks: None,
            reuse_interval: None,
            profiles: Vec::new(),
            admin: None,
            forwarded_for: false,
            another_proxy: None,
            limits: None,
            jwt_secret: None,
            cors_origin: None,
            mailbox: None,
        })
        .unwrap();
        assert_eq!(
            ctx.request(Method::GET, "/healthz").url,
            "http://127.0.0.1:1/healthz"
        );
    }

    #[test]
    fn native_brings_admin_unless_it_is_listed() {
        let mounts = Mount::parse_list("native=/n,rbac").unwrap();
        assert_eq!(
            mounted(&mounts),
            [
                (Profile::Native, "/n".to_owned()),
                (Profile::Rbac, "/api/v2/auth".to_owned()),
                (Profile::Admin, "/api/v1/admin".to_owned()),
            ]
        );
        let moved = Mount::parse_list("native,admin=/adm").unwrap();
        assert_eq!(mounted(&moved)[1], (Profile::Admin, "/adm".to_owned()));
        assert!(mounted(&Mount::defaults(&["jwt-user"])).len() == 1);
    }

    #[test]
    fn requests_go_under_the_mounted_prefix() {
        let ctx = Ctx::new(&Target {
            base_url: "http://h".to_owned(),
            label: "t".to_owned(),
            hooks: None,
            reuse_interval: None,
            profiles: Mount::parse_list("native=/n").unwrap(),
            admin: None,
            forwarded_for: false,
            another_proxy: None,
            limits: None,
            jwt_secret: None,
            cors_origin: None,
            mailbox: None,
        })
        .unwrap();
        assert_eq!(
            ctx.at(Profile::Native, Method::GET, "/me").url,
            "http://h/n/me"
        );
        assert_eq!(
            ctx.at(Profile::Rbac, Method::GET, "/me").url,
            "http://h/api/v2/auth/me"
        );
        assert!(ctx.mounted(Profile::Admin) && !ctx.mounted(Profile::Rbac));
    }

    fn target(forwarded_for: bool) -> Target {
        Target {
            base_url: "http://h".to_owned(),
            label: "t".to_owned(),
            hooks: None,
            reuse_interval: None,
            profiles: Vec::new(),
            admin: None,
            forwarded_for,
            another_proxy: None,
            limits: None,
            jwt_secret: None,
            cors_origin: None,
            mailbox: None,
        }
    }

    fn forwarded(req: &Req) -> Vec<&str> {
        req.headers
            .iter()
            .filter(|(name, _)| name == "x-forwarded-for")
            .map(|(_, value)| value.as_str())
            .collect()
    }

    #[test]
    fn each_context_sends_a_client_ip_of_its_own() {
        let ctx = Ctx::new(&target(true)).unwrap();
        let first = ctx.client_ip().unwrap();
        assert_eq!(first.octets()[0], 198);
        assert!(matches!(first.octets()[1], 18 | 19));
        assert_eq!(
            forwarded(&ctx.request(Method::GET, "/x")),
            [first.to_string()]
        );
        assert_eq!(ctx.clone().client_ip(), Some(first));
        let mut seen = std::collections::HashSet::from([first]);
        for _ in 0..1000 {
            let other = ctx.another_client().unwrap();
            assert!(seen.insert(other.client_ip().unwrap()));
            assert!(seen.insert(other.with_fresh_ip().client_ip().unwrap()));
        }
    }

    #[test]
    fn without_forwarded_for_no_header_is_sent_and_other_clients_are_skipped() {
        let ctx = Ctx::new(&target(false)).unwrap();
        assert!(forwarded(&ctx.request(Method::GET, "/x")).is_empty());
        assert!(ctx.clone().with_fresh_ip().client_ip().is_none());
        assert!(matches!(ctx.another_client(), Err(CaseError::Skipped(_))));
        assert!(matches!(ctx.require_limits(), Err(CaseError::Skipped(_))));
        assert!(matches!(
            ctx.require_jwt_secret(),
            Err(CaseError::Skipped(_))
        ));
        match ctx.require_mailbox() {
            Err(CaseError::Skipped(reason)) => {
                assert!(reason.starts_with("no mailbox"), "{reason}")
            }
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("a mailbox the target did not give"),
        }
    }

    #[test]
    fn client_ips_wrap_around_inside_the_block() {
        let ips = ClientIps {
            next: AtomicU32::new(CLIENT_NET_SIZE - 1),
        };
        assert_eq!(ips.allocate(), Ipv4Addr::new(198, 19, 255, 255));
        assert_eq!(ips.allocate(), Ipv4Addr::new(198, 18, 0, 0));
    }
}
