//! The load generator: keep-alive HTTP/1.1 connections over plain tokio TCP streams, a fixed
//! number of them each sending its next request as soon as the previous answer is read
//! (closed loop), with a warm-up, a bounded measuring window and a latency histogram.
//!
//! The HTTP client is deliberately minimal: requests are rendered once into bytes, responses
//! are parsed with `httparse` and their bodies read by `Content-Length` (or chunked, or to the
//! end of the connection when neither is given), so the generator costs little of the CPU it
//! shares with the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest a single request may take before it counts as an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest latency the histogram tracks, in microseconds (larger values are clamped).
const MAX_LATENCY_MICROS: u64 = 120_000_000;
/// How many unexpected answers are kept, verbatim, to explain a failure.
const KEPT_SAMPLES: usize = 5;

/// Renders a request. `body`, when given, is sent as `application/json` with its
/// `Content-Length`.
pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        out.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// One answer, read completely.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Whether a `Retry-After` header came with it.
    pub retry_after: bool,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "answer {} is not JSON: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Status and the start of the body, for error reports.
    pub fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body);
        let cut: String = body.chars().take(200).collect();
        format!("{} {cut}", self.status)
    }
}

/// A keep-alive connection that reconnects when the server closes it.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    /// Bytes read but not yet consumed.
    buffer: Vec<u8>,
}

impl Connection {
    /// A connection to `addr`, opened on first use.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            stream: None,
            buffer: Vec::with_capacity(16 * 1024),
        }
    }

    /// Opens the TCP connection now (if it is not open yet).
    pub async fn connect(&mut self) -> anyhow::Result<()> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("cannot connect to {}", self.addr))?;
            stream.set_nodelay(true)?;
            self.stream = Some(stream);
            self.buffer.clear();
        }
        Ok(())
    }

    /// Sends one request and reads its whole answer. On any error the connection is dropped
    /// (the next call reconnects).
    pub async fn send(&mut self, request: &[u8]) -> anyhow::Result<Response> {
        let result = tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request)).await;
        let result = match result {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!(
                "no answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            )),
        };
        match result {
            Ok((response, close)) => {
                if close {
                    self.stream = None;
                }
                Ok(response)
            }
            Err(err) => {
                self.stream = None;
                Err(err)
            }
        }
    }

    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<(Response, bool)> {
        self.connect().await?;
        let Some(stream) = self.stream.as_mut() else {
            bail!("not connected");
        };
        stream.write_all(request).await.context("write failed")?;
        read_response(stream, &mut self.buffer).await
    }
}

/// What the head of a response says about its body.
struct Head {
    status: u16,
    retry_after: bool,
    close: bool,
    length: BodyLength,
    head_len: usize,
}

enum BodyLength {
    Known(usize),
    Chunked,
    UntilClose,
}

fn parse_head(buffer: &[u8]) -> anyhow::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buffer).context("malformed response head")? {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.unwrap_or(0);
    let (mut retry_after, mut close, mut length) = (false, false, None);
    for header in response.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            length = Some(BodyLength::Known(
                value.parse().context("bad Content-Length")?,
            ));
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().contains("chunked") {
                length = Some(BodyLength::Chunked);
            }
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        } else if header.name.eq_ignore_ascii_case("retry-after") {
            retry_after = true;
        }
    }
    let length = match length {
        Some(length) => length,
        None if status < 200 || status == 204 || status == 304 => BodyLength::Known(0),
        None => BodyLength::UntilClose,
    };
    if response.version == Some(0) {
        close = true;
    }
    Ok(Some(Head {
        status,
        retry_after,
        close,
        length,
        head_len,
    }))
}

/// Reads more bytes into `buffer`; false at the end of the stream.
async fn fill(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> anyhow::Result<bool> {
    buffer.reserve(8 * 1024);
    let read = stream.read_buf(buffer).await.context("read failed")?;
    Ok(read > 0)
}

async fn read_response(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
) -> anyhow::Result<(Response, bool)> {
    let head = loop {
        if let Some(head) = parse_head(buffer)? {
            break head;
        }
        if !fill(stream, buffer).await? {
            bail!("connection closed before a response");
        }
    };
    let (body, consumed) = match head.length {
        BodyLength::Known(len) => {
            let end = head.head_len + len;
            while buffer.len() < end {
                if !fill(stream, buffer).await? {
                    bail!("connection closed inside a body");
                }
            }
            (buffer[head.head_len..end].to_vec(), end)
        }
        BodyLength::Chunked => loop {
            if let Some(done) = dechunk(&buffer[head.head_len..])? {
                break (done.0, head.head_len + done.1);
            }
            if !fill(stream, buffer).await? {
                bail!("connection closed inside a chunked body");
            }
        },
        BodyLength::UntilClose => {
            while fill(stream, buffer).await? {}
            (buffer[head.head_len..].to_vec(), buffer.len())
        }
    };
    buffer.drain(..consumed);
    let close = head.close || matches!(head.length, BodyLength::UntilClose);
    Ok((
        Response {
            status: head.status,
            retry_after: head.retry_after,
            body,
        },
        close,
    ))
}

/// Decodes a complete chunked body at the start of `data`: the body and the bytes it took,
/// or `None` when more is needed.
fn dechunk(data: &[u8]) -> anyhow::Result<Option<(Vec<u8>, usize)>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = find_crlf(&data[at..]) else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&data[at..at + line_end]).context("bad chunk size")?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).context("bad chunk size")?;
        at += line_end + 2;
        if size == 0 {
            // Trailers (none expected) end with an empty line.
            loop {
                let Some(end) = find_crlf(&data[at..]) else {
                    return Ok(None);
                };
                at += end + 2;
                if end == 0 {
                    return Ok(Some((body, at)));
                }
            }
        }
        if data.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[at..at + size]);
        at += size + 2;
    }
}

fn find_crlf(data: &[u8]) -> Option<usize> {
    data.windows(2).position(|pair| pair == b"\r\n")
}

/// How a connection judges an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// What the scenario expects.
    Ok,
    /// A refusal the scenario allows (503 with `Retry-After` from the bounded hashing queue):
    /// counted separately, not an error.
    Rejected,
    /// Anything else: the scenario failed. The message says what came.
    Unexpected(String),
}

/// What one connection sends, and how it judges the answers. Each connection has its own,
/// so a flow may keep state (e.g. its refresh-token chain).
pub trait Flow: Send + 'static {
    /// The next request.
    fn request(&mut self) -> &[u8];
    /// Judges the answer to the last request.
    fn check(&mut self, response: &Response) -> Verdict;
}

/// How long to load, and with how many connections.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Time spent loading before measuring (answers in it are not counted).
    pub warmup: Duration,
    /// The measuring window.
    pub measure: Duration,
}

/// What a load produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Latency in microseconds of the expected answers completed in the window.
    pub latency: Histogram<u64>,
    /// Expected answers completed in the window.
    pub ok: u64,
    /// Allowed refusals (503 + `Retry-After`) completed in the window.
    pub rejected: u64,
    /// Unexpected answers and transport errors, over the whole run (warm-up included).
    pub errors: u64,
    /// A few of the errors, verbatim.
    pub samples: Vec<String>,
    /// Length of the window the counts cover.
    pub window: Duration,
}

impl Outcome {
    fn empty(window: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, 3)?,
            ok: 0,
            rejected: 0,
            errors: 0,
            samples: Vec::new(),
            window,
        })
    }

    fn merge(&mut self, other: Outcome) -> anyhow::Result<()> {
        self.latency.add(&other.latency)?;
        self.ok += other.ok;
        self.rejected += other.rejected;
        self.errors += other.errors;
        for sample in other.samples {
            if self.samples.len() < KEPT_SAMPLES {
                self.samples.push(sample);
            }
        }
        Ok(())
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.samples.len() < KEPT_SAMPLES {
            self.samples.push(message);
        }
    }

    /// Expected answers per second over the window.
    pub fn rps(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// A latency quantile in milliseconds; `None` without any expected answer.
    pub fn quantile_ms(&self, quantile: f64) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.value_at_quantile(quantile) as f64 / 1000.0)
    }

    /// The largest latency in milliseconds; `None` without any expected answer.
    pub fn max_ms(&self) -> Option<f64> {
        (!self.latency.is_empty()).then(|| self.latency.max() as f64 / 1000.0)
    }
}

/// Drives one connection per flow, closed loop, for `plan.warmup + plan.measure`; counts and
/// times the answers that complete inside the measuring window. Requests in flight at the end
/// are waited for (not counted).
pub async fn run<F: Flow>(addr: SocketAddr, plan: Plan, flows: Vec<F>) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let window_start = start + plan.warmup;
    let end = window_start + plan.measure;
    let mut tasks = Vec::with_capacity(flows.len());
    for flow in flows {
        tasks.push(tokio::spawn(drive(addr, flow, window_start, end, plan)));
    }
    let mut total = Outcome::empty(plan.measure)?;
    for task in tasks {
        total.merge(task.await.context("load task panicked")??)?;
    }
    Ok(total)
}

async fn drive<F: Flow>(
    addr: SocketAddr,
    mut flow: F,
    window_start: Instant,
    end: Instant,
    plan: Plan,
) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::empty(plan.measure)?;
    let mut connection = Connection::new(addr);
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let result = connection.send(flow.request()).await;
        let done = Instant::now();
        let counted = done >= window_start && done <= end;
        match result {
            Ok(response) => match flow.check(&response) {
                Verdict::Ok if counted => {
                    let micros = u64::try_from((done - sent).as_micros()).unwrap_or(u64::MAX);
                    outcome.latency.saturating_record(micros.max(1));
                    outcome.ok += 1;
                }
                Verdict::Rejected if counted => outcome.rejected += 1,
                Verdict::Ok | Verdict::Rejected => {}
                Verdict::Unexpected(message) => outcome.error(message),
            },
            Err(err) => {
                outcome.error(format!("{err:#}"));
                // Do not spin on a server that is gone.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    Ok(outcome)
}

/// Opens one connection per flow, then sends every flow's first request at the same moment
/// and waits for all the answers: a burst of `flows.len()` concurrent requests. The window is
/// the time from the burst to the last answer.
pub async fn burst<F: Flow>(addr: SocketAddr, flows: Vec<F>) -> anyhow::Result<Outcome> {
    let gate = Arc::new(tokio::sync::Barrier::new(flows.len() + 1));
    let mut tasks = Vec::with_capacity(flows.len());
    for mut flow in flows {
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let mut connection = Connection::new(addr);
            let connected = connection.connect().await;
            gate.wait().await;
            connected?;
            let sent = Instant::now();
            let response = connection.send(flow.request()).await?;
            let micros = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
            Ok::<_, anyhow::Error>((flow.check(&response), micros))
        }));
    }
    gate.wait().await;
    let started = Instant::now();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.context("load task panicked")?);
    }
    let mut total = Outcome::empty(started.elapsed())?;
    for result in results {
        match result {
            Ok((Verdict::Ok, micros)) => {
                total.latency.saturating_record(micros.max(1));
                total.ok += 1;
            }
            Ok((Verdict::Rejected, _)) => total.rejected += 1,
            Ok((Verdict::Unexpected(message), _)) => total.error(message),
            Err(err) => total.error(format!("{err:#}")),
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_their_length() {
        let bytes = request("POST", "/x", &[("Authorization", "Bearer t")], Some("{}"));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("POST /x HTTP/1.1\r\n"));
        assert!(text.contains("Authorization: Bearer t\r\n"));
        assert!(text.ends_with("Content-Length: 2\r\n\r\n{}"));
    }

    #[test]
    fn heads_and_chunks_parse() {
        let head = parse_head(
            b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 1\r\ncontent-length: 2\r\n\r\n{}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(head.status, 503);
        assert!(head.retry_after);
        assert!(matches!(head.length, BodyLength::Known(2)));
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-le")
                .unwrap()
                .is_none()
        );
        let (body, used) = dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nNEXT")
            .unwrap()
            .unwrap();
        assert_eq!(body, b"abcde");
        assert_eq!(used, 20);
        assert!(dechunk(b"3\r\nabc\r\n").unwrap().is_none());
    }

    #[tokio::test]
    async fn reads_keep_alive_answers_back_to_back() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 1024];
            while seen.windows(4).filter(|w| w == b"\r\n\r\n").count() < 2 {
                let n = socket.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhelloHTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
        });
        let mut connection = Connection::new(addr);
        connection.connect().await.unwrap();
        let stream = connection.stream.as_mut().unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let (first, _) = read_response(stream, &mut connection.buffer).await.unwrap();
        assert_eq!(
            (first.status, first.body.as_slice()),
            (200, b"hello".as_slice())
        );
        let (second, _) = read_response(stream, &mut connection.buffer).await.unwrap();
        assert_eq!(second.status, 204);
        assert!(connection.buffer.is_empty());
    }
}
