//! A small blocking client of the Chrome DevTools Protocol (CDP): one websocket to the
//! browser, commands matched to their answers by id, events kept for whoever waits on them.
//!
//! Commands to a page go through the same socket with the `sessionId` that
//! `Target.attachToTarget { flatten: true }` returned ([`Cdp::call_in`]), so one connection
//! drives every tab. Every read is bounded: by the call's own timeout and by the deadline of
//! the whole run ([`Cdp::set_deadline`]), whichever comes first. Kept small and general on
//! purpose: the WebAuthn test will drive the virtual authenticator (`WebAuthn.*`) through it.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How many events are kept for [`Cdp::wait_event`]; older ones are dropped (a page with
/// the Network domain enabled sends several per request).
const MAX_EVENTS: usize = 1000;

/// An event the browser sent (a message with `method` and no `id`).
#[derive(Debug, Clone)]
pub struct Event {
    /// E.g. `Page.loadEventFired`.
    pub method: String,
    /// The session it came from (`None`: the browser itself).
    pub session_id: Option<String>,
    /// Its parameters.
    pub params: Value,
}

/// A connection to the browser's DevTools websocket.
pub struct Cdp {
    socket: WebSocket<TcpStream>,
    next_id: u64,
    events: VecDeque<Event>,
    timeout: Duration,
    deadline: Option<Instant>,
}

impl Cdp {
    /// Connects to `ws_url` (`ws://127.0.0.1:PORT/devtools/browser/…`, as Chromium prints
    /// it); `timeout` bounds the connection and is the default for every call.
    pub fn connect(ws_url: &str, timeout: Duration) -> anyhow::Result<Self> {
        let addr = socket_addr(ws_url)?;
        let stream = TcpStream::connect_timeout(&addr, timeout)
            .with_context(|| format!("cannot connect to the DevTools socket {addr}"))?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let (socket, _response) = tungstenite::client::client(ws_url, stream)
            .map_err(|err| anyhow::anyhow!("DevTools websocket handshake with {ws_url}: {err}"))?;
        Ok(Self {
            socket,
            next_id: 1,
            events: VecDeque::new(),
            timeout,
            deadline: None,
        })
    }

    /// No call waits past `deadline` (the end of the whole run), whatever its own timeout.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }

    /// Sends a browser-level command and waits for its answer: the `result` object, or an
    /// error with the protocol's message.
    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.call_with(None, method, params, self.timeout)
    }

    /// Sends a command to the target attached as `session` (a `sessionId`).
    pub fn call_in(&mut self, session: &str, method: &str, params: Value) -> anyhow::Result<Value> {
        self.call_with(Some(session), method, params, self.timeout)
    }

    /// Sends a command, to the browser or to `session`, and waits up to `timeout` (and the
    /// run's deadline) for its answer; events arriving meanwhile are kept.
    pub fn call_with(
        &mut self,
        session: Option<&str>,
        method: &str,
        params: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            message["sessionId"] = Value::from(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .with_context(|| format!("cannot send {method} to the browser"))?;
        let deadline = self.deadline_after(timeout);
        loop {
            let Some(message) = self
                .read_json(deadline)
                .with_context(|| format!("waiting for the answer to {method}"))?
            else {
                bail!("no answer to {method} within {} ms", timeout.as_millis());
            };
            match message.get("id").and_then(Value::as_u64) {
                Some(answer) if answer == id => {
                    if let Some(error) = message.get("error") {
                        bail!("{method} failed: {error}");
                    }
                    return Ok(message.get("result").cloned().unwrap_or(Value::Null));
                }
                // The late answer to a call that timed out: nobody waits for it any more.
                Some(_) => {}
                None => self.keep_event(message),
            }
        }
    }

    /// Waits up to `timeout` for the event `method` from `session` (`None`: the browser),
    /// including one that came while a call was waiting; its parameters. The event is
    /// taken, so a second wait needs a second event.
    pub fn wait_event(
        &mut self,
        session: Option<&str>,
        method: &str,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let matches =
            |event: &Event| event.method == method && event.session_id.as_deref() == session;
        if let Some(index) = self.events.iter().position(matches)
            && let Some(event) = self.events.remove(index)
        {
            return Ok(event.params);
        }
        let deadline = self.deadline_after(timeout);
        loop {
            let Some(message) = self
                .read_json(deadline)
                .with_context(|| format!("waiting for the event {method}"))?
            else {
                bail!("no {method} event within {} ms", timeout.as_millis());
            };
            if message.get("id").is_some() {
                continue;
            }
            let event = event(message);
            if matches(&event) {
                return Ok(event.params);
            }
            self.push_event(event);
        }
    }

    /// Takes the events from `session` (`None`: the browser) kept so far, those nobody
    /// waited for, oldest first: e.g. console messages to show when a step fails.
    pub fn take_events(&mut self, session: Option<&str>) -> Vec<Event> {
        let (taken, kept): (VecDeque<Event>, VecDeque<Event>) = std::mem::take(&mut self.events)
            .into_iter()
            .partition(|event| event.session_id.as_deref() == session);
        self.events = kept;
        taken.into()
    }

    /// The earlier of `now + timeout` and the run's deadline.
    fn deadline_after(&self, timeout: Duration) -> Instant {
        let own = Instant::now() + timeout;
        self.deadline.map_or(own, |deadline| deadline.min(own))
    }

    /// The next JSON message, or `None` when `deadline` passes first.
    fn read_json(&mut self, deadline: Instant) -> anyhow::Result<Option<Value>> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // A zero read timeout would mean "block forever".
            self.socket
                .get_ref()
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
            match self.socket.read() {
                Ok(Message::Text(text)) => {
                    let value = serde_json::from_str(text.as_str())
                        .context("the browser sent a message that is not JSON")?;
                    return Ok(Some(value));
                }
                // Pings are answered by tungstenite itself; CDP sends no binary frames.
                Ok(Message::Close(frame)) => bail!("the browser closed the connection: {frame:?}"),
                Ok(_) => {}
                // The read timed out; tungstenite keeps any partial frame for the next read.
                Err(tungstenite::Error::Io(err))
                    if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(err) => return Err(err).context("the DevTools connection failed"),
            }
        }
    }

    fn keep_event(&mut self, message: Value) {
        self.push_event(event(message));
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

impl Drop for Cdp {
    fn drop(&mut self) {
        // A courtesy only: the browser is killed next anyway.
        let _ = self.socket.close(None);
        let _ = self.socket.flush();
    }
}

/// A message without `id` as an [`Event`].
fn event(mut message: Value) -> Event {
    Event {
        method: message
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        session_id: message
            .get("sessionId")
            .and_then(Value::as_str)
            .map(str::to_owned),
        params: message
            .get_mut("params")
            .map(Value::take)
            .unwrap_or(Value::Null),
    }
}

/// The address in `ws://HOST:PORT/…`, which must be an IP address (Chromium prints
/// `127.0.0.1`), so nothing is resolved.
fn socket_addr(ws_url: &str) -> anyhow::Result<SocketAddr> {
    let rest = ws_url
        .strip_prefix("ws://")
        .with_context(|| format!("not a ws:// URL: {ws_url}"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    authority
        .parse()
        .with_context(|| format!("the DevTools URL {ws_url} does not name an IP address and port"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_address_comes_from_the_url() {
        let addr = socket_addr("ws://127.0.0.1:9222/devtools/browser/abc").expect("address");
        assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], 9222)));
        assert!(socket_addr("http://127.0.0.1:9222/").is_err());
        assert!(socket_addr("ws://localhost:9222/").is_err());
    }

    #[test]
    fn an_event_keeps_its_method_session_and_params() {
        let event = event(json!({
            "method": "Page.loadEventFired",
            "sessionId": "S1",
            "params": { "timestamp": 1.5 },
        }));
        assert_eq!(event.method, "Page.loadEventFired");
        assert_eq!(event.session_id.as_deref(), Some("S1"));
        assert_eq!(event.params["timestamp"], 1.5);
    }
}
