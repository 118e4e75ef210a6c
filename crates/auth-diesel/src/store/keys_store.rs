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
}
