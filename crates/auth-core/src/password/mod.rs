//! argon2id hashing on a bounded pool of dedicated threads.
//!
//! At most `slots` hashes run at once, at most `queue` requests wait for a slot, and anything
//! beyond that is refused at once with [`Error::Overloaded`], so a login flood can neither
//! exhaust memory nor starve the executor.
//!
//! Each slot is a dedicated thread that owns one argon2 block array (`memory_kib` KiB),
//! allocated on its first hash and reused for every later one: however many logins arrive, at
//! most `slots` arrays ever exist, and no hash pays for allocating, zeroing and faulting in
//! its memory. (`argon2`'s own `hash_password`/`verify_password` allocate a fresh array per
//! call, which the allocator then keeps in per-thread arenas: RSS grew with load, not slots.)

use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::config::Argon2Params;
use crate::error::Error;
use crate::metrics::HashingInstruments;
use crate::workers::Workers;

/// The pool: `slots` dedicated threads. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    /// Bounds the jobs handed to the threads, so queued requests wait here (as futures) and
    /// the `queue` bound can be enforced.
    slots: Arc<Semaphore>,
    /// One thread per slot, each owning its block array.
    threads: Workers<Blocks>,
    waiting: AtomicUsize,
    queue: usize,
    /// The queue's depth and waits, for the metrics.
    instruments: HashingInstruments,
    /// A real hash of a random password, verified against when the email is unknown so that
    /// unknown emails cost the same time as wrong passwords.
    dummy_hash: String,
}

/// What verifying a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password (or no such user).
    Mismatch,
    /// Right password; the hash uses the configured parameters.
    Match,
    /// Right password, but the hash should be upgraded to the configured parameters.
    MatchNeedsRehash,
}

impl PasswordHasher {
    /// Builds the pool: `slots` threads running `niceness` nicer than the process (0: the
    /// same), `queue` waiting places. Computes the dummy hash once, which takes one
    /// hash's time.
    pub fn new(
        params: Argon2Params,
        slots: usize,
        queue: usize,
        niceness: i32,
    ) -> Result<Self, Error> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|err| {
            tracing::error!(error = %err, "invalid argon2 parameters");
            Error::Internal
        })?;
        let dummy_secret: [u8; 16] = rand::random();
        let dummy_hash = hash_with(&params, &dummy_secret, &mut Blocks::new(&params))?;
        let slots = slots.max(1);
        let block_params = params.clone();
        // The slots semaphore and the `queue` count bound the hashes handed over; the
        // workers' own bound would only race with them.
        let threads = Workers::start("auth-hash", slots, usize::MAX, niceness, move || {
            Blocks::new(&block_params)
        })
        .map_err(|err| {
            tracing::error!(error = %err, "cannot start a hashing thread");
            Error::Internal
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                slots: Arc::new(Semaphore::new(slots)),
                threads,
                waiting: AtomicUsize::new(0),
                queue,
                instruments: HashingInstruments::default(),
                dummy_hash,
            }),
        })
    }

    /// The queue's depth gauge and wait histogram, for [`crate::metrics::Metrics`].
    pub(crate) fn instruments(&self) -> &HashingInstruments {
        &self.inner.instruments
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        let params = self.inner.params.clone();
        self.run(move |blocks| hash_with(&params, password.as_bytes(), blocks))
            .await?
    }

    /// Verifies `password` against `phc`, or against the dummy hash when `phc` is `None`
    /// (which always yields [`Verification::Mismatch`], in the same time).
    pub async fn verify(
        &self,
        password: String,
        phc: Option<String>,
    ) -> Result<Verification, Error> {
        let inner = self.inner.clone();
        self.run(move |blocks| {
            let (phc, known) = match &phc {
                Some(phc) => (phc.as_str(), true),
                None => (inner.dummy_hash.as_str(), false),
            };
            let verification = verify_with(&inner.params, password.as_bytes(), phc, blocks);
            if known {
                verification
            } else {
                Verification::Mismatch
            }
        })
        .await
    }

    /// Runs `work` on a hashing thread once a slot is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Blocks) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let inner = &self.inner;
        if inner.waiting.fetch_add(1, Ordering::AcqRel) >= inner.queue {
            inner.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Overloaded(Duration::from_secs(1)));
        }
        // Gives the waiting place back however the wait ends: also when the request's future
        // is dropped while it waits (the client went away), which would otherwise shrink the
        // queue for good.
        let place = WaitingPlace::take(inner);
        let permit = inner.slots.clone().acquire_owned().await;
        drop(place);
        let _permit = permit.map_err(|_| Error::Internal)?;
        // With a permit held, one of the `slots` threads is free to take the job at once.
        inner.threads.run(work).await
    }
}

/// One taken place of the hashing queue, given back (and its wait measured) when dropped.
struct WaitingPlace<'a> {
    inner: &'a Inner,
    since: std::time::Instant,
}

impl<'a> WaitingPlace<'a> {
    /// Takes a place already counted in `inner.waiting`.
    fn take(inner: &'a Inner) -> Self {
        inner.instruments.queue_depth.inc();
        Self {
            inner,
            since: std::time::Instant::now(),
        }
    }
}

impl Drop for WaitingPlace<'_> {
    fn drop(&mut self) {
        self.inner.waiting.fetch_sub(1, Ordering::AcqRel);
        self.inner.instruments.queue_depth.dec();
        self.inner
            .instruments
            .wait
            .observe(self.since.elapsed().as_secs_f64());
    }
}

/// A hashing thread's argon2 memory: allocated on first use, sized for the configured
/// parameters, reused by every hash the thread runs.
struct Blocks {
    configured: usize,
    array: Vec<Block>,
}

impl Blocks {
    fn new(params: &Params) -> Self {
        Self {
            configured: params.block_count(),
            array: Vec::new(),
        }
    }

    /// Runs `hash` with at least `params.block_count()` blocks. A stored hash with more
    /// memory than configured (parameters lowered since it was made) gets a temporary array,
    /// so the kept one never grows beyond the configured size.
    fn with<T>(&mut self, params: &Params, hash: impl FnOnce(&mut [Block]) -> T) -> T {
        let needed = params.block_count();
        if needed > self.configured {
            return hash(&mut vec![Block::default(); needed]);
        }
        if self.array.len() < self.configured {
            self.array = vec![Block::default(); self.configured];
        }
        hash(&mut self.array[..needed])
    }
}

/// Whether a stored hash is a bcrypt one (`$2a$`, `$2b$`, `$2x$`, `$2y$`).
pub fn is_bcrypt(phc: &str) -> bool {
    ["$2a$", "$2b$", "$2x$", "$2y$"]
        .iter()
        .any(|prefix| phc.starts_with(prefix))
}

/// Whether a stored hash is one this pool can verify (argon2 PHC or bcrypt), for imports.
pub fn is_supported_hash(phc: &str) -> bool {
    is_bcrypt(phc) && bcrypt::HashParts::from_str(phc).is_ok()
        || PasswordHash::new(phc).is_ok_and(|hash| hash.algorithm.as_str().starts_with("argon2"))
}

/// argon2id with `params` and a random salt, as a PHC string.
fn hash_with(params: &Params, password: &[u8], blocks: &mut Blocks) -> Result<String, Error> {
    let failed = |err: &dyn std::fmt::Display| {
        tracing::error!(error = %err, "password hashing failed");
        Error::Internal
    };
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|err| failed(&err))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    blocks
        .with(params, |memory| {
            argon2.hash_password_into_with_memory(password, &salt_bytes, &mut out, memory)
        })
        .map_err(|err| failed(&err))?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|err| failed(&err))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|err| failed(&err))?),
    };
    Ok(hash.to_string())
}

/// The longest password bcrypt tells apart: it ignores every byte after the 72nd.
pub const BCRYPT_MAX_BYTES: usize = 72;

/// Verifies `password` against an imported bcrypt hash, exactly: bcrypt only reads the
/// first [`BCRYPT_MAX_BYTES`] bytes, so a longer password would match the hash of its
/// prefix (and then be upgraded into the stored hash); it never matches. The hash is
/// computed even then, so a long password takes the same time as any other.
fn verify_bcrypt(password: &[u8], phc: &str) -> Verification {
    let matched = bcrypt::verify(password, phc).unwrap_or(false);
    if matched && password.len() <= BCRYPT_MAX_BYTES {
        // Imported from a bcrypt backend: ask for an argon2id upgrade.
        Verification::MatchNeedsRehash
    } else {
        Verification::Mismatch
    }
}

fn verify_with(params: &Params, password: &[u8], phc: &str, blocks: &mut Blocks) -> Verification {
    if is_bcrypt(phc) {
        return verify_bcrypt(password, phc);
    }
    let Some(stored) = StoredArgon2::parse(phc) else {
        tracing::warn!("stored password hash is not an argon2 PHC string");
        return Verification::Mismatch;
    };
    // The stored hash's own parameters are used; only the pool bounds memory.
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..stored.expected.len()];
    let argon2 = Argon2::new(stored.algorithm, stored.version, stored.params.clone());
    let computed = blocks.with(&stored.params, |memory| {
        argon2.hash_password_into_with_memory(password, &stored.salt, out, memory)
    });
    // `Output`'s equality is constant-time.
    if computed.is_err() || Output::new(out).ok().as_ref() != Some(&stored.expected) {
        return Verification::Mismatch;
    }
    let current = stored.algorithm == Algorithm::Argon2id
        && stored.version == Version::V0x13
        && stored.params.m_cost() == params.m_cost()
        && stored.params.t_cost() == params.t_cost()
        && stored.params.p_cost() == params.p_cost();
    if current {
        Verification::Match
    } else {
        Verification::MatchNeedsRehash
    }
}

/// The parts of a stored argon2 PHC string a verification needs.
struct StoredArgon2 {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Vec<u8>,
    expected: Output,
}

impl StoredArgon2 {
    fn parse(phc: &str) -> Option<Self> {
        let parsed = PasswordHash::new(phc).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = match parsed.version {
            Some(version) => Version::try_from(version).ok()?,
            None => Version::default(),
        };
        // Takes the output length from the stored hash.
        let params = Params::try_from(&parsed).ok()?;
        let mut salt = [0u8; 64];
        let salt = parsed.salt?.decode_b64(&mut salt).ok()?.to_vec();
        Some(Self {
            algorithm,
            version,
            params,
            salt,
            expected: parsed.hash?,
        })
    }
}

#[cfg(test)]
mod tests;
