//! [`FileOutbox`]: mail written to a directory as `.eml` files, for development and for
//! deployments without a mail server yet. The files carry sign-in links, so the directory
//! is private to the server's user.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use auth_core::mail::{Mail, MailError, Mailer};
use lettre::message::Mailbox;

/// Writes each message to `<dir>/<unix-millis>-<uuid>.eml` (RFC 5322, as an SMTP server
/// would receive it), atomically: readers never see half a message.
#[derive(Debug)]
pub struct FileOutbox {
    dir: PathBuf,
    from: Mailbox,
}

impl FileOutbox {
    /// An outbox writing to `dir` from `from`. The directory is created (mode 0700 on unix)
    /// at the first message, so a server that sends none leaves nothing behind; a path that
    /// exists and is not a directory is refused now rather than at the first mail.
    pub fn new(dir: PathBuf, from: Mailbox) -> anyhow::Result<Self> {
        if let Ok(metadata) = std::fs::metadata(&dir)
            && !metadata.is_dir()
        {
            anyhow::bail!("the mail outbox {} is not a directory", dir.display());
        }
        Ok(Self { dir, from })
    }

    /// The directory it writes to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn write(&self, bytes: &[u8]) -> std::io::Result<PathBuf> {
        create_private_dir(&self.dir)?;
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_millis());
        let id = uuid::Uuid::new_v4();
        let path = self.dir.join(format!("{millis}-{id}.eml"));
        // Dot-named and not `.eml`, so nothing reading the outbox takes it for a message.
        let temporary = self.dir.join(format!(".{id}.tmp"));
        let written =
            write_new_private(&temporary, bytes).and_then(|()| std::fs::rename(&temporary, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written.map(|()| path)
    }
}

impl Mailer for FileOutbox {
    fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = super::message::build(&self.from, mail)?;
        // A full disk or a permission fixed later: worth another try.
        self.write(&message.formatted()).map(drop).map_err(|err| {
            MailError::Transient(format!(
                "cannot write to the mail outbox {}: {err}",
                self.dir.display()
            ))
        })
    }
}

/// Creates `dir` and its missing parents, readable by the owner only on unix.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Writes `bytes` to the new file `path` (mode 0600 on unix) and flushes it to disk, so the
/// rename that follows publishes a whole message even across a crash.
fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Mail {
        Mail {
            to: "user@example.com".to_owned(),
            subject: "Your sign-in link".to_owned(),
            text: "open https://app.example/m?token=abc123\n".to_owned(),
            html: Some("<a href=\"https://app.example/m?token=abc123\">sign in</a>".to_owned()),
        }
    }

    fn from() -> Mailbox {
        super::super::message::parse_from("auth-server <no-reply@localhost>").expect("from")
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("list")
            .map(|entry| {
                entry
                    .expect("entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }

    #[test]
    fn each_message_is_one_parseable_eml_file_with_both_parts() {
        let scratch = tempfile::tempdir().expect("temp dir");
        let dir = scratch.path().join("nested").join("mail-outbox");
        let outbox = FileOutbox::new(dir.clone(), from()).expect("outbox");
        assert!(!dir.exists(), "created before the first message");
        outbox.send(&mail()).expect("sent");
        outbox.send(&mail()).expect("sent again");
        let names = names(&dir);
        assert_eq!(names.len(), 2, "{names:?}");
        for name in &names {
            let (millis, rest) = name.split_once('-').expect("millis-uuid");
            assert!(millis.parse::<u128>().is_ok(), "{name}");
            let id = rest.strip_suffix(".eml").expect(".eml");
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{name}");
        }
        let raw = std::fs::read(dir.join(&names[0])).expect("read");
        let message = mail_parser::MessageParser::default()
            .parse(&raw)
            .expect("parseable");
        assert_eq!(message.subject(), Some("Your sign-in link"));
        let text = message.body_text(0).expect("text");
        assert!(
            text.contains("https://app.example/m?token=abc123"),
            "{text}"
        );
        let html = message
            .html_bodies()
            .find(|part| part.is_text_html())
            .and_then(|part| part.text_contents())
            .expect("an HTML part");
        assert!(
            html.contains("href=\"https://app.example/m?token=abc123\""),
            "{html}"
        );
        let sender = message.from().and_then(|from| from.first());
        assert_eq!(sender.and_then(|s| s.address()), Some("no-reply@localhost"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |path: &Path| std::fs::metadata(path).expect("stat").permissions().mode();
            assert_eq!(mode(&dir) & 0o777, 0o700);
            assert_eq!(mode(&dir.join(&names[0])) & 0o777, 0o600);
        }
    }

    #[test]
    fn a_file_in_the_way_is_refused_at_start_and_failures_are_transient() {
        let scratch = tempfile::tempdir().expect("temp dir");
        let file = scratch.path().join("mail-outbox");
        std::fs::write(&file, "x").expect("write");
        assert!(FileOutbox::new(file.clone(), from()).is_err());
        // A directory that cannot be made (its parent is a file): retried later.
        let outbox = FileOutbox::new(file.join("inner"), from()).expect("outbox");
        match outbox.send(&mail()) {
            Err(MailError::Transient(text)) => {
                assert!(!text.contains("abc123"), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }
}
