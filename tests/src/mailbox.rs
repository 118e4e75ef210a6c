//! The suite's mailbox: where the cases read the mail the target sends (verification links,
//! password resets, magic links), and [`SmtpSink`], a real SMTP server on loopback that a
//! server under test is pointed at (`--smtp-url`).
//!
//! A case waits for the next message to an address it made up ([`Mailbox::next_to`]), takes
//! the link's token ([`ReceivedMail::token`]) and uses it over HTTP, as a person would.

mod sink;

use std::time::Duration;

use futures_util::future::BoxFuture;

pub use sink::SmtpSink;

/// One message as the mailbox received it.
///
/// `Debug` shows the envelope and the subject only: the bodies carry sign-in links.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), e.g. `no-reply@localhost`.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), as the client spelled them.
    pub to: Vec<String>,
    /// The `Subject` header, decoded (empty when there is none).
    pub subject: String,
    /// The `text/plain` body, decoded (empty when there is none).
    pub text: String,
    /// The `text/html` alternative, decoded, when the message has one.
    pub html: Option<String>,
    /// The whole message as received (headers and body, after dot-unstuffing).
    pub raw: String,
}

impl std::fmt::Debug for ReceivedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedMail")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The shortest line [`ReceivedMail::token`] takes for a bare token: shorter runs of
/// base64url characters are ordinary words.
const MIN_BARE_TOKEN_LEN: usize = 20;

impl ReceivedMail {
    /// Parses a received message (`raw`, as it came after `DATA`) with its envelope.
    /// Unparseable MIME still gives a mail, with empty subject and text, so a case reports
    /// what it got rather than a timeout.
    pub fn parse(from: String, to: Vec<String>, raw: &[u8]) -> Self {
        let parsed = mail_parser::MessageParser::default().parse(raw);
        let (subject, text, html) = match &parsed {
            Some(message) => {
                let text = message
                    .text_bodies()
                    .find(|part| part.is_text() && !part.is_text_html())
                    .and_then(|part| part.text_contents())
                    .unwrap_or_default()
                    .to_owned();
                // `body_html` would make HTML out of a text-only message: only a real
                // `text/html` part counts.
                let html = message
                    .html_bodies()
                    .find(|part| part.is_text_html())
                    .and_then(|part| part.text_contents())
                    .map(str::to_owned);
                let subject = message.subject().unwrap_or_default().to_owned();
                (subject, text, html)
            }
            None => (String::new(), String::new(), None),
        };
        Self {
            from,
            to,
            subject,
            text,
            html,
            raw: String::from_utf8_lossy(raw).into_owned(),
        }
    }

    /// The token the message carries: the `token` query parameter of the first http(s)
    /// link in the text part that has one; or, when the text has no link at all, the first
    /// line that is nothing but base64url characters, at least 20 of them (the bare-token
    /// form a deployment without link URLs sends).
    pub fn token(&self) -> Option<String> {
        let links = links(&self.text);
        if links.is_empty() {
            return self
                .text
                .lines()
                .map(str::trim)
                .find(|line| line.len() >= MIN_BARE_TOKEN_LEN && line.bytes().all(is_base64url))
                .map(str::to_owned);
        }
        links.into_iter().find_map(|link| {
            let url = reqwest::Url::parse(link).ok()?;
            url.query_pairs()
                .find(|(name, _)| name == "token")
                .map(|(_, value)| value.into_owned())
        })
    }
}

/// The http(s) links in `text`, in order: each runs from its scheme to the next character
/// that cannot be part of a link in plain text (white space, quotes, angle brackets).
fn links(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = ["http://", "https://"]
        .iter()
        .filter_map(|scheme| rest.find(scheme))
        .min()
    {
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>'))
            .unwrap_or(candidate.len());
        // A link ending a sentence keeps its full stop outside.
        found.push(candidate[..end].trim_end_matches(['.', ',', ';', ')']));
        rest = &candidate[end..];
    }
    found
}

fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// Where the suite reads the target's mail.
pub trait Mailbox: Send + Sync + 'static {
    /// Waits up to `timeout` for the next message whose envelope recipient is `to` (compared
    /// case-insensitively) that no earlier call took, and takes it; `None` when none came
    /// in time. Messages to `to` are taken in the order they arrived.
    fn next_to<'a>(&'a self, to: &'a str, timeout: Duration)
    -> BoxFuture<'a, Option<ReceivedMail>>;

    /// How many messages to `to` (case-insensitively) arrived and are not taken yet: for the
    /// cases that check that nothing was sent.
    fn count_to(&self, to: &str) -> usize;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_text(text: &str) -> ReceivedMail {
        ReceivedMail {
            from: "a@example.com".to_owned(),
            to: vec!["b@example.com".to_owned()],
            subject: "s".to_owned(),
            text: text.to_owned(),
            html: None,
            raw: String::new(),
        }
    }

    #[test]
    fn the_token_comes_from_the_first_link_that_has_one() {
        let mail = with_text(
            "Hello,\n\nsee https://app.example/help first, then open\n\n\
             https://app.example/reset?x=1&token=abc%2Bdef_-123&y=2.\n\n\
             https://app.example/other?token=second\n",
        );
        assert_eq!(mail.token().as_deref(), Some("abc+def_-123"));
        let quoted = with_text("<a href=\"http://h:8080/v?token=t0k\">link</a>");
        assert_eq!(quoted.token().as_deref(), Some("t0k"));
        assert_eq!(with_text("only https://h/nothing here").token(), None);
    }

    #[test]
    fn without_a_link_a_bare_token_line_counts() {
        let token = "Qm9vdHN0cmFwLXRva2VuLTAxMjM0NTY3ODk_-x";
        let mail = with_text(&format!(
            "Hello,\n\npaste this code (it works once, for 15 minutes):\n\n  {token}\n\nBye\n"
        ));
        assert_eq!(mail.token().as_deref(), Some(token));
        assert_eq!(with_text("short\nabcdefghijklmnopqrs\n").token(), None);
        assert_eq!(with_text("not+base64url/but-long-enough==\n").token(), None);
    }

    #[test]
    fn debug_shows_no_body() {
        let mut mail = with_text("https://h/r?token=secret-token-value");
        mail.html = Some("<a href=\"https://h/r?token=secret-token-value\">x</a>".to_owned());
        mail.raw = mail.text.clone();
        let shown = format!("{mail:?}");
        assert!(!shown.contains("secret-token-value"), "{shown}");
        assert!(shown.contains("b@example.com"), "{shown}");
    }

    #[test]
    fn multipart_messages_parse_into_their_parts() {
        let raw = "From: auth-server <no-reply@localhost>\r\n\
                   To: b@example.com\r\n\
                   Subject: =?utf-8?q?R=C3=A9initialiser?=\r\n\
                   MIME-Version: 1.0\r\n\
                   Content-Type: multipart/alternative; boundary=\"XX\"\r\n\
                   \r\n\
                   --XX\r\n\
                   Content-Type: text/plain; charset=utf-8\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\
                   \r\n\
                   open https://h/r?token=3Dabc\r\n\
                   --XX\r\n\
                   Content-Type: text/html; charset=utf-8\r\n\
                   \r\n\
                   <p>open</p>\r\n\
                   --XX--\r\n";
        let mail = ReceivedMail::parse(
            "no-reply@localhost".to_owned(),
            vec!["b@example.com".to_owned()],
            raw.as_bytes(),
        );
        assert_eq!(mail.subject, "Réinitialiser");
        assert!(
            mail.text.contains("https://h/r?token=abc"),
            "{:?}",
            mail.text
        );
        assert_eq!(mail.token().as_deref(), Some("abc"));
        assert_eq!(mail.html.as_deref().map(str::trim), Some("<p>open</p>"));
        let plain = ReceivedMail::parse(
            String::new(),
            Vec::new(),
            b"Subject: hi\r\nContent-Type: text/plain\r\n\r\nbody\r\n",
        );
        assert_eq!((plain.subject.as_str(), plain.html), ("hi", None));
        assert_eq!(plain.text.trim(), "body");
    }
}
