//! The sink over real sockets: a raw SMTP client drives it.

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use super::*;

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
