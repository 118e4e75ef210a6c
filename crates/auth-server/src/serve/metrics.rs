//! The metrics listener (`--metrics-bind`): `GET /metrics` in the OpenMetrics text format,
//! on an address of its own, so the API's listener never serves it and a firewall can keep it
//! internal. HTTP/1.1 only, at most [`MAX_CONNECTIONS`] scrapers at once, each connection
//! closed after [`HEADER_TIMEOUT`] without a request.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use auth_core::App;

/// Scrapers served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a connection may take to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the metrics of `app` on `listener` until `shutdown` resolves.
pub async fn serve_metrics(
    listener: std::net::TcpListener,
    app: App,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            permit = slots.clone().acquire_owned() => permit?,
        };
        let (stream, _) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(answer(&app, &request)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `GET /metrics` (and `HEAD`); 404 for any other path, 405 for any other method.
fn answer<B>(app: &App, request: &Request<B>) -> Response<Full<Bytes>> {
    let status = if request.uri().path() != "/metrics" {
        StatusCode::NOT_FOUND
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        StatusCode::METHOD_NOT_ALLOWED
    } else {
        let text = app.auth().metrics().render();
        return Response::builder()
            .header("content-type", auth_core::metrics::CONTENT_TYPE)
            .header("cache-control", "no-store")
            .body(Full::new(Bytes::from(text)))
            .unwrap_or_default();
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"")));
    *response.status_mut() = status;
    response
}
