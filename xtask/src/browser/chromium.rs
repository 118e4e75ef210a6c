//! Headless Chromium as a child process: a fresh profile in a temporary directory, the
//! DevTools websocket URL read from its stderr, and the whole process group killed (and the
//! profile removed) when the guard goes, on every exit path. Being a group of its own, it
//! does not get the terminal's Ctrl-C: `browser::run` kills it on a signal ([`kill_group`]).

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use anyhow::{Context as _, bail};

/// How much of Chromium's stderr an error shows.
const STDERR_TAIL_LINES: usize = 30;
/// What Chromium prints before the browser's websocket URL.
const LISTENING: &str = "DevTools listening on ";

/// The flags every launch gets, after the ones the test is about (`--headless=new`,
/// `--no-sandbox` because CI runs as root, `--disable-gpu`, a DevTools port of the
/// system's choosing). The rest keep Chromium off the network: this machine may only talk
/// to 127.0.0.1, and a stock profile calls home (component updates, safe browsing, metrics,
/// sync). No host name resolves (`--host-resolver-rules`) and anything that is not loopback
/// would go to a proxy on the discard port, which refuses it; loopback never goes through a
/// proxy in Chromium. `localhost` resolves too (to loopback): the passkey flow's page is served
/// there, since an RP id cannot be an IP address.
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--remote-debugging-port=0",
    "--remote-debugging-address=127.0.0.1",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--no-pings",
    "--password-store=basic",
    "--use-mock-keychain",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--proxy-server=http://127.0.0.1:9",
];

/// A running Chromium, killed with its whole process group when this goes.
pub struct Chromium {
    child: Child,
    ws_url: String,
    stderr: Arc<Mutex<VecDeque<String>>>,
    // Dropped after the process is dead (see `Drop`), so nothing writes into it any more.
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Starts `binary` on `about:blank` with a fresh profile and waits up to `timeout` for
    /// the DevTools URL.
    pub fn launch(binary: &Path, timeout: Duration) -> anyhow::Result<Self> {
        let profile = tempfile::Builder::new()
            .prefix("xtask-browser-profile-")
            .tempdir()
            .context("cannot create Chromium's profile directory")?;
        let mut command = Command::new(binary);
        command
            .args(FLAGS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A group of its own, so the renderers and helpers it forks die with it.
            .process_group(0);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stderr = Arc::new(Mutex::new(VecDeque::new()));
        let (url_sender, url_receiver) = mpsc::channel();
        if let Some(pipe) = child.stderr.take() {
            let lines = Arc::clone(&stderr);
            // Reads until Chromium exits, so the pipe never fills up and blocks it.
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(url) = line.strip_prefix(LISTENING) {
                        let _ = url_sender.send(url.trim().to_owned());
                    }
                    if let Ok(mut lines) = lines.lock() {
                        if lines.len() == STDERR_TAIL_LINES {
                            lines.pop_front();
                        }
                        lines.push_back(line);
                    }
                }
            });
        }
        let mut chromium = Self {
            child,
            ws_url: String::new(),
            stderr,
            _profile: profile,
        };
        match url_receiver.recv_timeout(timeout) {
            Ok(url) => chromium.ws_url = url,
            Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                "Chromium printed no DevTools URL within {} s{}",
                timeout.as_secs(),
                chromium.stderr_tail()
            ),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let status = chromium.child.wait().ok();
                bail!(
                    "Chromium exited ({}) before printing its DevTools URL{}",
                    status.map_or_else(|| "status unknown".to_owned(), |s| s.to_string()),
                    chromium.stderr_tail()
                )
            }
        }
        Ok(chromium)
    }

    /// The browser's DevTools websocket URL.
    pub fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// The last lines Chromium wrote to stderr, for error messages.
    pub fn stderr_tail(&self) -> String {
        let lines = match self.stderr.lock() {
            Ok(lines) => lines.iter().cloned().collect::<Vec<_>>().join("\n"),
            Err(_) => String::new(),
        };
        if lines.is_empty() {
            String::new()
        } else {
            format!("; Chromium's stderr ends with:\n{lines}")
        }
    }

    /// The browser's process id, which is also its process group's.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Kills the process group `pid` (Chromium's, see [`Chromium::pid`]) with SIGKILL.
pub fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // The group's id is the browser's pid (`process_group(0)`).
        kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
