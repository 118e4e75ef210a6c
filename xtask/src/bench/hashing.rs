//! The physical limit of logins: argon2id hashes per second on every core, measured in this
//! process with the server's default parameters, just before and after `login`.
//!
//! Each thread hashes into one block array allocated (and faulted in) before timing starts,
//! the cheapest way the `argon2` crate can hash: the limit is the computation alone, with no
//! allocation, zeroing or page faults, so `login / limit` can only reach 1 by doing nothing
//! but the hash. (`verify_password` would allocate 19 MiB per call and understate the limit.)

use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// argon2id memory in KiB (the server's default).
pub const MEMORY_KIB: u32 = 19_456;
/// argon2id iterations (the server's default).
pub const ITERATIONS: u32 = 2;
/// argon2id lanes (the server's default).
pub const PARALLELISM: u32 = 1;

/// What the measurement found.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    /// Verifications per second with one thread per core.
    pub per_second: f64,
    /// Threads used (the number of cores).
    pub threads: usize,
}

fn hasher() -> anyhow::Result<Argon2<'static>> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .map_err(|err| anyhow::anyhow!("argon2 parameters: {err}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Runs argon2id hashes of a password (what a login's verification computes) on one thread
/// per core for about `duration`; hashes per second over all threads.
pub fn measure(duration: Duration) -> anyhow::Result<Limit> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let blocks = hasher()?.params().block_count();
    // All threads finish their untimed first hash (which faults the array in) before any
    // starts timing, so the timed windows overlap.
    let ready = std::sync::Arc::new(std::sync::Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let ready = ready.clone();
            std::thread::spawn(move || -> anyhow::Result<f64> {
                let argon2 = hasher()?;
                let mut memory = vec![Block::default(); blocks];
                let mut out = [0u8; 32];
                let mut hash = || {
                    argon2
                        .hash_password_into_with_memory(
                            b"bench-password-1",
                            b"bench-salt-bytes",
                            &mut out,
                            &mut memory,
                        )
                        .map_err(|err| anyhow::anyhow!("hashing: {err}"))
                };
                hash()?;
                ready.wait();
                let started = Instant::now();
                let mut done = 0u32;
                while started.elapsed() < duration {
                    hash()?;
                    done += 1;
                }
                Ok(f64::from(done) / started.elapsed().as_secs_f64())
            })
        })
        .collect();
    let mut per_second = 0.0;
    for worker in workers {
        per_second += worker
            .join()
            .map_err(|_| anyhow::anyhow!("hashing thread panicked"))
            .context("argon2 limit")??;
    }
    Ok(Limit {
        per_second,
        threads,
    })
}
