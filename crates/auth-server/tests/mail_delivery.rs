//! The SMTP mailer against a real SMTP exchange on 127.0.0.1 (the conformance suite's sink):
//! delivery with both parts, a refused recipient as a permanent failure, an unreachable
//! server as a transient one.

use std::time::{Duration, Instant};

use auth_conformance::mailbox::{Mailbox as _, SmtpSink};
use auth_core::mail::{Mail, MailError, Mailer as _};
use auth_server::SmtpMailer;

fn mail(to: &str) -> Mail {
    Mail {
        to: to.to_owned(),
        subject: "Your sign-in link".to_owned(),
        text:
            "Hello,\n\nopen this link:\n\nhttps://app.example/magic?token=Zm9vYmFyYmF6cXV4cXV1eA\n"
                .to_owned(),
        html: Some(
            "<p><a href=\"https://app.example/magic?token=Zm9vYmFyYmF6cXV4cXV1eA\">Sign in</a></p>"
                .to_owned(),
        ),
    }
}

fn mailer(url: &str) -> SmtpMailer {
    let from = "auth-server <no-reply@localhost>"
        .parse()
        .expect("a mailbox");
    SmtpMailer::from_url(url, from).expect("a valid SMTP URL")
}

/// Sends on a blocking thread, as the core's mail sender does.
async fn send(mailer: SmtpMailer, mail: Mail) -> Result<(), MailError> {
    tokio::task::spawn_blocking(move || mailer.send(&mail))
        .await
        .expect("the send thread")
}

#[tokio::test]
async fn a_message_reaches_the_sink_with_both_parts() {
    let sink = SmtpSink::start().expect("sink");
    send(mailer(&sink.url()), mail("User@Example.com"))
        .await
        .expect("delivered");
    let received = sink
        .next_to("user@example.com", Duration::from_secs(5))
        .await
        .expect("a message");
    assert_eq!(received.from, "no-reply@localhost");
    assert_eq!(received.to, ["User@Example.com"]);
    assert_eq!(received.subject, "Your sign-in link");
    assert!(
        received.text.contains("open this link"),
        "{:?}",
        received.text
    );
    assert_eq!(received.token().as_deref(), Some("Zm9vYmFyYmF6cXV4cXV1eA"));
    let html = received.html.as_deref().expect("an HTML part");
    assert!(html.contains("Sign in</a>"), "{html}");
    assert!(received.raw.contains("Message-ID: <"), "{}", received.raw);
    assert_eq!(sink.count_to("user@example.com"), 0);
}

#[tokio::test]
async fn a_refused_recipient_is_a_permanent_failure() {
    let sink = SmtpSink::start().expect("sink");
    sink.refuse("gone@example.com");
    match send(mailer(&sink.url()), mail("gone@example.com")).await {
        Err(MailError::Permanent(text)) => {
            assert!(text.contains("550"), "{text}");
            assert!(!text.contains("token="), "{text}");
        }
        other => panic!("expected a permanent failure, got {other:?}"),
    }
    assert_eq!(sink.count_to("gone@example.com"), 0);
}

#[tokio::test]
async fn an_unreachable_server_is_a_transient_failure() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let started = Instant::now();
    match send(
        mailer(&format!("smtp://127.0.0.1:{port}")),
        mail("a@example.com"),
    )
    .await
    {
        Err(MailError::Transient(text)) => assert!(!text.contains("token="), "{text}"),
        other => panic!("expected a transient failure, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}
