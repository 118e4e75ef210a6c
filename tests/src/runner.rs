//! The case registry's item type and the bounded, time-limited concurrent runner.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::{RwLock, Semaphore};

use crate::http::{Ctx, ThrottleNote};
use crate::profile::Profile;
use crate::report::{CaseOutcome, Failure, Outcome};

/// How many cases run at once.
const CONCURRENCY: usize = 8;
/// How long one case may take before it is reported as failed.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a case stopped before passing.
#[derive(Debug)]
pub(crate) enum CaseError {
    /// The server broke the contract.
    Failed(Failure),
    /// The case cannot run against this target.
    Skipped(String),
}

impl From<Failure> for CaseError {
    fn from(failure: Failure) -> Self {
        CaseError::Failed(failure)
    }
}

/// What a case returns: `Ok` when it passed.
pub(crate) type CaseResult = Result<(), CaseError>;

/// One named conformance case.
pub(crate) struct Case {
    /// Group, e.g. "refresh".
    pub(crate) group: &'static str,
    /// Name within the group.
    pub(crate) name: &'static str,
    /// Profiles that must be mounted for the case to run; Skipped otherwise.
    pub(crate) needs: &'static [Profile],
    /// Whether the case must run alone: it changes state every other case relies on (who
    /// the target's admins are), so no other case of the run overlaps it.
    pub(crate) alone: bool,
    /// The case itself.
    pub(crate) run: fn(Ctx) -> BoxFuture<'static, CaseResult>,
}

impl Case {
    /// "group/name", which the suite's filter matches against.
    pub(crate) fn path(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }

    /// This case with `outcome`.
    pub(crate) fn outcome(&self, outcome: Outcome) -> CaseOutcome {
        CaseOutcome {
            group: self.group,
            name: self.name,
            outcome,
        }
    }
}

/// Declares a group's `CASES` from `async fn name(ctx: Ctx) -> CaseResult` items; each
/// case is named after its function. `needs [Native, Rbac]` after the group names the
/// profiles ([`Profile`] variants) its cases need mounted; after a case, it replaces the
/// group's list for that case. `(alone)` after a case makes it run with no other case
/// of the run overlapping it (see [`Case::alone`]).
///
/// ```text
/// cases!("rbac" needs [Rbac]: login_works, me_shows_admin_roles needs [Rbac, Native]);
/// cases!("admin" needs [Native]: create_user, demote_the_last_admin (alone));
/// ```
macro_rules! cases {
    ($group:literal needs $needs:tt:
        $($name:ident $(needs $own:tt)? $(($flag:ident))?),+ $(,)?) => {
        /// This group's cases, in run order.
        pub(crate) const CASES: &[$crate::runner::Case] = &[$(
            $crate::runner::Case {
                group: $group,
                name: stringify!($name),
                needs: $crate::runner::cases!(@needs $needs $($own)?),
                alone: $crate::runner::cases!(@alone $($flag)?),
                run: |ctx| ::futures_util::FutureExt::boxed($name(ctx)),
            },
        )+];
    };
    (@needs $group:tt) => { $crate::runner::cases!(@list $group) };
    (@needs $group:tt $own:tt) => { $crate::runner::cases!(@list $own) };
    (@list [$($profile:ident),* $(,)?]) => { &[$($crate::profile::Profile::$profile),*] };
    (@alone) => { false };
    (@alone alone) => { true };
}
pub(crate) use cases;

/// Why `case` cannot run against `ctx`'s target, if it cannot: a profile it needs is not
/// mounted.
fn unmet_needs(ctx: &Ctx, case: &Case) -> Option<String> {
    case.needs
        .iter()
        .find(|profile| !ctx.mounted(**profile))
        .map(|profile| format!("profile {} not mounted", profile.name()))
}

/// Why a failed case is Skipped instead: it got a 429 (see [`Ctx::throttle_note`]).
fn throttled_reason(note: Option<ThrottleNote>) -> Option<String> {
    let note = note?;
    let first = note
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()?;
    Some(format!(
        "the deployment rate-limited this machine ({first}): every case comes from one \
         address, which its per-IP limits count together; let it trust this machine as a \
         proxy (--trusted-proxies) and pass --forwarded-for, or run again later"
    ))
}

/// Runs `cases` against `ctx`, at most [`CONCURRENCY`] at a time, each within
/// [`CASE_TIMEOUT`] and with a client IP of its own; outcomes come back in the order of
/// `cases`. Cases whose profiles are not mounted are Skipped without running. A case that
/// runs [`Case::alone`] waits until the cases running before it are done, and the cases
/// after it wait for it (neither wait counts against the timeout).
pub(crate) async fn run(ctx: Ctx, cases: &[&'static Case]) -> Vec<CaseOutcome> {
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    // Every case holds it while running: shared by ordinary cases, exclusive for those
    // that run alone. Fair, so an exclusive case queued is not starved by later ones.
    let overlap = Arc::new(RwLock::new(()));
    let handles: Vec<_> = cases
        .iter()
        .map(|case| {
            let unmet = unmet_needs(&ctx, case);
            // Every case comes from a client IP of its own (when the target believes
            // `X-Forwarded-For`), so per-IP rate limits never couple two cases.
            let (ctx, throttled) = ctx.clone().with_fresh_ip().throttle_note();
            let (permits, overlap, run) = (Arc::clone(&permits), Arc::clone(&overlap), case.run);
            let alone = case.alone;
            tokio::spawn(async move {
                if let Some(reason) = unmet {
                    return Outcome::Skipped(reason);
                }
                // Taken before a permit, so a case waiting for its turn holds no permit.
                let (_shared, _exclusive) = if alone {
                    (None, Some(overlap.write().await))
                } else {
                    (Some(overlap.read().await), None)
                };
                // The semaphore is never closed, so acquiring cannot fail; run anyway if it did.
                let _permit = permits.acquire_owned().await;
                match tokio::time::timeout(CASE_TIMEOUT, run(ctx)).await {
                    Ok(Ok(())) => Outcome::Passed,
                    Ok(Err(CaseError::Failed(failure))) => match throttled_reason(throttled) {
                        Some(reason) => Outcome::Skipped(reason),
                        None => Outcome::Failed(failure),
                    },
                    Ok(Err(CaseError::Skipped(reason))) => Outcome::Skipped(reason),
                    Err(_) => Outcome::Failed(Failure::new(
                        format!("the case finishes within {} s", CASE_TIMEOUT.as_secs()),
                        "timed out",
                    )),
                }
            })
        })
        .collect();

    let mut outcomes = Vec::with_capacity(cases.len());
    for (case, handle) in cases.iter().zip(handles) {
        let outcome = handle.await.unwrap_or_else(|error| {
            Outcome::Failed(Failure::new(
                "the case runs to completion",
                format!("the case crashed: {error}"),
            ))
        });
        outcomes.push(case.outcome(outcome));
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;

    async fn passes(_: Ctx) -> CaseResult {
        Ok(())
    }

    async fn skips(_: Ctx) -> CaseResult {
        Err(CaseError::Skipped("why".to_owned()))
    }

    async fn fails(_: Ctx) -> CaseResult {
        Err(Failure::new("this", "that").into())
    }

    async fn panics(_: Ctx) -> CaseResult {
        panic!("boom")
    }

    mod fixture {
        use super::*;
        cases!("fixture" needs []:
            passes,
            skips,
            fails,
            panics,
            needs_rbac needs [Rbac],
            needs_native_and_envelope needs [Native, Envelope],
        );

        async fn needs_rbac(_: Ctx) -> CaseResult {
            Ok(())
        }

        async fn needs_native_and_envelope(_: Ctx) -> CaseResult {
            Ok(())
        }
    }

    /// A context for a target nobody is asked about.
    fn nowhere() -> Ctx {
        Ctx::new(&Target {
            base_url: "http://127.0.0.1:9".to_owned(),
            label: "t".to_owned(),
            hooks: None,
            reuse_interval: None,
            profiles: crate::Mount::defaults(&["native"]),
            admin: None,
            forwarded_for: false,
            another_proxy: None,
            limits: None,
            jwt_secret: None,
            cors_origin: None,
            mailbox: None,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn outcomes_keep_registry_order_and_panics_become_failures() {
        let ctx = nowhere();
        let cases: Vec<&'static Case> = fixture::CASES.iter().collect();
        let outcomes = run(ctx, &cases).await;
        let names: Vec<&str> = outcomes.iter().map(|o| o.name).collect();
        assert_eq!(
            names,
            [
                "passes",
                "skips",
                "fails",
                "panics",
                "needs_rbac",
                "needs_native_and_envelope"
            ]
        );
        assert_eq!(
            outcomes[4].outcome,
            Outcome::Skipped("profile rbac not mounted".to_owned())
        );
        assert_eq!(
            outcomes[5].outcome,
            Outcome::Skipped("profile envelope not mounted".to_owned())
        );
        assert_eq!(outcomes[0].outcome, Outcome::Passed);
        assert_eq!(outcomes[1].outcome, Outcome::Skipped("why".to_owned()));
        assert_eq!(
            outcomes[2].outcome,
            Outcome::Failed(Failure::new("this", "that"))
        );
        match &outcomes[3].outcome {
            Outcome::Failed(failure) => assert!(failure.got.contains("crashed"), "{failure:?}"),
            other => panic!("{other:?}"),
        }
        assert!(outcomes.iter().all(|o| o.group == "fixture"));
    }

    /// The cases of [`lonely`] running now, and whether one ran beside a case that runs
    /// alone.
    static RUNNING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static OVERLAPPED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    mod lonely {
        use super::*;
        use std::sync::atomic::Ordering;

        cases!("lonely" needs []: one, two, alone_a (alone), three, alone_b (alone), four);

        /// Counts itself running for a while; `alone` cases check nobody else is.
        async fn busy(alone: bool) -> CaseResult {
            let before = RUNNING.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(30)).await;
            let after = RUNNING.fetch_sub(1, Ordering::SeqCst);
            if alone && (before != 0 || after != 1) {
                OVERLAPPED.store(true, Ordering::SeqCst);
            }
            Ok(())
        }

        async fn one(_: Ctx) -> CaseResult {
            busy(false).await
        }
        async fn two(_: Ctx) -> CaseResult {
            busy(false).await
        }
        async fn three(_: Ctx) -> CaseResult {
            busy(false).await
        }
        async fn four(_: Ctx) -> CaseResult {
            busy(false).await
        }
        async fn alone_a(_: Ctx) -> CaseResult {
            busy(true).await
        }
        async fn alone_b(_: Ctx) -> CaseResult {
            busy(true).await
        }
    }

    #[tokio::test]
    async fn cases_that_run_alone_overlap_no_other_case() {
        let cases: Vec<&'static Case> = lonely::CASES.iter().collect();
        assert_eq!(
            cases.iter().map(|c| c.alone).collect::<Vec<_>>(),
            [false, false, true, false, true, false]
        );
        let outcomes = run(nowhere(), &cases).await;
        assert!(outcomes.iter().all(|o| o.outcome == Outcome::Passed));
        assert!(!OVERLAPPED.load(std::sync::atomic::Ordering::SeqCst));
    }
}
