//! `auth-server serve` as a user first runs it: the binary, no flags, in a directory of its
//! own (so on `sqlite://auth.db` there). Shared by the test binaries that need it.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

/// `auth-server serve` run as the binary, killed when this goes.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `auth-server serve` with no flags in `dir` (so on `sqlite://auth.db` there), on
/// a free port given by environment (`AUTH_BIND`), with nothing else from this process's
/// environment but `env`, and waits for its "listening" line.
pub fn serve_with_no_flags(dir: &std::path::Path, env: &[(&str, &str)]) -> ServerProcess {
    let child = Command::new(env!("CARGO_BIN_EXE_auth-server"))
        .arg("serve")
        .current_dir(dir)
        .env_clear()
        .env("AUTH_BIND", "127.0.0.1:0")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start auth-server serve");
    // Owned by the guard at once, so the process goes whatever happens next.
    let mut server = ServerProcess {
        child,
        base: String::new(),
    };
    let stderr = server.child.stderr.take().expect("stderr");
    let mut log = String::new();
    let mut lines = BufReader::new(stderr).lines();
    while let Some(line) = lines.next() {
        let line = line.expect("read the log");
        log.push_str(&line);
        log.push('\n');
        if let Some(addr) = line
            .split_whitespace()
            .find_map(|field| field.strip_prefix("addr="))
        {
            server.base = format!("http://{addr}");
            // Keep reading, so the server's later log lines never meet a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return server;
        }
    }
    drop(server);
    panic!("auth-server serve ended without listening:\n{log}");
}
