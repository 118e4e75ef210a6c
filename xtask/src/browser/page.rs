//! The test page and the tiny HTTP server that serves it: `GET /` answers the page, anything
//! else 404, one request per connection. Two copies run per check, one on an origin the auth
//! server allows and one on an origin it does not.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The page the browser loads; its script defines the flows (`window.bearerFlow` and the
/// others) that the test calls with `Runtime.evaluate`.
pub const PAGE: &str = include_str!("page.html");
/// How long a connection may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head read; the browser's are well under it.
const MAX_REQUEST: usize = 16 * 1024;

/// A page server on `127.0.0.1` and a port of the system's choosing; it stops (with every
/// connection it serves) when this goes.
pub struct PageServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    /// Binds and starts serving [`PAGE`] on `runtime`.
    pub fn start(runtime: &tokio::runtime::Runtime) -> anyhow::Result<Self> {
        let listener = runtime
            .block_on(TcpListener::bind("127.0.0.1:0"))
            .context("cannot bind the page server")?;
        let addr = listener.local_addr()?;
        let task = runtime.spawn(serve(listener));
        Ok(Self { addr, task })
    }

    /// `http://127.0.0.1:PORT`, as the browser writes it in `Origin`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://localhost:PORT`: the same server under a name, which the passkey flow needs (a
    /// WebAuthn RP id cannot be an IP address, and `http://localhost` is a secure context).
    /// Chromium resolves `localhost` to loopback itself.
    pub fn localhost_origin(&self) -> String {
        format!("http://localhost:{}", self.addr.port())
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

async fn serve(listener: TcpListener) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(answer(stream));
                }
                // E.g. out of file descriptors: try again shortly rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            // Reaps finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Reads one request head and answers it; errors only end the connection.
async fn answer(mut stream: TcpStream) {
    let Ok(Some(path)) = tokio::time::timeout(REQUEST_TIMEOUT, read_get_path(&mut stream))
        .await
        .unwrap_or(Ok(None))
    else {
        return;
    };
    let response = response_for(&path);
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
}

/// The path of a `GET` request read from `stream`; `None` for anything else.
async fn read_get_path(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buffer = Vec::with_capacity(2048);
    let mut chunk = [0u8; 2048];
    loop {
        let read = stream.read(&mut chunk).await?;
        if read == 0 || buffer.len() + read > MAX_REQUEST {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buffer) {
            Ok(httparse::Status::Complete(_)) => {
                let path = match request.method {
                    Some("GET") => request.path.map(str::to_owned),
                    _ => None,
                };
                return Ok(path);
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return Ok(None),
        }
    }
}

/// The whole answer to `GET path`: the page at `/` (query ignored), 404 elsewhere (the
/// browser asks for `/favicon.ico`).
fn response_for(path: &str) -> Vec<u8> {
    let (status, content_type, body) = if path == "/" || path.starts_with("/?") {
        ("200 OK", "text/html; charset=utf-8", PAGE)
    } else {
        ("404 Not Found", "text/plain; charset=utf-8", "not found\n")
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_the_page_and_the_rest_is_not_found() {
        let page = String::from_utf8(response_for("/?run=1")).expect("utf-8");
        assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
        assert!(page.contains(&format!("Content-Length: {}\r\n", PAGE.len())));
        assert!(page.ends_with(PAGE));
        let missing = String::from_utf8(response_for("/favicon.ico")).expect("utf-8");
        assert!(
            missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{missing}"
        );
    }
}
