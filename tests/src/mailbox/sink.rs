//! [`SmtpSink`]: a small SMTP server (RFC 5321) that keeps what it receives for the suite.
//!
//! It speaks what a submission client such as lettre needs and no more: `EHLO`/`HELO`,
//! `MAIL FROM`, `RCPT TO`, `DATA` (with dot-unstuffing), `RSET`, `NOOP`, `QUIT`; no TLS, no
//! AUTH (it listens on loopback for tests). It runs on a thread of its own with its own
//! Tokio runtime, so it works the same under any caller (a test's runtime, the xtask's, or
//! none), and stops when dropped. Everything is bounded: line and message sizes, recipients
//! per message, connections at once, idle time per command, and the mail it keeps.

use std::collections::{HashSet, VecDeque};
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, BufReader,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore, oneshot};

use super::{Mailbox, ReceivedMail};

/// Longest line taken, command or message text, with its CRLF (RFC 5321 asks for 512 and
/// 1,000; clients folding long headers stay well under this).
const MAX_LINE: usize = 8 * 1024;
/// Largest message taken (advertised as `SIZE`).
const MAX_MESSAGE: usize = 1024 * 1024;
/// Recipients one message may have.
const MAX_RECIPIENTS: usize = 100;
/// Connections served at once; more are told to come back later.
const MAX_CONNECTIONS: usize = 32;
/// How long the sink waits for the client's next line before it hangs up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes of mail kept (not yet taken) at once; past it new messages get `452`.
const MAX_KEPT_BYTES: usize = 64 * 1024 * 1024;
/// The name the sink gives itself in its greeting.
const NAME: &str = "auth-conformance-sink";

/// An SMTP server on a local port that keeps every message it receives for
/// [`Mailbox::next_to`]. Stops (closes its port and every connection) when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for SmtpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSink")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// What the connections and the mailbox share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken whenever a message is kept.
    arrived: Notify,
    /// Numbers the accepted messages, for the `250` reply.
    accepted: AtomicU64,
}

#[derive(Default)]
struct State {
    /// One entry per envelope recipient of each message, oldest first.
    kept: VecDeque<Kept>,
    /// The bytes of the raw messages in `kept`.
    kept_bytes: usize,
    /// Recipients refused with `550` (lower-cased).
    refused: HashSet<String>,
}

struct Kept {
    /// The recipient this entry is for, lower-cased.
    recipient: String,
    mail: ReceivedMail,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves the queue as consistent as a
        // finished push or pop: keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self, to: &str) -> Option<ReceivedMail> {
        let to = to.to_ascii_lowercase();
        let mut state = self.state();
        let index = state.kept.iter().position(|kept| kept.recipient == to)?;
        let kept = state.kept.remove(index)?;
        state.kept_bytes = state.kept_bytes.saturating_sub(kept.mail.raw.len());
        Some(kept.mail)
    }

    /// Keeps `mail` once per recipient; `false` (nothing kept) when there is no room.
    fn keep(&self, mail: ReceivedMail) -> bool {
        let mut state = self.state();
        let size = mail.raw.len().saturating_mul(mail.to.len());
        if state.kept_bytes.saturating_add(size) > MAX_KEPT_BYTES {
            return false;
        }
        state.kept_bytes += size;
        for recipient in &mail.to {
            state.kept.push_back(Kept {
                recipient: recipient.to_ascii_lowercase(),
                mail: mail.clone(),
            });
        }
        drop(state);
        self.arrived.notify_waiters();
        true
    }

    fn refuses(&self, recipient: &str) -> bool {
        self.state()
            .refused
            .contains(&recipient.to_ascii_lowercase())
    }
}

impl SmtpSink {
    /// Starts a sink on a free port of 127.0.0.1.
    pub fn start() -> io::Result<SmtpSink> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts a sink listening on `addr` (port 0 for a free one), e.g. for a deployment
    /// elsewhere on this machine to be pointed at.
    pub fn start_on(addr: SocketAddr) -> io::Result<SmtpSink> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = StdListener::bind(addr)?;
        let addr = listener.local_addr()?;
        listener.set_nonblocking(true)?;
        let listener = {
            let _inside = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared::default());
        let (stop, stopped) = oneshot::channel();
        let serving = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("smtp-sink".to_owned())
            .spawn(move || runtime.block_on(accept_loop(listener, serving, stopped)))?;
        Ok(SmtpSink {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT`: plain SMTP, for a server's `--smtp-url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// From now on answers `RCPT TO` for `address` (any case) with `550`, as a server does
    /// for a mailbox that does not exist: for the permanent-failure paths.
    pub fn refuse(&self, address: &str) {
        self.shared
            .state()
            .refused
            .insert(address.to_ascii_lowercase());
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The loop ends at once on the signal and the runtime drops its connections with
        // it, so this wait is short; it makes "dropped" mean "the port is closed".
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Mailbox for SmtpSink {
    fn next_to<'a>(
        &'a self,
        to: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Option<ReceivedMail>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                // Registered before looking, so a message kept in between still wakes us.
                let arrived = self.shared.arrived.notified();
                tokio::pin!(arrived);
                arrived.as_mut().enable();
                if let Some(mail) = self.shared.take(to) {
                    return Some(mail);
                }
                if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                    return self.shared.take(to);
                }
            }
        })
    }

    fn count_to(&self, to: &str) -> usize {
        let to = to.to_ascii_lowercase();
        self.shared
            .state()
            .kept
            .iter()
            .filter(|kept| kept.recipient == to)
            .count()
    }
}

/// Accepts connections until `stopped`, each served on a task of its own.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stopped: oneshot::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::pin!(stopped);
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of descriptors, or a connection reset before it was accepted: go on.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = Arc::clone(&shared);
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(async move {
                    let _slot = slot;
                    // A client that goes away mid-session is its own business.
                    let _ = Session::new(stream, shared).run().await;
                });
            }
            Err(_) => {
                tokio::spawn(async move {
                    let mut stream = stream;
                    let _ = stream
                        .write_all(b"421 4.3.2 too many connections, try again later\r\n")
                        .await;
                });
            }
        }
    }
}

/// A line read from the client.
enum Line {
    /// The line without its line ending.
    Text(Vec<u8>),
    /// The client closed the connection (or sent an endless line).
    Closed,
    /// Longer than [`MAX_LINE`]; it was read to its end and dropped.
    TooLong,
    /// Nothing came within [`IDLE_TIMEOUT`].
    Idle,
}

/// Reads up to [`MAX_LINE`] bytes, to the first LF, into `line`; `None` when nothing came
/// within [`IDLE_TIMEOUT`].
async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    line: &mut Vec<u8>,
) -> io::Result<Option<usize>> {
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX);
    match tokio::time::timeout(
        IDLE_TIMEOUT,
        (&mut *reader).take(limit).read_until(b'\n', line),
    )
    .await
    {
        Ok(read) => read.map(Some),
        Err(_) => Ok(None),
    }
}

/// Reads one line (up to LF; a CR before it is dropped), bounded in length and time. A line
/// that is too long is read on to its end (at most [`MAX_MESSAGE`] bytes more) so the
/// session stays in step.
async fn read_line<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> io::Result<Line> {
    let mut line = Vec::new();
    match read_some(reader, &mut line).await? {
        None => return Ok(Line::Idle),
        Some(0) => return Ok(Line::Closed),
        Some(_) => {}
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        return Ok(Line::Text(line));
    }
    if line.len() < MAX_LINE {
        // The connection closed mid-line.
        return Ok(Line::Closed);
    }
    let mut dropped = 0;
    while dropped <= MAX_MESSAGE {
        let mut rest = Vec::new();
        match read_some(reader, &mut rest).await? {
            None => return Ok(Line::Idle),
            Some(0) => return Ok(Line::Closed),
            Some(read) => dropped += read,
        }
        if rest.last() == Some(&b'\n') {
            return Ok(Line::TooLong);
        }
    }
    Ok(Line::Closed)
}

/// One client connection.
struct Session {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
    /// Whether the client said `EHLO` or `HELO`.
    greeted: bool,
    /// The transaction under way: its reverse-path once `MAIL FROM` was accepted.
    from: Option<String>,
    to: Vec<String>,
}

impl Session {
    fn new(stream: TcpStream, shared: Arc<Shared>) -> Self {
        let (read, writer) = stream.into_split();
        Self {
            reader: BufReader::new(read),
            writer,
            shared,
            greeted: false,
            from: None,
            to: Vec::new(),
        }
    }

    async fn reply(&mut self, text: &str) -> io::Result<()> {
        self.writer.write_all(text.as_bytes()).await?;
        self.writer.write_all(b"\r\n").await
    }

    fn reset(&mut self) {
        self.from = None;
        self.to.clear();
    }

    async fn run(mut self) -> io::Result<()> {
        self.reply(&format!("220 {NAME} ESMTP ready")).await?;
        loop {
            let line = match read_line(&mut self.reader).await? {
                Line::Text(line) => line,
                Line::Closed => return Ok(()),
                Line::TooLong => {
                    self.reply("500 5.5.6 line too long").await?;
                    continue;
                }
                Line::Idle => return self.reply("421 4.4.2 idle too long, closing").await,
            };
            let line = String::from_utf8_lossy(&line).into_owned();
            let (verb, argument) = match line.split_once(' ') {
                Some((verb, argument)) => (verb.to_ascii_uppercase(), argument.trim()),
                None => (line.trim().to_ascii_uppercase(), ""),
            };
            match verb.as_str() {
                "EHLO" => {
                    self.reset();
                    self.greeted = true;
                    let reply = format!(
                        "250-{NAME} greets {argument}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                         250-SIZE {MAX_MESSAGE}\r\n250 HELP"
                    );
                    self.reply(&reply).await?;
                }
                "HELO" => {
                    self.reset();
                    self.greeted = true;
                    self.reply(&format!("250 {NAME}")).await?;
                }
                "MAIL" => self.mail_from(argument).await?,
                "RCPT" => self.rcpt_to(argument).await?,
                "DATA" => self.data().await?,
                "RSET" => {
                    self.reset();
                    self.reply("250 2.0.0 OK").await?;
                }
                "NOOP" => self.reply("250 2.0.0 OK").await?,
                "VRFY" => {
                    self.reply("252 2.1.5 cannot verify, send some mail")
                        .await?
                }
                "QUIT" => return self.reply(&format!("221 2.0.0 {NAME} closing")).await,
                _ => self.reply("502 5.5.2 command not implemented").await?,
            }
        }
    }

    async fn mail_from(&mut self, argument: &str) -> io::Result<()> {
        if !self.greeted {
            return self.reply("503 5.5.1 say EHLO first").await;
        }
        if self.from.is_some() {
            return self.reply("503 5.5.1 a transaction is under way").await;
        }
        let Some((path, parameters)) = path_after(argument, "FROM:") else {
            return self.reply("501 5.5.4 syntax: MAIL FROM:<address>").await;
        };
        let declared = parameters.split_whitespace().find_map(|parameter| {
            let (name, value) = parameter.split_once('=')?;
            name.eq_ignore_ascii_case("SIZE")
                .then(|| value.parse::<usize>().ok())
                .flatten()
        });
        if declared.is_some_and(|size| size > MAX_MESSAGE) {
            return self.reply("552 5.3.4 message too big").await;
        }
        self.from = Some(path);
        self.reply("250 2.1.0 OK").await
    }

    async fn rcpt_to(&mut self, argument: &str) -> io::Result<()> {
        if self.from.is_none() {
            return self.reply("503 5.5.1 say MAIL FROM first").await;
        }
        let Some((path, _)) = path_after(argument, "TO:") else {
            return self.reply("501 5.5.4 syntax: RCPT TO:<address>").await;
        };
        if path.is_empty() {
            return self.reply("501 5.1.3 a recipient is needed").await;
        }
        if self.to.len() >= MAX_RECIPIENTS {
            return self.reply("452 4.5.3 too many recipients").await;
        }
        if self.shared.refuses(&path) {
            return self
                .reply(&format!("550 5.1.1 <{path}>: no such mailbox here"))
                .await;
        }
        self.to.push(path);
        self.reply("250 2.1.5 OK").await
    }

    async fn data(&mut self) -> io::Result<()> {
        let Some(from) = self.from.clone() else {
            return self.reply("503 5.5.1 say MAIL FROM first").await;
        };
        if self.to.is_empty() {
            return self.reply("554 5.5.1 no valid recipients").await;
        }
        self.reply("354 end data with <CR><LF>.<CR><LF>").await?;
        let mut raw = Vec::new();
        let mut too_big = false;
        loop {
            let line = match read_line(&mut self.reader).await? {
                Line::Text(line) => line,
                Line::Closed => return Ok(()),
                Line::TooLong => {
                    too_big = true;
                    continue;
                }
                Line::Idle => return self.reply("421 4.4.2 idle too long, closing").await,
            };
            if line == b"." {
                break;
            }
            // Dot-unstuffing (RFC 5321, 4.5.2): the client doubled every leading dot.
            let text = line.strip_prefix(b".").unwrap_or(&line);
            if too_big || raw.len() + text.len() + 2 > MAX_MESSAGE {
                // Read on to the end so the session stays in step, keeping nothing.
                too_big = true;
                continue;
            }
            raw.extend_from_slice(text);
            raw.extend_from_slice(b"\r\n");
        }
        let to = std::mem::take(&mut self.to);
        self.from = None;
        if too_big {
            return self.reply("552 5.3.4 message too big").await;
        }
        let mail = ReceivedMail::parse(from, to, &raw);
        if !self.shared.keep(mail) {
            return self
                .reply("452 4.3.1 mailbox full: take some mail first")
                .await;
        }
        let number = self.shared.accepted.fetch_add(1, Ordering::Relaxed) + 1;
        self.reply(&format!("250 2.0.0 OK queued as {number}"))
            .await
    }
}

/// Splits `FROM:<path> params` (or `TO:...`) after `keyword` (any case, spaces allowed
/// after the colon) into the path without its brackets and the parameters.
fn path_after(argument: &str, keyword: &str) -> Option<(String, String)> {
    let head = argument.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = argument[keyword.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let (path, parameters) = inner.split_once('>')?;
    Some((path.trim().to_owned(), parameters.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse_with_or_without_spaces_and_parameters() {
        assert_eq!(
            path_after("FROM:<a@b.c> SIZE=10 BODY=8BITMIME", "FROM:"),
            Some(("a@b.c".to_owned(), "SIZE=10 BODY=8BITMIME".to_owned()))
        );
        assert_eq!(
            path_after("to: <X@Y.z>", "TO:"),
            Some(("X@Y.z".to_owned(), String::new()))
        );
        assert_eq!(
            path_after("FROM:<>", "FROM:"),
            Some((String::new(), String::new()))
        );
        assert_eq!(path_after("FROM:a@b.c", "FROM:"), None);
        assert_eq!(path_after("TO:<a@b.c>", "FROM:"), None);
        assert_eq!(path_after("", "FROM:"), None);
    }

    /// A raw SMTP client: sends `line` and returns the reply's lines.
    struct Client {
        reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
        writer: tokio::net::tcp::OwnedWriteHalf,
    }

    impl Client {
        async fn connect(sink: &SmtpSink) -> Self {
            let stream = TcpStream::connect(sink.addr()).await.expect("connect");
            let (read, writer) = stream.into_split();
            let mut client = Self {
                reader: BufReader::new(read),
                writer,
            };
            assert!(client.reply().await.starts_with("220 "));
            client
        }

        /// The next reply, its lines joined by `|`.
        async fn reply(&mut self) -> String {
            let mut lines = Vec::new();
            loop {
                let mut line = String::new();
                self.reader.read_line(&mut line).await.expect("read");
                let line = line.trim_end().to_owned();
                let last = line.len() < 4 || line.as_bytes()[3] != b'-';
                lines.push(line);
                if last {
                    return lines.join("|");
                }
            }
        }

        async fn send(&mut self, line: &str) -> String {
            self.writer
                .write_all(format!("{line}\r\n").as_bytes())
                .await
                .expect("write");
            self.reply().await
        }
    }

    #[tokio::test]
    async fn a_session_delivers_with_dot_unstuffing_and_refuses_as_configured() {
        let sink = SmtpSink::start().expect("sink");
        assert!(sink.url().starts_with("smtp://127.0.0.1:"));
        sink.refuse("Nobody@Example.com");
        let mut client = Client::connect(&sink).await;
        assert!(client.send("MAIL FROM:<a@b.c>").await.starts_with("503"));
        assert!(client.send("EHLO me").await.contains("250 HELP"));
        assert!(client.send("RCPT TO:<x@y.z>").await.starts_with("503"));
        assert!(client.send("DATA").await.starts_with("503"));
        assert!(client.send("MAIL FROM:<a@b.c>").await.starts_with("250"));
        assert!(
            client
                .send("RCPT TO:<nobody@example.COM>")
                .await
                .starts_with("550")
        );
        assert!(client.send("DATA").await.starts_with("554"));
        assert!(
            client
                .send("RCPT TO:<One@Example.com>")
                .await
                .starts_with("250")
        );
        assert!(
            client
                .send("RCPT TO:<two@example.com>")
                .await
                .starts_with("250")
        );
        assert!(client.send("DATA").await.starts_with("354"));
        let body = "Subject: hello\r\n\r\nline one\r\n..leading dot\r\n.";
        assert!(client.send(body).await.starts_with("250"));
        assert!(client.send("NOOP").await.starts_with("250"));
        assert!(
            client
                .send("MAIL FROM:<a@b.c> SIZE=99999999")
                .await
                .starts_with("552")
        );
        assert!(client.send("RSET").await.starts_with("250"));
        assert!(client.send("BDAT 10").await.starts_with("502"));
        assert!(client.send("QUIT").await.starts_with("221"));

        assert_eq!(sink.count_to("ONE@example.com"), 1);
        assert_eq!(sink.count_to("two@example.com"), 1);
        assert_eq!(sink.count_to("nobody@example.com"), 0);
        let mail = sink
            .next_to("one@example.com", Duration::from_secs(1))
            .await
            .expect("a message");
        assert_eq!(mail.from, "a@b.c");
        assert_eq!(mail.to, ["One@Example.com", "two@example.com"]);
        assert_eq!(mail.subject, "hello");
        assert!(mail.raw.contains("\r\n.leading dot\r\n"), "{:?}", mail.raw);
        assert_eq!(sink.count_to("one@example.com"), 0);
        assert_eq!(sink.count_to("two@example.com"), 1);
        assert!(
            sink.next_to("one@example.com", Duration::from_millis(50))
                .await
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_waiting_reader_gets_the_message_that_arrives_later() {
        let sink = Arc::new(SmtpSink::start().expect("sink"));
        let waiting = {
            let sink = Arc::clone(&sink);
            tokio::spawn(async move {
                sink.next_to("late@example.com", Duration::from_secs(10))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut client = Client::connect(&sink).await;
        client.send("HELO me").await;
        client.send("MAIL FROM:<>").await;
        client.send("RCPT TO:<late@example.com>").await;
        client.send("DATA").await;
        assert!(
            client
                .send("Subject: late\r\n\r\nx\r\n.")
                .await
                .starts_with("250")
        );
        let mail = waiting.await.expect("join").expect("a message");
        assert_eq!(mail.subject, "late");
    }

    #[tokio::test]
    async fn long_lines_and_big_messages_are_refused() {
        let sink = SmtpSink::start().expect("sink");
        let mut client = Client::connect(&sink).await;
        client.send("EHLO me").await;
        client.send("MAIL FROM:<a@b.c>").await;
        client.send("RCPT TO:<big@example.com>").await;
        client.send("DATA").await;
        let line = "x".repeat(1000);
        let lines = MAX_MESSAGE / 1000 + 1;
        let body = std::iter::repeat_n(line.as_str(), lines)
            .collect::<Vec<_>>()
            .join("\r\n");
        assert!(
            client
                .send(&format!("{body}\r\n."))
                .await
                .starts_with("552")
        );
        assert_eq!(sink.count_to("big@example.com"), 0);
        // The session is still in step after the refusal.
        assert!(client.send("NOOP").await.starts_with("250"));
        let long = "N".repeat(MAX_LINE + 1);
        assert!(client.send(&long).await.starts_with("500"));
        assert!(client.send("NOOP").await.starts_with("250"));
    }

    #[tokio::test]
    async fn dropping_the_sink_closes_its_port() {
        let sink = SmtpSink::start().expect("sink");
        let addr = sink.addr();
        drop(sink);
        assert!(TcpStream::connect(addr).await.is_err());
    }
}
