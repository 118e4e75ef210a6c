//! A fixed set of dedicated threads fed by one queue, for work that blocks (database calls,
//! password hashing) and must never run on an async executor thread.
//!
//! Unlike tokio's blocking pool, which grows to hundreds of threads under a burst and lets
//! each of them keep its own allocator arena, the number of threads here is fixed when the
//! pool starts, so the memory a burst can pin is bounded by construction. Each thread owns a
//! piece of state (`S`) that its jobs borrow mutably: the hashing pool keeps its argon2 block
//! array there, so no hash allocates.

use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Error;

/// A job for a worker: runs once with the worker's state.
type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// How long a caller refused by a full queue is told to wait before trying again.
const RETRY_AFTER_FULL: Duration = Duration::from_secs(1);

/// `threads` dedicated threads, each with its own `S`. Dropping the pool lets the threads
/// finish the queued jobs and exit.
pub(crate) struct Workers<S> {
    jobs: Sender<Job<S>>,
    /// Jobs handed over and not finished (queued or running).
    pending: Arc<AtomicUsize>,
    /// Most jobs pending at once; past it, [`Workers::run`] refuses at once.
    capacity: usize,
    /// How long every thread may go without starting or finishing a job before waiting
    /// callers are refused (`None`: no limit); see [`Workers::with_start_deadline`].
    start_within: Option<Duration>,
    /// When a thread last started or finished a job, in microseconds since `epoch`.
    last_activity: Arc<AtomicU64>,
    epoch: Instant,
}

/// Microseconds from `epoch` to now.
fn micros_since(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// A queued job's fate, decided once by whichever comes first: a worker starting it, or
/// its caller giving up waiting.
const WAITING: u8 = 0;
const STARTED: u8 = 1;
const ABANDONED: u8 = 2;

/// One pending job's place; given back when the job has run (or was dropped unrun).
struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<S: 'static> Workers<S> {
    /// Starts `threads` (at least one) threads named `{name}-{index}`, each with the state
    /// `make_state()` gives it, `niceness` nicer than the process (0: unchanged; Linux only,
    /// elsewhere ignored). At most `capacity` jobs (at least one per thread) may be pending
    /// at once, queued or running.
    pub(crate) fn start(
        name: &str,
        threads: usize,
        capacity: usize,
        niceness: i32,
        make_state: impl Fn() -> S + Send + Sync + 'static,
    ) -> std::io::Result<Self> {
        let threads = threads.max(1);
        let (jobs, queue) = channel::<Job<S>>();
        let queue = Arc::new(Mutex::new(queue));
        let make_state = Arc::new(make_state);
        for index in 0..threads {
            let queue = queue.clone();
            let make_state = make_state.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || {
                    lower_priority(niceness);
                    work(&queue, make_state())
                })?;
        }
        Ok(Self {
            jobs,
            pending: Arc::new(AtomicUsize::new(0)),
            capacity: capacity.max(threads),
            start_within: None,
            last_activity: Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        })
    }

    /// Refuses a waiting job with [`Error::Overloaded`] (503 with `Retry-After`), and never
    /// runs it, when it has waited at least `deadline` and no thread has started or
    /// finished a job for `deadline` either: when every thread is stuck (e.g. every database
    /// connection waits on a lock) callers are answered within about `deadline` instead of
    /// queueing for as long as the threads stay stuck, while a busy pool that keeps moving
    /// serves its queue as before (bounded by the capacity). A job once started is waited
    /// for.
    pub(crate) fn with_start_deadline(mut self, deadline: Duration) -> Self {
        self.start_within = Some(deadline);
        self
    }

    /// Runs `job` on a worker and waits for its result without blocking the executor.
    /// A job that panics yields [`Error::Internal`]; the worker survives it. When `capacity`
    /// jobs are already pending, refuses at once with [`Error::Overloaded`] (a 503 with
    /// `Retry-After`): a burst waits in a bounded queue, never in an unbounded one.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce(&mut S) -> T + Send + 'static,
    ) -> Result<T, Error> {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Error::Overloaded(RETRY_AFTER_FULL));
        }
        let place = Place(self.pending.clone());
        let (done, mut result) = tokio::sync::oneshot::channel();
        let fate = Arc::new(AtomicU8::new(WAITING));
        let job_fate = fate.clone();
        let (activity, epoch) = (self.last_activity.clone(), self.epoch);
        // The caller's span (the request and its id) goes with the job, so what the job
        // logs on its thread names the request too.
        let span = tracing::Span::current();
        let job: Job<S> = Box::new(move |state| {
            let _entered = span.enter();
            // Owned here, so that a panicking job gives its place back too.
            let place = place;
            let claimed =
                job_fate.compare_exchange(WAITING, STARTED, Ordering::AcqRel, Ordering::Acquire);
            if claimed.is_ok() {
                activity.fetch_max(micros_since(epoch), Ordering::AcqRel);
                let answer = job(state);
                activity.fetch_max(micros_since(epoch), Ordering::AcqRel);
                // The place goes back before the answer: a caller that runs its next job the
                // moment it has this answer must find the place free (with one place per
                // thread, as the hashing pool has, it would otherwise be refused).
                drop(place);
                let _ = done.send(answer);
            }
        });
        self.jobs.send(job).map_err(|_| {
            tracing::error!("worker threads are gone");
            Error::Internal
        })?;
        let failed = |_| {
            tracing::error!("a blocking job failed");
            Error::Internal
        };
        let Some(deadline) = self.start_within else {
            return result.await.map_err(failed);
        };
        let mut wait = deadline;
        loop {
            if let Ok(answer) = tokio::time::timeout(wait, &mut result).await {
                return answer.map_err(failed);
            }
            let idle = Duration::from_micros(
                micros_since(self.epoch).saturating_sub(self.last_activity.load(Ordering::Acquire)),
            );
            if idle < deadline {
                // The threads are moving: keep the place in the queue, and look again when
                // they will have been still for `deadline` (not a whole `deadline` later:
                // a job queued just before the threads got stuck is then refused about
                // `deadline` after they did, not up to twice that).
                wait = (deadline - idle).max(Duration::from_millis(1));
                continue;
            }
            let gave_up =
                fate.compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
            if gave_up.is_ok() {
                return Err(Error::Overloaded(RETRY_AFTER_FULL));
            }
            // Started in the meantime: it may be writing, so its answer counts.
            return result.await.map_err(failed);
        }
    }
}

/// Adds `niceness` to the calling thread's own (only its; at most 19), so that under
/// contention the scheduler prefers the threads serving requests, however nice the whole
/// server was started. Failure only costs the preference.
fn lower_priority(niceness: i32) {
    if niceness == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // On Linux, PRIO_PROCESS with a thread id applies to that thread alone; a new thread
        // starts with its creator's niceness, and `setpriority` sets an absolute value.
        let thread = rustix::thread::gettid();
        let lowered = rustix::process::getpriority_process(Some(thread))
            .map(|own| own.saturating_add(niceness).min(19))
            .and_then(|target| rustix::process::setpriority_process(Some(thread), target));
        if let Err(err) = lowered {
            tracing::warn!(error = %err, niceness, "cannot lower a worker thread's priority");
        }
    }
}

/// A worker's loop: take a job, run it, until the pool is dropped.
fn work<S>(queue: &Mutex<Receiver<Job<S>>>, mut state: S) {
    loop {
        // The lock is held only while waiting for a job, never while running one.
        let job = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        // A panicking job must not take the thread with it; its caller sees the dropped
        // sender as `Error::Internal`.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut state)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_with_their_workers_state() {
        let workers = Workers::start("test", 2, 64, 0, || 0u32).unwrap();
        let mut seen = 0;
        for _ in 0..10 {
            seen += workers
                .run(|count| {
                    *count += 1;
                    1
                })
                .await
                .unwrap();
        }
        assert_eq!(seen, 10);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_internal_error_and_the_worker_lives_on() {
        let workers = Workers::start("test", 1, 64, 0, || ()).unwrap();
        let failed = workers.run(|_| -> u8 { panic!("boom") }).await;
        assert!(matches!(failed, Err(Error::Internal)));
        assert_eq!(workers.run(|_| 7).await.unwrap(), 7);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn workers_run_at_the_given_niceness() {
        let workers = Workers::start("test", 1, 64, 7, || ()).unwrap();
        let niceness = workers
            .run(|_| rustix::process::getpriority_process(Some(rustix::thread::gettid())))
            .await
            .unwrap()
            .unwrap();
        let own = rustix::process::getpriority_process(None).unwrap();
        assert_eq!(niceness, (own + 7).min(19));
    }

    /// A caller told "done" may hand over its next job at once: with capacity equal to the
    /// threads (as the hashing pool runs it, behind a semaphore of as many permits), the
    /// finished job's place must be free by then, or back-to-back jobs are refused as if the
    /// queue were full.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_finished_job_frees_its_place_before_its_caller_hears_back() {
        let workers = Arc::new(Workers::start("test", 1, 1, 0, || ()).unwrap());
        let permits = Arc::new(tokio::sync::Semaphore::new(1));
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (workers, permits) = (workers.clone(), permits.clone());
                tokio::spawn(async move {
                    let mut refused = 0;
                    for _ in 0..50 {
                        let _permit = permits.acquire().await.unwrap();
                        refused += usize::from(workers.run(|_| ()).await.is_err());
                    }
                    refused
                })
            })
            .collect();
        let mut refused = 0;
        for caller in callers {
            refused += caller.await.unwrap();
        }
        assert_eq!(refused, 0, "jobs refused though a place was free");
    }

    #[tokio::test]
    async fn past_its_capacity_the_queue_refuses_at_once_and_recovers() {
        let workers = Arc::new(Workers::start("test", 1, 3, 0, || ()).unwrap());
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let gate = Arc::new(Mutex::new(gate));
        // One job blocks the only thread, two more wait: the queue is full.
        let mut held = Vec::new();
        for _ in 0..3 {
            let (workers, gate) = (workers.clone(), gate.clone());
            held.push(tokio::spawn(async move {
                workers
                    .run(move |_| {
                        let _ = gate.lock().unwrap().recv();
                    })
                    .await
            }));
        }
        while workers.pending.load(Ordering::Acquire) < 3 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(
            workers.run(|_| ()).await,
            Err(Error::Overloaded(after)) if after == RETRY_AFTER_FULL
        ));
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for job in held {
            job.await.unwrap().unwrap();
        }
        assert_eq!(
            workers.run(|_| 5).await.unwrap(),
            5,
            "places were given back"
        );
        assert_eq!(workers.pending.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_job_no_thread_starts_in_time_is_refused_and_never_runs() {
        let deadline = std::time::Duration::from_millis(200);
        let workers = Arc::new(
            Workers::start("test", 1, 64, 0, || ())
                .unwrap()
                .with_start_deadline(deadline),
        );
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let blocker = {
            let workers = workers.clone();
            tokio::spawn(async move {
                workers
                    .run(move |_| {
                        let _ = gate.recv();
                    })
                    .await
            })
        };
        while workers.pending.load(Ordering::Acquire) < 1 {
            tokio::task::yield_now().await;
        }
        let ran = Arc::new(AtomicUsize::new(0));
        let counter = ran.clone();
        let started = std::time::Instant::now();
        let refused = workers
            .run(move |_| counter.fetch_add(1, Ordering::AcqRel))
            .await;
        let took = started.elapsed();
        assert!(matches!(refused, Err(Error::Overloaded(_))), "{refused:?}");
        assert!(took >= deadline && took < deadline * 10, "{took:?}");
        // The blocker, which had started, is still waited for and answers.
        release.send(()).unwrap();
        blocker.await.unwrap().unwrap();
        assert_eq!(workers.run(|_| 3).await.unwrap(), 3);
        assert_eq!(ran.load(Ordering::Acquire), 0, "the refused job never ran");
        assert_eq!(workers.pending.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_busy_pool_that_keeps_moving_refuses_nobody() {
        let deadline = std::time::Duration::from_millis(50);
        let workers = Arc::new(
            Workers::start("test", 1, 64, 0, || ())
                .unwrap()
                .with_start_deadline(deadline),
        );
        // 40 jobs of 10 ms on one thread: the last waits ~400 ms, far past the deadline,
        // but the thread finishes a job every 10 ms.
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let workers = workers.clone();
                tokio::spawn(async move {
                    workers
                        .run(|_| std::thread::sleep(std::time::Duration::from_millis(10)))
                        .await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    }

    #[tokio::test]
    async fn at_most_the_given_number_of_jobs_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let workers = Arc::new(Workers::start("test", 3, 64, 0, || ()).unwrap());
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let (workers, running, peak) = (workers.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                workers
                    .run(move |_| {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                    .unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let peak = peak.load(Ordering::SeqCst);
        assert!((1..=3).contains(&peak), "{peak} jobs ran at once");
    }
}
