//! The mail settings: flags, the mailer they choose, the outbox's default place.

use clap::Parser as _;

use super::*;

#[test]
fn page_urls_are_absolute_http_without_credentials_or_fragment() {
    assert_eq!(
        parse_page_url(" https://app.example/reset?x=1 ").as_deref(),
        Ok("https://app.example/reset?x=1")
    );
    assert!(parse_page_url("http://127.0.0.1:5173/verify").is_ok());
    for bad in [
        "/reset",
        "app.example/reset",
        "ftp://app.example/r",
        "https://u:p@app.example/r",
        "https://app.example/#/reset",
        "javascript:alert(1)",
    ] {
        assert!(parse_page_url(bad).is_err(), "{bad}");
    }
}

fn args(smtp_url: Option<&str>, outbox: Option<PathBuf>) -> MailArgs {
    MailArgs {
        smtp_url: smtp_url.map(Secret::from),
        mail_outbox: outbox,
        mail_from: message::parse_from("a@example.com").expect("from"),
        mail_templates: None,
        verify_email_url: None,
        reset_password_url: None,
        magic_link_url: None,
        verify_email_ttl: 1,
        reset_password_ttl: 1,
        magic_link_ttl: 1,
        require_verified_email: false,
        rate_mail_address: Limit::per(1, 1),
        rate_mail_ip: Limit::per(1, 1),
        mail_queue_limit: 1,
    }
}

#[test]
fn smtp_wins_and_never_shows_its_password() {
    let chosen = args(
        Some("smtp://user:pw-hunter2@mail.example:587?tls=required"),
        None,
    )
    .mailer("sqlite://auth.db")
    .expect("smtp");
    assert_eq!(
        chosen.description,
        "SMTP smtp://mail.example:587 (STARTTLS required, with credentials)"
    );
    assert!(!format!("{chosen:?}").contains("pw-hunter2"));
    let err = args(Some("smtq://user:pw-hunter2@mail.example"), None)
        .mailer("sqlite://auth.db")
        .expect_err("bad scheme");
    assert!(!format!("{err:#}").contains("pw-hunter2"), "{err:#}");
}

#[test]
fn without_smtp_the_outbox_is_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = format!("sqlite://{}", dir.path().join("auth.db").display());
    let chosen = args(None, None).mailer(&database).expect("outbox");
    let beside = dir.path().join(OUTBOX_DIR_NAME);
    assert_eq!(chosen.description, format!("outbox {}", beside.display()));
    let own = dir.path().join("elsewhere");
    let chosen = args(None, Some(own.clone()))
        .mailer(&database)
        .expect("outbox");
    assert_eq!(chosen.description, format!("outbox {}", own.display()));
}

#[test]
fn the_default_outbox_sits_beside_a_sqlite_file() {
    assert_eq!(
        default_outbox("sqlite:///srv/auth/auth.db"),
        PathBuf::from("/srv/auth/mail-outbox")
    );
    assert_eq!(
        default_outbox("sqlite://auth.db"),
        PathBuf::from("mail-outbox")
    );
    assert_eq!(
        default_outbox("sqlite://data/auth.db"),
        PathBuf::from("data/mail-outbox")
    );
    assert_eq!(
        default_outbox("postgres://u:p@db/auth"),
        PathBuf::from("mail-outbox")
    );
    assert_eq!(
        default_outbox("sqlite://:memory:"),
        PathBuf::from("mail-outbox")
    );
}

#[derive(clap::Parser)]
struct Only {
    #[command(flatten)]
    mail: MailArgs,
}

fn parse(flags: &[&str]) -> Result<MailArgs, clap::Error> {
    let argv = std::iter::once("auth-server").chain(flags.iter().copied());
    Only::try_parse_from(argv).map(|only| only.mail)
}

#[test]
fn verified_email_is_required_only_when_said_so() {
    let required = |flags: &[&str]| parse(flags).map(|a| a.require_verified_email);
    // The environment is not the tests' to change; without the variable set:
    if std::env::var_os("AUTH_REQUIRE_VERIFIED_EMAIL").is_none() {
        assert!(!required(&[]).unwrap());
    }
    assert!(required(&["--require-verified-email"]).unwrap());
    assert!(required(&["--require-verified-email", "true"]).unwrap());
    assert!(!required(&["--require-verified-email", "false"]).unwrap());
    assert!(required(&["--require-verified-email=on"]).unwrap());
    assert!(required(&["--require-verified-email", "maybe"]).is_err());
}

#[test]
fn the_mail_flags_become_the_core_settings() {
    let args = parse(&[
        "--verify-email-url",
        "https://app.example/verify",
        "--reset-password-url=https://app.example/reset",
        "--magic-link-url=http://127.0.0.1:5173/magic",
        "--verify-email-ttl=60",
        "--reset-password-ttl=61",
        "--magic-link-ttl=62",
        "--rate-mail-address=2/60",
        "--rate-mail-ip=off",
        "--mail-from=Example <no-reply@example.com>",
    ])
    .expect("parsed");
    let mail = args.settings().expect("settings");
    assert_eq!(
        mail.verify_email_url.as_deref(),
        Some("https://app.example/verify")
    );
    assert_eq!(
        mail.reset_password_url.as_deref(),
        Some("https://app.example/reset")
    );
    assert_eq!(
        mail.magic_link_url.as_deref(),
        Some("http://127.0.0.1:5173/magic")
    );
    assert_eq!(mail.verify_email_ttl, Duration::from_secs(60));
    assert_eq!(mail.reset_password_ttl, Duration::from_secs(61));
    assert_eq!(mail.magic_link_ttl, Duration::from_secs(62));
    assert_eq!(mail.per_address, Limit::per(2, 60));
    assert!(!mail.per_ip.enabled());
    assert_eq!(args.mail_from.email.to_string(), "no-reply@example.com");
    for bad in [
        &["--verify-email-url", "/verify"][..],
        &["--magic-link-ttl", "0"],
        &["--mail-from", "nobody"],
        &["--rate-mail-ip", "5"],
        &["--smtp-url", "smtp://h", "--mail-outbox", "/tmp/x"],
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn the_defaults_are_the_cores() {
    let Ok(args) = parse(&[]) else {
        return; // an AUTH_* variable of the environment does not parse: not ours
    };
    let mail = args.settings().expect("settings");
    let core = auth_core::config::MailSettings::default();
    if std::env::vars().all(|(name, _)| !name.starts_with("AUTH_")) {
        assert_eq!(mail.verify_email_ttl, core.verify_email_ttl);
        assert_eq!(mail.reset_password_ttl, core.reset_password_ttl);
        assert_eq!(mail.magic_link_ttl, core.magic_link_ttl);
        assert_eq!(mail.per_address, core.per_address);
        assert_eq!(mail.per_ip, core.per_ip);
        assert_eq!(mail.require_verified_email, core.require_verified_email);
        assert_eq!(mail.verify_email_url, None);
    }
}
