//! The accept loop that serves axum's router and warp's filter on hyper, holding every
//! connection to the [`ConnectionLimits`]: it takes a connection slot before it accepts, wraps
//! the socket in a [`TimedStream`], gives every request a [`BodyDeadline`], and tells each
//! request its peer address. `axum::serve` and `warp::serve` offer none of these settings.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::{Either, Empty};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue};
use hyper::http::Extensions;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::body::{BodyDeadline, Missed};
use super::clock::{ConnectionClock, TimedStream};
use super::shutdown::{InFlight, Stop, log_cut};
use crate::limits::ConnectionLimits;

/// Errors a service or a body may fail with.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a service learns a request's peer address: it puts it into the request's extensions
/// in the form its framework reads.
pub(crate) type TagPeer = fn(&mut Extensions, SocketAddr);

/// Serves `service` on `listener` until the stop signal, then closes the listener (new
/// connections are refused) and waits up to the grace for the open connections to finish
/// their requests (idle ones close at once); connections still open then are left to be cut
/// when the process exits, and their count of requests logged. At the connection limit it
/// stops accepting: new connections wait in the listen queue.
pub(crate) async fn serve<S, B>(
    listener: TcpListener,
    limits: ConnectionLimits,
    service: S,
    tag_peer: TagPeer,
    stop: Stop<impl Future<Output = ()>>,
) where
    S: tower_service::Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(stop.signal);
    loop {
        let accepted = tokio::select! {
            accepted = accept(&listener, &slots) => accepted,
            () = &mut shutdown => break,
        };
        let Some((stream, peer, slot)) = accepted else {
            continue;
        };
        let connection = Guarded {
            inner: service.clone(),
            clock: ConnectionClock::new(&limits),
            peer,
            tag_peer,
            body_timeout: limits.body_timeout,
            in_flight: stop.in_flight.clone(),
        };
        tokio::spawn(serve_connection(
            stream,
            connection,
            graceful.watcher(),
            slot,
        ));
    }
    // Closes the listening socket before waiting for the connections.
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        connections = open,
        requests = stop.in_flight.count(),
        "stopped accepting; letting requests in flight finish"
    );
    // Connections still open at the end of the grace are cut when the process exits.
    let _ = tokio::time::timeout(stop.grace, graceful.shutdown()).await;
    log_cut(&stop.in_flight, stop.grace);
}

/// Waits for a free connection slot, then for a connection; `None` when accepting failed
/// (after a pause if the failure is not the connection's own).
async fn accept(
    listener: &TcpListener,
    slots: &Arc<Semaphore>,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    if slots.available_permits() == 0 {
        tracing::debug!("connection limit reached: not accepting until a connection closes");
    }
    // The semaphore is never closed, so this only waits.
    let slot = Arc::clone(slots).acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => Some((stream, peer, slot)),
        Err(err) => {
            pause_after(err).await;
            None
        }
    }
}

/// After an accept error: none for errors of that one connection (reset before it was
/// taken); for others, such as running out of file descriptors, which would recur at once, a
/// second, so connections can close meanwhile.
async fn pause_after(err: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        err.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!("cannot accept a connection: {err}");
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
}

/// Serves one connection (HTTP/1.1, or HTTP/2 with prior knowledge, as `axum::serve` and
/// `warp::serve` do) until it ends or times out; its slot is freed then.
async fn serve_connection<S, B>(
    stream: TcpStream,
    service: Guarded<S>,
    watcher: Watcher,
    _slot: OwnedSemaphorePermit,
) where
    S: tower_service::Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let peer = service.peer;
    let io = TokioIo::new(TimedStream::new(stream, Arc::clone(&service.clock)));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // hyper's header timer also runs while a kept-alive connection waits for its next
    // request, which would cut idle connections at the header timeout: the clock of the
    // `TimedStream` keeps both deadlines instead.
    builder.http1().header_read_timeout(None);
    let connection = watcher.watch(builder.serve_connection(io, service));
    if let Err(err) = connection.await {
        // Timeouts and clients that go away end up here; neither is the server's fault.
        tracing::debug!(%peer, "connection ended: {err}");
    }
}

/// The per-connection service: tags each request with the peer address, holds its body to
/// the body deadline, keeps the connection's clock, and answers 408 for a late body.
#[derive(Debug, Clone)]
struct Guarded<S> {
    inner: S,
    clock: Arc<ConnectionClock>,
    peer: SocketAddr,
    tag_peer: TagPeer,
    body_timeout: std::time::Duration,
    in_flight: InFlight,
}

/// The answers of [`Guarded`]: the framework's, or an empty 408.
type GuardedResponse<B> = Response<Either<B, Empty<Bytes>>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for Guarded<S>
where
    S: tower_service::Service<Request<TimedBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = GuardedResponse<B>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // hyper calls the service once a request's headers are in.
        let in_flight = self.clock.request_started();
        let counted = self.in_flight.start();
        let (deadline, missed) = BodyDeadline::start(self.body_timeout);
        let mut request = request.map(|body| TimedBody {
            inner: body,
            deadline,
        });
        (self.tag_peer)(request.extensions_mut(), self.peer);
        let mut inner = self.inner.clone();
        Box::pin(async move {
            std::future::poll_fn(|cx| inner.poll_ready(cx)).await?;
            let response = inner.call(request).await?;
            drop(in_flight);
            drop(counted);
            Ok(unless_late(response, &missed))
        })
    }
}

/// `response`, or 408 with `Connection: close` when the request's body missed its deadline
/// (the rest of that body is never read, so the connection cannot carry another request).
fn unless_late<B>(response: Response<B>, missed: &Missed) -> GuardedResponse<B> {
    if !missed.is_set() {
        return response.map(Either::Left);
    }
    let mut late = Response::new(Either::Right(Empty::new()));
    *late.status_mut() = StatusCode::REQUEST_TIMEOUT;
    late.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    late
}

/// A request body held to its [`BodyDeadline`]: it fails once the deadline has passed.
#[derive(Debug)]
pub(crate) struct TimedBody {
    inner: Incoming,
    deadline: BodyDeadline,
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if !this.inner.is_end_stream() && this.deadline.passed() {
            return Poll::Ready(Some(Err(BodyDeadline::error().into())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending if this.deadline.poll_passed(cx) => {
                Poll::Ready(Some(Err(BodyDeadline::error().into())))
            }
            polled => polled.map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
