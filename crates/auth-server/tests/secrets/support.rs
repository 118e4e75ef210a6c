//! What the secrets tests share: fresh databases, servers started in-process or as the
//! binary, a client for the few routes they need, raw reads of the `settings` table, and
//! re-signing a token with a candidate HS256 key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use auth_diesel::TestDatabase;
use auth_server::{Adapter, ServeArgs, ServerHandle, SigningAlgorithm};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use diesel::prelude::*;
use hmac::Mac as _;
use serde_json::{Value, json};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_auth-server");

/// A fresh, empty database; dropping it removes it (the SQLite directory, or the
/// PostgreSQL database).
pub struct Db {
    /// What `--database-url` gets.
    pub url: String,
    /// The SQLite file, `None` on PostgreSQL.
    pub sqlite_path: Option<PathBuf>,
    /// Where the server's file outbox goes: never the working directory.
    pub outbox: PathBuf,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] TestDatabase),
}

impl Db {
    /// `auth.db` in a temporary directory of its own.
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("auth.db");
        Db {
            url: format!("sqlite://{}", path.display()),
            outbox: dir.path().join("mail-outbox"),
            sqlite_path: Some(path),
            _guard: Guard::Sqlite(dir),
        }
    }

    /// A fresh database on the server of `AUTH_TEST_POSTGRES_URL`.
    pub fn postgres() -> Db {
        let admin = TestDatabase::admin_url_from_env()
            .expect("AUTH_TEST_POSTGRES_URL was set at build time but is not set now");
        let database = TestDatabase::create(&admin, "auth_secrets").expect("create database");
        Db {
            url: database.url().to_owned(),
            sqlite_path: None,
            outbox: std::env::temp_dir().join("auth-secrets-test-outbox"),
            _guard: Guard::Postgres(database),
        }
    }

    /// The default key file beside a SQLite database (`auth.db.key`).
    pub fn key_file(&self) -> PathBuf {
        let path = self.sqlite_path.as_ref().expect("a SQLite database");
        let mut name = path.file_name().expect("file name").to_os_string();
        name.push(".key");
        path.with_file_name(name)
    }

    /// The directory holding a SQLite database.
    pub fn dir(&self) -> &Path {
        self.sqlite_path
            .as_deref()
            .and_then(Path::parent)
            .expect("a SQLite database")
    }

    /// Every row of the `settings` table, read with plain SQL.
    pub fn settings_rows(&self) -> Vec<(String, String)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::Text)]
            key: String,
            #[diesel(sql_type = diesel::sql_types::Text)]
            value: String,
        }
        let query = diesel::sql_query("SELECT key, value FROM settings");
        let rows: Vec<Row> = match &self.sqlite_path {
            Some(path) => {
                let mut conn =
                    SqliteConnection::establish(&path.display().to_string()).expect("open sqlite");
                query.load(&mut conn).expect("read settings")
            }
            None => {
                let mut conn = PgConnection::establish(&self.url).expect("open postgres");
                query.load(&mut conn).expect("read settings")
            }
        };
        rows.into_iter().map(|r| (r.key, r.value)).collect()
    }
}

/// 32 random bytes as 64 hex characters (a key-encryption key or an HS256 secret).
pub fn random_hex() -> String {
    (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Decodes 64 hex characters.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Settings for `db`: everything default (as `serve` with no flags) but cheap hashing, a
/// free port, and `kek` as the key-encryption key when given.
pub fn args(db: &Db, kek: Option<&str>, signing: SigningAlgorithm) -> ServeArgs {
    let mut args = ServeArgs::defaults().expect("default settings");
    args.database.database_url = db.url.clone();
    args.database.db_pool_size = 2;
    args.mail.mail_outbox = Some(db.outbox.clone());
    args.bind = "127.0.0.1:0".to_owned();
    args.argon2_memory_kib = 256;
    args.argon2_iterations = 1;
    args.jwt_secret = None;
    args.signing_algorithm = signing;
    args.key_encryption.key_encryption_key = kek.map(Into::into);
    args
}

/// Builds the app from `args` and serves it on a free port.
pub async fn start(args: &ServeArgs) -> ServerHandle {
    let app = auth_server::build_app(args).await.expect("the app builds");
    auth_server::start(Adapter::Axum, app, "127.0.0.1:0")
        .await
        .expect("the server starts")
}

/// Why the app does not build from `args`, in full (as the binary would print it).
pub async fn refusal(args: &ServeArgs) -> String {
    match auth_server::build_app(args).await {
        Ok(_) => panic!("the app built, but should have been refused"),
        Err(err) => format!("{err:#}"),
    }
}

/// Registers a fresh user at `base` (`http://addr`); their access token.
pub async fn register(base: &str) -> String {
    let email = format!("u{:016x}@example.com", rand::random::<u64>());
    let response = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({ "email": email, "password": "a long enough password" }))
        .send()
        .await
        .expect("register");
    assert_eq!(response.status().as_u16(), 201, "register");
    let body: Value = response.json().await.expect("register body");
    body["token"]["access_token"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// The status of `GET /me` with `token`.
pub async fn me(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/api/v1/auth/me"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /me")
        .status()
        .as_u16()
}

/// The `kid`s the server publishes.
pub async fn jwks_kids(base: &str) -> Vec<String> {
    let jwks: Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .expect("GET jwks")
        .json()
        .await
        .expect("jwks body");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

/// The `kid` of a token's header.
pub fn kid_of(token: &str) -> String {
    let header = token.split('.').next().expect("header");
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64")).expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

/// `token`'s header and claims signed again with HMAC-SHA256 under `key`: the genuine token
/// exactly when `key` is the server's secret.
pub fn resign(token: &str, key: &[u8]) -> String {
    let signed = token.rsplit_once('.').expect("a JWT").0;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(signed.as_bytes());
    format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Every key a database value could be taken for: its text, and what it decodes to as hex
/// or base64, whole or in the parts around `:`, `.` and `$`.
pub fn candidate_keys(value: &str) -> Vec<Vec<u8>> {
    let mut keys = vec![value.as_bytes().to_vec()];
    let parts = std::iter::once(value).chain(value.split([':', '.', '$']));
    for part in parts.filter(|p| !p.is_empty()) {
        keys.push(part.as_bytes().to_vec());
        keys.extend(unhex(part));
        keys.extend(URL_SAFE_NO_PAD.decode(part).ok());
        keys.extend(STANDARD.decode(part).ok());
    }
    keys
}

/// Runs the binary with `args` and only the environment given (nothing inherited).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run auth-server")
}

/// Stdout and stderr of a run, as one text.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs the binary and expects it to succeed; its stdout.
pub fn run_ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run(args, env);
    assert!(
        output.status.success(),
        "auth-server {args:?} failed: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs the binary and expects it to fail; what it printed.
pub fn run_err(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = run(args, env);
    assert!(
        !output.status.success(),
        "auth-server {args:?} succeeded but should have failed: {}",
        text(&output)
    );
    text(&output)
}
