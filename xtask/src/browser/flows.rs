//! The flows of one adapter × database ([`Check`]): a fresh database, the server and the two
//! page servers, then the bearer, blocked, cookie and passkey flows in one [`Tab`], each a list of
//! [`Step`]s; [`page_phase`] runs one of the page's functions and turns what it resolves to
//! into steps.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use serde::Deserialize;
use serde_json::Value;

use super::API_PATH;
use super::cdp::Cdp;
use super::jar::{
    ACCESS_COOKIE, REFRESH_COOKIE, attribute_steps, auth_cookies, cookie_value, hidden, jar, names,
    sent_to,
};
use super::page::PageServer;
use super::passkey;
use super::tab::Tab;
use crate::server::{Adapter, Database, FreshDatabase, Launch, ServerProcess, random_hex_32};

/// A flow the page runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Flow {
    /// Register, login, me, refresh, logout with the tokens in the body (`Authorization:
    /// Bearer`).
    Bearer,
    /// The same with `"transport": "cookie"`: HttpOnly cookies, CSRF token, cookie
    /// attributes as the browser stored them.
    Cookie,
    /// A registration from an origin not on the allow-list, which the browser must block.
    Blocked,
    /// Passkeys (WebAuthn) against Chromium's virtual authenticator, from
    /// `http://localhost:PORT`: registration, discoverable and email sign-in, the second
    /// factor, step-up, the exclude list, deletion.
    Passkey,
}

impl Flow {
    /// The flow's name, as `--flows` takes it and the output shows it.
    fn name(self) -> &'static str {
        match self {
            Flow::Bearer => "bearer",
            Flow::Cookie => "cookie",
            Flow::Blocked => "blocked",
            Flow::Passkey => "passkey",
        }
    }
}

/// One checked step: what was expected and what came.
#[derive(Debug, Clone, Deserialize)]
pub struct Step {
    /// What is checked.
    pub name: String,
    /// Whether what came is what was expected.
    pub ok: bool,
    /// What was expected.
    pub expected: String,
    /// What came.
    pub got: String,
}

impl Step {
    /// A step from its parts.
    pub fn new(
        name: impl Into<String>,
        ok: bool,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            ok,
            expected: expected.into(),
            got: got.into(),
        }
    }

    /// A step that could not run at all.
    pub fn error(
        name: impl Into<String>,
        expected: impl Into<String>,
        err: &anyhow::Error,
    ) -> Self {
        Self::new(name, false, expected, format!("{err:#}"))
    }
}

/// What a flow (or a phase of one) of the page resolves to.
#[derive(Debug, Deserialize)]
struct PageResult {
    /// The steps it checked, in order.
    steps: Vec<Step>,
    /// Every string the page's script could read.
    seen: Vec<String>,
    /// Whether it ran to its end (a failed step that later ones depend on stops it).
    completed: bool,
}

/// One adapter × database.
pub struct Check<'a> {
    /// The runtime the server and the page servers run on.
    pub runtime: &'a tokio::runtime::Runtime,
    /// The `auth-server` binary.
    pub binary: &'a Path,
    /// The adapter the server runs.
    pub adapter: Adapter,
    /// The database the server runs on.
    pub database: Database,
    /// The Postgres admin URL under which a fresh database is created.
    pub postgres_url: &'a str,
    /// When the whole run's time runs out.
    pub deadline: Instant,
}

impl Check<'_> {
    /// Every step of `flows`, each with its flow's name; a setup that fails is one failed
    /// step, so the other adapters and databases still run.
    pub fn run(&self, cdp: &mut Cdp, flows: &[Flow]) -> Vec<(&'static str, Step)> {
        match self.try_run(cdp, flows) {
            Ok(steps) => steps,
            Err(err) => vec![(
                "setup",
                Step::error("database, server, pages and tab ready", "all ready", &err),
            )],
        }
    }

    /// [`Check::run`], with a setup that fails as an error.
    fn try_run(&self, cdp: &mut Cdp, flows: &[Flow]) -> anyhow::Result<Vec<(&'static str, Step)>> {
        let page = PageServer::start(self.runtime)?;
        let stranger = PageServer::start(self.runtime)?;
        let scratch = tempfile::tempdir()?;
        let fresh = FreshDatabase::new(self.database, self.postgres_url, "auth_browser")?;
        let mut origins = page.origin();
        let mut args = Vec::new();
        if flows.contains(&Flow::Passkey) {
            // The passkey flow's page is on http://localhost:PORT, the RP id `localhost`.
            let localhost = page.localhost_origin();
            origins = format!("{origins},{localhost}");
            args.extend(passkey::server_args(&localhost));
        }
        args.extend([
            "--cors-allowed-origins".to_owned(),
            origins,
            // Plain HTTP on 127.0.0.1, where the browser would not send Secure cookies.
            "--cookie-secure".to_owned(),
            "false".to_owned(),
        ]);
        let launch = Launch {
            binary: self.binary,
            adapter: self.adapter,
            database_url: fresh.url(),
            args,
            env: vec![("AUTH_JWT_SECRET", random_hex_32())],
            log_filter: "warn",
            log_path: scratch.path().join("server.log"),
        };
        let left = self.deadline.saturating_duration_since(Instant::now());
        let mut server = self
            .runtime
            // The timer is made inside the runtime, which it needs.
            .block_on(async { tokio::time::timeout(left, ServerProcess::start(&launch)).await })
            .map_err(|_| anyhow::anyhow!("the run's time ran out before the server started"))??;
        let api = format!("{}{API_PATH}", server.base_url());

        let mut tab = Tab::open(cdp)?;
        let mut steps = Vec::new();
        for &flow in flows {
            let flow_steps = match flow {
                Flow::Bearer => bearer(&mut tab, &page.origin(), &api),
                Flow::Cookie => cookie(&mut tab, &page.origin(), &api),
                Flow::Blocked => blocked(&mut tab, &stranger.origin(), &api),
                Flow::Passkey => passkey::flow(&mut tab, &page.localhost_origin(), &api),
            };
            steps.extend(flow_steps.into_iter().map(|step| (flow.name(), step)));
        }
        // A flow that crashed the server shows here, not only as failed requests.
        if let Err(err) = server.check_alive() {
            steps.push((
                "server",
                Step::error("the server is still running", "running", &err),
            ));
        }
        Ok(steps)
    }
}

/// The bearer flow, on the allowed origin.
fn bearer(tab: &mut Tab<'_>, origin: &str, api: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let _ = page_phase(tab, Some(origin), "bearerFlow", api, &mut steps);
    steps
}

/// The blocked registration, on the origin that is not on the allow-list.
fn blocked(tab: &mut Tab<'_>, origin: &str, api: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let _ = page_phase(tab, Some(origin), "blockedFlow", api, &mut steps);
    steps
}

/// The cookie flow: login, then the cookies as the browser stored them, refresh, the access
/// cookie renewed, logout, both cookies gone; the page never able to read a cookie's value.
fn cookie(tab: &mut Tab<'_>, origin: &str, api: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut seen = Vec::new();
    // Every auth cookie the browser has held so far, old values included.
    let mut held = Vec::new();
    let Some(login) = page_phase(tab, Some(origin), "cookieLogin", api, &mut steps) else {
        return steps;
    };
    seen.extend(login);
    let Some(cookies) = jar(tab, "cookies after login", &mut steps) else {
        return steps;
    };
    held.extend(auth_cookies(&cookies));
    steps.extend(attribute_steps("after login", &cookies));
    steps.push(sent_to(
        tab,
        api,
        "/me",
        &[ACCESS_COOKIE.0],
        &[REFRESH_COOKIE.0],
    ));
    let both = [ACCESS_COOKIE.0, REFRESH_COOKIE.0];
    steps.push(sent_to(tab, api, "/refresh", &both, &[]));
    steps.push(hidden("after login", &held, &seen));
    let before = cookie_value(&cookies, ACCESS_COOKIE.0);

    let Some(refresh) = page_phase(tab, None, "cookieRefresh", "", &mut steps) else {
        return steps;
    };
    seen.extend(refresh);
    let Some(cookies) = jar(tab, "cookies after refresh", &mut steps) else {
        return steps;
    };
    held.extend(auth_cookies(&cookies));
    let after = cookie_value(&cookies, ACCESS_COOKIE.0);
    steps.push(Step::new(
        "access cookie renewed by refresh",
        after.is_some() && after != before,
        "a new auth_access value",
        match (&before, &after) {
            (_, None) => "no auth_access cookie".to_owned(),
            (Some(b), Some(a)) if a == b => "the same value as before".to_owned(),
            _ => "a new value".to_owned(),
        },
    ));
    steps.extend(attribute_steps("after refresh", &cookies));
    steps.push(hidden("after refresh", &held, &seen));

    let Some(logout) = page_phase(tab, None, "cookieLogout", "", &mut steps) else {
        return steps;
    };
    seen.extend(logout);
    let Some(cookies) = jar(tab, "cookies after logout", &mut steps) else {
        return steps;
    };
    let left = auth_cookies(&cookies);
    steps.push(Step::new(
        "cookies cleared by logout",
        left.is_empty(),
        "neither auth_access nor auth_refresh in the browser",
        names(&left),
    ));
    steps.push(hidden("after logout", &held, &seen));
    steps
}

/// Navigates to `origin` (when given), runs `window.<function>(api)` and appends its steps;
/// what the page could read, or `None` when the phase stopped early (a step that later ones
/// depend on failed, or the page could not run it): the flow stops there.
pub(super) fn page_phase(
    tab: &mut Tab<'_>,
    origin: Option<&str>,
    function: &str,
    api: &str,
    steps: &mut Vec<Step>,
) -> Option<Vec<String>> {
    let result = (|| -> anyhow::Result<PageResult> {
        if let Some(origin) = origin {
            tab.navigate(&format!("{origin}/"))?;
        }
        let expression = format!("window.{function}({})", Value::from(api));
        let value = tab.evaluate(&expression)?;
        serde_json::from_value(value)
            .with_context(|| format!("{function} resolved to something else than {{steps, seen}}"))
    })();
    let console = tab.console();
    let (mut phase, seen) = match result {
        Ok(result) if result.steps.is_empty() => (
            vec![Step::new(function, false, "at least one step", "none")],
            None,
        ),
        Ok(result) => (result.steps, result.completed.then_some(result.seen)),
        Err(err) => (
            vec![Step::error(
                format!("{function} runs in the page"),
                "the page's promise resolves",
                &err,
            )],
            None,
        ),
    };
    // When a phase stops, what the browser said is often the reason (e.g. "blocked by CORS
    // policy: …").
    if seen.is_none()
        && !console.is_empty()
        && let Some(failed) = phase.iter_mut().rev().find(|step| !step.ok)
    {
        // Writing to a String cannot fail.
        let _ = write!(
            failed.got,
            "\n    browser console: {}",
            console.join("\n      ")
        );
    }
    steps.extend(phase);
    seen
}

#[cfg(test)]
mod tests {
    use super::super::{page, passkey};

    #[test]
    fn the_page_defines_every_flow_the_test_calls() {
        let others = [
            "bearerFlow",
            "cookieLogin",
            "cookieRefresh",
            "cookieLogout",
            "blockedFlow",
        ];
        for function in others.into_iter().chain(passkey::PHASES) {
            assert!(
                page::PAGE.contains(&format!("window.{function} = ")),
                "{function}"
            );
        }
    }
}
