//! Loading and reloading the EdDSA signing keys from the store.

use std::sync::atomic::Ordering;

use super::{Context, StartError};
use crate::config::{Config, Signing};
use crate::store::Store;
use crate::token::{TokenSigner, generate_signing_key};

/// How often keys are reloaded when nothing forces it, so a rotation by another instance or
/// the command line is picked up within this many seconds.
const RELOAD_EVERY_SECS: i64 = 60;
/// How often an unknown `kid` may force a reload, at most.
const FORCED_RELOAD_EVERY_SECS: i64 = 5;

/// With EdDSA, loads the stored keys into the signer, creating the first key on a fresh
/// database. Runs once, before the store threads exist.
pub(super) fn load_at_start(
    store: &dyn Store,
    signer: &TokenSigner,
    config: &Config,
    now: i64,
) -> Result<(), StartError> {
    let Signing::EdDsa { key_encryption_key } = &config.signing else {
        return Ok(());
    };
    let mut keys = store.signing_keys().map_err(StartError::Store)?;
    if keys.is_empty() {
        let first =
            generate_signing_key(key_encryption_key, now, true).map_err(|_| StartError::Hashing)?;
        store.add_signing_key(&first).map_err(StartError::Store)?;
        // Another instance may have raced us; whatever is stored now is the truth.
        keys = store.signing_keys().map_err(StartError::Store)?;
    }
    signer.load_keys(&keys)?;
    Ok(())
}

/// Reloads the EdDSA keys from the store: when `forced` (an unknown `kid`), at most every
/// 5 s; otherwise when the last load is over 60 s old. Failures are logged; the old keys stay.
pub(super) async fn reload(ctx: &Context, forced: bool) {
    if !ctx.signer.uses_stored_keys() {
        return;
    }
    let now = ctx.now();
    let last = ctx.keys_loaded_at.load(Ordering::Relaxed);
    let every = if forced {
        FORCED_RELOAD_EVERY_SECS
    } else {
        RELOAD_EVERY_SECS
    };
    if now - last < every
        || ctx
            .keys_loaded_at
            .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    match ctx.store(|store| store.signing_keys()).await {
        Ok(keys) => {
            if let Err(err) = ctx.signer.load_keys(&keys) {
                tracing::error!(error = %err, "reloading signing keys failed");
            }
        }
        Err(err) => tracing::warn!(error = %err, "reloading signing keys failed"),
    }
}
