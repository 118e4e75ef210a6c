//! The framework-neutral HTTP layer: what adapters hand the core and what they get back.
//!
//! An adapter converts its framework's request into a [`Request`] (reading the body through a
//! [`BodyCollector`] so no more than the limit is ever buffered), calls [`App::handle`], and
//! writes the [`Response`] back verbatim: status, headers, body. It adds nothing of its own.

pub mod request_id;

use std::net::{IpAddr, SocketAddr};

use bytes::{Bytes, BytesMut};
use serde::Serialize;

/// A request as the core sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Upper-case method, e.g. `GET`.
    pub method: String,
    /// The path, without query string, percent-encoding untouched.
    pub path: String,
    /// The raw query string, if any.
    pub query: Option<String>,
    /// The headers the core reads.
    pub headers: RequestHeaders,
    /// The peer address.
    pub client_ip: Option<IpAddr>,
    /// The body, or the fact that it was over the limit.
    pub body: Body,
}

/// The request headers that matter to the core. Values that are not UTF-8 are kept lossily
/// (they then fail whatever check reads them).
#[derive(Debug, Clone, Default)]
pub struct RequestHeaders {
    /// `Authorization`.
    pub authorization: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<String>,
    /// `X-Forwarded-For` (only trusted when a proxy is configured): every line, in order,
    /// joined with `, ` (one list, RFC 9110 §5.3).
    pub forwarded_for: Option<String>,
    /// `Content-Length`, when present and numeric.
    pub content_length: Option<u64>,
    /// `Origin` (CORS).
    pub origin: Option<String>,
    /// `Access-Control-Request-Method`: present on a CORS preflight only.
    pub access_control_request_method: Option<String>,
    /// `Cookie`: every line, in order, joined with `; ` (one list, RFC 6265 §5.4; HTTP/2
    /// clients send one line per cookie).
    pub cookie: Option<String>,
    /// `X-CSRF-Token`: what a page sends beside its session cookie on a state change.
    pub csrf_token: Option<String>,
    /// `X-Request-Id`: a client's or proxy's id of the request (see [`request_id`]).
    pub request_id: Option<String>,
}

impl RequestHeaders {
    /// Picks the headers that matter out of any `(name, value)` iterator; names compare
    /// case-insensitively, and the first occurrence wins, except for `X-Forwarded-For` and
    /// `Cookie`, whose lines are each one list in order.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut headers = Self::default();
        for (name, value) in pairs {
            let slot = if name.eq_ignore_ascii_case("authorization") {
                &mut headers.authorization
            } else if name.eq_ignore_ascii_case("content-type") {
                &mut headers.content_type
            } else if name.eq_ignore_ascii_case("user-agent") {
                &mut headers.user_agent
            } else if name.eq_ignore_ascii_case("origin") {
                &mut headers.origin
            } else if name.eq_ignore_ascii_case("access-control-request-method") {
                &mut headers.access_control_request_method
            } else if name.eq_ignore_ascii_case("x-csrf-token") {
                &mut headers.csrf_token
            } else if name.eq_ignore_ascii_case("x-request-id") {
                &mut headers.request_id
            } else if name.eq_ignore_ascii_case("x-forwarded-for") {
                append_line(&mut headers.forwarded_for, ", ", value);
                continue;
            } else if name.eq_ignore_ascii_case("cookie") {
                append_line(&mut headers.cookie, "; ", value);
                continue;
            } else if name.eq_ignore_ascii_case("content-length") {
                if headers.content_length.is_none() {
                    headers.content_length = std::str::from_utf8(value)
                        .ok()
                        .and_then(|v| v.trim().parse().ok());
                }
                continue;
            } else {
                continue;
            };
            if slot.is_none() {
                // `from_utf8` checks ASCII a word at a time; `from_utf8_lossy` walks bytes
                // (1 % of a cached `me`), so it only handles the invalid case.
                *slot = Some(match std::str::from_utf8(value) {
                    Ok(text) => text.to_owned(),
                    Err(_) => String::from_utf8_lossy(value).into_owned(),
                });
            }
        }
        headers
    }
}

/// Appends one line of a list header to what earlier lines gave.
fn append_line(list: &mut Option<String>, separator: &str, value: &[u8]) {
    let line = String::from_utf8_lossy(value);
    match list {
        Some(list) => {
            list.push_str(separator);
            list.push_str(&line);
        }
        None => *list = Some(line.into_owned()),
    }
}

/// A request body after collection.
#[derive(Debug, Clone)]
pub enum Body {
    /// The whole body, within the limit.
    Complete(Bytes),
    /// The body exceeded the limit; it was not (fully) read.
    TooLarge,
}

/// Collects a streamed body up to a limit, so adapters never buffer more than that.
#[derive(Debug)]
pub struct BodyCollector {
    limit: usize,
    buffer: BytesMut,
    too_large: bool,
}

impl BodyCollector {
    /// Starts collecting. A declared `Content-Length` above the limit fails at once.
    pub fn new(limit: usize, content_length: Option<u64>) -> Self {
        let too_large = content_length.is_some_and(|len| len > limit as u64);
        let capacity = content_length.map_or(0, |len| len.min(limit as u64) as usize);
        Self {
            limit,
            buffer: BytesMut::with_capacity(capacity),
            too_large,
        }
    }

    /// Adds a chunk. Returns false once the limit is exceeded: stop reading then.
    pub fn push(&mut self, chunk: &[u8]) -> bool {
        if self.too_large || self.buffer.len() + chunk.len() > self.limit {
            self.too_large = true;
            self.buffer.clear();
            return false;
        }
        self.buffer.extend_from_slice(chunk);
        true
    }

    /// Whether reading should go on.
    pub fn wants_more(&self) -> bool {
        !self.too_large
    }

    /// The collected body.
    pub fn finish(self) -> Body {
        if self.too_large {
            Body::TooLarge
        } else {
            Body::Complete(self.buffer.freeze())
        }
    }
}

/// Reads a streamed body through a [`BodyCollector`]: stops reading as soon as the limit is
/// exceeded. A stream error (client gone) ends the body where it broke; what was read is then
/// judged like any other body.
pub async fn collect_body<S, B, E>(stream: S, limit: usize, content_length: Option<u64>) -> Body
where
    S: futures_util::Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    use futures_util::StreamExt as _;
    let mut collector = BodyCollector::new(limit, content_length);
    let mut stream = std::pin::pin!(stream);
    while collector.wants_more() {
        match stream.next().await {
            Some(Ok(chunk)) => {
                collector.push(chunk.as_ref());
            }
            Some(Err(_)) | None => break,
        }
    }
    collector.finish()
}

/// A response as the core produces it. Adapters write it out unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, `Content-Type` included when there is a body.
    pub headers: Vec<(&'static str, String)>,
    /// Body bytes.
    pub body: Bytes,
}

/// `application/json`.
pub const JSON: &str = "application/json";
/// `application/problem+json` (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

impl Response {
    /// A JSON response.
    pub fn json(status: u16, body: &impl Serialize) -> Self {
        Self::json_as(status, JSON, body)
    }

    /// A JSON response with another JSON media type.
    pub fn json_as(status: u16, content_type: &'static str, body: &impl Serialize) -> Self {
        match serde_json::to_vec(body) {
            Ok(bytes) => Self {
                status,
                headers: vec![("content-type", content_type.to_owned())],
                body: Bytes::from(bytes),
            },
            Err(err) => {
                tracing::error!(error = %err, "response serialization failed");
                Self {
                    status: 500,
                    headers: vec![("content-type", JSON.to_owned())],
                    body: Bytes::from_static(br#"{"message":"Internal Server Error"}"#),
                }
            }
        }
    }

    /// The 500 an adapter's extractor answers when the app was not installed where the
    /// extractor runs; `hint` says what to add.
    pub fn misconfigured(hint: &str) -> Self {
        tracing::error!(hint, "auth extractor used without the auth app installed");
        Self::json(500, &serde_json::json!({ "message": hint }))
    }

    /// A response without a body (e.g. 204).
    pub fn empty(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A proxy whose `X-Forwarded-For` is believed: one address (a /32 or /128) or a range.
pub type TrustedProxy = ipnet::IpNet;

/// Parses a trusted proxy as configured: an address (`10.0.0.1`, `::1`) or a CIDR range
/// (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_trusted_proxy(text: &str) -> Result<TrustedProxy, String> {
    let text = text.trim();
    if let Ok(net) = text.parse::<ipnet::IpNet>() {
        return Ok(net.trunc());
    }
    text.parse::<IpAddr>()
        .map(|ip| ipnet::IpNet::from(ip.to_canonical()))
        .map_err(|_| format!("`{text}` is neither an IP address nor a CIDR range"))
}

/// A connection's peer address, carried in a request's extensions by a server that accepts
/// connections itself and hands the requests to an adapter's routes as a service
/// (`auth-server` does so for warp, whose `warp::addr::remote()` only `warp::serve` fills).
/// An adapter reads it when its framework knows no peer address of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// The client's IP: the peer address, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy. `X-Forwarded-For`
/// from anyone else is ignored. Entries may carry a port (`192.0.2.7:4711`,
/// `[2001:db8::7]:443`); an entry that names no address ends the search at the peer.
pub fn client_ip(request: &Request, trusted_proxies: &[TrustedProxy]) -> Option<IpAddr> {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    let peer = request.client_ip?.to_canonical();
    if !trusted(&peer) {
        return Some(peer);
    }
    let Some(forwarded) = request.headers.forwarded_for.as_deref() else {
        return Some(peer);
    };
    for entry in forwarded.rsplit(',') {
        match forwarded_address(entry) {
            Some(ip) if trusted(&ip) => continue,
            Some(ip) => return Some(ip),
            None => return Some(peer),
        }
    }
    Some(peer)
}

/// The address of one `X-Forwarded-For` entry: `addr`, `v4:port`, `[v6]` or `[v6]:port`,
/// optionally quoted; `None` for anything else (`unknown`, obfuscated names).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    let ip = if let Some(rest) = entry.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        IpAddr::V6(inside.parse().ok()?)
    } else if let Ok(ip) = entry.parse::<IpAddr>() {
        ip
    } else {
        let (host, port) = entry.split_once(':')?;
        if !is_port(port) {
            return None;
        }
        IpAddr::V4(host.parse().ok()?)
    };
    Some(ip.to_canonical())
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// Whether a `Content-Type` value is JSON: `application/json` (any case, any parameters).
pub fn is_json_media_type(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(JSON))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_enforces_the_limit() {
        let mut c = BodyCollector::new(4, None);
        assert!(c.push(b"ab"));
        assert!(c.push(b"cd"));
        assert!(matches!(c.finish(), Body::Complete(b) if b == "abcd"));
        let mut c = BodyCollector::new(4, None);
        assert!(c.push(b"abc"));
        assert!(!c.push(b"de"));
        assert!(matches!(c.finish(), Body::TooLarge));
        let c = BodyCollector::new(4, Some(5));
        assert!(!c.wants_more());
    }

    #[test]
    fn client_ip_trusts_only_configured_proxies() {
        let request = |peer: &str, xff: Option<&str>| Request {
            method: "GET".into(),
            path: "/".into(),
            query: None,
            headers: RequestHeaders {
                forwarded_for: xff.map(str::to_owned),
                ..RequestHeaders::default()
            },
            client_ip: peer.parse().ok(),
            body: Body::Complete(Bytes::new()),
        };
        let proxy = parse_trusted_proxy("10.0.0.1").unwrap();
        let spoofed = request("192.0.2.7", Some("203.0.113.9"));
        assert_eq!(client_ip(&spoofed, &[proxy]), "192.0.2.7".parse().ok());
        let proxied = request("10.0.0.1", Some("203.0.113.9, 10.0.0.1"));
        assert_eq!(client_ip(&proxied, &[proxy]), "203.0.113.9".parse().ok());
        let garbage = request("10.0.0.1", Some("nonsense"));
        assert_eq!(client_ip(&garbage, &[proxy]), "10.0.0.1".parse().ok());
        assert_eq!(
            client_ip(&request("::ffff:127.0.0.1", None), &[]),
            "127.0.0.1".parse().ok()
        );
    }

    #[test]
    fn client_ip_skips_trusted_ranges_and_reads_ports() {
        let request = |xff: &str| Request {
            method: "GET".into(),
            path: "/".into(),
            query: None,
            headers: RequestHeaders {
                forwarded_for: Some(xff.to_owned()),
                ..RequestHeaders::default()
            },
            client_ip: "10.1.2.3".parse().ok(),
            body: Body::Complete(Bytes::new()),
        };
        let trusted = [
            parse_trusted_proxy("10.0.0.0/8").unwrap(),
            parse_trusted_proxy("fd00::/8").unwrap(),
        ];
        let ip = |text: &str| text.parse::<IpAddr>().ok();
        let cases = [
            ("203.0.113.9, 10.9.9.9", "203.0.113.9"),
            ("198.51.100.1, 203.0.113.9, fd00::1", "203.0.113.9"),
            ("203.0.113.9:4711", "203.0.113.9"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("\"[2001:db8::7]:443\"", "2001:db8::7"),
            ("::ffff:203.0.113.9", "203.0.113.9"),
            ("unknown", "10.1.2.3"),
            ("203.0.113.9:port", "10.1.2.3"),
            ("[2001:db8::7]x", "10.1.2.3"),
            ("10.2.2.2, 10.3.3.3", "10.1.2.3"),
        ];
        for (xff, expected) in cases {
            assert_eq!(client_ip(&request(xff), &trusted), ip(expected), "{xff}");
        }
        assert_eq!(
            parse_trusted_proxy("10.1.2.3/8").unwrap().to_string(),
            "10.0.0.0/8"
        );
        assert!(parse_trusted_proxy("10.0.0.0/33").is_err());
        assert!(parse_trusted_proxy("proxy.local").is_err());
    }

    #[test]
    fn forwarded_for_lines_are_one_list() {
        let h = RequestHeaders::from_pairs([
            ("X-Forwarded-For", b"198.51.100.1".as_slice()),
            ("x-forwarded-for", b"203.0.113.9, 10.0.0.2".as_slice()),
        ]);
        assert_eq!(
            h.forwarded_for.as_deref(),
            Some("198.51.100.1, 203.0.113.9, 10.0.0.2")
        );
    }

    #[test]
    fn cookie_lines_are_one_list() {
        let h = RequestHeaders::from_pairs([
            ("Cookie", b"a=1".as_slice()),
            ("cookie", b"b=2; c=3".as_slice()),
            ("X-CSRF-Token", b"t".as_slice()),
        ]);
        assert_eq!(h.cookie.as_deref(), Some("a=1; b=2; c=3"));
        assert_eq!(h.csrf_token.as_deref(), Some("t"));
    }

    #[test]
    fn media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/jsonx"));
    }

    #[test]
    fn headers_from_pairs() {
        let h = RequestHeaders::from_pairs([
            ("Authorization", b"Bearer x".as_slice()),
            ("authorization", b"Bearer y".as_slice()),
            ("USER-AGENT", b"ua".as_slice()),
        ]);
        assert_eq!(h.authorization.as_deref(), Some("Bearer x"));
        assert_eq!(h.user_agent.as_deref(), Some("ua"));
    }
}
