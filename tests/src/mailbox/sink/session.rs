//! One SMTP session of [`super::SmtpSink`]: lines in, replies out, messages kept.

use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWriteExt as _, BufReader,
};
use tokio::net::TcpStream;

use super::{IDLE_TIMEOUT, MAX_LINE, MAX_MESSAGE, MAX_RECIPIENTS, NAME, Shared};
use crate::mailbox::ReceivedMail;

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
pub(super) struct Session {
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
    pub(super) fn new(stream: TcpStream, shared: Arc<Shared>) -> Self {
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

    pub(super) async fn run(mut self) -> io::Result<()> {
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
}
