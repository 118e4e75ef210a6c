//! Serving an [`App`] with the chosen framework, with graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use auth_core::App;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::limits::ConnectionLimits;

mod actix;
mod body;
mod clock;
mod hyper_server;
mod metrics;
mod shutdown;

pub use metrics::serve_metrics;

use shutdown::{InFlight, Stop};

/// The HTTP framework that serves the app. The variants are the one list of adapters:
/// the command line, [`Adapter::all`], [`Adapter::name`] and the conformance suite all
/// derive from it, so a new adapter is a variant here plus its arm in [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Adapter {
    /// axum (`auth-axum`).
    Axum,
    /// actix-web (`auth-actix`).
    Actix,
    /// warp (`auth-warp`).
    Warp,
}

impl Adapter {
    /// Every adapter, in declaration order.
    pub fn all() -> &'static [Adapter] {
        <Adapter as clap::ValueEnum>::value_variants()
    }

    /// Lower-case name, as on the command line (`--adapter axum`); the crate is
    /// `auth-{name}`.
    pub fn name(self) -> String {
        clap::ValueEnum::to_possible_value(&self)
            .map(|value| value.get_name().to_owned())
            // Only `#[value(skip)]` variants have no value, and there are none.
            .unwrap_or_else(|| format!("{self:?}").to_lowercase())
    }
}

/// Path of the benchmark baseline route (`serve(.., bench_hello: true, ..)`): a plain-text
/// route answered by the framework itself next to the auth routes, the baseline that
/// `cargo xtask bench` compares the auth routes against.
pub const BENCH_HELLO_PATH: &str = "/bench/hello";
/// Its body.
const BENCH_HELLO_BODY: &str = "hello";

/// How long requests in flight get to finish once shutdown begins, unless said otherwise
/// (`--shutdown-grace`).
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` with `adapter` until `shutdown` resolves; then it closes the
/// listener (new connections are refused), lets the requests in flight finish for up to
/// `grace`, and returns, logging how many requests were still running (and so cut). With
/// `bench_hello`, also mounts [`BENCH_HELLO_PATH`]. Every connection is held to `limits`.
pub async fn serve(
    adapter: Adapter,
    app: App,
    listener: std::net::TcpListener,
    bench_hello: bool,
    limits: ConnectionLimits,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    limits.check()?;
    let in_flight = InFlight::default();
    listener.set_nonblocking(true)?;
    // One arm per adapter, each mounting the app the way that adapter's README snippet does;
    // axum's router and warp's filter run on the accept loop of `hyper_server`, because
    // neither `axum::serve` nor `warp::serve` can bound slow clients.
    match adapter {
        Adapter::Axum => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let mut router: axum::Router = auth_axum::mount(app, axum::Router::new());
            if bench_hello {
                router = router.route(
                    BENCH_HELLO_PATH,
                    axum::routing::get(|| async { BENCH_HELLO_BODY }),
                );
            }
            let stop = Stop {
                signal: shutdown,
                grace,
                in_flight,
            };
            hyper_server::serve(listener, limits, router, tag_axum_peer, stop).await;
        }
        Adapter::Actix => {
            let stop = Stop {
                signal: shutdown,
                grace,
                in_flight,
            };
            actix::serve(app, listener, bench_hello, limits, stop).await?;
        }
        Adapter::Warp => {
            use warp::Filter as _;
            let listener = tokio::net::TcpListener::from_std(listener)?;
            // warp's routes are filters, not a table to add to: the baseline route is always
            // there and refuses as not found unless asked for.
            let hello =
                warp::path!("bench" / "hello")
                    .and(warp::get())
                    .and_then(move || async move {
                        if bench_hello {
                            Ok(BENCH_HELLO_BODY)
                        } else {
                            Err(warp::reject::not_found())
                        }
                    });
            let service = warp::service(auth_warp::mount(app, hello));
            let stop = Stop {
                signal: shutdown,
                grace,
                in_flight,
            };
            hyper_server::serve(listener, limits, service, tag_warp_peer, stop).await;
        }
    }
    Ok(())
}

/// axum's form of the peer address (what `into_make_service_with_connect_info` would add).
fn tag_axum_peer(extensions: &mut hyper::http::Extensions, peer: SocketAddr) {
    extensions.insert(axum::extract::ConnectInfo(peer));
}

/// The peer address for warp, whose own form only `warp::serve` can fill.
fn tag_warp_peer(extensions: &mut hyper::http::Extensions, peer: SocketAddr) {
    extensions.insert(auth_core::http::PeerAddr(peer));
}

/// A server started in the background by [`start`].
#[derive(Debug)]
pub struct ServerHandle {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The app it serves (for out-of-band operations in tests).
    pub app: App,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl ServerHandle {
    /// `http://addr`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, finishes requests in flight, and waits for the server to end.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.context("server task failed")?
    }
}

/// Binds `bind` (use port 0 for a free port) and serves `app` in the background with the
/// default [`ConnectionLimits`].
pub async fn start(adapter: Adapter, app: App, bind: &str) -> anyhow::Result<ServerHandle> {
    start_with(adapter, app, bind, ConnectionLimits::default()).await
}

/// Like [`start`], holding every connection to `limits` (and giving requests in flight
/// [`DEFAULT_SHUTDOWN_GRACE`] at [`ServerHandle::stop`]).
pub async fn start_with(
    adapter: Adapter,
    app: App,
    bind: &str,
    limits: ConnectionLimits,
) -> anyhow::Result<ServerHandle> {
    let listener =
        std::net::TcpListener::bind(bind).with_context(|| format!("cannot listen on {bind}"))?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let task = tokio::spawn(serve(
        adapter,
        app.clone(),
        listener,
        false,
        limits,
        DEFAULT_SHUTDOWN_GRACE,
        shutdown,
    ));
    Ok(ServerHandle {
        addr,
        app,
        stop: Some(stop),
        task,
    })
}
