//! The database's own write limit, for `cargo xtask bench`: how many write transactions of
//! the shape the store's write paths use (one transaction that takes its lock, updates one
//! row and inserts one) the store's own pool commits per second, with no HTTP, hashing or
//! token work around them. The benchmark reports `refresh` against it (issue 11, item 5).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::sql_types::BigInt;

use super::*;

/// Scratch tables of the measurement, created for it and dropped after.
const SETUP: &str = "CREATE TABLE IF NOT EXISTS write_limit_rows (id BIGINT PRIMARY KEY, n BIGINT NOT NULL); \
                     CREATE TABLE IF NOT EXISTS write_limit_log (row_id BIGINT NOT NULL, at BIGINT NOT NULL);";
const TEARDOWN: &str =
    "DROP TABLE IF EXISTS write_limit_log; DROP TABLE IF EXISTS write_limit_rows;";

/// What [`DieselStore::measure_write_limit`] found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteLimit {
    /// Transactions committed per second, all writers together.
    pub per_second: f64,
    /// Writers (threads, each with a row of its own) that ran at once.
    pub writers: usize,
}

impl DieselStore {
    /// Runs `writers` threads for `duration`, each committing one write transaction after
    /// another on this store's pool: lock (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: its row
    /// `FOR UPDATE`), update its row, insert a log row. The scratch tables are dropped
    /// afterwards. Meant for an idle server's database: it competes with any other traffic.
    pub fn measure_write_limit(
        &self,
        writers: usize,
        duration: Duration,
    ) -> StoreResult<WriteLimit> {
        let writers = writers.max(1);
        with_conn!(self, conn => {
            conn.batch_execute(SETUP)?;
            for id in 0..writers {
                diesel::sql_query("INSERT INTO write_limit_rows (id, n) VALUES ($1, 0) ON CONFLICT (id) DO NOTHING")
                    .bind::<BigInt, _>(id as i64)
                    .execute(conn)?;
            }
            Ok(())
        })
        .map_err(Fail::into_store)?;
        let committed = AtomicU64::new(0);
        let failed = AtomicBool::new(false);
        let start = Instant::now();
        std::thread::scope(|scope| {
            for id in 0..writers {
                let (committed, failed) = (&committed, &failed);
                scope.spawn(move || {
                    while start.elapsed() < duration && !failed.load(Ordering::Relaxed) {
                        match self.one_write_transaction(id as i64) {
                            Ok(()) => committed.fetch_add(1, Ordering::Relaxed),
                            Err(_) => {
                                failed.store(true, Ordering::Relaxed);
                                0
                            }
                        };
                    }
                });
            }
        });
        let elapsed = start.elapsed().as_secs_f64();
        let dropped = with_conn!(self, conn => {
            conn.batch_execute(TEARDOWN)?;
            Ok(())
        });
        if failed.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable(
                "a write transaction of the measurement failed".to_owned(),
            ));
        }
        dropped.map_err(Fail::into_store)?;
        Ok(WriteLimit {
            per_second: committed.load(Ordering::Relaxed) as f64 / elapsed.max(f64::EPSILON),
            writers,
        })
    }

    fn one_write_transaction(&self, id: i64) -> StoreResult<()> {
        let at = i64::try_from(
            std::time::UNIX_EPOCH
                .elapsed()
                .unwrap_or_default()
                .as_micros(),
        )
        .unwrap_or(0);
        let result = write_tx!(self, conn => {
            conn.lock_row(id)?;
            diesel::sql_query("UPDATE write_limit_rows SET n = n + 1 WHERE id = $1")
                .bind::<BigInt, _>(id)
                .execute(conn)?;
            diesel::sql_query("INSERT INTO write_limit_log (row_id, at) VALUES ($1, $2)")
                .bind::<BigInt, _>(id)
                .bind::<BigInt, _>(at)
                .execute(conn)?;
            Ok(())
        });
        result.map_err(Fail::into_store)
    }
}

/// Takes the row's write lock for the rest of the transaction.
trait LockRow {
    fn lock_row(&mut self, id: i64) -> Result<(), Fail>;
}

impl LockRow for SqliteConnection {
    /// Nothing more to do: `BEGIN IMMEDIATE` holds the database's write lock already.
    fn lock_row(&mut self, _id: i64) -> Result<(), Fail> {
        Ok(())
    }
}

impl LockRow for PgConnection {
    fn lock_row(&mut self, id: i64) -> Result<(), Fail> {
        diesel::sql_query("SELECT n FROM write_limit_rows WHERE id = $1 FOR UPDATE")
            .bind::<BigInt, _>(id)
            .execute(self)?;
        Ok(())
    }
}
