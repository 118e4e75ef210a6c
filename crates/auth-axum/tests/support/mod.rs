//! What every adapter's user-route test shares (auth-actix and auth-warp include this file
//! with `#[path]`, so the three run the very same checks): an app on an in-memory SQLite
//! database, and a raw HTTP/1.1 client, because no HTTP client library sends header bytes
//! that are not UTF-8.

#![allow(dead_code)] // Each test binary uses what it needs.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use auth_core::{App, Argon2Params, Auth, Config, MountSpec};
use auth_diesel::DieselStore;

/// The user's own protected route the example apps mount.
pub const OWN_ROUTE: &str = "/hello";
/// A route of the auth API that needs the same authentication.
pub const CORE_ROUTE: &str = "/api/v1/auth/me";

/// The app the examples build, on an in-memory database with cheap hashing.
pub fn app() -> App {
    let store = DieselStore::connect("sqlite::memory:", 1).expect("in-memory SQLite opens");
    let config = Config {
        signing: auth_core::Signing::Hs256 {
            secret: b"a test secret of at least thirty-two bytes".to_vec(),
        },
        // The test is about headers, not hashing: keep registration fast.
        argon2: Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        },
        ..Config::default()
    };
    let auth = Auth::new(Arc::new(store), config).expect("core starts");
    App::new(
        Arc::new(auth),
        &MountSpec::parse_list("native").expect("mount list parses"),
    )
    .expect("native mounts")
}

/// The user's own route that only admins may use (the adapter's role guard).
pub const ADMIN_ROUTE: &str = "/admin-only";
/// The admin the role-guard check signs in as.
const ADMIN_EMAIL: &str = "guard-admin@example.com";
const PASSWORD: &str = "correct horse battery staple";

/// What the role-guarded route answers an admin.
pub fn admin_hello(email: &str) -> String {
    format!("admin, {email}\n")
}

/// Creates [`ADMIN_EMAIL`] with the role `admin` (on a runtime of its own: the core's store
/// calls run on Tokio's blocking threads).
pub fn create_admin(app: &App) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(
            app.auth()
                .operator()
                .create_user(auth_core::service::NewAccount {
                    email: ADMIN_EMAIL.into(),
                    password: PASSWORD.into(),
                    roles: vec!["admin".into()],
                    is_active: true,
                    ..auth_core::service::NewAccount::default()
                }),
        )
        .expect("the admin is created");
}

fn access_token(answer: &Answer) -> String {
    let body = String::from_utf8_lossy(&answer.body);
    body.split(r#""access_token":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the answer carries an access token")
        .to_owned()
}

/// The role guard on [`ADMIN_ROUTE`]: nobody signed in gets the core's 401, a user without
/// the role the API's 403 in the profile's shape (byte for byte what the admin API answers
/// that user), an admin gets through. Needs [`create_admin`] first.
pub fn assert_role_guard(addr: SocketAddr) {
    let core = exchange(addr, "GET", CORE_ROUTE, b"", b"");
    let own = exchange(addr, "GET", ADMIN_ROUTE, b"", b"");
    assert_eq!(own.status, 401, "nobody signed in: {own:?}");
    assert_eq!(own.body, core.body, "the core's 401 body");

    let registered = exchange(
        addr,
        "POST",
        "/api/v1/auth/register",
        b"Content-Type: application/json",
        format!(r#"{{"email":"plain-user@example.com","password":"{PASSWORD}"}}"#).as_bytes(),
    );
    assert_eq!(registered.status, 201, "registration works: {registered:?}");
    let plain = format!("Authorization: Bearer {}", access_token(&registered));
    let own = exchange(addr, "GET", ADMIN_ROUTE, plain.as_bytes(), b"");
    assert_eq!(own.status, 403, "a user without the role: {own:?}");
    let core = exchange(addr, "GET", "/api/v1/admin/users", plain.as_bytes(), b"");
    assert_eq!(
        core.status, 403,
        "the admin API refuses the same user: {core:?}"
    );
    assert_eq!(own.body, core.body, "the API's own 403, byte for byte");
    assert_eq!(own.header("content-type"), core.header("content-type"));

    let login = exchange(
        addr,
        "POST",
        "/api/v1/auth/login",
        b"Content-Type: application/json",
        format!(r#"{{"email":"{ADMIN_EMAIL}","password":"{PASSWORD}"}}"#).as_bytes(),
    );
    assert_eq!(login.status, 200, "the admin signs in: {login:?}");
    let admin = format!("Authorization: Bearer {}", access_token(&login));
    let own = exchange(addr, "GET", ADMIN_ROUTE, admin.as_bytes(), b"");
    assert_eq!(own.status, 200, "the admin passes: {own:?}");
    assert_eq!(String::from_utf8_lossy(&own.body), admin_hello(ADMIN_EMAIL));
}

/// The text the example apps' `/hello` answers for a signed-in user.
pub fn hello(email: &str) -> String {
    format!("hello, {email}\n")
}

/// Bad `Authorization` values a client may send: (what, raw header line or none).
const BAD_AUTHORIZATIONS: &[(&str, Option<&[u8]>)] = &[
    ("no Authorization header", None),
    (
        "a garbage bearer token",
        Some(b"Authorization: Bearer garbage"),
    ),
    ("another scheme", Some(b"Authorization: Basic dXNlcjpwYXNz")),
    (
        "header bytes that are not UTF-8",
        Some(b"Authorization: Bearer \xff\xfe\x80"),
    ),
];

/// Proves the contract of docs/adapters.md on a running app: every bad `Authorization` gets,
/// on the user's own route, exactly the core's answer on its own routes (401,
/// `WWW-Authenticate`, problem body), and a good token gets the user through.
pub fn assert_own_route_answers_like_the_core(addr: SocketAddr) {
    for (what, header) in BAD_AUTHORIZATIONS {
        let header = header.unwrap_or_default();
        let core = exchange(addr, "GET", CORE_ROUTE, header, b"");
        assert_eq!(core.status, 401, "the core refuses {what}: {core:?}");
        let own = exchange(addr, "GET", OWN_ROUTE, header, b"");
        assert_eq!(
            own.status, 401,
            "{OWN_ROUTE} refuses {what} with the core's 401: {own:?}"
        );
        for name in ["www-authenticate", "content-type"] {
            assert!(core.header(name).is_some(), "the core's 401 has {name}");
            assert_eq!(
                own.header(name),
                core.header(name),
                "{OWN_ROUTE} answers {what} with the core's {name}"
            );
        }
        assert_eq!(
            own.body, core.body,
            "{OWN_ROUTE} answers {what} with the core's body"
        );
    }

    let email = "user-route@example.com";
    let registered = exchange(
        addr,
        "POST",
        "/api/v1/auth/register",
        b"Content-Type: application/json",
        format!(r#"{{"email":"{email}","password":"correct horse battery staple"}}"#).as_bytes(),
    );
    assert_eq!(registered.status, 201, "registration works: {registered:?}");
    let body = String::from_utf8_lossy(&registered.body);
    let token = body
        .split(r#""access_token":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("registration answers an access token");
    let own = exchange(
        addr,
        "GET",
        OWN_ROUTE,
        format!("Authorization: Bearer {token}").as_bytes(),
        b"",
    );
    assert_eq!(own.status, 200, "a good token passes: {own:?}");
    assert_eq!(String::from_utf8_lossy(&own.body), hello(email));
    assert_own_route_takes_the_session_cookie(addr);
}

/// The cookie transport reaches the user's own routes as it reaches the auth routes: the
/// access cookie signs a read in; a state change by cookie without the session's
/// `X-CSRF-Token` gets the core's 403 `CSRF_FAILED`, with it the user.
fn assert_own_route_takes_the_session_cookie(addr: SocketAddr) {
    let email = "cookie-route@example.com";
    let registered = exchange(
        addr,
        "POST",
        "/api/v1/auth/register",
        b"Content-Type: application/json",
        format!(
            r#"{{"email":"{email}","password":"correct horse battery staple","transport":"cookie"}}"#
        )
        .as_bytes(),
    );
    assert_eq!(
        registered.status, 201,
        "cookie registration works: {registered:?}"
    );
    let cookie = registered
        .headers
        .iter()
        .filter(|(name, _)| name == "set-cookie")
        .find_map(|(_, value)| value.split(';').next().filter(|c| c.starts_with("__Host-")))
        .expect("an access cookie is set")
        .to_owned();
    let body = String::from_utf8_lossy(&registered.body);
    let csrf = body
        .split(r#""csrf_token":""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the answer carries the CSRF token");
    let by_cookie = format!("Cookie: {cookie}");
    let own = exchange(addr, "GET", OWN_ROUTE, by_cookie.as_bytes(), b"");
    assert_eq!(own.status, 200, "the access cookie passes a read: {own:?}");
    assert_eq!(String::from_utf8_lossy(&own.body), hello(email));
    let own = exchange(addr, "POST", OWN_ROUTE, by_cookie.as_bytes(), b"");
    assert_eq!(
        own.status, 403,
        "a state change by cookie needs the CSRF token: {own:?}"
    );
    let core = exchange(
        addr,
        "POST",
        "/api/v1/auth/logout",
        by_cookie.as_bytes(),
        b"",
    );
    assert_eq!(own.body, core.body, "the core's refusal, byte for byte");
    assert_eq!(own.header("content-type"), core.header("content-type"));
    assert!(
        String::from_utf8_lossy(&core.body).contains("CSRF_FAILED"),
        "{core:?}"
    );
    let with_csrf = format!("{by_cookie}\r\nX-CSRF-Token: {csrf}");
    let own = exchange(addr, "POST", OWN_ROUTE, with_csrf.as_bytes(), b"");
    assert_eq!(own.status, 200, "with the CSRF token it passes: {own:?}");
}

/// A response as read off the wire.
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// Body, de-chunked.
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Answer {
    // The body as text, so a failing assertion shows which answer came back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Answer {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection; `header` is one raw header line (or empty), sent as is.
pub fn exchange(addr: SocketAddr, method: &str, path: &str, header: &[u8], body: &[u8]) -> Answer {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    if !header.is_empty() {
        request.extend_from_slice(header);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body);
    let mut stream = connect(addr);
    stream.write_all(&request).expect("request is sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("response is read");
    parse(&raw)
}

/// Connects, waiting briefly for a server that is still starting.
fn connect(addr: SocketAddr) -> TcpStream {
    for _ in 0..100 {
        if let Ok(stream) = TcpStream::connect(addr) {
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .expect("timeout is set");
            return stream;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("nothing listens on {addr}");
}

fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&raw[..line_end])
                .split(';')
                .next()
                .unwrap_or_default()
                .trim(),
            16,
        )
        .expect("a hex chunk size");
        if size == 0 {
            return body;
        }
        let start = line_end + 2;
        body.extend_from_slice(&raw[start..start + size]);
        raw = &raw[start + size + 2..];
    }
}
