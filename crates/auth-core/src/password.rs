//! argon2id hashing on a bounded pool of blocking threads.
//!
//! At most `slots` hashes run at once (each holds `memory_kib` of memory), at most `queue`
//! requests wait for a slot, and anything beyond that is refused at once with
//! [`Error::Overloaded`], so a login flood can neither exhaust memory nor starve the executor.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use std::str::FromStr as _;

use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::Argon2Params;
use crate::error::Error;

/// The pool: `slots` dedicated threads. Cheap to clone.
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

struct Inner {
    params: Params,
    slots: Arc<Semaphore>,
    /// Feeds the dedicated hashing threads (exactly one per slot). Hashing never runs on
    /// tokio's blocking pool: its many threads would each keep an allocator arena holding an
    /// argon2 block, so memory would grow with the number of threads ever used, not slots.
    jobs: std::sync::mpsc::Sender<Job>,
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
    /// Builds the pool. Computes the dummy hash once, which takes one hash's time.
    pub fn new(params: Argon2Params, slots: usize, queue: usize) -> Result<Self, Error> {
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
        let dummy_hash = hash_with(&params, &dummy_secret)?;
        let slots = slots.max(1);
        let (jobs, queue_rx) = std::sync::mpsc::channel::<Job>();
        let queue_rx = Arc::new(std::sync::Mutex::new(queue_rx));
        for index in 0..slots {
            let queue_rx = queue_rx.clone();
            std::thread::Builder::new()
                .name(format!("auth-hash-{index}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while taking a job, never while running it.
                        let job = match queue_rx.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panicking job must not take the thread (and a slot) with it.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return, // the hasher is gone
                        }
                    }
                })
                .map_err(|err| {
                    tracing::error!(error = %err, "cannot start a hashing thread");
                    Error::Internal
                })?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                slots: Arc::new(Semaphore::new(slots)),
                jobs,
                waiting: AtomicUsize::new(0),
                queue,
                dummy_hash,
            }),
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: String) -> Result<String, Error> {
        let params = self.inner.params.clone();
        self.run(move || hash_with(&params, password.as_bytes()))
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
        self.run(move || {
            let (phc, known) = match &phc {
                Some(phc) => (phc.as_str(), true),
                None => (inner.dummy_hash.as_str(), false),
            };
            let verification = verify_with(&inner.params, password.as_bytes(), phc);
            if known {
                verification
            } else {
                Verification::Mismatch
            }
        })
        .await
    }

    /// Runs `work` on a blocking thread once a slot is free.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let inner = &self.inner;
        if inner.waiting.fetch_add(1, Ordering::AcqRel) >= inner.queue {
            inner.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Overloaded(Duration::from_secs(1)));
        }
        let permit = inner.slots.clone().acquire_owned().await;
        inner.waiting.fetch_sub(1, Ordering::AcqRel);
        let permit = permit.map_err(|_| Error::Internal)?;
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _permit = permit;
            let _ = done.send(work());
        });
        // With a permit held, one of the `slots` threads is free to take the job at once.
        inner.jobs.send(job).map_err(|_| Error::Internal)?;
        result.await.map_err(|_| {
            tracing::error!("password hashing task failed");
            Error::Internal
        })
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

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &[u8]) -> Result<String, Error> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| Error::Internal)?;
    argon2(params)
        .hash_password(password, &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| {
            tracing::error!(error = %err, "password hashing failed");
            Error::Internal
        })
}

fn verify_with(params: &Params, password: &[u8], phc: &str) -> Verification {
    if is_bcrypt(phc) {
        // Imported from a bcrypt backend: verify it, and ask for an argon2id upgrade.
        return match bcrypt::verify(password, phc) {
            Ok(true) => Verification::MatchNeedsRehash,
            _ => Verification::Mismatch,
        };
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::warn!("stored password hash is not a PHC string");
        return Verification::Mismatch;
    };
    // The verifier takes its parameters from the stored hash; only the pool bounds memory.
    if argon2(params).verify_password(password, &parsed).is_err() {
        return Verification::Mismatch;
    }
    let current = parsed.algorithm.as_str() == "argon2id"
        && Params::try_from(&parsed).is_ok_and(|stored| {
            stored.m_cost() == params.m_cost()
                && stored.t_cost() == params.t_cost()
                && stored.p_cost() == params.p_cost()
        });
    if current {
        Verification::Match
    } else {
        Verification::MatchNeedsRehash
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
        let hasher = PasswordHasher::new(cheap(), 2, 8).unwrap();
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
        )
        .unwrap();
        let upgrade = stronger.verify("correct horse".into(), Some(phc)).await;
        assert_eq!(upgrade.unwrap(), Verification::MatchNeedsRehash);
    }

    #[tokio::test]
    async fn unknown_user_never_matches() {
        let hasher = PasswordHasher::new(cheap(), 1, 8).unwrap();
        let result = hasher.verify("anything".into(), None).await.unwrap();
        assert_eq!(result, Verification::Mismatch);
    }

    #[tokio::test]
    async fn bcrypt_hashes_verify_and_ask_for_an_upgrade() {
        let hasher = PasswordHasher::new(cheap(), 1, 8).unwrap();
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
    async fn garbage_hash_is_a_mismatch() {
        let hasher = PasswordHasher::new(cheap(), 1, 8).unwrap();
        let result = hasher
            .verify("x".into(), Some("not a hash".into()))
            .await
            .unwrap();
        assert_eq!(result, Verification::Mismatch);
    }

    #[tokio::test]
    async fn full_queue_is_refused() {
        let hasher = PasswordHasher::new(cheap(), 1, 0).unwrap();
        let result = hasher.hash("whatever1".into()).await;
        assert!(matches!(result, Err(Error::Overloaded(_))));
    }
}
