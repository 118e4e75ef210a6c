//! The physical limit of logins: argon2id verifications per second on every core, measured
//! in this process with the server's default parameters, just before and after `login`.

use std::time::{Duration, Instant};

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

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

/// Runs password verifications (what a login does) on one thread per core for about
/// `duration`; verifications per second over all threads.
pub fn measure(duration: Duration) -> anyhow::Result<Limit> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let salt = SaltString::encode_b64(b"bench-salt-bytes")
        .map_err(|err| anyhow::anyhow!("salt: {err}"))?;
    let phc = hasher()?
        .hash_password(b"bench-password-1", &salt)
        .map_err(|err| anyhow::anyhow!("hashing: {err}"))?
        .to_string();
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let phc = phc.clone();
            std::thread::spawn(move || -> anyhow::Result<u64> {
                let argon2 = hasher()?;
                let parsed =
                    PasswordHash::new(&phc).map_err(|err| anyhow::anyhow!("phc: {err}"))?;
                let mut done = 0;
                while Instant::now() < deadline {
                    argon2
                        .verify_password(b"bench-password-1", &parsed)
                        .map_err(|err| anyhow::anyhow!("verification: {err}"))?;
                    done += 1;
                }
                Ok(done)
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker
            .join()
            .map_err(|_| anyhow::anyhow!("hashing thread panicked"))
            .context("argon2 limit")??;
    }
    // Every thread stops after its last verification ends, so the elapsed time covers all.
    let elapsed = started.elapsed().as_secs_f64();
    Ok(Limit {
        per_second: total as f64 / elapsed,
        threads,
    })
}
