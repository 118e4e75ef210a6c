//! The configuration file and the command line as an operator uses them (issue 14, part 3),
//! through the binary: one precedence (flag > environment > file > default) seen in
//! `config show`, secrets masked there, clear errors for a bad file, `serve --config` really
//! serving what the file says, global flags accepted after subcommands, and `user list`.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_auth-server");

/// Runs the binary with `args` and only the environment given.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run auth-server")
}

fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The line of `config show` for `key`.
fn line<'a>(shown: &'a str, key: &str) -> &'a str {
    shown
        .lines()
        .find(|l| l.starts_with(&format!("{key} = ")) || l.starts_with(&format!("# {key} =")))
        .unwrap_or_else(|| panic!("no line for {key} in:\n{shown}"))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the file");
    path.to_str().expect("utf-8").to_owned()
}

#[test]
fn a_flag_beats_the_environment_which_beats_the_file_which_beats_the_default() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "auth.toml",
        "db-pool-size = 3\nshutdown-grace = 4\nissuer = \"from-file\"\n\
         profiles = [\"native\", \"rbac\"]\nrequire-verified-email = true\n",
    );
    let shown = stdout_of(&run(
        &["config", "show", "--config", &file, "--issuer", "from-flag"],
        &[("AUTH_DB_POOL_SIZE", "5"), ("AUTH_ISSUER", "from-env")],
    ));
    assert_eq!(line(&shown, "issuer"), "issuer = \"from-flag\"  # flag");
    assert_eq!(
        line(&shown, "db-pool-size"),
        "db-pool-size = 5  # env AUTH_DB_POOL_SIZE"
    );
    assert_eq!(
        line(&shown, "shutdown-grace"),
        format!("shutdown-grace = 4  # file {file}")
    );
    assert_eq!(
        line(&shown, "profiles"),
        format!("profiles = \"native,rbac\"  # file {file}")
    );
    assert_eq!(
        line(&shown, "require-verified-email"),
        format!("require-verified-email = true  # file {file}")
    );
    assert_eq!(line(&shown, "idle-timeout"), "idle-timeout = 60  # default");

    // The file may also be named by AUTH_CONFIG, and what `config show` prints loads back.
    let again = write(dir.path(), "shown.toml", &shown);
    let reloaded = stdout_of(&run(&["config", "show"], &[("AUTH_CONFIG", &again)]));
    assert_eq!(
        line(&reloaded, "issuer"),
        format!("issuer = \"from-flag\"  # file {again}")
    );
    assert_eq!(
        line(&reloaded, "db-pool-size"),
        format!("db-pool-size = 5  # file {again}")
    );
}

#[test]
fn config_show_masks_secrets_and_passwords_in_urls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = write(
        dir.path(),
        "auth.toml",
        "jwt-secret = \"0123456789abcdef0123456789abcdef-file\"\n\
         database-url = \"postgres://app:hunter2-db@127.0.0.1/auth\"\n\
         smtp-url = \"smtps://mailer:hunter2-smtp@smtp.example.com\"\n",
    );
    let kek = "ab".repeat(32);
    let output = run(
        &["config", "show", "--config", &file],
        &[("AUTH_KEY_ENCRYPTION_KEY", &kek)],
    );
    let shown = stdout_of(&output);
    for secret in ["0123456789abcdef", "hunter2", &kek] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
    assert_eq!(
        line(&shown, "jwt-secret"),
        format!("jwt-secret = \"********\"  # file {file}")
    );
    assert_eq!(
        line(&shown, "key-encryption-key"),
        "key-encryption-key = \"********\"  # env AUTH_KEY_ENCRYPTION_KEY"
    );
    assert!(line(&shown, "database-url").contains("postgres://app:********@127.0.0.1/auth"));
    assert!(line(&shown, "smtp-url").contains("smtps://mailer:********@smtp.example.com"));
}

#[test]
fn a_bad_file_is_one_clear_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = [
        ("databse-url = \"x\"\n", "unknown setting `databse-url`"),
        (
            "require-verified-email = \"yes\"\n",
            "is a switch: true or false",
        ),
        ("db-pool-size = \n", "not valid TOML"),
        ("db-connect-timeout-ms = 1\n", "db-connect-timeout-ms"),
    ];
    for (text, expected) in cases {
        let file = write(dir.path(), "bad.toml", text);
        let output = run(&["config", "show", "--config", &file], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{text} accepted");
        assert!(stderr.contains(expected), "{text}: {stderr}");
    }
    let output = run(
        &["config", "show", "--config", "/nonexistent/auth.toml"],
        &[],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot read the configuration file /nonexistent/auth.toml"),
        "{stderr}"
    );
}

#[test]
fn serve_runs_with_what_the_file_says() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("from-file.db");
    let file = write(
        dir.path(),
        "auth.toml",
        &format!(
            "bind = \"127.0.0.1:0\"\ndatabase-url = \"sqlite://{}\"\nprofiles = [\"native\"]\n\
             argon2-memory-kib = 256\nargon2-iterations = 1\n",
            db.display()
        ),
    );
    let mut child = Command::new(BIN)
        .args(["serve", "--config", &file])
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start serve");
    let stderr = child.stderr.take().expect("stderr");
    let listening = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("listening"));
    let _ = child.kill();
    let _ = child.wait();
    let listening = listening.expect("a listening line");
    assert!(
        listening.contains("profiles=admin=/api/v1/admin,native=/api/v1/auth")
            && !listening.contains("rbac"),
        "{listening}"
    );
    assert!(db.exists(), "the file's database was not created");
}

#[test]
fn user_commands_take_their_flags_after_the_subcommand_and_list_users() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("users.db").display());
    let cheap = [
        ("AUTH_ARGON2_MEMORY_KIB", "256"),
        ("AUTH_ARGON2_ITERATIONS", "1"),
    ];
    for (email, role) in [("ada@example.com", "admin"), ("bob@example.com", "support")] {
        stdout_of(&run(
            &[
                "user",
                "create",
                "--database-url",
                &url,
                "--email",
                email,
                "--password",
                "a long enough passphrase",
                "--role",
                role,
            ],
            &cheap,
        ));
    }
    stdout_of(&run(
        &[
            "user",
            "deactivate",
            "--database-url",
            &url,
            "bob@example.com",
        ],
        &cheap,
    ));
    // The database from a configuration file, the flag after the subcommand.
    let file = write(
        dir.path(),
        "auth.toml",
        &format!("database-url = \"{url}\"\n"),
    );
    let listed = stdout_of(&run(&["user", "list", "--config", &file], &cheap));
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    // Both were created within one second: their order is not asserted.
    let row = |email: &str| -> Vec<&str> {
        lines
            .iter()
            .map(|l| l.split('\t').collect::<Vec<&str>>())
            .find(|fields| fields[0] == email)
            .unwrap_or_else(|| panic!("no {email} in:\n{listed}"))
    };
    let ada = row("ada@example.com");
    assert!(uuid::Uuid::parse_str(ada[1]).is_ok(), "{listed}");
    assert_eq!(&ada[2..4], ["active", "admin"], "{listed}");
    let bob = row("bob@example.com");
    assert_eq!(&bob[2..4], ["inactive", "support"], "{listed}");
    assert_eq!(lines[2], "2 users");
}

#[test]
fn every_secret_setting_is_masked() {
    // Every flag of every command whose name says it holds a secret is in the list that
    // `config show` masks.
    use clap::CommandFactory as _;
    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: auth_server::ServeArgs,
    }
    let mut names: Vec<String> = Serve::command()
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    names.push("password".to_owned()); // `user create --password`
    for name in names {
        let secret = name.contains("secret")
            || name == "password"
            || name.ends_with("-password")
            || name.ends_with("encryption-key");
        if secret {
            assert!(
                auth_server::config_file::SECRET_SETTINGS.contains(&name.as_str()),
                "{name} is not masked"
            );
        }
    }
}
