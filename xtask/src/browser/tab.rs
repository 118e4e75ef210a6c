//! One tab over CDP: a browser context of its own (an empty cookie jar) with one page
//! attached to it, driven through the shared [`Cdp`] connection: navigating, evaluating the
//! page's flows, reading the context's cookies and the console messages; the context is
//! disposed when the [`Tab`] goes.

use std::time::Duration;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};

use super::cdp::Cdp;
use super::jar::Cookie;

/// How long a page may take to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one flow (or phase) of the page may run: a few requests, each hashing a
/// password at most once.
const FLOW_TIMEOUT: Duration = Duration::from_secs(30);

/// A tab in a browser context of its own (a fresh cookie jar), disposed when this goes.
pub struct Tab<'a> {
    /// The connection to the browser, lent for the tab's life.
    cdp: &'a mut Cdp,
    /// The `browserContextId` of its context.
    context: String,
    /// The `sessionId` its page's commands carry.
    session: String,
}

impl<'a> Tab<'a> {
    /// Creates a browser context, a blank page in it, and attaches to that page with the
    /// Page, Runtime and Log domains enabled.
    pub fn open(cdp: &'a mut Cdp) -> anyhow::Result<Self> {
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
    pub fn console(&mut self) -> Vec<String> {
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

    /// Sends a command to this tab's page (e.g. the `WebAuthn` domain's, whose virtual
    /// authenticators belong to the tab).
    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.cdp.call_in(&self.session, method, params)
    }

    /// Loads `url` and waits for its load event.
    pub fn navigate(&mut self, url: &str) -> anyhow::Result<()> {
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
    pub fn evaluate(&mut self, expression: &str) -> anyhow::Result<Value> {
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
    pub fn cookies(&mut self) -> anyhow::Result<Vec<Cookie>> {
        let answer = self.cdp.call(
            "Storage.getCookies",
            json!({ "browserContextId": self.context }),
        )?;
        serde_json::from_value(answer["cookies"].clone())
            .context("Storage.getCookies answered no cookie list")
    }

    /// The cookies the browser would send with a request to `url`.
    pub fn cookies_for(&mut self, url: &str) -> anyhow::Result<Vec<Cookie>> {
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

/// The string `field` of a DevTools answer, or an error showing the answer.
fn string_field(value: &Value, field: &str) -> anyhow::Result<String> {
    value[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the browser's answer has no {field}: {value}"))
}
