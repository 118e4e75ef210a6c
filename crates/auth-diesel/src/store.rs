//! The [`Store`] implementation. Each query body is written once and expanded for both
//! connection types by [`with_conn!`] (autocommit) and [`write_tx!`] (one write
//! transaction: `BEGIN IMMEDIATE` on SQLite, an ordinary transaction on PostgreSQL) or
//! [`read_tx!`] (several reads that see one snapshot).

use std::collections::HashMap;

use auth_core::store::{
    AccessRotation, FailureCounts, FailureQuery, FailureSeries, NewPersonalToken, NewRefreshToken,
    NewUser, OrganizationRecord, PersonalTokenRecord, RefreshRecord, RefreshRotation, RoleRecord,
    SessionRecord, SigningKeyRecord, Store, StoreError, StoreResult, TokenHash, UserPatch,
    UserQuery, UserRecord,
};
use diesel::connection::SimpleConnection;
use diesel::dsl::{count_star, min};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, R2D2Connection};
use diesel::sql_types::{Integer, Text};
use diesel::sqlite::SqliteConnection;
use uuid::Uuid;

use crate::error::Fail;
use crate::models::{
    NewLoginFailureRow, NewPersonalTokenRow, NewRateLimitHitRow, NewRefreshRow, NewRoleRow,
    NewSigningKeyRow, NewUserRow, OrganizationRow, PersonalTokenRow, RefreshRow, RoleRow,
    SessionRow, SigningKeyRow, UserChanges, UserRoleRow, UserRow, id_text, parse_id,
};
use crate::schema::{
    login_failures, organizations, personal_tokens, rate_limit_hits, refresh_tokens, roles,
    sessions, settings, signing_keys, user_roles, users,
};
use crate::{DieselStore, Pools};

/// How stale `last_used_at` may get before a read refreshes it.
const TOUCH_INTERVAL: i64 = 60;

/// How many user ids one `IN (...)` role lookup of [`Store::list_users`] binds at most
/// (SQLite limits the number of bound parameters per statement).
const ROLE_LOOKUP_CHUNK: usize = 500;

/// First key of the PostgreSQL advisory locks serializing rate-limit hits of one
/// bucket/key (the second key is a hash of the two).
const RATE_LIMIT_LOCK_CLASS: i32 = 0x726c_6869; // "rlhi"

/// First key of the PostgreSQL advisory lock serializing signing-key changes.
const SIGNING_KEYS_LOCK_CLASS: i32 = 0x736b_6579; // "skey"

/// Serializes conflicting writers for the rest of the current write transaction (see
/// [`write_tx!`]), across connections and instances.
trait WriteLock {
    /// Blocks until no other transaction holds the lock `(class, name)`.
    fn lock_for_write(&mut self, class: i32, name: &str) -> Result<(), Fail>;
}

impl WriteLock for SqliteConnection {
    /// Nothing to do: `BEGIN IMMEDIATE` already holds the database's single write lock.
    fn lock_for_write(&mut self, _class: i32, _name: &str) -> Result<(), Fail> {
        Ok(())
    }
}

impl WriteLock for PgConnection {
    /// A transaction-scoped advisory lock, released at commit or rollback. Unlike row locks
    /// it also covers rows that do not exist yet, which a READ COMMITTED count-then-insert
    /// needs.
    fn lock_for_write(&mut self, class: i32, name: &str) -> Result<(), Fail> {
        diesel::sql_query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind::<Integer, _>(class)
            .bind::<Text, _>(name)
            .execute(self)?;
        Ok(())
    }
}

/// Converts a count from the database (never negative) to `u64`.
fn count_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Runs `f` on a connection of `pool`.
fn run<C, T>(
    pool: &r2d2::Pool<ConnectionManager<C>>,
    f: impl FnOnce(&mut C) -> Result<T, Fail>,
) -> Result<T, Fail>
where
    C: R2D2Connection + Send + 'static,
{
    let mut pooled = pool.get()?;
    f(&mut *pooled)
}

/// `with_conn!(store, conn => { ... })`: runs the block, which evaluates to
/// `Result<T, Fail>`, with `conn` bound to a pooled `&mut SqliteConnection` or
/// `&mut PgConnection`. Statements run in autocommit mode.
macro_rules! with_conn {
    ($store:expr, $conn:ident => $body:block) => {
        match &$store.pools {
            Pools::Sqlite(pool) => run(pool, |$conn: &mut SqliteConnection| -> Result<_, Fail> {
                $body
            }),
            Pools::Postgres(pool) => run(pool, |$conn: &mut PgConnection| -> Result<_, Fail> {
                $body
            }),
        }
    };
}

/// `write_tx!(store, conn => { ... })`: like [`with_conn!`] but inside one write
/// transaction. SQLite takes the write lock up front (`BEGIN IMMEDIATE`) so that two
/// writers never deadlock upgrading read locks. Returning `Err` (e.g. [`Fail::Abort`])
/// rolls everything back.
macro_rules! write_tx {
    ($store:expr, $conn:ident => $body:block) => {
        match &$store.pools {
            Pools::Sqlite(pool) => run(pool, |c: &mut SqliteConnection| {
                c.immediate_transaction(|$conn: &mut SqliteConnection| -> Result<_, Fail> { $body })
            }),
            Pools::Postgres(pool) => run(pool, |c: &mut PgConnection| {
                c.transaction(|$conn: &mut PgConnection| -> Result<_, Fail> { $body })
            }),
        }
    };
}

/// `read_tx!(store, conn => { ... })`: like [`with_conn!`] but inside one read-only
/// transaction, so that several queries see the same snapshot (a deferred transaction on
/// SQLite, `REPEATABLE READ, READ ONLY` on PostgreSQL).
macro_rules! read_tx {
    ($store:expr, $conn:ident => $body:block) => {
        match &$store.pools {
            Pools::Sqlite(pool) => run(pool, |c: &mut SqliteConnection| {
                c.transaction(|$conn: &mut SqliteConnection| -> Result<_, Fail> { $body })
            }),
            Pools::Postgres(pool) => run(pool, |c: &mut PgConnection| {
                c.build_transaction()
                    .read_only()
                    .repeatable_read()
                    .run(|$conn: &mut PgConnection| -> Result<_, Fail> { $body })
            }),
        }
    };
}

/// `user_record!(conn, row)`: loads the roles of a [`UserRow`] and builds the record.
macro_rules! user_record {
    ($conn:ident, $row:expr) => {{
        let row: UserRow = $row;
        let mut roles = user_roles::table
            .inner_join(roles::table)
            .filter(user_roles::user_id.eq(row.id.as_str()))
            .select(roles::name)
            .load::<String>($conn)?;
        // Sorted here rather than by the database, whose collation may not be byte order.
        roles.sort_unstable();
        row.into_record(roles)
    }};
}

/// Folds the rows of a `credential ⋈ user ⟕ user_roles ⟕ roles` query (one per role, or one
/// with no role) into the credential, the user and their role names, sorted.
fn with_role_names<T>(
    rows: Vec<(T, UserRow, Option<String>)>,
) -> Option<(T, UserRow, Vec<String>)> {
    let mut names = Vec::with_capacity(rows.len());
    let mut first = None;
    for (credential, user, name) in rows {
        names.extend(name);
        if first.is_none() {
            first = Some((credential, user));
        }
    }
    // Sorted here rather than by the database, whose collation may not be byte order.
    names.sort_unstable();
    first.map(|(credential, user)| (credential, user, names))
}

/// `assign_roles!(conn, user_id, names, now)`: attaches the roles `names` (an iterator of
/// `&str`) to the user, creating unknown names (without a description) on first use.
/// Roles the user already has are left as they are.
macro_rules! assign_roles {
    ($conn:ident, $user_id:expr, $names:expr, $now:expr) => {{
        let user_id: &str = $user_id;
        for name in $names {
            let name: &str = name;
            diesel::insert_into(roles::table)
                .values(&NewRoleRow {
                    id: id_text(Uuid::new_v4()),
                    name,
                    description: None,
                    created_at: $now,
                })
                .on_conflict(roles::name)
                .do_nothing()
                .execute($conn)?;
            let role_id = roles::table
                .filter(roles::name.eq(name))
                .select(roles::id)
                .first::<String>($conn)?;
            diesel::insert_into(user_roles::table)
                .values(&UserRoleRow {
                    user_id: user_id.to_owned(),
                    role_id,
                })
                .on_conflict_do_nothing()
                .execute($conn)?;
        }
    }};
}

/// `find_user!(conn, predicate)`: the user matching `predicate`, with roles, if any.
macro_rules! find_user {
    ($conn:ident, $predicate:expr) => {{
        let row = users::table
            .filter($predicate)
            .select(UserRow::as_select())
            .get_result::<UserRow>($conn)
            .optional()?;
        match row {
            None => Ok(None),
            Some(row) => user_record!($conn, row).map(Some),
        }
    }};
}

/// The distinct role names of `names`, sorted.
fn role_set(names: &[String]) -> Vec<&str> {
    let mut set: Vec<&str> = names.iter().map(String::as_str).collect();
    set.sort_unstable();
    set.dedup();
    set
}

/// Wall-clock Unix seconds (only used where the trait passes no `now`).
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Maps the result of a conditional write: `Abort` means "nothing written" (false).
fn conditional(result: Result<bool, Fail>) -> StoreResult<bool> {
    match result {
        Err(Fail::Abort) => Ok(false),
        other => other.map_err(Fail::into_store),
    }
}

fn same_session(expected: Uuid, refresh: &NewRefreshToken) -> StoreResult<()> {
    if refresh.session_id == expected {
        Ok(())
    } else {
        Err(StoreError::Other(
            "refresh token does not belong to the session".to_owned(),
        ))
    }
}

impl Store for DieselStore {
    fn ping(&self) -> StoreResult<()> {
        with_conn!(self, conn => {
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

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

    fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord> {
        let role_names = role_set(&user.roles);
        let row = NewUserRow {
            id: id_text(user.id),
            email: &user.email,
            email_key: &user.email_key,
            password_hash: &user.password_hash,
            full_name: user.full_name.as_deref(),
            phone: None,
            is_active: user.is_active,
            organization_id: user.organization_id.map(id_text),
            attributes: "{}",
            created_at: user.now,
            updated_at: user.now,
        };
        write_tx!(self, conn => {
            diesel::insert_into(users::table).values(&row).execute(conn)?;
            assign_roles!(conn, row.id.as_str(), role_names.iter().copied(), user.now);
            let created = find_user!(conn, users::id.eq(row.id.as_str()))?;
            created.ok_or_else(|| Fail::other("inserted user not found"))
        })
        .map_err(Fail::into_store)
    }

    fn find_user_by_email(&self, email_key: &str) -> StoreResult<Option<UserRecord>> {
        with_conn!(self, conn => { find_user!(conn, users::email_key.eq(email_key)) })
            .map_err(Fail::into_store)
    }

    fn find_user(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        let id = id_text(id);
        with_conn!(self, conn => { find_user!(conn, users::id.eq(id.as_str())) })
            .map_err(Fail::into_store)
    }

    fn set_user_active(&self, id: Uuid, active: bool, now: i64) -> StoreResult<bool> {
        let id = id_text(id);
        write_tx!(self, conn => {
            let updated = diesel::update(users::table.filter(users::id.eq(id.as_str())))
                .set((users::is_active.eq(active), users::updated_at.eq(now)))
                .execute(conn)?;
            if updated == 0 {
                return Ok(false);
            }
            if !active {
                // Refresh tokens go with their sessions (ON DELETE CASCADE).
                diesel::delete(sessions::table.filter(sessions::user_id.eq(id.as_str())))
                    .execute(conn)?;
                diesel::delete(
                    personal_tokens::table.filter(personal_tokens::user_id.eq(id.as_str())),
                )
                .execute(conn)?;
            }
            Ok(true)
        })
        .map_err(Fail::into_store)
    }

    fn change_password(
        &self,
        user_id: Uuid,
        password_hash: &str,
        keep_session: Option<Uuid>,
        now: i64,
    ) -> StoreResult<()> {
        let user_id = id_text(user_id);
        let keep = keep_session.map(id_text);
        write_tx!(self, conn => {
            diesel::update(users::table.filter(users::id.eq(user_id.as_str())))
                .set((
                    users::password_hash.eq(password_hash),
                    users::updated_at.eq(now),
                ))
                .execute(conn)?;
            let of_user = sessions::table.filter(sessions::user_id.eq(user_id.as_str()));
            match &keep {
                Some(keep) => {
                    diesel::delete(of_user.filter(sessions::id.ne(keep.as_str()))).execute(conn)?
                }
                None => diesel::delete(of_user).execute(conn)?,
            };
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn create_session(
        &self,
        session: &SessionRecord,
        refresh: &NewRefreshToken,
    ) -> StoreResult<()> {
        same_session(session.id, refresh)?;
        let row = SessionRow::from_record(session);
        let token = NewRefreshRow::from_new(refresh);
        write_tx!(self, conn => {
            // Housekeeping: the user's sessions that have expired by now are dead weight.
            diesel::delete(
                sessions::table
                    .filter(sessions::user_id.eq(row.user_id.as_str()))
                    .filter(sessions::expires_at.le(row.created_at)),
            )
            .execute(conn)?;
            diesel::insert_into(sessions::table).values(&row).execute(conn)?;
            diesel::insert_into(refresh_tokens::table).values(&token).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn session_with_user(
        &self,
        session_id: Uuid,
        now: i64,
    ) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        let id = id_text(session_id);
        let stale = now.saturating_sub(TOUCH_INTERVAL);
        with_conn!(self, conn => {
            // Session, user and the user's role names in one statement (a row per role).
            let rows = sessions::table
                .inner_join(users::table.left_join(user_roles::table.left_join(roles::table)))
                .filter(sessions::id.eq(id.as_str()))
                .filter(sessions::expires_at.gt(now))
                .select((SessionRow::as_select(), UserRow::as_select(), roles::name.nullable()))
                .load::<(SessionRow, UserRow, Option<String>)>(conn)?;
            let Some((mut session, user, role_names)) = with_role_names(rows) else {
                return Ok(None);
            };
            if session.last_used_at < stale {
                let touched = diesel::update(
                    sessions::table
                        .filter(sessions::id.eq(id.as_str()))
                        .filter(sessions::last_used_at.lt(stale)),
                )
                .set(sessions::last_used_at.eq(now))
                .execute(conn);
                match touched {
                    Ok(n) if n > 0 => session.last_used_at = now,
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "could not record session use"),
                }
            }
            Ok(Some((session.into_record()?, user.into_record(role_names)?)))
        })
        .map_err(Fail::into_store)
    }

    fn list_sessions(&self, user_id: Uuid, now: i64) -> StoreResult<Vec<SessionRecord>> {
        let user_id = id_text(user_id);
        with_conn!(self, conn => {
            sessions::table
                .filter(sessions::user_id.eq(user_id.as_str()))
                .filter(sessions::expires_at.gt(now))
                .order((sessions::created_at.asc(), sessions::id.asc()))
                .select(SessionRow::as_select())
                .load::<SessionRow>(conn)?
                .into_iter()
                .map(SessionRow::into_record)
                .collect()
        })
        .map_err(Fail::into_store)
    }

    fn delete_session(&self, user_id: Uuid, session_id: Uuid) -> StoreResult<bool> {
        let user_id = id_text(user_id);
        let session_id = id_text(session_id);
        with_conn!(self, conn => {
            let deleted = diesel::delete(
                sessions::table
                    .filter(sessions::id.eq(session_id.as_str()))
                    .filter(sessions::user_id.eq(user_id.as_str())),
            )
            .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn find_refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshRecord>> {
        let hash = hash.to_hex();
        with_conn!(self, conn => {
            let found = refresh_tokens::table
                .inner_join(sessions::table)
                .filter(refresh_tokens::token_hash.eq(hash.as_str()))
                .select((RefreshRow::as_select(), sessions::user_id, sessions::expires_at))
                .get_result::<(RefreshRow, String, i64)>(conn)
                .optional()?;
            let Some((token, user_id, session_expires_at)) = found else {
                return Ok(None);
            };
            let successor_used = match &token.successor_hash {
                None => false,
                Some(next) => refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(next.as_str()))
                    .select(refresh_tokens::used_at)
                    .get_result::<Option<i64>>(conn)
                    .optional()?
                    // Gone (removed by a bearer-form refresh) counts as used.
                    .is_none_or(|used_at| used_at.is_some()),
            };
            Ok(Some(RefreshRecord {
                session_id: parse_id(&token.session_id, "refresh_tokens.session_id")?,
                user_id: parse_id(&user_id, "sessions.user_id")?,
                expires_at: token.expires_at,
                used_at: token.used_at,
                replay: token.replay,
                successor_used,
                // A revoked session's row (and so its tokens) is deleted; an expired one
                // may linger until housekeeping.
                session_revoked: session_expires_at <= unix_now(),
            }))
        })
        .map_err(Fail::into_store)
    }

    fn rotate_refresh_token(&self, rotation: &RefreshRotation) -> StoreResult<bool> {
        let old = rotation.old.to_hex();
        let new = NewRefreshRow::from_new(&rotation.new);
        let now = rotation.now;
        let result = write_tx!(self, conn => {
            // The conditional write comes first: a concurrent exchange that already marked
            // the token makes it match no row (PostgreSQL re-checks the condition after
            // waiting for the row lock; SQLite writers are serialized).
            let claimed = diesel::update(
                refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(old.as_str()))
                    .filter(refresh_tokens::session_id.eq(new.session_id.as_str()))
                    .filter(refresh_tokens::used_at.is_null()),
            )
            .set((
                refresh_tokens::used_at.eq(now),
                refresh_tokens::replay.eq(rotation.replay.as_slice()),
                refresh_tokens::successor_hash.eq(new.token_hash.as_str()),
            ))
            .execute(conn)?;
            if claimed != 1 {
                return Err(Fail::Abort);
            }
            diesel::insert_into(refresh_tokens::table).values(&new).execute(conn)?;
            let updated = diesel::update(
                sessions::table.filter(sessions::id.eq(new.session_id.as_str())),
            )
            .set((
                sessions::access_jti.eq(rotation.new_access_jti.as_str()),
                sessions::last_used_at.eq(now),
                sessions::expires_at.eq(new.expires_at),
            ))
            .execute(conn)?;
            if updated != 1 {
                return Err(Fail::Abort);
            }
            Ok(true)
        });
        conditional(result)
    }

    fn rotate_access_token(&self, rotation: &AccessRotation) -> StoreResult<bool> {
        same_session(rotation.session_id, &rotation.new_refresh)?;
        let session_id = id_text(rotation.session_id);
        let new = NewRefreshRow::from_new(&rotation.new_refresh);
        let now = rotation.now;
        let result = write_tx!(self, conn => {
            let updated = diesel::update(
                sessions::table
                    .filter(sessions::id.eq(session_id.as_str()))
                    .filter(sessions::access_jti.eq(rotation.old_access_jti.as_str()))
                    .filter(sessions::expires_at.gt(now)),
            )
            .set((
                sessions::access_jti.eq(rotation.new_access_jti.as_str()),
                sessions::last_used_at.eq(now),
                sessions::expires_at.eq(new.expires_at),
            ))
            .execute(conn)?;
            if updated != 1 {
                return Err(Fail::Abort);
            }
            // Used tokens stay for reuse detection; unused ones are superseded.
            diesel::delete(
                refresh_tokens::table
                    .filter(refresh_tokens::session_id.eq(session_id.as_str()))
                    .filter(refresh_tokens::used_at.is_null()),
            )
            .execute(conn)?;
            diesel::insert_into(refresh_tokens::table).values(&new).execute(conn)?;
            Ok(true)
        });
        conditional(result)
    }

    fn create_personal_token(&self, token: &NewPersonalToken) -> StoreResult<PersonalTokenRecord> {
        let row = NewPersonalTokenRow {
            id: id_text(token.id),
            user_id: id_text(token.user_id),
            name: &token.name,
            token_hash: token.hash.to_hex(),
            created_at: token.created_at,
            expires_at: token.expires_at,
        };
        with_conn!(self, conn => {
            diesel::insert_into(personal_tokens::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)?;
        Ok(PersonalTokenRecord {
            id: token.id,
            user_id: token.user_id,
            name: token.name.clone(),
            created_at: token.created_at,
            expires_at: token.expires_at,
            last_used_at: None,
        })
    }

    fn personal_token_with_user(
        &self,
        hash: &TokenHash,
        now: i64,
    ) -> StoreResult<Option<(PersonalTokenRecord, UserRecord)>> {
        let hash = hash.to_hex();
        let stale = now.saturating_sub(TOUCH_INTERVAL);
        with_conn!(self, conn => {
            // Token, user and the user's role names in one statement (a row per role).
            let rows = personal_tokens::table
                .inner_join(users::table.left_join(user_roles::table.left_join(roles::table)))
                .filter(personal_tokens::token_hash.eq(hash.as_str()))
                .select((
                    PersonalTokenRow::as_select(),
                    UserRow::as_select(),
                    roles::name.nullable(),
                ))
                .load::<(PersonalTokenRow, UserRow, Option<String>)>(conn)?;
            let Some((mut token, user, role_names)) = with_role_names(rows) else {
                return Ok(None);
            };
            if token.last_used_at.is_none_or(|t| t < stale) {
                let touched = diesel::update(
                    personal_tokens::table
                        .filter(personal_tokens::id.eq(token.id.as_str()))
                        .filter(
                            personal_tokens::last_used_at
                                .is_null()
                                .or(personal_tokens::last_used_at.lt(stale)),
                        ),
                )
                .set(personal_tokens::last_used_at.eq(now))
                .execute(conn);
                match touched {
                    Ok(n) if n > 0 => token.last_used_at = Some(now),
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "could not record personal token use"),
                }
            }
            Ok(Some((token.into_record()?, user.into_record(role_names)?)))
        })
        .map_err(Fail::into_store)
    }

    fn list_personal_tokens(&self, user_id: Uuid) -> StoreResult<Vec<PersonalTokenRecord>> {
        let user_id = id_text(user_id);
        with_conn!(self, conn => {
            personal_tokens::table
                .filter(personal_tokens::user_id.eq(user_id.as_str()))
                .order((personal_tokens::created_at.asc(), personal_tokens::id.asc()))
                .select(PersonalTokenRow::as_select())
                .load::<PersonalTokenRow>(conn)?
                .into_iter()
                .map(PersonalTokenRow::into_record)
                .collect()
        })
        .map_err(Fail::into_store)
    }

    fn delete_personal_token(&self, user_id: Uuid, token_id: Uuid) -> StoreResult<bool> {
        let user_id = id_text(user_id);
        let token_id = id_text(token_id);
        with_conn!(self, conn => {
            let deleted = diesel::delete(
                personal_tokens::table
                    .filter(personal_tokens::id.eq(token_id.as_str()))
                    .filter(personal_tokens::user_id.eq(user_id.as_str())),
            )
            .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn update_password_hash(
        &self,
        user_id: Uuid,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<()> {
        let user_id = id_text(user_id);
        with_conn!(self, conn => {
            diesel::update(users::table.filter(users::id.eq(user_id.as_str())))
                .set((
                    users::password_hash.eq(password_hash),
                    users::updated_at.eq(now),
                ))
                .execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn update_user(
        &self,
        id: Uuid,
        patch: &UserPatch,
        now: i64,
    ) -> StoreResult<Option<UserRecord>> {
        let id = id_text(id);
        let attributes = match &patch.attributes {
            None => None,
            Some(value @ serde_json::Value::Object(_)) => Some(value.to_string()),
            Some(_) => {
                return Err(StoreError::Other(
                    "user attributes must be a JSON object".to_owned(),
                ));
            }
        };
        let changes = UserChanges {
            full_name: patch.full_name.as_ref().map(Option::as_deref),
            phone: patch.phone.as_ref().map(Option::as_deref),
            is_active: patch.is_active,
            organization_id: patch.organization_id.map(|o| o.map(id_text)),
            attributes,
            updated_at: now,
        };
        let role_names = patch.roles.as_deref().map(role_set);
        write_tx!(self, conn => {
            let updated = diesel::update(users::table.filter(users::id.eq(id.as_str())))
                .set(&changes)
                .execute(conn)?;
            if updated == 0 {
                return Ok(None);
            }
            if let Some(names) = &role_names {
                diesel::delete(user_roles::table.filter(user_roles::user_id.eq(id.as_str())))
                    .execute(conn)?;
                assign_roles!(conn, id.as_str(), names.iter().copied(), now);
            }
            if patch.is_active == Some(false) {
                // Refresh tokens go with their sessions (ON DELETE CASCADE).
                diesel::delete(sessions::table.filter(sessions::user_id.eq(id.as_str())))
                    .execute(conn)?;
                diesel::delete(
                    personal_tokens::table.filter(personal_tokens::user_id.eq(id.as_str())),
                )
                .execute(conn)?;
            }
            let user = find_user!(conn, users::id.eq(id.as_str()))?;
            user.ok_or_else(|| Fail::other("updated user not found")).map(Some)
        })
        .map_err(Fail::into_store)
    }

    fn delete_user(&self, id: Uuid) -> StoreResult<bool> {
        let id = id_text(id);
        with_conn!(self, conn => {
            // Sessions (and their refresh tokens), personal tokens and role assignments go
            // along by ON DELETE CASCADE.
            let deleted = diesel::delete(users::table.filter(users::id.eq(id.as_str())))
                .execute(conn)?;
            Ok(deleted > 0)
        })
        .map_err(Fail::into_store)
    }

    fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<UserRecord>, u64)> {
        let email_key = query.email_key.as_deref();
        let limit = i64::from(query.limit);
        let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
        read_tx!(self, conn => {
            let mut count = users::table.count().into_boxed();
            let mut page = users::table
                .select(UserRow::as_select())
                .order((users::created_at.asc(), users::id.asc()))
                .limit(limit)
                .offset(offset)
                .into_boxed();
            if let Some(key) = email_key {
                count = count.filter(users::email_key.eq(key));
                page = page.filter(users::email_key.eq(key));
            }
            let total = count.get_result::<i64>(conn)?;
            let rows = page.load::<UserRow>(conn)?;

            let mut roles_of: HashMap<String, Vec<String>> = HashMap::new();
            for chunk in rows.chunks(ROLE_LOOKUP_CHUNK) {
                let ids: Vec<&str> = chunk.iter().map(|r| r.id.as_str()).collect();
                let pairs = user_roles::table
                    .inner_join(roles::table)
                    .filter(user_roles::user_id.eq_any(ids))
                    .select((user_roles::user_id, roles::name))
                    .load::<(String, String)>(conn)?;
                for (user_id, name) in pairs {
                    roles_of.entry(user_id).or_default().push(name);
                }
            }
            let users = rows
                .into_iter()
                .map(|row| {
                    let mut roles = roles_of.remove(&row.id).unwrap_or_default();
                    roles.sort_unstable();
                    row.into_record(roles)
                })
                .collect::<Result<Vec<_>, Fail>>()?;
            Ok((users, u64::try_from(total).unwrap_or(0)))
        })
        .map_err(Fail::into_store)
    }

    fn user_roles(&self, user_id: Uuid) -> StoreResult<Vec<RoleRecord>> {
        let user_id = id_text(user_id);
        let mut found = with_conn!(self, conn => {
            user_roles::table
                .inner_join(roles::table)
                .filter(user_roles::user_id.eq(user_id.as_str()))
                .select(RoleRow::as_select())
                .load::<RoleRow>(conn)?
                .into_iter()
                .map(RoleRow::into_record)
                .collect::<Result<Vec<_>, Fail>>()
        })
        .map_err(Fail::into_store)?;
        // Byte order, whatever the database's collation.
        found.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Ok(found)
    }

    fn create_organization(&self, organization: &OrganizationRecord) -> StoreResult<()> {
        let row = OrganizationRow::from_record(organization);
        with_conn!(self, conn => {
            diesel::insert_into(organizations::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn find_organization(&self, id: Uuid) -> StoreResult<Option<OrganizationRecord>> {
        let id = id_text(id);
        with_conn!(self, conn => {
            organizations::table
                .filter(organizations::id.eq(id.as_str()))
                .select(OrganizationRow::as_select())
                .first::<OrganizationRow>(conn)
                .optional()?
                .map(OrganizationRow::into_record)
                .transpose()
        })
        .map_err(Fail::into_store)
    }

    fn list_organizations(&self) -> StoreResult<Vec<OrganizationRecord>> {
        with_conn!(self, conn => {
            organizations::table
                .order((organizations::created_at.asc(), organizations::id.asc()))
                .select(OrganizationRow::as_select())
                .load::<OrganizationRow>(conn)?
                .into_iter()
                .map(OrganizationRow::into_record)
                .collect()
        })
        .map_err(Fail::into_store)
    }

    fn count_login_failures(&self, query: &FailureQuery) -> StoreResult<FailureCounts> {
        let q = query;
        with_conn!(self, conn => {
            // One statement (three scalar subqueries), so one round trip and one snapshot.
            let email_ip = login_failures::table
                .filter(login_failures::email_key.eq(q.email_key.as_str()))
                .filter(login_failures::ip.eq(q.ip.as_str()))
                .filter(login_failures::at.ge(q.email_ip_since))
                .count()
                .single_value();
            let email = login_failures::table
                .filter(login_failures::email_key.eq(q.email_key.as_str()))
                .filter(login_failures::at.ge(q.email_since))
                .count()
                .single_value();
            let ip = login_failures::table
                .filter(login_failures::ip.eq(q.ip.as_str()))
                .filter(login_failures::at.ge(q.ip_since))
                .count()
                .single_value();
            let (email_ip, email, ip) = diesel::select((email_ip, email, ip))
                .get_result::<(Option<i64>, Option<i64>, Option<i64>)>(conn)?;
            let n = |c: Option<i64>| count_u64(c.unwrap_or(0));
            Ok(FailureCounts {
                email_ip: n(email_ip),
                email: n(email),
                ip: n(ip),
            })
        })
        .map_err(Fail::into_store)
    }

    fn nth_login_failure(
        &self,
        query: &FailureQuery,
        series: FailureSeries,
        skip: u64,
    ) -> StoreResult<Option<i64>> {
        let q = query;
        let offset = i64::try_from(skip).unwrap_or(i64::MAX);
        with_conn!(self, conn => {
            let mut select = login_failures::table
                .select(login_failures::at)
                .order(login_failures::at.asc())
                .offset(offset)
                .into_boxed();
            select = match series {
                FailureSeries::EmailIp => select
                    .filter(login_failures::email_key.eq(q.email_key.as_str()))
                    .filter(login_failures::ip.eq(q.ip.as_str()))
                    .filter(login_failures::at.ge(q.email_ip_since)),
                FailureSeries::Email => select
                    .filter(login_failures::email_key.eq(q.email_key.as_str()))
                    .filter(login_failures::at.ge(q.email_since)),
                FailureSeries::Ip => select
                    .filter(login_failures::ip.eq(q.ip.as_str()))
                    .filter(login_failures::at.ge(q.ip_since)),
            };
            Ok(select.first::<i64>(conn).optional()?)
        })
        .map_err(Fail::into_store)
    }

    fn record_login_failure(&self, email_key: &str, ip: &str, at: i64) -> StoreResult<()> {
        let row = NewLoginFailureRow { email_key, ip, at };
        with_conn!(self, conn => {
            diesel::insert_into(login_failures::table).values(&row).execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn clear_login_failures(&self, email_key: &str) -> StoreResult<()> {
        with_conn!(self, conn => {
            diesel::delete(login_failures::table.filter(login_failures::email_key.eq(email_key)))
                .execute(conn)?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }

    fn hit_rate_limit(
        &self,
        bucket: &str,
        key: &str,
        since: i64,
        limit: u64,
        now: i64,
    ) -> StoreResult<(u64, Option<i64>)> {
        let lock_name = format!("{bucket}:{key}");
        let row = NewRateLimitHitRow {
            bucket,
            key,
            at: now,
        };
        write_tx!(self, conn => {
            // Count and insert must not interleave with another caller's, or both could
            // see `limit - 1` and both insert.
            conn.lock_for_write(RATE_LIMIT_LOCK_CLASS, &lock_name)?;
            let (count, oldest) = rate_limit_hits::table
                .filter(rate_limit_hits::bucket.eq(bucket))
                .filter(rate_limit_hits::key.eq(key))
                .filter(rate_limit_hits::at.ge(since))
                .select((count_star(), min(rate_limit_hits::at)))
                .get_result::<(i64, Option<i64>)>(conn)?;
            let count = count_u64(count);
            if count < limit {
                diesel::insert_into(rate_limit_hits::table).values(&row).execute(conn)?;
            }
            Ok((count, oldest))
        })
        .map_err(Fail::into_store)
    }

    fn purge_rate_limits(&self, before: i64) -> StoreResult<u64> {
        write_tx!(self, conn => {
            let failures =
                diesel::delete(login_failures::table.filter(login_failures::at.lt(before)))
                    .execute(conn)?;
            let hits =
                diesel::delete(rate_limit_hits::table.filter(rate_limit_hits::at.lt(before)))
                    .execute(conn)?;
            Ok(u64::try_from(failures.saturating_add(hits)).unwrap_or(u64::MAX))
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
