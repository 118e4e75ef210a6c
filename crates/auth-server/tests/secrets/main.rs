//! Secrets at rest and out of sight (rules 8 and 14 of the security issue), against the real
//! server: a copy of the database alone cannot mint a token; restarts and upgrades keep the
//! secret; `--help` never shows a value from the environment; `keys retire` and
//! `keys rewrap` do what they say. SQLite always; PostgreSQL when `AUTH_TEST_POSTGRES_URL`
//! is set (otherwise those tests show as ignored).

#[path = "../no_flags/mod.rs"]
mod no_flags;
mod support;

use auth_server::SigningAlgorithm::{Eddsa, Hs256};
use no_flags::serve_with_no_flags;
use support::*;

// ---------------------------------------------------------------------------------------
// Rule 8: the database alone cannot mint a token.

/// Every key found in the database is refused as an HS256 key: a token re-signed with it is
/// not the genuine one and is refused.
async fn database_values_cannot_sign(db: &Db, base: &str, token: &str) {
    let rows = db.settings_rows();
    for (key, value) in &rows {
        for candidate in candidate_keys(value) {
            let forged = resign(token, &candidate);
            assert!(
                forged != token,
                "the value of setting `{key}` signs the server's tokens"
            );
            assert_eq!(me(base, &forged).await, 401, "forged with setting `{key}`");
        }
    }
}

/// Nothing in the database contains `secret`, as text, hex or raw bytes.
fn no_row_contains(db: &Db, secret: &[u8]) {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    for (key, value) in db.settings_rows() {
        let text = String::from_utf8_lossy(secret);
        assert!(
            !value.contains(text.as_ref()),
            "setting `{key}` holds the secret"
        );
        assert!(
            !value.contains(&hex),
            "setting `{key}` holds the secret in hex"
        );
        for candidate in candidate_keys(&value) {
            assert!(
                !candidate.windows(secret.len()).any(|w| w == secret),
                "setting `{key}` decodes to the secret"
            );
        }
    }
}

/// The secret the server signs with, opened with the key-encryption key (which is not in
/// the database): it signs the server's tokens, and no row holds it in a usable form.
fn the_secret_opens_only_with_the_kek(db: &Db, kek: &[u8; 32], token: &str) {
    use auth_core::token::{SEALED_JWT_SECRET_SETTING, open_setting};
    let rows = db.settings_rows();
    let (_, sealed) = rows
        .iter()
        .find(|(key, _)| key == SEALED_JWT_SECRET_SETTING)
        .expect("the sealed secret");
    let secret = open_setting(kek, SEALED_JWT_SECRET_SETTING, sealed).expect("opens");
    assert_eq!(
        resign(token, &secret),
        token,
        "the secret the server signs with"
    );
    no_row_contains(db, &secret);
}

/// 64 hex characters as a key-encryption key.
fn kek_bytes(hex: &str) -> [u8; 32] {
    unhex(hex)
        .and_then(|k| k.try_into().ok())
        .expect("64 hex characters")
}

#[tokio::test]
async fn sqlite_default_start_up_keeps_the_secret_out_of_the_database() {
    let db = Db::sqlite();
    let server = serve_with_no_flags(
        db.dir(),
        &[
            ("AUTH_ARGON2_MEMORY_KIB", "256"),
            ("AUTH_ARGON2_ITERATIONS", "1"),
        ],
    );
    let token = register(&server.base).await;
    assert_eq!(me(&server.base, &token).await, 200);
    database_values_cannot_sign(&db, &server.base, &token).await;
    // The key-encryption key is in the file beside the database, not in it.
    let kek = std::fs::read_to_string(db.key_file()).expect("the key file");
    the_secret_opens_only_with_the_kek(&db, &kek_bytes(&kek), &token);
}

#[tokio::test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
)]
async fn postgres_generated_secret_stays_out_of_the_database() {
    let db = Db::postgres();
    let kek = random_hex();
    let server = start(&args(&db, Some(&kek), Hs256)).await;
    let base = server.base_url();
    let token = register(&base).await;
    database_values_cannot_sign(&db, &base, &token).await;
    the_secret_opens_only_with_the_kek(&db, &kek_bytes(&kek), &token);
    server.stop().await.expect("stop");
}

/// A restart on the same database (and the same key-encryption key) keeps the secret: the
/// token of the first run still verifies on the second, which signs new ones too.
async fn restart_keeps_the_secret(db: &Db, kek: Option<&str>) {
    let first = start(&args(db, kek, Hs256)).await;
    let token = register(&first.base_url()).await;
    first.stop().await.expect("stop");
    let second = start(&args(db, kek, Hs256)).await;
    let base = second.base_url();
    assert_eq!(me(&base, &token).await, 200, "a token of the first run");
    let fresh = register(&base).await;
    assert_eq!(me(&base, &fresh).await, 200);
    second.stop().await.expect("stop");
}

#[tokio::test]
async fn sqlite_restart_keeps_the_secret() {
    restart_keeps_the_secret(&Db::sqlite(), None).await;
}

#[tokio::test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
)]
async fn postgres_restart_keeps_the_secret() {
    restart_keeps_the_secret(&Db::postgres(), Some(&random_hex())).await;
}

/// A database of an older release kept its generated secret in plain text in the
/// `jwt_secret` row. The first start seals it: its tokens still verify, and the plain text
/// is gone from the database.
async fn plain_secret_is_sealed_on_first_start(db: &Db, kek: Option<&str>) {
    use auth_core::store::KeyStore as _;
    let plain = random_hex();
    // What the older release did: the row's text is the secret.
    let mut old = args(db, kek, Hs256);
    old.jwt_secret = Some(plain.as_str().into());
    let server = start(&old).await;
    let token = register(&server.base_url()).await;
    server.stop().await.expect("stop");
    let store = auth_diesel::DieselStore::connect(&db.url, 1).expect("connect");
    assert_eq!(
        store
            .get_or_init_setting("jwt_secret", &plain)
            .expect("row"),
        plain
    );
    drop(store);

    let server = start(&args(db, kek, Hs256)).await;
    let base = server.base_url();
    assert_eq!(me(&base, &token).await, 200, "a token of the older release");
    no_row_contains(db, plain.as_bytes());
    database_values_cannot_sign(db, &base, &token).await;
    server.stop().await.expect("stop");
    // And it stays so: the next start finds the sealed secret.
    let server = start(&args(db, kek, Hs256)).await;
    assert_eq!(
        me(&server.base_url(), &token).await,
        200,
        "after another restart"
    );
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn sqlite_plain_secret_of_an_older_release_is_sealed() {
    plain_secret_is_sealed_on_first_start(&Db::sqlite(), None).await;
}

#[tokio::test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
)]
async fn postgres_plain_secret_of_an_older_release_is_sealed() {
    plain_secret_is_sealed_on_first_start(&Db::postgres(), Some(&random_hex())).await;
}

#[tokio::test]
async fn sqlite_key_file_is_private_and_never_replaced() {
    use std::os::unix::fs::PermissionsExt as _;
    let db = Db::sqlite();
    let server = start(&args(&db, None, Hs256)).await;
    server.stop().await.expect("stop");
    let key_file = db.key_file();
    let mode = std::fs::metadata(&key_file)
        .expect("key file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode of {}", key_file.display());
    let key = std::fs::read_to_string(&key_file).expect("read key file");
    assert!(
        unhex(&key).is_some_and(|k| k.len() == 32),
        "64 hex characters"
    );
    let server = start(&args(&db, None, Hs256)).await;
    server.stop().await.expect("stop");
    assert_eq!(std::fs::read_to_string(&key_file).expect("read"), key);

    // Readable by others: refused, naming the file, not its contents.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let message = refusal(&args(&db, None, Hs256)).await;
    assert!(
        message.contains(&key_file.display().to_string()),
        "{message}"
    );
    assert!(message.contains("0600"), "{message}");
    assert!(!message.contains(key.trim()), "{message}");

    // Not a key: refused too.
    std::fs::write(&key_file, "not a key\n").expect("write");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let message = refusal(&args(&db, None, Hs256)).await;
    assert!(
        message.contains(&key_file.display().to_string()),
        "{message}"
    );

    // Gone while the database holds a secret sealed under it: refused, not replaced by a
    // new key that would open nothing.
    std::fs::remove_file(&key_file).expect("remove");
    let message = refusal(&args(&db, None, Hs256)).await;
    assert!(
        message.contains(&key_file.display().to_string()),
        "{message}"
    );
    assert!(message.contains("restore"), "{message}");
    assert!(!key_file.exists(), "a new key file was created");
}

#[tokio::test]
async fn sqlite_wrong_key_encryption_key_fails_clearly() {
    let db = Db::sqlite();
    let kek = random_hex();
    let server = start(&args(&db, Some(&kek), Hs256)).await;
    server.stop().await.expect("stop");
    let other = random_hex();
    let message = refusal(&args(&db, Some(&other), Hs256)).await;
    assert!(message.contains("key-encryption key"), "{message}");
    assert!(
        !message.contains(&kek) && !message.contains(&other),
        "{message}"
    );
}

#[tokio::test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
)]
async fn postgres_without_a_key_encryption_key_is_refused() {
    let db = Db::postgres();
    let message = refusal(&args(&db, None, Hs256)).await;
    assert!(message.contains("AUTH_KEY_ENCRYPTION_KEY"), "{message}");
    // An explicit secret needs no key-encryption key.
    let mut explicit = args(&db, None, Hs256);
    explicit.jwt_secret = Some(random_hex().into());
    start(&explicit).await.stop().await.expect("stop");
    // Nor do the user commands, which sign nothing.
    run_ok(
        &["user", "create", "--email", "op@example.com"],
        &[
            ("AUTH_DATABASE_URL", &db.url),
            ("AUTH_USER_PASSWORD", "a long enough password"),
        ],
    );
}

#[test]
fn sqlite_user_commands_need_no_secret() {
    let db = Db::sqlite();
    run_ok(
        &["user", "create", "--email", "op@example.com"],
        &[
            ("AUTH_DATABASE_URL", &db.url),
            ("AUTH_USER_PASSWORD", "a long enough password"),
            ("AUTH_ARGON2_MEMORY_KIB", "256"),
        ],
    );
    assert!(db.settings_rows().is_empty(), "{:?}", db.settings_rows());
    assert!(!db.key_file().exists());
}

// ---------------------------------------------------------------------------------------
// Rule 14: secrets stay out of sight.

#[test]
fn help_never_prints_values_from_the_environment() {
    let secrets = [
        ("AUTH_DATABASE_URL", "postgres://u:s3cretpw@127.0.0.1/x"),
        ("AUTH_JWT_SECRET", "jwt-secret-value-0123456789abcdef0123"),
        ("AUTH_KEY_ENCRYPTION_KEY", &"ab".repeat(32)),
        ("AUTH_KEY_ENCRYPTION_KEY_FILE", "/run/secrets/kek-file-path"),
        ("AUTH_NEW_KEY_ENCRYPTION_KEY", &"cd".repeat(32)),
        (
            "AUTH_NEW_KEY_ENCRYPTION_KEY_FILE",
            "/run/secrets/new-kek-path",
        ),
        ("AUTH_USER_PASSWORD", "user-password-value"),
        ("AUTH_BIND", "10.9.8.7:6543"),
        ("AUTH_TRUSTED_PROXIES", "10.1.2.3"),
    ];
    let commands: &[&[&str]] = &[
        &["--help"],
        &["serve", "--help"],
        &["user", "--help"],
        &["user", "create", "--help"],
        &["keys", "--help"],
        &["keys", "rotate", "--help"],
        &["keys", "rewrap", "--help"],
        &["keys", "retire", "--help"],
    ];
    for command in commands {
        let output = run(command, &secrets);
        let help = text(&output);
        assert!(output.status.success(), "{command:?}: {help}");
        for (name, value) in &secrets {
            assert!(
                !help.contains(value),
                "`auth-server {}` prints the value of {name}",
                command.join(" ")
            );
        }
    }
}

/// `keys retire KID`: the active key is refused (rotate first), an unknown kid is an error,
/// and a retired key stops verifying: its tokens are refused and the JWKS drops it.
async fn retired_keys_stop_verifying(db: &Db) {
    let kek = random_hex();
    let env = [
        ("AUTH_DATABASE_URL", db.url.as_str()),
        ("AUTH_KEY_ENCRYPTION_KEY", kek.as_str()),
    ];
    let server = start(&args(db, Some(&kek), Eddsa)).await;
    let token = register(&server.base_url()).await;
    server.stop().await.expect("stop");
    let old_kid = kid_of(&token);

    let rotated = run_ok(&["keys", "rotate"], &env);
    let listed = run_ok(&["keys", "list"], &env);
    let new_kid = listed
        .lines()
        .find(|line| line.ends_with("active"))
        .and_then(|line| line.split('\t').next())
        .expect("an active key")
        .to_owned();
    assert!(rotated.contains(&new_kid), "{rotated}");

    let refused = run_err(&["keys", "retire", &new_kid], &env);
    assert!(
        refused.contains("active") && refused.contains("rotate"),
        "{refused}"
    );
    let unknown = run_err(&["keys", "retire", "ed-0000000000000000"], &env);
    assert!(unknown.contains("ed-0000000000000000"), "{unknown}");
    assert!(unknown.contains("no signing key"), "{unknown}");

    run_ok(&["keys", "retire", &old_kid], &env);
    let listed = run_ok(&["keys", "list"], &env);
    assert!(!listed.contains(&old_kid), "{listed}");

    let server = start(&args(db, Some(&kek), Eddsa)).await;
    let base = server.base_url();
    assert_eq!(me(&base, &token).await, 401, "a token of the retired key");
    assert_eq!(jwks_kids(&base).await, vec![new_kid.clone()]);
    let fresh = register(&base).await;
    assert_eq!(kid_of(&fresh), new_kid);
    assert_eq!(me(&base, &fresh).await, 200);
    server.stop().await.expect("stop");
}

#[tokio::test]
async fn sqlite_retired_keys_stop_verifying() {
    retired_keys_stop_verifying(&Db::sqlite()).await;
}

#[tokio::test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
)]
async fn postgres_retired_keys_stop_verifying() {
    retired_keys_stop_verifying(&Db::postgres()).await;
}

/// One HS256 and one EdDSA token issued under `kek`.
async fn tokens_under(db: &Db, kek: &str) -> (String, String) {
    let server = start(&args(db, Some(kek), Hs256)).await;
    let hs256 = register(&server.base_url()).await;
    server.stop().await.expect("stop");
    let server = start(&args(db, Some(kek), Eddsa)).await;
    let eddsa = register(&server.base_url()).await;
    server.stop().await.expect("stop");
    (hs256, eddsa)
}

/// Both servers start under `kek`, verify the old tokens and sign new ones.
async fn both_serve_under(db: &Db, kek: &str, (hs256, eddsa): &(String, String)) {
    for (signing, token) in [(Hs256, hs256), (Eddsa, eddsa)] {
        let server = start(&args(db, Some(kek), signing)).await;
        let base = server.base_url();
        assert_eq!(
            me(&base, token).await,
            200,
            "{signing:?}: a token of before"
        );
        let fresh = register(&base).await;
        assert_eq!(me(&base, &fresh).await, 200, "{signing:?}: a new token");
        server.stop().await.expect("stop");
    }
}

/// Neither server starts under `kek`, and the message says why without a key in it.
async fn neither_starts_under(db: &Db, kek: &str, keys: &[&str]) {
    for signing in [Hs256, Eddsa] {
        let message = refusal(&args(db, Some(kek), signing)).await;
        assert!(
            message.contains("key-encryption key"),
            "{signing:?}: {message}"
        );
        for key in keys {
            assert!(!message.contains(key), "{signing:?}: {message}");
        }
    }
}

/// `keys rewrap` re-seals the HS256 secret and every private signing key under a new
/// key-encryption key (by environment, or from a file): afterwards the servers start with
/// the new key, verify the old tokens and sign new ones, and refuse to start with the old.
async fn rewrap_moves_every_secret_to_the_new_key(db: &Db) {
    let (old, new) = (random_hex(), random_hex());
    let tokens = tokens_under(db, &old).await;
    let rewrapped = run_ok(
        &["keys", "rewrap"],
        &[
            ("AUTH_DATABASE_URL", &db.url),
            ("AUTH_KEY_ENCRYPTION_KEY", &old),
            ("AUTH_NEW_KEY_ENCRYPTION_KEY", &new),
        ],
    );
    assert!(
        !rewrapped.contains(&old) && !rewrapped.contains(&new),
        "{rewrapped}"
    );
    neither_starts_under(db, &old, &[&old, &new]).await;
    both_serve_under(db, &new, &tokens).await;

    // Again, the new key from a file this time.
    let dir = tempfile::tempdir().expect("temp dir");
    let newer = random_hex();
    let file = dir.path().join("newer.key");
    std::fs::write(&file, format!("{newer}\n")).expect("write key file");
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let file = file.display().to_string();
    run_ok(
        &["keys", "rewrap", "--new-key-encryption-key-file", &file],
        &[
            ("AUTH_DATABASE_URL", &db.url),
            ("AUTH_KEY_ENCRYPTION_KEY", &new),
        ],
    );
    neither_starts_under(db, &new, &[&new, &newer]).await;
    both_serve_under(db, &newer, &tokens).await;

    // A wrong current key changes nothing.
    let wrong = run_err(
        &["keys", "rewrap"],
        &[
            ("AUTH_DATABASE_URL", &db.url),
            ("AUTH_KEY_ENCRYPTION_KEY", &old),
            ("AUTH_NEW_KEY_ENCRYPTION_KEY", &random_hex()),
        ],
    );
    assert!(wrong.contains("key-encryption key"), "{wrong}");
    both_serve_under(db, &newer, &tokens).await;
}

#[tokio::test]
async fn sqlite_rewrap_moves_every_secret_to_the_new_key() {
    rewrap_moves_every_secret_to_the_new_key(&Db::sqlite()).await;
}

#[tokio::test]
#[cfg_attr(
    not(auth_test_postgres),
    ignore = "set AUTH_TEST_POSTGRES_URL to run against PostgreSQL"
)]
async fn postgres_rewrap_moves_every_secret_to_the_new_key() {
    rewrap_moves_every_secret_to_the_new_key(&Db::postgres()).await;
}
