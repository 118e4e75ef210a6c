//! `Builder` as a library user meets it: one call gives a migrated database and a signing
//! secret generated once and kept (sealed, with its key file beside the SQLite database,
//! mode 0600), so tokens survive a restart; a PostgreSQL URL without a key is refused with
//! what to set.

use auth_core::http::{Body, Request, RequestHeaders};
use auth_core::{App, Response};
use serde_json::{Value, json};

fn request(method: &str, path: &str, bearer: Option<&str>, body: Option<Value>) -> Request {
    let mut headers = RequestHeaders::default();
    if let Some(token) = bearer {
        headers.authorization = Some(format!("Bearer {token}"));
    }
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    if !bytes.is_empty() {
        headers.content_type = Some("application/json".to_owned());
    }
    Request {
        method: method.to_owned(),
        path: path.to_owned(),
        query: None,
        headers,
        client_ip: Some("127.0.0.1".parse().expect("ip")),
        body: Body::Complete(bytes.into()),
    }
}

fn json_of(response: &Response) -> Value {
    serde_json::from_slice(&response.body).expect("a JSON body")
}

async fn build(db: &std::path::Path) -> App {
    auth_toolkit::Builder::new()
        .database_url(format!("sqlite://{}", db.display()))
        .config(|config| {
            config.argon2.memory_kib = 256;
            config.argon2.iterations = 1;
        })
        .build()
        .await
        .expect("the app builds")
}

#[tokio::test(flavor = "multi_thread")]
async fn one_call_migrates_and_keeps_a_generated_secret_across_restarts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("app.db");
    let app = build(&db).await;
    let registered = app
        .handle(request(
            "POST",
            "/api/v1/auth/register",
            None,
            Some(json!({"email": "ada@example.com", "password": "a long passphrase"})),
        ))
        .await;
    assert_eq!(registered.status, 201, "{}", json_of(&registered));
    let token = json_of(&registered)["token"]["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    drop(app);

    // The key file beside the database, private to its owner.
    let key_file = dir.path().join("app.db.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file)
            .expect("the key file")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // A second start on the same database signs with the same kept secret.
    let again = build(&db).await;
    let me = again
        .handle(request("GET", "/api/v1/auth/me", Some(&token), None))
        .await;
    assert_eq!(me.status, 200, "{}", json_of(&me));
    assert_eq!(json_of(&me)["email"], "ada@example.com");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_given_secret_is_used_and_postgres_needs_a_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = auth_toolkit::Builder::new()
        .database_url(format!(
            "sqlite://{}",
            dir.path().join("given.db").display()
        ))
        .jwt_secret("a".repeat(40))
        .build()
        .await
        .expect("builds");
    drop(app);
    // No key file: nothing was sealed.
    assert!(!dir.path().join("given.db.key").exists());

    // On PostgreSQL (a database of the test's own) without a key-encryption key and without
    // a secret, the build is refused with what to set.
    let Some(admin) = auth_diesel::TestDatabase::admin_url_from_env() else {
        return;
    };
    let database = auth_diesel::TestDatabase::create(&admin, "auth_toolkit").expect("database");
    let err = auth_toolkit::Builder::new()
        .database_url(database.url())
        .build()
        .await
        .expect_err("no key on PostgreSQL");
    assert!(
        format!("{err:#}").contains("AUTH_KEY_ENCRYPTION_KEY"),
        "{err:#}"
    );
}
