//! [`KeyStore`] of the [`MemoryStore`]: settings and signing keys.

use super::MemoryStore;
use crate::store::{KeyStore, Reseal, SigningKeyRecord, StoreError, StoreResult};

impl KeyStore for MemoryStore {
    fn get_or_init_setting(&self, key: &str, value: &str) -> StoreResult<String> {
        let mut state = self.lock()?;
        Ok(state
            .settings
            .entry(key.to_owned())
            .or_insert_with(|| value.to_owned())
            .clone())
    }

    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(self.lock()?.settings.get(key).cloned())
    }

    fn delete_setting(&self, key: &str) -> StoreResult<bool> {
        Ok(self.lock()?.settings.remove(key).is_some())
    }

    fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let state = self.lock()?;
        let mut keys = state.signing_keys.clone();
        keys.sort_unstable_by(|a, b| (b.created_at, &b.kid).cmp(&(a.created_at, &a.kid)));
        Ok(keys)
    }

    fn add_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state.signing_keys.iter().any(|k| k.kid == key.kid) {
            return Err(StoreError::Conflict);
        }
        if key.active {
            for other in &mut state.signing_keys {
                other.active = false;
            }
        }
        state.signing_keys.push(key.clone());
        Ok(())
    }

    fn delete_signing_key(&self, kid: &str) -> StoreResult<bool> {
        let mut state = self.lock()?;
        let before = state.signing_keys.len();
        state.signing_keys.retain(|k| k.kid != kid || k.active);
        Ok(state.signing_keys.len() < before)
    }

    fn reseal(&self, reseal: &Reseal) -> StoreResult<bool> {
        let mut state = self.lock()?;
        // Check everything before writing anything.
        let keys_match = state.signing_keys.len() == reseal.signing_keys.len()
            && state.signing_keys.iter().all(|key| {
                reseal
                    .signing_keys
                    .iter()
                    .any(|new| new.kid == key.kid && new.old_private_key == key.private_key)
            });
        let settings_match = reseal
            .settings
            .iter()
            .all(|new| state.settings.get(&new.key) == Some(&new.old_value));
        if !keys_match || !settings_match {
            return Ok(false);
        }
        for key in &mut state.signing_keys {
            if let Some(new) = reseal.signing_keys.iter().find(|new| new.kid == key.kid) {
                key.private_key = new.new_private_key.clone();
            }
        }
        for new in &reseal.settings {
            state
                .settings
                .insert(new.key.clone(), new.new_value.clone());
        }
        Ok(true)
    }
}
