//! Mail the core sends (issue 13): what a message is, what delivers it, and what it says.
//!
//! The core knows no SMTP crate: a deployment hands it a [`Mailer`] (the server's SMTP
//! client, or its file outbox). Requests never wait on delivery: they queue the message in
//! the database (sealed, see [`crate::store::QueuedMail`]), and the core's mail thread hands
//! it to the mailer, retrying with backoff.

use std::collections::HashMap;

/// One message, ready to send.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body (always present).
    pub text: String,
    /// An HTML alternative, when the template has one.
    pub html: Option<String>,
}

impl std::fmt::Debug for Mail {
    // The bodies carry links with tokens: they stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// Why a delivery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// Worth another try later (server unreachable, 4xx reply, timeout).
    #[error("temporary mail failure: {0}")]
    Transient(String),
    /// Will never succeed (5xx reply, invalid address): the message is dropped.
    #[error("permanent mail failure: {0}")]
    Permanent(String),
}

/// Delivers messages. `send` blocks (network, disk); the core calls it only on its own mail
/// thread. Error texts are logged, so they must not contain the message's bodies.
pub trait Mailer: Send + Sync + 'static {
    /// Delivers one message, from the configured sender address.
    fn send(&self, mail: &Mail) -> Result<(), MailError>;
}

/// The kinds of mail the core sends; each has its own template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailKind {
    /// "Confirm your address": a verification link.
    VerifyEmail,
    /// "Reset your password": a reset link.
    PasswordReset,
    /// "Sign in": a magic link.
    MagicLink,
    /// To the new address of an email change: a confirmation link.
    EmailChange,
    /// To the old address once an email change is confirmed: a notice.
    EmailChanged,
    /// After a password change or reset: a notice.
    PasswordChanged,
    /// A second factor was added (`{factor}` says which): a notice.
    FactorAdded,
    /// A second factor was removed (`{factor}` says which): a notice.
    FactorRemoved,
}

impl MailKind {
    /// Every kind.
    pub const ALL: [MailKind; 8] = [
        MailKind::VerifyEmail,
        MailKind::PasswordReset,
        MailKind::MagicLink,
        MailKind::EmailChange,
        MailKind::EmailChanged,
        MailKind::PasswordChanged,
        MailKind::FactorAdded,
        MailKind::FactorRemoved,
    ];

    /// The template's file stem, e.g. `password_reset` (`password_reset.subject`,
    /// `password_reset.txt`, `password_reset.html` in a templates directory).
    pub fn name(self) -> &'static str {
        match self {
            MailKind::VerifyEmail => "verify_email",
            MailKind::PasswordReset => "password_reset",
            MailKind::MagicLink => "magic_link",
            MailKind::EmailChange => "email_change",
            MailKind::EmailChanged => "email_changed",
            MailKind::PasswordChanged => "password_changed",
            MailKind::FactorAdded => "factor_added",
            MailKind::FactorRemoved => "factor_removed",
        }
    }
}

/// One kind's template: `{link}`, `{email}`, `{new_email}`, `{factor}` (a second factor, e.g.
/// "an authenticator app (TOTP)") and `{expires_in}` (how long the link works, e.g.
/// "30 minutes", "24 hours") are replaced when a message is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub text: String,
    /// An HTML body, if any.
    pub html: Option<String>,
}

/// What fills a template's placeholders.
#[derive(Clone, Copy, Default)]
pub struct Placeholders<'a> {
    /// The link with its token (empty for notices).
    pub link: &'a str,
    /// The account's address.
    pub email: &'a str,
    /// The new address of an email change.
    pub new_email: &'a str,
    /// How long the link works.
    pub expires_in: std::time::Duration,
    /// The second factor a notice is about.
    pub factor: &'a str,
}

impl std::fmt::Debug for Placeholders<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Placeholders")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// The templates of every kind: the built-in ones, each replaceable.
#[derive(Debug, Clone)]
pub struct Templates {
    by_kind: HashMap<MailKind, Template>,
}

impl Default for Templates {
    fn default() -> Self {
        let by_kind = MailKind::ALL
            .into_iter()
            .map(|kind| (kind, built_in(kind)))
            .collect();
        Self { by_kind }
    }
}

impl Templates {
    /// Replaces one kind's template.
    pub fn set(&mut self, kind: MailKind, template: Template) {
        self.by_kind.insert(kind, template);
    }

    /// The template of `kind` as it stands (the built-in one unless replaced), so that a
    /// deployment can replace a part of it only (its text, keeping the subject, say).
    pub fn get(&self, kind: MailKind) -> Template {
        self.by_kind
            .get(&kind)
            .cloned()
            .unwrap_or_else(|| built_in(kind))
    }

    /// The message of `kind` to `to`, placeholders filled. HTML placeholders are escaped.
    pub fn render(&self, kind: MailKind, to: &str, values: Placeholders<'_>) -> Mail {
        let template = self
            .by_kind
            .get(&kind)
            .cloned()
            .unwrap_or_else(|| built_in(kind));
        let fill = |text: &str, escape: bool| {
            let value = |v: &str| if escape { html_escape(v) } else { v.to_owned() };
            text.replace("{link}", &value(values.link))
                .replace("{email}", &value(values.email))
                .replace("{new_email}", &value(values.new_email))
                .replace("{factor}", &value(values.factor))
                .replace("{expires_in}", &lifetime_phrase(values.expires_in))
        };
        Mail {
            to: to.to_owned(),
            subject: fill(&template.subject, false).replace(['\r', '\n'], " "),
            text: fill(&template.text, false),
            html: template.html.as_deref().map(|html| fill(html, true)),
        }
    }
}

/// A lifetime in the largest whole unit that states it exactly (24 h reads "1 day", not
/// "1440 minutes"); past a minute, odd seconds round down, so the mail never promises more
/// time than the link has.
fn lifetime_phrase(lifetime: std::time::Duration) -> String {
    let secs = lifetime.as_secs();
    let (count, unit) = match secs / 60 {
        0 => (secs, "second"),
        m if m % (24 * 60) == 0 => (m / (24 * 60), "day"),
        m if m % 60 == 0 => (m / 60, "hour"),
        m => (m, "minute"),
    };
    let plural = if count == 1 { "" } else { "s" };
    format!("{count} {unit}{plural}")
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The built-in template of a kind: plain, short, and saying what to do if the mail was not
/// expected.
fn built_in(kind: MailKind) -> Template {
    let (subject, text) = match kind {
        MailKind::VerifyEmail => (
            "Confirm your email address",
            "Hello,\n\nplease confirm that {email} is your address by opening this link \
             (it works once, for {expires_in}):\n\n{link}\n\nIf you did not create an \
             account, ignore this message.\n",
        ),
        MailKind::PasswordReset => (
            "Reset your password",
            "Hello,\n\nsomeone asked to reset the password of the account {email}. To choose \
             a new password, open this link (it works once, for {expires_in}):\n\n\
             {link}\n\nIf it was not you, ignore this message: your password stays as it is.\n",
        ),
        MailKind::MagicLink => (
            "Your sign-in link",
            "Hello,\n\nopen this link to sign in as {email} (it works once, for {expires_in}):\n\n\
             {link}\n\nIf you did not ask for it, ignore this message.\n",
        ),
        MailKind::EmailChange => (
            "Confirm your new email address",
            "Hello,\n\nthe account {email} asked to use {new_email} from now on. To confirm, \
             open this link (it works once, for {expires_in}):\n\n{link}\n\nIf you \
             did not ask for it, ignore this message: nothing changes.\n",
        ),
        MailKind::EmailChanged => (
            "Your email address was changed",
            "Hello,\n\nthe address of your account was changed from {email} to {new_email}. \
             If you did not do this, contact support at once.\n",
        ),
        MailKind::PasswordChanged => (
            "Your password was changed",
            "Hello,\n\nthe password of your account {email} was just changed. If you did not \
             do this, reset your password at once and contact support.\n",
        ),
        MailKind::FactorAdded => (
            "A second factor was added to your account",
            "Hello,\n\n{factor} was just added to your account {email} as a second factor. \
             If you did not do this, reset your password at once and contact support.\n",
        ),
        MailKind::FactorRemoved => (
            "A second factor was removed from your account",
            "Hello,\n\n{factor} was just removed from your account {email}. If you did not \
             do this, reset your password at once and contact support.\n",
        ),
    };
    Template {
        subject: subject.to_owned(),
        text: text.to_owned(),
        html: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_in_their_largest_exact_unit() {
        let phrase = |secs| lifetime_phrase(std::time::Duration::from_secs(secs));
        assert_eq!(phrase(24 * 3600), "1 day");
        assert_eq!(phrase(48 * 3600), "2 days");
        assert_eq!(phrase(3600), "1 hour");
        assert_eq!(phrase(90 * 60), "90 minutes");
        assert_eq!(phrase(15 * 60), "15 minutes");
        assert_eq!(phrase(2), "2 seconds");
        assert_eq!(phrase(1), "1 second");
        assert_eq!(phrase(61), "1 minute");
    }

    #[test]
    fn templates_fill_and_escape() {
        let mut templates = Templates::default();
        let mail = templates.render(
            MailKind::PasswordReset,
            "a@example.com",
            Placeholders {
                link: "https://app/reset?token=abc",
                email: "a@example.com",
                expires_in: std::time::Duration::from_secs(30 * 60),
                ..Placeholders::default()
            },
        );
        assert!(mail.text.contains("https://app/reset?token=abc"));
        assert!(mail.text.contains("for 30 minutes"), "{}", mail.text);
        assert_eq!(mail.subject, "Reset your password");
        assert!(!format!("{mail:?}").contains("token=abc"));
        templates.set(
            MailKind::MagicLink,
            Template {
                subject: "Hi {email}\r\nBcc: x".into(),
                text: "{link}".into(),
                html: Some("<a href=\"{link}\">{email}</a>".into()),
            },
        );
        let mail = templates.render(
            MailKind::MagicLink,
            "b@example.com",
            Placeholders {
                link: "https://app/m?token=t&x=\"y\"",
                email: "<b>",
                ..Placeholders::default()
            },
        );
        assert_eq!(mail.subject, "Hi <b>  Bcc: x");
        assert_eq!(
            mail.html.as_deref(),
            Some("<a href=\"https://app/m?token=t&amp;x=&quot;y&quot;\">&lt;b&gt;</a>")
        );
    }
}
