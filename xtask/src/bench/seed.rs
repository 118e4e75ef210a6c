//! Bulk seeding for the scale runs: `n` users, each with one live session, written straight
//! into a migrated database by one `INSERT … SELECT` per table (`generate_series` on
//! PostgreSQL, a recursive CTE on SQLite), so a million rows take seconds, not the hours a
//! million registrations would. The rows are real rows of the schema (valid ids, a real
//! argon2 hash, sessions that expire in 30 days) that no benchmark request touches: they make
//! the tables and their indexes as deep as a large deployment's. The seed is checkpointed
//! before the measurement starts.

use std::time::Instant;

use anyhow::Context as _;
use diesel::{Connection as _, PgConnection, RunQueryDsl as _, SqliteConnection};

/// A real argon2id hash (of a password nobody uses), so the rows are what the store writes.
const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2VlZHNlZWRzZWVkc2VlZA$\
                    3rqW1kU6jGz7Q4bS1tD0cG0pX1mJYw8nqgq5nZK2QdM";

/// Seeds `n` users and `n` live sessions into the database behind `url` (`sqlite://…` or
/// `postgres://…`); returns the seconds it took.
pub fn users_and_sessions(url: &str, n: u64) -> anyhow::Result<f64> {
    let start = Instant::now();
    let now = chrono_now();
    let expires = now + 30 * 24 * 3600;
    if let Some(path) = url.strip_prefix("sqlite://") {
        let mut conn = SqliteConnection::establish(path).context("seeding: cannot open SQLite")?;
        let series = format!(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n})"
        );
        let user_id = "printf('%08x-0000-4000-8000-%012x', i, i)";
        let statements = [
            format!(
                "{series} INSERT INTO users (id, email, email_key, password_hash, full_name, \
                 is_active, attributes, created_at, updated_at) SELECT {user_id}, \
                 'seed-' || i || '@example.com', 'seed-' || i || '@example.com', '{HASH}', \
                 'Seed User', 1, '{{}}', {now}, {now} FROM s"
            ),
            format!(
                "{series} INSERT INTO sessions (id, user_id, access_jti, created_at, \
                 last_used_at, expires_at, profile, access_ttl, refresh_generation, \
                 refresh_hash) SELECT printf('%08x-0000-4000-9000-%012x', i, i), {user_id}, \
                 printf('%032x', i), {now}, {now}, {expires}, 'native', 900, 1, \
                 printf('%064x', i) FROM s"
            ),
        ];
        diesel::sql_query("BEGIN").execute(&mut conn)?;
        for statement in &statements {
            diesel::sql_query(statement).execute(&mut conn)?;
        }
        diesel::sql_query("COMMIT").execute(&mut conn)?;
        diesel::sql_query("ANALYZE").execute(&mut conn)?;
        // The seed went through the WAL; a deployment's WAL is checkpointed as it goes, so
        // the measurement starts with it folded into the database file.
        diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn)?;
    } else {
        let mut conn = PgConnection::establish(url).context("seeding: cannot open Postgres")?;
        let user_id = "md5('u' || i)::uuid::text";
        let statements = [
            format!(
                "INSERT INTO users (id, email, email_key, password_hash, full_name, is_active, \
                 attributes, created_at, updated_at) SELECT {user_id}, \
                 'seed-' || i || '@example.com', 'seed-' || i || '@example.com', '{HASH}', \
                 'Seed User', true, '{{}}', {now}, {now} FROM generate_series(1, {n}) i"
            ),
            format!(
                "INSERT INTO sessions (id, user_id, access_jti, created_at, last_used_at, \
                 expires_at, profile, access_ttl, refresh_generation, refresh_hash) \
                 SELECT md5('s' || i)::uuid::text, {user_id}, md5('j' || i), {now}, {now}, \
                 {expires}, 'native', 900, 1, md5('r' || i) || md5('h' || i) \
                 FROM generate_series(1, {n}) i"
            ),
            "VACUUM ANALYZE users".to_owned(),
            "VACUUM ANALYZE sessions".to_owned(),
            // The seed's dirty pages written out now, not by a checkpoint mid-measurement.
            "CHECKPOINT".to_owned(),
        ];
        for statement in &statements {
            diesel::sql_query(statement).execute(&mut conn)?;
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

fn chrono_now() -> i64 {
    std::time::UNIX_EPOCH
        .elapsed()
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
