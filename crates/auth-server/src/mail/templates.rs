//! `--mail-templates DIR`: a deployment's own wording for some or all mails.

use std::path::Path;

use anyhow::Context as _;
use auth_core::mail::{MailKind, Template, Templates};

/// The largest template file read: a template is a page of text, not a document.
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;
/// What each part of a template is read from: `<kind>.<extension>`.
const EXTENSIONS: [&str; 3] = ["subject", "txt", "html"];

/// The built-in templates with the files of `dir` laid over them: for each kind,
/// `<name>.subject`, `<name>.txt` and `<name>.html` (names from [`MailKind::name`]), each
/// optional, each replacing that part only (a kind with a `.txt` but no `.subject` keeps
/// the built-in subject). A file that exists but cannot be read is an error naming it;
/// files matching no kind are named in a warning (a misspelt name would otherwise be
/// silently ignored).
pub(crate) fn load(dir: &Path) -> anyhow::Result<Templates> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the mail templates directory {}", dir.display()))?;
    let mut templates = Templates::default();
    for kind in MailKind::ALL {
        let part = |extension: &str| read_part(&dir.join(format!("{}.{extension}", kind.name())));
        let (subject, text, html) = (part("subject")?, part("txt")?, part("html")?);
        if subject.is_none() && text.is_none() && html.is_none() {
            continue;
        }
        let built_in = templates.get(kind);
        templates.set(
            kind,
            Template {
                // The subject is one line; files usually end with a newline.
                subject: subject.map_or(built_in.subject, |s| s.trim().to_owned()),
                text: text.unwrap_or(built_in.text),
                html: html.or(built_in.html),
            },
        );
    }
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_template_name(&name) && !name.starts_with('.') {
            tracing::warn!(
                file = %entry.path().display(),
                "not a mail template: templates are named <kind>.subject, <kind>.txt or \
                 <kind>.html, the kinds being {}",
                MailKind::ALL.map(MailKind::name).join(", ")
            );
        }
    }
    Ok(templates)
}

/// Whether `name` is one of the files [`load`] reads.
fn is_template_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, extension)| {
        EXTENSIONS.contains(&extension) && MailKind::ALL.iter().any(|kind| kind.name() == stem)
    })
}

/// The contents of `path`, `None` when it does not exist.
fn read_part(path: &Path) -> anyhow::Result<Option<String>> {
    let shown = path.display();
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err).with_context(|| format!("cannot read mail template {shown}")),
    };
    if !metadata.is_file() {
        anyhow::bail!("mail template {shown} is not a file");
    }
    if metadata.len() > MAX_TEMPLATE_BYTES {
        anyhow::bail!(
            "mail template {shown} is larger than {} KiB",
            MAX_TEMPLATE_BYTES / 1024
        );
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read mail template {shown} (UTF-8 text)"))?;
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use auth_core::mail::Placeholders;

    fn render(templates: &Templates, kind: MailKind) -> auth_core::mail::Mail {
        templates.render(
            kind,
            "a@example.com",
            Placeholders {
                link: "https://app/x?token=t",
                email: "a@example.com",
                expires_in: std::time::Duration::from_secs(15 * 60),
                ..Placeholders::default()
            },
        )
    }

    #[test]
    fn files_replace_the_parts_they_name_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text);
        write("magic_link.txt", "Sign in: {link} (for {expires_in})\n").expect("write");
        write("magic_link.html", "<a href=\"{link}\">in</a>").expect("write");
        write("password_reset.subject", "Reset for {email}\n").expect("write");
        write("notes.md", "ignored, with a warning").expect("write");
        let templates = load(dir.path()).expect("loaded");
        let defaults = Templates::default();

        let magic = render(&templates, MailKind::MagicLink);
        assert_eq!(
            magic.subject,
            render(&defaults, MailKind::MagicLink).subject
        );
        assert_eq!(
            magic.text,
            "Sign in: https://app/x?token=t (for 15 minutes)\n"
        );
        assert_eq!(
            magic.html.as_deref(),
            Some("<a href=\"https://app/x?token=t\">in</a>")
        );
        let reset = render(&templates, MailKind::PasswordReset);
        assert_eq!(reset.subject, "Reset for a@example.com");
        assert_eq!(reset.text, render(&defaults, MailKind::PasswordReset).text);
        assert_eq!(reset.html, None);
        assert_eq!(
            render(&templates, MailKind::VerifyEmail),
            render(&defaults, MailKind::VerifyEmail)
        );
    }

    #[test]
    fn an_unreadable_directory_or_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("nowhere");
        let err = format!("{:#}", load(&missing).expect_err("missing dir"));
        assert!(err.contains("nowhere"), "{err}");
        std::fs::create_dir(dir.path().join("verify_email.txt")).expect("a directory");
        let err = format!("{:#}", load(dir.path()).expect_err("not a file"));
        assert!(err.contains("verify_email.txt"), "{err}");
        std::fs::remove_dir(dir.path().join("verify_email.txt")).expect("remove");
        std::fs::write(dir.path().join("email_change.html"), [0xff, 0xfe]).expect("write");
        let err = format!("{:#}", load(dir.path()).expect_err("not UTF-8"));
        assert!(err.contains("email_change.html"), "{err}");
    }

    #[test]
    fn template_names_are_the_kinds_with_the_three_extensions() {
        assert!(is_template_name("verify_email.subject"));
        assert!(is_template_name("password_changed.html"));
        assert!(!is_template_name("password-reset.txt"));
        assert!(!is_template_name("magic_link.text"));
        assert!(!is_template_name("README"));
    }
}
