//! Black-box HTTP conformance suite for the auth server.
//!
//! The suite turns the endpoint contract (`shared/contract.md`) into named cases that talk to
//! a running deployment over HTTP. Every case creates its own users with unique random
//! emails, so cases run concurrently and can be re-run against a persistent server.
//!
//! Covered so far: the rules shared by every profile and the `native` profile (without its
//! admin routes and without rate limiting).
//!
//! ```no_run
//! # async fn demo() {
//! use auth_conformance::{Target, render_table, run_suite};
//!
//! let target = Target {
//!     base_url: "http://127.0.0.1:8080".to_owned(),
//!     label: "axum/sqlite".to_owned(),
//!     hooks: None,
//!     reuse_interval: Some(std::time::Duration::from_secs(10)),
//! };
//! let report = run_suite(&target, Some("refresh/")).await;
//! println!("{}", render_table(&[report]));
//! # }
//! ```

mod cases;
mod check;
mod http;
mod jwt;
mod native;
mod report;
mod runner;
mod shape;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use report::{CaseOutcome, Failure, Outcome, Report, render_table};

/// What the suite talks to.
#[derive(Clone)]
pub struct Target {
    /// Base URL without trailing slash, e.g. "http://127.0.0.1:8080".
    pub base_url: String,
    /// Label shown in reports, e.g. "axum/sqlite".
    pub label: String,
    /// Out-of-band operations a deployment may offer (e.g. through its CLI); cases needing
    /// one are Skipped with a reason when absent.
    pub hooks: Option<Arc<dyn Hooks>>,
    /// The server's refresh-token reuse interval, when known; the reuse-after-interval case
    /// sleeps past it (skipped when None or > 15 s).
    pub reuse_interval: Option<Duration>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("base_url", &self.base_url)
            .field("label", &self.label)
            .field("hooks", &self.hooks.as_ref().map(|_| "<hooks>"))
            .field("reuse_interval", &self.reuse_interval)
            .finish()
    }
}

/// Out-of-band operations.
pub trait Hooks: Send + Sync {
    /// Activate or deactivate the user with this email.
    fn set_active(&self, email: &str, active: bool) -> BoxFuture<'static, Result<(), String>>;
}

/// Runs every case whose `"group/name"` contains `filter` (all cases when `None`) against
/// `target`, concurrently, and reports each outcome in registry order.
///
/// Never panics on a misbehaving server: connection errors, timeouts and even panicking
/// cases are reported as failures.
pub async fn run_suite(target: &Target, filter: Option<&str>) -> Report {
    let selected: Vec<&'static runner::Case> = cases::all()
        .filter(|case| filter.is_none_or(|f| case.path().contains(f)))
        .collect();
    let cases = match http::Ctx::new(target) {
        Ok(ctx) => runner::run(ctx, &selected).await,
        Err(failure) => selected
            .iter()
            .map(|case| case.outcome(Outcome::Failed(failure.clone())))
            .collect(),
    };
    Report {
        label: target.label.clone(),
        cases,
    }
}

/// Every case as `(group, name)`, in registry order.
pub fn case_names() -> Vec<(&'static str, &'static str)> {
    cases::all().map(|case| (case.group, case.name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A target where nothing listens.
    fn unreachable() -> Target {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        Target {
            base_url: format!("http://127.0.0.1:{port}"),
            label: "nowhere".to_owned(),
            hooks: None,
            reuse_interval: None,
        }
    }

    #[tokio::test]
    async fn an_unreachable_target_fails_every_case_that_needs_it() {
        let report = run_suite(&unreachable(), None).await;
        assert_eq!(report.label, "nowhere");
        assert_eq!(report.cases.len(), case_names().len());
        assert_eq!(report.passed(), 0);
        for case in &report.cases {
            match &case.outcome {
                Outcome::Failed(failure) => {
                    assert!(failure.got.contains("request error"), "{case:?}");
                }
                Outcome::Skipped(_) => assert!(
                    case.group == "accounts" || case.name == "reuse_after_interval_revokes_session",
                    "{case:?}"
                ),
                Outcome::Passed => panic!("{case:?}"),
            }
        }
    }

    #[tokio::test]
    async fn the_filter_matches_group_slash_name() {
        let report = run_suite(&unreachable(), Some("shared_rules/healthz")).await;
        let names: Vec<(&str, &str)> = report.cases.iter().map(|c| (c.group, c.name)).collect();
        assert_eq!(names, [("shared_rules", "healthz")]);
        assert!(
            run_suite(&unreachable(), Some("no such case"))
                .await
                .cases
                .is_empty()
        );
        let refresh = run_suite(&unreachable(), Some("refresh/")).await;
        assert!(!refresh.cases.is_empty());
        assert!(refresh.cases.iter().all(|c| c.group == "refresh"));
    }

    #[test]
    fn case_names_are_listed_in_registry_order() {
        let names = case_names();
        assert_eq!(names.first(), Some(&("shared_rules", "healthz")));
        assert!(names.contains(&("concurrency", "refresh_race")));
    }
}
