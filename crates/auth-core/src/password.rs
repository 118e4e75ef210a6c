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
                dummy_hash,
            }),
        })
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
        let permit = inner.slots.clone().acquire_owned().await;
        inner.waiting.fetch_sub(1, Ordering::AcqRel);
        let _permit = permit.map_err(|_| Error::Internal)?;
        // With a permit held, one of the `slots` threads is free to take the job at once.
        inner.threads.run(work).await
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
mod tests {
    use super::*;

    fn cheap() -> Argon2Params {
        Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_detect_parameter_changes() {
        let hasher = PasswordHasher::new(cheap(), 2, 8, 0).unwrap();
        let phc = hasher.hash("correct horse".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        let ok = hasher
            .verify("correct horse".into(), Some(phc.clone()))
            .await;
        assert_eq!(ok.unwrap(), Verification::Match);
        let bad = hasher.verify("wrong".into(), Some(phc.clone())).await;
        assert_eq!(bad.unwrap(), Verification::Mismatch);

        let stronger = PasswordHasher::new(
            Argon2Params {
                memory_kib: 128,
                ..cheap()
            },
            1,
            8,
            0,
        )
        .unwrap();
        let upgrade = stronger.verify("correct horse".into(), Some(phc)).await;
        assert_eq!(upgrade.unwrap(), Verification::MatchNeedsRehash);
    }

    #[test]
    fn our_hashes_and_the_argon2_crates_verify_each_other() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let params = Params::new(64, 1, 1, None).unwrap();
        let mut blocks = Blocks::new(&params);
        let ours = hash_with(&params, b"correct horse", &mut blocks).unwrap();
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(reference.verify_password(b"correct horse", &parsed).is_ok());
        assert!(
            reference
                .verify_password(b"correct horsE", &parsed)
                .is_err()
        );

        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let theirs = reference.hash_password(b"battery staple", &salt).unwrap();
        let theirs = theirs.to_string();
        let verify =
            |password: &[u8], blocks: &mut Blocks| verify_with(&params, password, &theirs, blocks);
        assert_eq!(verify(b"battery staple", &mut blocks), Verification::Match);
        assert_eq!(
            verify(b"battery stapl", &mut blocks),
            Verification::Mismatch
        );
    }

    #[test]
    fn other_variants_and_bigger_hashes_verify_without_growing_the_kept_array() {
        use argon2::password_hash::PasswordHasher as _;
        let params = Params::new(64, 1, 1, None).unwrap();
        let mut blocks = Blocks::new(&params);
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let cases = [
            (
                Algorithm::Argon2i,
                Version::V0x13,
                Params::new(64, 1, 1, None),
            ),
            (
                Algorithm::Argon2d,
                Version::V0x10,
                Params::new(64, 2, 1, None),
            ),
            (
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(256, 1, 2, Some(48)),
            ),
        ];
        for (algorithm, version, stored) in cases {
            let hasher = Argon2::new(algorithm, version, stored.unwrap());
            let phc = hasher
                .hash_password(b"password123", &salt)
                .unwrap()
                .to_string();
            let found = verify_with(&params, b"password123", &phc, &mut blocks);
            assert_eq!(found, Verification::MatchNeedsRehash, "{phc}");
            let found = verify_with(&params, b"password124", &phc, &mut blocks);
            assert_eq!(found, Verification::Mismatch, "{phc}");
        }
        assert_eq!(blocks.array.len(), params.block_count());
    }

    #[test]
    fn truncated_or_foreign_phc_strings_are_mismatches() {
        let params = Params::new(64, 1, 1, None).unwrap();
        let mut blocks = Blocks::new(&params);
        let good = hash_with(&params, b"pw", &mut blocks).unwrap();
        let cut = &good[..good.rfind('$').unwrap()];
        for phc in [
            cut,
            "$scrypt$ln=4,r=8,p=1$c2FsdA$aGFzaA",
            "$argon2id$v=19$m=64,t=1,p=1$",
        ] {
            assert_eq!(
                verify_with(&params, b"pw", phc, &mut blocks),
                Verification::Mismatch
            );
        }
    }

    #[tokio::test]
    async fn unknown_user_never_matches() {
        let hasher = PasswordHasher::new(cheap(), 1, 8, 0).unwrap();
        let result = hasher.verify("anything".into(), None).await.unwrap();
        assert_eq!(result, Verification::Mismatch);
    }

    #[tokio::test]
    async fn bcrypt_hashes_verify_and_ask_for_an_upgrade() {
        let hasher = PasswordHasher::new(cheap(), 1, 8, 0).unwrap();
        let imported = bcrypt::hash("password123", 4).unwrap();
        assert!(is_supported_hash(&imported));
        let ok = hasher
            .verify("password123".into(), Some(imported.clone()))
            .await;
        assert_eq!(ok.unwrap(), Verification::MatchNeedsRehash);
        let bad = hasher.verify("password124".into(), Some(imported)).await;
        assert_eq!(bad.unwrap(), Verification::Mismatch);
        assert!(!is_supported_hash("$2b$nonsense"));
    }

    #[tokio::test]
    async fn bcrypt_hashes_never_match_beyond_72_bytes() {
        let hasher = PasswordHasher::new(cheap(), 1, 8, 0).unwrap();
        let exact = "x".repeat(BCRYPT_MAX_BYTES);
        let imported = bcrypt::hash(&exact, 4).unwrap();
        let verify = |password: String| hasher.verify(password, Some(imported.clone()));
        assert_eq!(
            verify(exact.clone()).await.unwrap(),
            Verification::MatchNeedsRehash
        );
        // bcrypt itself would say yes to both: it reads 72 bytes only.
        assert!(bcrypt::verify(format!("{exact}y"), &imported).unwrap());
        for longer in [format!("{exact}y"), format!("{exact}{exact}")] {
            assert_eq!(verify(longer).await.unwrap(), Verification::Mismatch);
        }
        // 72 bytes of multi-byte characters are still 72 bytes.
        let wide = "é".repeat(BCRYPT_MAX_BYTES / 2);
        let imported = bcrypt::hash(&wide, 4).unwrap();
        let result = hasher.verify(wide.clone(), Some(imported.clone())).await;
        assert_eq!(result.unwrap(), Verification::MatchNeedsRehash);
        let result = hasher.verify(format!("{wide}é"), Some(imported)).await;
        assert_eq!(result.unwrap(), Verification::Mismatch);
    }

    #[tokio::test]
    async fn garbage_hash_is_a_mismatch() {
        let hasher = PasswordHasher::new(cheap(), 1, 8, 0).unwrap();
        let result = hasher
            .verify("x".into(), Some("not a hash".into()))
            .await
            .unwrap();
        assert_eq!(result, Verification::Mismatch);
    }

    #[tokio::test]
    async fn full_queue_is_refused() {
        let hasher = PasswordHasher::new(cheap(), 1, 0, 0).unwrap();
        let result = hasher.hash("whatever1".into()).await;
        assert!(matches!(result, Err(Error::Overloaded(_))));
    }
}
