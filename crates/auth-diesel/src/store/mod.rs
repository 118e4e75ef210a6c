//! The [`Store`] implementation, one module per part of the contract. Each query body is
//! written once and expanded for both connection types by [`with_conn!`] (autocommit) and
//! [`write_tx!`] (one write transaction: `BEGIN IMMEDIATE` on SQLite, an ordinary
//! transaction on PostgreSQL) or [`read_tx!`] (several reads that see one snapshot). What
//! truly differs between the backends is the write lock ([`WriteLock`]).
//!
//! The store decides nothing: every `now`, every revocation and every purge comes from the
//! core (see `auth_core::store`).

pub(crate) use std::collections::HashMap;

pub(crate) use auth_core::store::{
    AccessRotation, FailureCounts, FailureQuery, FailureSeries, KeyStore, LoginAttempt,
    MailQueueStore, NewOneTimeToken, NewPersonalToken, NewRefreshToken, NewSession, NewUser,
    OneTimeTokenRecord, OneTimeTokenStore, OrganizationRecord, OrganizationStore,
    PersonalTokenRecord, PersonalTokenStore, PreviousRefresh, QueuedMail, RateLimitStore,
    RefreshRecord, RefreshRotation, Reseal, Reservation, Revocation, RoleRecord, SessionBounds,
    SessionRecord, SessionRevocation, SessionStore, SigningKeyRecord, Store, StoreError,
    StoreResult, TokenHash, TokenPurpose, Use, UserPatch, UserQuery, UserRecord, UserStore,
    limit_reached,
};
pub(crate) use diesel::connection::SimpleConnection;
pub(crate) use diesel::dsl::{count_star, min};
pub(crate) use diesel::pg::PgConnection;
pub(crate) use diesel::prelude::*;
pub(crate) use diesel::r2d2::{ConnectionManager, R2D2Connection};
pub(crate) use diesel::sql_types::{Integer, Text};
pub(crate) use diesel::sqlite::SqliteConnection;
pub(crate) use uuid::Uuid;

pub(crate) use crate::error::Fail;
pub(crate) use crate::models::{
    MailRow, NewLoginFailureRow, NewOneTimeTokenRow, NewPersonalTokenRow, NewRateLimitHitRow,
    NewRoleRow, NewSigningKeyRow, NewUserRow, OneTimeTokenRow, OrganizationRow, PersonalTokenRow,
    RefreshRow, RoleRow, SessionRow, SigningKeyRow, UserChanges, UserRoleRow, UserRow,
    attempts_column, id_text, parse_id,
};
pub(crate) use crate::schema::{
    known_addresses, login_failures, mail_queue, one_time_tokens, organizations, personal_tokens,
    rate_limit_hits, roles, sessions, settings, signing_keys, user_roles, users,
};
pub(crate) use crate::{DieselStore, Pools};

/// How many user ids one `IN (...)` role lookup of [`Store::list_users`] binds at most
/// (SQLite limits the number of bound parameters per statement).
const ROLE_LOOKUP_CHUNK: usize = 500;

/// First key of the PostgreSQL advisory locks serializing rate-limit hits of one
/// bucket/key (the second key is a hash of the two).
const RATE_LIMIT_LOCK_CLASS: i32 = 0x726c_6869; // "rlhi"

/// First key of the PostgreSQL advisory locks serializing login reservations of one email
/// or one client (the second key is a hash of which).
const LOGIN_LOCK_CLASS: i32 = 0x6c6f_6769; // "logi"

/// First key of the PostgreSQL advisory lock serializing signing-key changes.
const SIGNING_KEYS_LOCK_CLASS: i32 = 0x736b_6579; // "skey"

/// First key of the PostgreSQL advisory locks serializing the replacing writes of one
/// user's one-time tokens of one purpose (the second key is a hash of both).
const ONE_TIME_TOKEN_LOCK_CLASS: i32 = 0x6f74_746b; // "ottk"

/// First key of the PostgreSQL advisory locks serializing guarded changes of one protected
/// role (the second key is a hash of its name): see [`guard_last_holder!`].
const PROTECTED_ROLE_LOCK_CLASS: i32 = 0x726f_6c65; // "role"

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

impl DieselStore {
    /// Runs `f` on a connection of `pool`, behind the breaker: while it is open, fails at
    /// once. A checkout that timed out because connections could not be opened, or a call
    /// that failed as unavailable on a connection that then fails a ping, trips it; an
    /// exhausted pool or a lock timeout does not (the database answers).
    fn run<C, T>(
        &self,
        pool: &r2d2::Pool<ConnectionManager<C>>,
        f: impl FnOnce(&mut C) -> Result<T, Fail>,
    ) -> Result<T, Fail>
    where
        C: R2D2Connection + Send + 'static,
    {
        self.breaker.check().map_err(Fail::Store)?;
        let mut pooled = match pool.get() {
            Ok(pooled) => pooled,
            Err(err) => {
                let message = err.to_string();
                if crate::error::checkout_found_no_database(&message) {
                    self.trip(&message);
                }
                return Err(Fail::Store(crate::error::map_pool(err)));
            }
        };
        let result = f(&mut *pooled);
        if let Err(Fail::Store(StoreError::Unavailable(message))) = &result
            && pooled.ping().is_err()
        {
            self.trip(message);
        }
        result
    }

    /// Opens the breaker (if closed), with a probe that checks a connection of this
    /// store's pool out and pings it.
    fn trip(&self, reason: &str) {
        let timeout = self.checkout_timeout;
        self.breaker.trip(reason, || {
            let pools = self.pools.clone();
            move || probe(&pools, timeout)
        });
    }
}

/// One bounded try of the database: a pooled connection within `timeout`, and a ping.
fn probe(pools: &Pools, timeout: std::time::Duration) -> Result<(), String> {
    fn on<C: R2D2Connection + Send + 'static>(
        pool: &r2d2::Pool<ConnectionManager<C>>,
        timeout: std::time::Duration,
    ) -> Result<(), String> {
        let mut conn = pool.get_timeout(timeout).map_err(|e| e.to_string())?;
        conn.ping().map_err(|e| e.to_string())
    }
    match pools {
        Pools::Sqlite(pool) => on(pool, timeout),
        Pools::Postgres(pool) => on(pool, timeout),
    }
}

/// `with_conn!(store, conn => { ... })`: runs the block, which evaluates to
/// `Result<T, Fail>`, with `conn` bound to a pooled `&mut SqliteConnection` or
/// `&mut PgConnection`. Statements run in autocommit mode.
macro_rules! with_conn {
    ($store:expr, $conn:ident => $body:block) => {
        match &$store.pools {
            Pools::Sqlite(pool) => $store
                .run(pool, |$conn: &mut SqliteConnection| -> Result<_, Fail> {
                    $body
                }),
            Pools::Postgres(pool) => $store
                .run(pool, |$conn: &mut PgConnection| -> Result<_, Fail> {
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
            Pools::Sqlite(pool) => $store.run(pool, |c: &mut SqliteConnection| {
                c.immediate_transaction(|$conn: &mut SqliteConnection| -> Result<_, Fail> { $body })
            }),
            Pools::Postgres(pool) => $store.run(pool, |c: &mut PgConnection| {
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
            Pools::Sqlite(pool) => $store.run(pool, |c: &mut SqliteConnection| {
                c.transaction(|$conn: &mut SqliteConnection| -> Result<_, Fail> { $body })
            }),
            Pools::Postgres(pool) => $store.run(pool, |c: &mut PgConnection| {
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

/// `guard_last_holder!(conn, user_id, role, stays)`: inside the caller's write transaction,
/// takes the write lock of `role` (held until commit, so guarded changes of the role run one
/// at a time) and fails with [`StoreError::LastActiveHolder`] when the user `user_id` (a
/// `&str`) is an active holder of `role`, `stays` (a `Fn(&UserRecord) -> bool` given the
/// user as stored) says they would not be afterwards, and no other active user holds it.
/// After the lock every read sees every guarded change committed before, on both backends.
macro_rules! guard_last_holder {
    ($conn:ident, $user_id:expr, $role:expr, $stays:expr) => {{
        let (user_id, role): (&str, &str) = ($user_id, $role);
        $conn.lock_for_write(PROTECTED_ROLE_LOCK_CLASS, role)?;
        let current: Option<UserRecord> = find_user!($conn, users::id.eq(user_id))?;
        let holds = |user: &UserRecord| user.is_active && user.roles.iter().any(|r| r == role);
        if current
            .filter(|user| holds(user) && !$stays(user))
            .is_some()
        {
            let others = user_roles::table
                .inner_join(roles::table)
                .inner_join(users::table)
                .filter(roles::name.eq(role))
                .filter(users::is_active.eq(true))
                .filter(users::id.ne(user_id))
                .count()
                .get_result::<i64>($conn)?;
            if others == 0 {
                return Err(Fail::Store(StoreError::LastActiveHolder));
            }
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

/// `revoke_credentials!(conn, user_id, revoke)`: carries out a [`Revocation`] of the user
/// `user_id` (a `&str`) inside the caller's transaction. Refresh tokens go with their
/// sessions (ON DELETE CASCADE).
macro_rules! revoke_credentials {
    ($conn:ident, $user_id:expr, $revoke:expr) => {{
        let user_id: &str = $user_id;
        let revoke: Revocation = $revoke;
        let of_user = sessions::table.filter(sessions::user_id.eq(user_id));
        match revoke.sessions {
            SessionRevocation::None => 0,
            SessionRevocation::All => diesel::delete(of_user).execute($conn)?,
            SessionRevocation::AllExcept(keep) => {
                let keep = id_text(keep);
                diesel::delete(of_user.filter(sessions::id.ne(keep.as_str()))).execute($conn)?
            }
        };
        if revoke.personal_tokens {
            diesel::delete(personal_tokens::table.filter(personal_tokens::user_id.eq(user_id)))
                .execute($conn)?;
        }
    }};
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

mod audit_store;
mod keys_store;
mod mail_store;
mod mfa_store;
mod organizations_store;
mod personal_tokens_store;
mod rate_limits_store;
mod sessions_store;
mod users_store;
mod write_limit;

pub use write_limit::WriteLimit;

impl Store for DieselStore {
    fn ping(&self) -> StoreResult<()> {
        with_conn!(self, conn => {
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .map_err(Fail::into_store)
    }
}
