//! [`SmtpMailer`]: delivery to an SMTP server (lettre's blocking transport, TLS by rustls).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::bail;
use auth_core::mail::{Mail, MailError, Mailer};
use lettre::message::Mailbox;
use lettre::{SmtpTransport, Transport as _};

/// How long one SMTP command may take (connect, each reply): a server that stops answering
/// holds the mail thread this long at most, then the message is retried later.
pub(crate) const SMTP_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an error's text is kept: replies can be long, logs should not be.
const MAX_ERROR_CHARS: usize = 300;

/// Sends each message over its own SMTP session. `Debug` shows where it sends, never the
/// credentials.
pub struct SmtpMailer {
    transport: SmtpTransport,
    from: Mailbox,
    endpoint: Endpoint,
}

/// An SMTP URL's parts that may be shown: no user, no password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// `smtp` or `smtps`.
    scheme: String,
    host: String,
    port: Option<u16>,
    /// How TLS is used, in words.
    tls: &'static str,
    /// Whether the URL carries credentials.
    authenticated: bool,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, " ({}", self.tls)?;
        if self.authenticated {
            f.write_str(", with credentials")?;
        }
        f.write_str(")")
    }
}

impl Endpoint {
    /// Checks `url` the way lettre reads it, with errors that never repeat the URL (it may
    /// hold a password).
    pub(crate) fn parse(url: &str) -> anyhow::Result<Endpoint> {
        let Ok(parsed) = url::Url::parse(url) else {
            bail!(
                "--smtp-url is not a URL: it looks like smtp://host:port or \
                 smtps://user:password@host:port (percent-encode special characters)"
            );
        };
        let tls_param = parsed
            .query_pairs()
            .find(|(name, _)| name == "tls")
            .map(|(_, value)| value.into_owned());
        let tls = match (parsed.scheme(), tls_param.as_deref()) {
            ("smtp", None) => "no TLS",
            ("smtp", Some("required")) => "STARTTLS required",
            ("smtp", Some("opportunistic")) => "STARTTLS when offered",
            ("smtp", Some(_)) => bail!("--smtp-url: `tls` is `required` or `opportunistic`"),
            ("smtps", _) => "implicit TLS",
            _ => bail!("--smtp-url: the scheme is smtp or smtps"),
        };
        let Some(host) = parsed.host_str().filter(|host| !host.is_empty()) else {
            bail!("--smtp-url names no host");
        };
        let decodes = |part: &str| {
            percent_encoding::percent_decode_str(part)
                .decode_utf8()
                .is_ok()
        };
        if !decodes(parsed.username()) || !parsed.password().is_none_or(decodes) {
            bail!("--smtp-url: the user and password must be UTF-8 once percent-decoded");
        }
        Ok(Endpoint {
            scheme: parsed.scheme().to_owned(),
            host: host.to_owned(),
            port: parsed.port(),
            tls,
            authenticated: !parsed.username().is_empty() || parsed.password().is_some(),
        })
    }

    /// Whether credentials would cross the network in clear text: sent without TLS to
    /// another machine.
    pub(crate) fn credentials_in_clear(&self) -> bool {
        let loopback = self.host == "localhost"
            || self
                .host
                .trim_matches(['[', ']'])
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        self.authenticated && self.tls == "no TLS" && !loopback
    }
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("endpoint", &self.endpoint.to_string())
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for `url` (`smtp://host:port`, `?tls=required` or `?tls=opportunistic` for
    /// STARTTLS, `smtps://host:port` for implicit TLS, `user:password@` percent-encoded)
    /// sending from `from`. Errors never repeat the URL.
    pub fn from_url(url: &str, from: Mailbox) -> anyhow::Result<Self> {
        let endpoint = Endpoint::parse(url)?;
        let transport = match SmtpTransport::from_url(url) {
            Ok(builder) => builder.timeout(Some(SMTP_TIMEOUT)).build(),
            // The checks above cover what lettre reads, so this is a TLS set-up failure
            // (no root certificates, say); lettre's text names no part of the URL.
            Err(err) => bail!("--smtp-url cannot be used: {}", shorten(&err.to_string())),
        };
        Ok(Self {
            transport,
            from,
            endpoint,
        })
    }

    /// Where it sends, for the start-up log: scheme, host, port and TLS mode only.
    pub fn endpoint(&self) -> String {
        self.endpoint.to_string()
    }

    /// Whether the URL sends credentials without TLS to another host.
    pub(crate) fn credentials_in_clear(&self) -> bool {
        self.endpoint.credentials_in_clear()
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = super::message::build(&self.from, mail)?;
        self.transport.send(&message).map(drop).map_err(classify)
    }
}

/// A 5xx reply never succeeds on retry; everything else (4xx, no connection, timeouts, TLS)
/// may. lettre's text gives the kind, the reply code and the server's words, which hold
/// neither the message (it is sent after every reply that could fail a recipient) nor the
/// credentials.
fn classify(err: lettre::transport::smtp::Error) -> MailError {
    let text = shorten(&error_chain(&err));
    if err.is_permanent() {
        MailError::Permanent(text)
    } else {
        MailError::Transient(text)
    }
}

/// `err` and its sources, joined by `: ` (lettre's `Display` shows only the first source).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `text` on one line, at most [`MAX_ERROR_CHARS`] characters.
fn shorten(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_ERROR_CHARS)
        .collect();
    if text.chars().count() > MAX_ERROR_CHARS {
        format!("{one_line}…")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_as_lettre_reads_them() {
        let plain = Endpoint::parse("smtp://127.0.0.1:2525").expect("plain");
        assert_eq!(plain.to_string(), "smtp://127.0.0.1:2525 (no TLS)");
        let starttls = Endpoint::parse("smtp://u:p@mail.example:587?tls=required").expect("tls");
        assert_eq!(
            starttls.to_string(),
            "smtp://mail.example:587 (STARTTLS required, with credentials)"
        );
        assert_eq!(
            Endpoint::parse("smtp://m.example?tls=opportunistic")
                .expect("opportunistic")
                .tls,
            "STARTTLS when offered"
        );
        assert_eq!(
            Endpoint::parse("smtps://m.example").expect("smtps").tls,
            "implicit TLS"
        );
    }

    #[test]
    fn bad_urls_are_refused_without_repeating_the_password() {
        for url in [
            "http://u:hunter2pw@m.example",
            "smtp://u:hunter2pw@m.example?tls=always",
            "smtp://u:hunter2pw@:25",
            "not a url hunter2pw",
            "smtp://u:%FFhunter2pw@m.example",
        ] {
            let err = Endpoint::parse(url).expect_err(url).to_string();
            assert!(!err.contains("hunter2pw"), "{err}");
            assert!(err.contains("--smtp-url"), "{err}");
        }
    }

    #[test]
    fn clear_text_credentials_are_noticed_off_loopback_only() {
        let clear = |url| Endpoint::parse(url).expect(url).credentials_in_clear();
        assert!(clear("smtp://u:p@mail.example:25"));
        assert!(!clear("smtp://u:p@127.0.0.1:25"));
        assert!(!clear("smtp://u:p@[::1]:25"));
        assert!(!clear("smtp://u:p@localhost:25"));
        assert!(!clear("smtp://u:p@mail.example:587?tls=required"));
        assert!(!clear("smtp://mail.example:25"));
    }

    #[test]
    fn the_mailer_shows_no_credentials() {
        let from = super::super::message::parse_from("a@example.com").expect("from");
        let mailer =
            SmtpMailer::from_url("smtps://user:hunter2pw@mail.example:465", from).expect("built");
        let shown = format!("{mailer:?} {}", mailer.endpoint());
        assert!(
            !shown.contains("hunter2pw") && !shown.contains("user"),
            "{shown}"
        );
        assert!(shown.contains("mail.example:465"), "{shown}");
    }

    #[test]
    fn long_errors_are_cut_to_one_line() {
        let long = format!("a\r\nb{}", "x".repeat(1000));
        let short = shorten(&long);
        assert!(short.starts_with("a  b"));
        assert_eq!(short.chars().count(), MAX_ERROR_CHARS + 1);
    }
}
