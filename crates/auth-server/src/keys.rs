//! `auth-server keys ...`: rotate, list, retire the EdDSA signing keys, and re-seal every
//! stored secret under a new key-encryption key. The rules are the core's
//! (`auth_core::token`); this only resolves the keys and reports.

use std::sync::Arc;

use auth_core::clock::{Clock as _, SystemClock};
use auth_core::store::KeyStore as _;
use auth_diesel::DieselStore;

use crate::settings::{DatabaseArgs, KeyEncryptionArgs, KeysCommand, NewKeyEncryptionArgs};
use auth_toolkit::kek::{KekSource, WhenMissing};

/// Runs one `keys` command against `database`, printing what it did (never a secret).
pub async fn run_keys_command(
    database: DatabaseArgs,
    key_encryption: KeyEncryptionArgs,
    command: KeysCommand,
) -> anyhow::Result<()> {
    let store = {
        let database = database.clone();
        tokio::task::spawn_blocking(move || crate::connect(&database)).await??
    };
    match command {
        KeysCommand::Rotate => rotate(&database, &key_encryption, store).await,
        KeysCommand::List => list(store).await,
        KeysCommand::Retire { kid } => retire(store, kid).await,
        KeysCommand::Rewrap { new } => rewrap(&database, &key_encryption, &new, store).await,
    }
}

async fn rotate(
    database: &DatabaseArgs,
    key_encryption: &KeyEncryptionArgs,
    store: Arc<DieselStore>,
) -> anyhow::Result<()> {
    let kek = key_encryption.resolve(
        database,
        store.backend(),
        WhenMissing::Create,
        "the new signing key",
    )?;
    let now = SystemClock::new().now();
    let key = auth_core::token::generate_signing_key(&kek.key, now, true)
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let kid = key.kid.clone();
    tokio::task::spawn_blocking(move || {
        store.add_signing_key(&key)?;
        announce_keys(&store);
        anyhow::Ok(())
    })
    .await??;
    println!(
        "active signing key is now {kid}; running servers pick it up within a minute \
         (on PostgreSQL at once)"
    );
    Ok(())
}

async fn list(store: Arc<DieselStore>) -> anyhow::Result<()> {
    let keys = tokio::task::spawn_blocking(move || store.signing_keys()).await??;
    for key in keys {
        let state = if key.active { "active" } else { "verifying" };
        println!(
            "{}\t{}\t{}\t{}",
            key.kid, key.algorithm, key.created_at, state
        );
    }
    Ok(())
}

async fn retire(store: Arc<DieselStore>, kid: String) -> anyhow::Result<()> {
    let retired = kid.clone();
    tokio::task::spawn_blocking(move || {
        auth_core::token::retire_signing_key(store.as_ref(), &retired)?;
        announce_keys(&store);
        anyhow::Ok(())
    })
    .await??;
    println!(
        "retired {kid}: running servers stop accepting its tokens and stop publishing it \
         within a minute (on PostgreSQL at once)"
    );
    Ok(())
}

/// Tells running servers (on PostgreSQL) to reload their keys now rather than within a
/// minute. Blocks. A failure only delays that, so it is reported, not fatal.
fn announce_keys(store: &DieselStore) {
    if let Err(err) = store.publish_now(auth_core::broadcast::Notice::Keys) {
        eprintln!("could not tell running servers (they reload within a minute): {err}");
    }
}

async fn rewrap(
    database: &DatabaseArgs,
    key_encryption: &KeyEncryptionArgs,
    new: &NewKeyEncryptionArgs,
    store: Arc<DieselStore>,
) -> anyhow::Result<()> {
    // The current key must exist already: a fresh one would open nothing.
    let old = key_encryption.resolve(
        database,
        store.backend(),
        WhenMissing::Refuse,
        "opening the stored secrets",
    )?;
    let new = new.key()?;
    let done = tokio::task::spawn_blocking(move || {
        auth_core::token::rewrap(store.as_ref(), &old.key, &new)
    })
    .await??;
    println!(
        "re-sealed {} signing key(s) and {} secret(s) under the new key-encryption key; \
         start every instance with the new key, the old one opens nothing now",
        done.signing_keys, done.secrets
    );
    if let KekSource::BesideDatabase(path) = &old.source {
        println!(
            "{} still holds the old key: replace it with the new one (mode 0600), or \
             configure the new key and remove the file",
            path.display()
        );
    }
    Ok(())
}
