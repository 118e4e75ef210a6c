//! `cargo xtask browser`: the auth server driven by a real headless Chromium, for every
//! adapter × database (issue 12, rule 4). See `docs/browser-test.md`.
//!
//! Per adapter × database: a fresh database, the server (debug build) with the page's
//! origin on its CORS allow-list, the test page served from that origin and from a second
//! one that is not on the list, and a fresh browser context (no cookie of an earlier run)
//! in one Chromium for the whole run. The page runs each flow with plain `fetch`; the test
//! reads the browser's own cookie jar between the cookie flow's phases. One line per step,
//! a summary line, and a non-zero exit on any failure.

mod cdp;
mod chromium;
mod page;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::{
    self, Adapter, Database, FreshDatabase, Launch, Profile, ServerProcess, random_hex_32,
};
use cdp::Cdp;
use chromium::Chromium;
use page::PageServer;

/// How long Chromium may take to print its DevTools URL.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(20);
/// The default bound of one DevTools command.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a page may take to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one flow (or phase) of the page may run: a few requests, each hashing a
/// password at most once.
const FLOW_TIMEOUT: Duration = Duration::from_secs(30);
/// Where the profile under test is mounted on the server.
const API_PATH: &str = "/api/v1/auth";
/// The cookies of the cookie transport with `--cookie-secure false`, and their paths.
const ACCESS_COOKIE: (&str, &str) = ("auth_access", "/");
const REFRESH_COOKIE: (&str, &str) = ("auth_refresh", "/api/v1/auth/refresh");

/// Arguments of `cargo xtask browser`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The adapters to check.
    #[arg(long, value_enum, default_value_t = Adapter::All)]
    adapter: Adapter,
    /// The databases to check on.
    #[arg(long, value_enum, default_value_t = Database::All)]
    database: Database,
    /// The flows to run (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',',
          default_values_t = [Flow::Bearer, Flow::Cookie, Flow::Blocked])]
    flows: Vec<Flow>,
    /// Postgres admin URL under which a fresh database is created per run
    /// (default: `AUTH_TEST_POSTGRES_URL`, else the local server).
    #[arg(long)]
    postgres_url: Option<String>,
    /// The Chromium binary.
    #[arg(long, default_value = "chromium")]
    chromium: PathBuf,
    /// Seconds the whole run may take once the server is built; every step still running
    /// then fails.
    #[arg(long, default_value_t = 150)]
    timeout: u64,
}

/// A flow the page runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Flow {
    /// Register, login, me, refresh, logout with the tokens in the body (`Authorization:
    /// Bearer`).
    Bearer,
    /// The same with `"transport": "cookie"`: HttpOnly cookies, CSRF token, cookie
    /// attributes as the browser stored them.
    Cookie,
    /// A registration from an origin not on the allow-list, which the browser must block.
    Blocked,
}

impl Flow {
    fn name(self) -> &'static str {
        match self {
            Flow::Bearer => "bearer",
            Flow::Cookie => "cookie",
            Flow::Blocked => "blocked",
        }
    }
}

/// One checked step: what was expected and what came.
#[derive(Debug, Clone, Deserialize)]
struct Step {
    name: String,
    ok: bool,
    expected: String,
    got: String,
}

impl Step {
    fn new(
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
    fn error(name: impl Into<String>, expected: impl Into<String>, err: &anyhow::Error) -> Self {
        Self::new(name, false, expected, format!("{err:#}"))
    }
}

/// What a flow (or a phase of one) of the page resolves to.
#[derive(Debug, Deserialize)]
struct PageResult {
    steps: Vec<Step>,
    /// Every string the page's script could read.
    seen: Vec<String>,
    /// Whether it ran to its end (a failed step that later ones depend on stops it).
    completed: bool,
}

/// A cookie as the browser keeps it (`Storage.getCookies`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Cookie {
    name: String,
    value: String,
    path: String,
    http_only: bool,
    secure: bool,
    /// Absent when the cookie set none.
    #[serde(default)]
    same_site: Option<String>,
}

impl Cookie {
    fn attributes(&self) -> String {
        format!(
            "{} path={} httpOnly={} secure={} sameSite={}",
            self.name,
            self.path,
            self.http_only,
            self.secure,
            self.same_site.as_deref().unwrap_or("(none)")
        )
    }
}

/// Runs the flows on every selected adapter × database; `Ok(false)` when a step failed.
pub fn run(args: Args) -> anyhow::Result<bool> {
    let chromium_binary = find_chromium(&args.chromium)?;
    let binary = server::executable(
        &server::build(Profile::Debug, &["auth-server"])?,
        "auth-server",
    )?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.timeout);
    let postgres_url = server::postgres_admin_url(args.postgres_url.as_deref());
    let runtime = tokio::runtime::Runtime::new()?;

    // Watching from before the launch, so that no signal leaves Chromium behind.
    let interrupted = Arc::new(AtomicBool::new(false));
    let browser_pid = Arc::new(AtomicU32::new(0));
    let watcher = runtime.spawn(on_signal(
        Arc::clone(&browser_pid),
        Arc::clone(&interrupted),
    ));
    let browser = Chromium::launch(&chromium_binary, LAUNCH_TIMEOUT)?;
    browser_pid.store(browser.pid(), Ordering::SeqCst);
    let mut cdp = Cdp::connect(browser.ws_url(), CALL_TIMEOUT)
        .with_context(|| format!("cannot drive Chromium{}", browser.stderr_tail()))?;
    cdp.set_deadline(deadline);
    let version = cdp.call("Browser.getVersion", json!({}))?;
    println!(
        "== browser: {} at {}",
        version["product"].as_str().unwrap_or("Chromium"),
        browser.ws_url()
    );

    let (mut passed, mut failed) = (0usize, 0usize);
    let mut failures = String::new();
    'runs: for database in args.database.expand() {
        for adapter in args.adapter.expand() {
            if interrupted.load(Ordering::SeqCst) {
                break 'runs;
            }
            let label = format!("{adapter}/{database}");
            let run_started = Instant::now();
            let check = Check {
                runtime: &runtime,
                binary: &binary,
                adapter,
                database,
                postgres_url: &postgres_url,
                deadline,
            };
            let steps = check.run(&mut cdp, &args.flows);
            let bad = steps.iter().filter(|(_, step)| !step.ok).count();
            println!(
                "== {label}: {} steps, {} ({:.1} s)",
                steps.len(),
                if bad == 0 {
                    "all passed".to_owned()
                } else {
                    format!("{bad} FAILED")
                },
                run_started.elapsed().as_secs_f64()
            );
            for (flow, step) in &steps {
                println!(
                    "{label:<16} {flow:<8} {:<52} {}",
                    step.name,
                    if step.ok { "ok" } else { "FAIL" }
                );
                if step.ok {
                    passed += 1;
                } else {
                    failed += 1;
                    let _ = writeln!(
                        failures,
                        "- {label} {flow} / {}\n    expected: {}\n    got:      {}",
                        step.name, step.expected, step.got
                    );
                }
            }
        }
    }
    drop(cdp);
    // No signal may kill a process group whose id the system has given to another.
    browser_pid.store(0, Ordering::SeqCst);
    watcher.abort();
    drop(browser);
    if interrupted.load(Ordering::SeqCst) {
        bail!("interrupted ({passed} steps passed, {failed} failed before)");
    }
    if !failures.is_empty() {
        println!("\nFailures:\n{failures}");
    }
    println!(
        "browser: {passed} passed, {failed} failed ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(failed == 0)
}

/// On SIGINT, SIGTERM or SIGHUP: kills Chromium's process group (which the terminal's
/// Ctrl-C does not reach) and flags the run, whose remaining calls then fail at once, so it
/// ends through its guards (servers killed, databases dropped, directories removed). A
/// second signal exits at once.
async fn on_signal(browser: Arc<AtomicU32>, interrupted: Arc<AtomicBool>) {
    let kill_browser = || match browser.load(Ordering::SeqCst) {
        0 => {}
        pid => chromium::kill_group(pid),
    };
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut terminate), Ok(mut hangup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
            _ = hangup.recv() => {}
        }
        kill_browser();
        if interrupted.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("browser: interrupted; stopping Chromium, then the servers");
    }
}

/// `binary` as given when it is a path, else found on `PATH`.
fn find_chromium(binary: &Path) -> anyhow::Result<PathBuf> {
    if binary.components().count() > 1 {
        return Ok(binary.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "{} is not on PATH (Debian: `apt-get install -y chromium`)",
                binary.display()
            )
        })
}

/// One adapter × database.
struct Check<'a> {
    runtime: &'a tokio::runtime::Runtime,
    binary: &'a Path,
    adapter: Adapter,
    database: Database,
    postgres_url: &'a str,
    deadline: Instant,
}

impl Check<'_> {
    /// Every step of `flows`, each with its flow's name; a setup that fails is one failed
    /// step, so the other adapters and databases still run.
    fn run(&self, cdp: &mut Cdp, flows: &[Flow]) -> Vec<(&'static str, Step)> {
        match self.try_run(cdp, flows) {
            Ok(steps) => steps,
            Err(err) => vec![(
                "setup",
                Step::error("database, server, pages and tab ready", "all ready", &err),
            )],
        }
    }

    fn try_run(&self, cdp: &mut Cdp, flows: &[Flow]) -> anyhow::Result<Vec<(&'static str, Step)>> {
        let page = PageServer::start(self.runtime)?;
        let stranger = PageServer::start(self.runtime)?;
        let scratch = tempfile::tempdir()?;
        let fresh = FreshDatabase::new(self.database, self.postgres_url, "auth_browser")?;
        let args = vec![
            "--cors-allowed-origins".to_owned(),
            page.origin(),
            // Plain HTTP on 127.0.0.1, where the browser would not send Secure cookies.
            "--cookie-secure".to_owned(),
            "false".to_owned(),
        ];
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
    let left: Vec<&str> = cookies
        .iter()
        .filter(|c| c.name == ACCESS_COOKIE.0 || c.name == REFRESH_COOKIE.0)
        .map(|c| c.name.as_str())
        .collect();
    steps.push(Step::new(
        "cookies cleared by logout",
        left.is_empty(),
        "neither auth_access nor auth_refresh in the browser",
        if left.is_empty() {
            "none".to_owned()
        } else {
            left.join(", ")
        },
    ));
    steps.push(hidden("after logout", &held, &seen));
    steps
}

/// Navigates to `origin` (when given), runs `window.<function>(api)` and appends its steps;
/// what the page could read, or `None` when the phase stopped early (a step that later ones
/// depend on failed, or the page could not run it): the flow stops there.
fn page_phase(
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

/// The browser's cookies, or a failed step.
fn jar(tab: &mut Tab<'_>, name: &str, steps: &mut Vec<Step>) -> Option<Vec<Cookie>> {
    match tab.cookies() {
        Ok(cookies) => Some(cookies),
        Err(err) => {
            steps.push(Step::error(name, "Storage.getCookies answers", &err));
            None
        }
    }
}

/// Each auth cookie's attributes as the browser stored them.
fn attribute_steps(when: &str, cookies: &[Cookie]) -> Vec<Step> {
    [ACCESS_COOKIE, REFRESH_COOKIE]
        .into_iter()
        .map(|(name, path)| {
            let expected = format!("{name} path={path} httpOnly=true secure=false sameSite=Lax");
            let found: Vec<&Cookie> = cookies.iter().filter(|c| c.name == name).collect();
            let got = if found.is_empty() {
                format!("no {name} cookie (the browser has: {})", names(cookies))
            } else {
                found
                    .iter()
                    .map(|c| c.attributes())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            Step::new(
                format!("{name} cookie {when}"),
                got == expected,
                expected,
                got,
            )
        })
        .collect()
}

fn names(cookies: &[Cookie]) -> String {
    if cookies.is_empty() {
        return "none".to_owned();
    }
    cookies
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which cookies the browser would send to `api` + `path` (`Network.getCookies`): all of
/// `sent`, none of `withheld`.
fn sent_to(tab: &mut Tab<'_>, api: &str, path: &str, sent: &[&str], withheld: &[&str]) -> Step {
    let name = format!("cookies the browser sends to {API_PATH}{path}");
    let url = format!("{api}{path}");
    let expected = format!(
        "{}{}",
        sent.join(" and "),
        if withheld.is_empty() {
            String::new()
        } else {
            format!(", not {}", withheld.join(", "))
        }
    );
    match tab.cookies_for(&url) {
        Ok(cookies) => {
            let has = |n: &str| cookies.iter().any(|c| c.name == n);
            let ok = sent.iter().all(|n| has(n)) && !withheld.iter().any(|n| has(n));
            Step::new(name, ok, expected, names(&cookies))
        }
        Err(err) => Step::error(name, expected, &err),
    }
}

/// The auth cookies among `cookies`.
fn auth_cookies(cookies: &[Cookie]) -> Vec<Cookie> {
    cookies
        .iter()
        .filter(|c| c.name == ACCESS_COOKIE.0 || c.name == REFRESH_COOKIE.0)
        .cloned()
        .collect()
}

fn cookie_value(cookies: &[Cookie], name: &str) -> Option<String> {
    cookies
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.value.clone())
}

/// No value of `cookies` shows up in anything the page could read (answer bodies,
/// `document.cookie`).
fn hidden(when: &str, cookies: &[Cookie], seen: &[String]) -> Step {
    let mut leaked: Vec<&str> = cookies
        .iter()
        .filter(|c| !c.value.is_empty() && seen.iter().any(|text| text.contains(&c.value)))
        .map(|c| c.name.as_str())
        .collect();
    leaked.sort_unstable();
    leaked.dedup();
    Step::new(
        format!("no cookie value readable by the page {when}"),
        leaked.is_empty(),
        "no auth cookie value in any answer body or document.cookie",
        if leaked.is_empty() {
            format!("none in {} strings", seen.len())
        } else {
            format!("the value of {} is", leaked.join(", "))
        },
    )
}

/// A tab in a browser context of its own (a fresh cookie jar), disposed when this goes.
struct Tab<'a> {
    cdp: &'a mut Cdp,
    context: String,
    session: String,
}

impl<'a> Tab<'a> {
    fn open(cdp: &'a mut Cdp) -> anyhow::Result<Self> {
        let created = cdp.call(
            "Target.createBrowserContext",
            json!({ "disposeOnDetach": true }),
        )?;
        let context = string_field(&created, "browserContextId")?;
        let mut tab = Self {
            cdp,
            context,
            session: String::new(),
        };
        let target = tab.cdp.call(
            "Target.createTarget",
            json!({ "url": "about:blank", "browserContextId": tab.context }),
        )?;
        let target = string_field(&target, "targetId")?;
        let attached = tab.cdp.call(
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        )?;
        tab.session = string_field(&attached, "sessionId")?;
        tab.call("Page.enable", json!({}))?;
        // Console messages and the browser's own (a CORS refusal, a failed load), to show
        // with a failed step.
        tab.call("Runtime.enable", json!({}))?;
        tab.call("Log.enable", json!({}))?;
        Ok(tab)
    }

    /// The console and log messages of the page since the last call, the last few only.
    fn console(&mut self) -> Vec<String> {
        const SHOWN: usize = 6;
        let messages: Vec<String> = self
            .cdp
            .take_events(Some(&self.session))
            .into_iter()
            .filter_map(|event| console_text(&event.method, &event.params))
            // Logged for every answer that is not 2xx, which the flows expect (401, 403).
            .filter(|text| !text.contains("the server responded with a status of"))
            .collect();
        messages[messages.len().saturating_sub(SHOWN)..].to_vec()
    }

    fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.cdp.call_in(&self.session, method, params)
    }

    /// Loads `url` and waits for its load event.
    fn navigate(&mut self, url: &str) -> anyhow::Result<()> {
        let navigated = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(error) = navigated.get("errorText").and_then(Value::as_str) {
            bail!("cannot load {url}: {error}");
        }
        self.cdp
            .wait_event(Some(&self.session), "Page.loadEventFired", LOAD_TIMEOUT)
            .with_context(|| format!("loading {url}"))?;
        Ok(())
    }

    /// Evaluates `expression` in the page, awaiting a promise; its value as JSON.
    fn evaluate(&mut self, expression: &str) -> anyhow::Result<Value> {
        let answer = self.cdp.call_with(
            Some(&self.session),
            "Runtime.evaluate",
            json!({
                "expression": expression,
                "awaitPromise": true,
                "returnByValue": true,
                "timeout": FLOW_TIMEOUT.as_millis() as u64,
            }),
            FLOW_TIMEOUT + Duration::from_secs(1),
        )?;
        if let Some(details) = answer.get("exceptionDetails") {
            let description = details["exception"]["description"]
                .as_str()
                .or_else(|| details["text"].as_str())
                .unwrap_or("an exception");
            bail!("{expression} threw: {description}");
        }
        Ok(answer["result"]["value"].clone())
    }

    /// Every cookie of this tab's browser context.
    fn cookies(&mut self) -> anyhow::Result<Vec<Cookie>> {
        let answer = self.cdp.call(
            "Storage.getCookies",
            json!({ "browserContextId": self.context }),
        )?;
        serde_json::from_value(answer["cookies"].clone())
            .context("Storage.getCookies answered no cookie list")
    }

    /// The cookies the browser would send with a request to `url`.
    fn cookies_for(&mut self, url: &str) -> anyhow::Result<Vec<Cookie>> {
        let answer = self.call("Network.getCookies", json!({ "urls": [url] }))?;
        serde_json::from_value(answer["cookies"].clone())
            .context("Network.getCookies answered no cookie list")
    }
}

impl Drop for Tab<'_> {
    fn drop(&mut self) {
        // Nobody waits for this tab's events any more.
        self.cdp.take_events(Some(&self.session));
        // Closes the tab and drops its cookies; the browser goes at the end of the run anyway.
        let _ = self.cdp.call(
            "Target.disposeBrowserContext",
            json!({ "browserContextId": self.context }),
        );
    }
}

/// The text of a console or log event, `None` for other events.
fn console_text(method: &str, params: &Value) -> Option<String> {
    match method {
        "Log.entryAdded" => Some(format!(
            "{}: {}",
            params["entry"]["level"].as_str().unwrap_or("log"),
            params["entry"]["text"].as_str().unwrap_or_default()
        )),
        "Runtime.consoleAPICalled" => {
            let args: Vec<String> = params["args"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|arg| match &arg["value"] {
                    Value::String(text) => text.clone(),
                    Value::Null => arg["description"].as_str().unwrap_or_default().to_owned(),
                    other => other.to_string(),
                })
                .collect();
            Some(format!(
                "console.{}: {}",
                params["type"].as_str().unwrap_or("log"),
                args.join(" ")
            ))
        }
        "Runtime.exceptionThrown" => Some(format!(
            "uncaught: {}",
            params["exceptionDetails"]["exception"]["description"]
                .as_str()
                .or_else(|| params["exceptionDetails"]["text"].as_str())
                .unwrap_or_default()
        )),
        _ => None,
    }
}

fn string_field(value: &Value, field: &str) -> anyhow::Result<String> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the browser's answer has no {field}: {value}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(name: &str, path: &str, same_site: Option<&str>) -> Cookie {
        Cookie {
            name: name.to_owned(),
            value: format!("{name}-value"),
            path: path.to_owned(),
            http_only: true,
            secure: false,
            same_site: same_site.map(str::to_owned),
        }
    }

    #[test]
    fn attributes_are_checked_as_the_browser_stored_them() {
        let good = [
            cookie("auth_access", "/", Some("Lax")),
            cookie("auth_refresh", "/api/v1/auth/refresh", Some("Lax")),
        ];
        assert!(attribute_steps("now", &good).iter().all(|s| s.ok));
        let bad = [cookie("auth_access", "/", None)];
        let steps = attribute_steps("now", &bad);
        assert!(!steps[0].ok);
        assert_eq!(
            steps[0].got,
            "auth_access path=/ httpOnly=true secure=false sameSite=(none)"
        );
        assert_eq!(
            steps[1].got,
            "no auth_refresh cookie (the browser has: auth_access)"
        );
    }

    #[test]
    fn a_cookie_value_in_what_the_page_read_is_a_leak() {
        let values = [cookie("auth_access", "/", Some("Lax"))];
        assert!(hidden("x", &values, &["{\"user\":{}}".to_owned()]).ok);
        let leaked = hidden("x", &values, &["a=auth_access-value".to_owned()]);
        assert!(!leaked.ok);
        assert_eq!(leaked.got, "the value of auth_access is");
    }

    #[test]
    fn the_page_defines_every_flow_the_test_calls() {
        for function in [
            "bearerFlow",
            "cookieLogin",
            "cookieRefresh",
            "cookieLogout",
            "blockedFlow",
        ] {
            assert!(
                page::PAGE.contains(&format!("window.{function} = ")),
                "{function}"
            );
        }
    }
}
