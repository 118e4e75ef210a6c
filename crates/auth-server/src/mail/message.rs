//! Turning the core's [`Mail`] into an RFC 5322 message, the same for SMTP and the outbox.

use auth_core::mail::{Mail, MailError};
use lettre::Message;
use lettre::message::{Mailbox, MultiPart, SinglePart};

/// The message `mail` becomes, from `from`: a plain-text body, or a `multipart/alternative`
/// of text and HTML when the mail has HTML. A recipient lettre cannot address is a
/// permanent failure: no retry makes it valid.
pub(crate) fn build(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|_| MailError::Permanent("the recipient is not a valid address".to_owned()))?;
    // Message-IDs name the sender's domain, as mail servers expect of the originator.
    let message_id = format!("<{}@{}>", uuid::Uuid::new_v4(), from.email.domain());
    let builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.as_str())
        .message_id(Some(message_id));
    let built = match &mail.html {
        None => builder.singlepart(SinglePart::plain(mail.text.clone())),
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            mail.text.clone(),
            html.clone(),
        )),
    };
    // lettre only fails here on headers it was not given (a `From` is always set), so this
    // names the kind of failure, not the contents.
    built.map_err(|err| MailError::Permanent(format!("the message cannot be built: {err}")))
}

/// Parses `--mail-from`: a mailbox such as `Example <no-reply@example.com>`.
pub(crate) fn parse_from(text: &str) -> Result<Mailbox, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a mailbox such as `Example <no-reply@example.com>`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(html: Option<&str>) -> Mail {
        Mail {
            to: "user@example.com".to_owned(),
            subject: "Réinitialiser".to_owned(),
            text: "open https://app.example/r?token=abc\n".to_owned(),
            html: html.map(str::to_owned),
        }
    }

    #[test]
    fn text_alone_or_with_an_html_alternative() {
        let from = parse_from("auth-server <no-reply@localhost>").expect("from");
        let plain = String::from_utf8(build(&from, &mail(None)).expect("built").formatted())
            .expect("utf-8");
        assert!(plain.contains("Content-Type: text/plain"), "{plain}");
        assert!(!plain.contains("multipart"), "{plain}");
        assert!(plain.contains("Message-ID: <"), "{plain}");
        assert!(plain.contains("@localhost>"), "{plain}");
        let both = build(&from, &mail(Some("<p>open</p>"))).expect("built");
        let both = String::from_utf8(both.formatted()).expect("utf-8");
        assert!(both.contains("multipart/alternative"), "{both}");
        assert!(both.contains("text/html"), "{both}");
    }

    #[test]
    fn a_bad_recipient_is_permanent_and_the_sender_must_parse() {
        let from = parse_from("no-reply@example.com").expect("from");
        let mut bad = mail(None);
        bad.to = "not an address".to_owned();
        assert!(matches!(build(&from, &bad), Err(MailError::Permanent(_))));
        assert!(parse_from("nobody").is_err());
        assert!(parse_from("Name <a@b.example>").is_ok());
    }
}
