//! [`auth_core::store::KeyStore`] on Diesel: settings and signing keys.

use super::*;

impl KeyStore for DieselStore {
    fn get_or_init_setting(&self, key: &str, value: &str) -> StoreResult<String> {
        with_conn!(self, conn => {
            // One statement, so two racing instances agree: the loser inserts nothing.
            diesel::insert_into(settings::table)
                .values((settings::key.eq(key), settings::value.eq(value)))
                .on_conflict_do_nothing()
                .execute(conn)?;
            let stored = settings::table
                .filter(settings::key.eq(key))
                .select(settings::value)
                .first::<String>(conn)?;
            Ok(stored)
        })
        .map_err(Fail::into_store)
    }

    fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        with_conn!(self, conn => {
            Ok(settings::table
                .filter(settings::key.eq(key))
                .select(settings::value)
                .first::<String>(conn)
                .optional()?)
        })
        .map_err(Fail::into_store)
    }

    fn delete_setting(&self, key: &str) -> StoreResult<bool> {
        with_conn!(self, conn => {
            Ok(diesel::delete(settings::table.filter(settings::key.eq(key))).execute(conn)? > 0)
        })
        .map_err(Fail::into_store)
    }

    fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        with_conn!(self, conn => {
            Ok(signing_keys::table
                .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
                .select(SigningKeyRow::as_select())
                .load::<SigningKeyRow>(conn)?
                .into_iter()
                .map(SigningKeyRow::into_record)
                .collect())
        })
        .map_err(Fail::into_store)
    }

    fn add_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        let row = NewSigningKeyRow::from_record(key);
        write_tx!(self, conn => {
            // Two instances adding active keys at once must not leave both active: on
            // PostgreSQL the second deactivation would not see the first one's new key.
            conn.lock_for_write(SIGNING_KEYS_LOCK_CLASS, "")?;
            if row.active {
                diesel::update(signing_keys::table.filter(signing_keys::active.eq(true)))
                    .set(signing_keys::active.eq(false))
                    .execute(conn)?;
            }
            diesel::insert_into(signing_keys::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn delete_signing_key(&self, kid: &str) -> StoreResult<bool> {
        with_conn!(self, conn => {
            // One statement: the active key is never deleted, whatever happened since the
            // caller looked.
            let deleted = diesel::delete(
                signing_keys::table
                    .filter(signing_keys::kid.eq(kid))
                    .filter(signing_keys::active.eq(false)),
            )
            .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn reseal(&self, reseal: &Reseal) -> StoreResult<bool> {
        conditional(write_tx!(self, conn => {
            // Serialized with `add_signing_key`: no key can appear, sealed under the old
            // key-encryption key, between the count and the commit.
            conn.lock_for_write(SIGNING_KEYS_LOCK_CLASS, "")?;
            let stored: i64 = signing_keys::table.count().get_result(conn)?;
            if usize::try_from(stored).ok() != Some(reseal.signing_keys.len()) {
                return Err(Fail::Abort);
            }
            for key in &reseal.signing_keys {
                let updated = diesel::update(
                    signing_keys::table
                        .filter(signing_keys::kid.eq(&key.kid))
                        .filter(signing_keys::private_key.eq(&key.old_private_key)),
                )
                .set(signing_keys::private_key.eq(&key.new_private_key))
                .execute(conn)?;
                if updated != 1 {
                    return Err(Fail::Abort);
                }
            }
            for setting in &reseal.settings {
                let updated = diesel::update(
                    settings::table
                        .filter(settings::key.eq(&setting.key))
                        .filter(settings::value.eq(&setting.old_value)),
                )
                .set(settings::value.eq(&setting.new_value))
                .execute(conn)?;
                if updated != 1 {
                    return Err(Fail::Abort);
                }
            }
            Ok(true)
        }))
    }
}
