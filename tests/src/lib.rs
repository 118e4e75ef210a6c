//! Black-box HTTP conformance suite for the auth server.
//!
//! The suite turns the API reference (`docs/api.md`) into named cases that talk to
//! a running deployment over HTTP. Every case creates its own users with unique random
//! emails (through `native`'s `/register`, or the target's [`Hooks`] when `native` is not
//! mounted), so cases run concurrently and can be re-run against a persistent server. The
//! only shared users are the seeds' examples (`john@doe.com`, `user@example.com`), which the
//! cases that send the seeds' example requests create when absent and only log in as.
//!
//! Covered: the rules shared by every profile, the `native` profile with its admin routes,
//! `envelope`, `personal-token`, `rbac`, `jwt-user`, `GET /openapi.json`, attacks on access
//! tokens and rate limiting. Groups of profiles the target does not mount (see
//! [`Target::profiles`]) are reported Skipped, and so are cases needing something the
//! target did not declare: client IPs through a trusted proxy ([`Target::forwarded_for`]),
//! the configured rate limits ([`Target::limits`]) or the HS256 secret
//! ([`Target::jwt_secret`]).
//!
//! When the deployment applies rate limits, it should trust the suite as a proxy (and
//! [`Target::forwarded_for`] say so): every case then comes from a client IP of its own, and
//! the hundreds of registrations and logins of a run stay under per-IP limits.
//!
//! ```no_run
//! # async fn demo() {
//! use auth_conformance::{DEFAULT_PROFILES, Limits, Mount, Target, render_table, run_suite};
//!
//! let target = Target {
//!     base_url: "http://127.0.0.1:8080".to_owned(),
//!     label: "axum/sqlite".to_owned(),
//!     hooks: None,
//!     reuse_interval: Some(std::time::Duration::from_secs(10)),
//!     profiles: Mount::defaults(DEFAULT_PROFILES),
//!     admin: None,
//!     forwarded_for: true,
//!     another_proxy: None,
//!     limits: Some(Limits::CONTRACT),
//!     jwt_secret: None,
//!     cors_origin: None,
//!     mailbox: None,
//! };
//! let report = run_suite(&target, Some("refresh/")).await;
//! println!("{}", render_table(&[report]));
//! # }
//! ```

mod cases;
mod check;
mod cleanup;
#[cfg(feature = "clap")]
pub mod cli;
mod export;
mod http;
mod jwt;
pub mod mailbox;
pub mod matrix;
mod mount;
mod native;
mod profile;
mod report;
mod runner;
mod shape;
mod totp;
mod users;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

pub use cleanup::{Cleanup, remove_created_users};
pub use export::{render_json, render_junit};
pub use mount::{Credentials, DEFAULT_PROFILES, Mount, ParseMountError};
pub use report::{CaseOutcome, Failure, Outcome, Report, render_skips, render_table};

/// The refresh-token reuse interval to give a server under test (and to pass as
/// [`Target::reuse_interval`]): short, so the reuse-after-interval case waits only this plus a
/// second, yet long enough that the replay cases fall inside it on a loaded CI machine (2 s
/// made them flaky there). The workspace's own launchers use it.
pub const SUITE_REUSE_INTERVAL: Duration = Duration::from_secs(4);

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
    /// The mounted profiles and their prefixes; the groups of the others are Skipped.
    pub profiles: Vec<Mount>,
    /// An existing user with the role `admin`, for the admin routes (their cases are
    /// Skipped without it). When [`Target::forwarded_for`] is false, cases also create their
    /// users through the admin API with it, so a deployment's per-IP registration limit is
    /// spent only by the cases about registering.
    pub admin: Option<Credentials>,
    /// Whether the deployment trusts the suite's address as a proxy, so that it believes the
    /// `X-Forwarded-For` the suite sends. When true, every case sends a client IP of its own
    /// (from 198.18.0.0/15) on every request, so per-IP limits apply per case; cases that
    /// need several client IPs (or a fresh one) are Skipped when false.
    pub forwarded_for: bool,
    /// Another address the deployment trusts as a proxy besides the suite's own (for example
    /// one inside a trusted range such as `127.0.0.0/8`), for the case of a request passing
    /// two proxies; that case is Skipped when `None`.
    pub another_proxy: Option<std::net::IpAddr>,
    /// The deployment's rate limits as configured; the rate-limit cases are Skipped when
    /// `None` (and each is Skipped when its limit is off or above
    /// [`Limits::MAX_EXERCISED`], to keep runs short).
    pub limits: Option<Limits>,
    /// The HS256 secret the deployment signs access tokens with, when known; the cases
    /// that need validly signed crafted tokens (an expired one, a wrong `iss`, ...) are
    /// Skipped without it.
    pub jwt_secret: Option<Vec<u8>>,
    /// A browser origin on the deployment's CORS allow-list (`--cors-allowed-origins`); the
    /// CORS cases are Skipped when `None`.
    pub cors_origin: Option<String>,
    /// Where the suite reads the mail the deployment sends (a [`mailbox::SmtpSink`] it was
    /// pointed at); the cases that follow a mailed link are Skipped when `None`.
    pub mailbox: Option<Arc<dyn mailbox::Mailbox>>,
}

/// A rate limit: at most `max` counted events within a sliding `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Events allowed within the window; 0 means the limit is off.
    pub max: u32,
    /// The window.
    pub window: Duration,
}

impl Limit {
    /// `max` per `secs` seconds.
    pub const fn per(max: u32, secs: u64) -> Self {
        Self {
            max,
            window: Duration::from_secs(secs),
        }
    }

    /// Whether the limit applies at all.
    pub const fn enabled(&self) -> bool {
        self.max > 0
    }
}

impl fmt::Display for Limit {
    /// The server's `MAX/SECONDS` syntax, or `off`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.enabled() {
            write!(f, "{}/{}", self.max, self.window.as_secs())
        } else {
            f.write_str("off")
        }
    }
}

/// The rate limits a deployment applies, as the contract names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Failed logins for one email from one client IP.
    pub login_email_ip: Limit,
    /// Failed logins for one email from anywhere.
    pub login_email: Limit,
    /// Failed logins from one client IP.
    pub login_ip: Limit,
    /// Registrations from one client IP.
    pub register_ip: Limit,
    /// Refreshes from one client IP.
    pub refresh_ip: Limit,
    /// Passkey ceremonies (sign-in, registration, step-up) started from one client IP.
    pub passkey_ip: Limit,
}

impl Limits {
    /// The contract's limits: logins 10/900 per email and IP, 100/3600 per email, 100/900
    /// per IP; registrations 30/3600 and refreshes 300/900 per IP; passkey ceremonies
    /// started 60/600 per IP (issue 15's abuse limit, the server's default).
    pub const CONTRACT: Limits = Limits {
        login_email_ip: Limit::per(10, 900),
        login_email: Limit::per(100, 3600),
        login_ip: Limit::per(100, 900),
        register_ip: Limit::per(30, 3600),
        refresh_ip: Limit::per(300, 900),
        passkey_ip: Limit::per(60, 600),
    };

    /// The largest `max` a rate-limit case exhausts; a case whose limit is higher is
    /// Skipped.
    pub const MAX_EXERCISED: u32 = 200;
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("base_url", &self.base_url)
            .field("label", &self.label)
            .field("hooks", &self.hooks.as_ref().map(|_| "<hooks>"))
            .field("reuse_interval", &self.reuse_interval)
            .field("profiles", &Mount::list_label(&self.profiles))
            .field("admin", &self.admin)
            .field("forwarded_for", &self.forwarded_for)
            .field("limits", &self.limits)
            .field("cors_origin", &self.cors_origin)
            .field("mailbox", &self.mailbox.as_ref().map(|_| "<mailbox>"))
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Out-of-band operations.
pub trait Hooks: Send + Sync {
    /// Activate or deactivate the user with this email.
    fn set_active(&self, email: &str, active: bool) -> BoxFuture<'static, Result<(), String>>;

    /// Create an active user with these credentials, full name and roles. Cases use it to
    /// make users when `native`'s `/register` is not mounted.
    fn create_user(
        &self,
        email: &str,
        password: &str,
        full_name: Option<&str>,
        roles: &[String],
    ) -> BoxFuture<'static, Result<(), String>>;

    /// Create an active user with this email whose credentials are an existing password
    /// hash (argon2 PHC or bcrypt), as an operator migrating users from another system
    /// does (`auth-server user create --password-hash`).
    fn import_user(
        &self,
        email: &str,
        password_hash: &str,
    ) -> BoxFuture<'static, Result<(), String>>;
}

/// Runs every case whose `"group/name"` contains `filter` (all cases when `None`) against
/// `target`, concurrently, and reports each outcome in registry order.
///
/// Never panics on a misbehaving server: connection errors, timeouts and even panicking
/// cases are reported as failures.
pub async fn run_suite(target: &Target, filter: Option<&str>) -> Report {
    run_selected(target, |group, name| {
        filter.is_none_or(|f| format!("{group}/{name}").contains(f))
    })
    .await
}

/// Runs every case for which `select(group, name)` holds, like [`run_suite`].
pub async fn run_selected(target: &Target, select: impl Fn(&str, &str) -> bool) -> Report {
    let selected: Vec<&'static runner::Case> = cases::all()
        .filter(|case| select(case.group, case.name))
        .collect();
    match http::Ctx::new(target) {
        Ok(ctx) => Report {
            label: target.label.clone(),
            cases: runner::run(ctx, &selected).await,
        },
        Err(failure) => Report {
            label: target.label.clone(),
            cases: selected
                .iter()
                .map(|case| case.outcome(Outcome::Failed(failure.clone())))
                .collect(),
        },
    }
}

impl Report {
    /// The report for a target that could not be set up (its server did not start, say):
    /// every case [`run_suite`] would select with `filter` failed with `failure`.
    pub fn unavailable(label: impl Into<String>, filter: Option<&str>, failure: Failure) -> Self {
        Report {
            label: label.into(),
            cases: cases::all()
                .filter(|case| filter.is_none_or(|f| case.path().contains(f)))
                .map(|case| case.outcome(Outcome::Failed(failure.clone())))
                .collect(),
        }
    }
}

/// Every case group's name, in registry order, once each.
pub fn group_names() -> Vec<&'static str> {
    let mut groups: Vec<&'static str> = Vec::new();
    for case in cases::all() {
        if !groups.contains(&case.group) {
            groups.push(case.group);
        }
    }
    groups
}

/// Checks with one request (`GET /healthz`, within 10 s) that something answers HTTP at
/// `base_url`; any status will do. The error is one short line: what failed, without the
/// transport's whole chain of causes.
pub async fn check_reachable(base_url: &str) -> Result<(), String> {
    let url = format!("{}/healthz", base_url.trim_end_matches('/'));
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))?;
    match client.get(&url).send().await {
        Ok(_) => Ok(()),
        Err(err) if err.is_builder() => Err(format!("{base_url} is not a usable URL")),
        Err(err) if err.is_timeout() => Err(format!("no answer from {url} within 10 s")),
        Err(err) if err.is_connect() => Err(format!(
            "cannot connect to {url}: {}",
            http::root_cause(&err)
        )),
        Err(err) => Err(format!(
            "no HTTP answer from {url}: {}",
            http::root_cause(&err)
        )),
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
            profiles: Mount::defaults(DEFAULT_PROFILES),
            admin: None,
            forwarded_for: false,
            another_proxy: None,
            limits: None,
            jwt_secret: None,
            cors_origin: None,
            mailbox: None,
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
                Outcome::Skipped(reason) => assert!(
                    [
                        "not mounted",
                        "hook",
                        "admin credentials",
                        "reuse interval",
                        "X-Forwarded-For",
                        "rate limits",
                        "HS256 secret",
                        "CORS allow-list",
                        "no mailbox",
                    ]
                    .iter()
                    .any(|why| reason.contains(why)),
                    "{case:?}"
                ),
                Outcome::Passed => panic!("{case:?}"),
            }
        }
        let skipped_groups = |group: &str| {
            report
                .cases
                .iter()
                .filter(|c| c.group == group)
                .all(|c| c.outcome == Outcome::Skipped(format!("profile {group} not mounted")))
        };
        assert!(skipped_groups("jwt-user") && skipped_groups("personal-token"));
    }

    #[tokio::test]
    async fn groups_of_unmounted_profiles_are_skipped_without_a_request() {
        let target = Target {
            profiles: Mount::defaults(&["jwt-user"]),
            ..unreachable()
        };
        let report = run_suite(&target, Some("login/")).await;
        assert!(!report.cases.is_empty());
        for case in &report.cases {
            assert_eq!(
                case.outcome,
                Outcome::Skipped("profile native not mounted".to_owned()),
                "{case:?}"
            );
        }
    }

    #[test]
    fn unavailable_targets_fail_the_selected_cases() {
        let report = Report::unavailable("x", Some("refresh/"), Failure::new("a server", "none"));
        assert!(!report.cases.is_empty());
        assert_eq!(report.failed(), report.cases.len());
        assert!(report.cases.iter().all(|c| c.group == "refresh"));
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
