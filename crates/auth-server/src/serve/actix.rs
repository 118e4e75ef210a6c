//! Serving with actix-web, held to the [`ConnectionLimits`].
//!
//! actix's own settings give two of them: `client_request_timeout` (a first request's
//! headers; 408) and `keep_alive` (idle connections). Its head timer does not run for the
//! later requests of a kept-alive connection, it has no body deadline, and its per-worker
//! connection limit stops accepting for good once reached (actix/actix-web#2703). So this
//! assembles the server from actix-server and actix-http, as `actix_web::HttpServer` does,
//! with each socket admitted by a [`Gate`] and wrapped in a [`TimedStream`], and a middleware
//! that keeps the connection's clock and the body deadline.

use std::future::{Future, ready};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll};

use actix_http::error::DispatchError;
use actix_http::{HttpService, KeepAlive, Protocol};
use actix_server::ServerHandle;
use actix_service::{ServiceFactory, ServiceFactoryExt as _, fn_service, map_config};
use actix_web::HttpMessage as _;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{AppConfig, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::{Next, from_fn};
use auth_core::App;
use bytes::Bytes;
use futures_util::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::body::BodyDeadline;
use super::clock::{ConnectionClock, TimedStream};
use super::shutdown::{InFlight, Stop, log_cut};
use super::{BENCH_HELLO_BODY, BENCH_HELLO_PATH};
use crate::limits::ConnectionLimits;

/// How long a connection being closed may take to flush what it has left to write
/// (`HttpServer`'s default).
const CLIENT_DISCONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves `app` on `listener` until the stop signal, then stops accepting (the accept thread
/// paused for good and the listening socket shut down, so new connections are refused) and
/// lets the requests in flight finish for up to the grace; the ones still running then are
/// counted in a log line and cut.
pub(crate) async fn serve(
    app: App,
    listener: std::net::TcpListener,
    bench_hello: bool,
    limits: ConnectionLimits,
    stop: Stop<impl Future<Output = ()> + Send + 'static>,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    // The same listening socket, to shut it down at the stop signal (see below).
    let listening = listener.try_clone()?;
    let gate = Arc::new(Gate::new(limits.max_connections));
    let worker_gate = Arc::clone(&gate);
    let Stop {
        signal,
        grace,
        in_flight,
    } = stop;
    let worker_in_flight = in_flight.clone();
    let server = actix_server::Server::build()
        .disable_signals()
        // Whole seconds, as actix takes them; the flag is in seconds too. The stop below
        // waits for the requests itself and then stops actix without grace; one second more
        // in case actix is stopped another way.
        .shutdown_timeout(grace.as_secs() + 1)
        .listen("auth-server", listener, move || {
            http_service(
                app.clone(),
                bench_hello,
                limits,
                addr,
                Arc::clone(&worker_gate),
                worker_in_flight.clone(),
            )
        })?
        .run();
    let handle = server.handle();
    let gate_at_stop = Arc::clone(&gate);
    // Set before any worker can need it: workers only see connections once `run` has
    // started the accept thread, and a gate without a handle still refuses past the limit.
    let _ = gate.server.set(handle.clone());
    let signalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let signal_seen = Arc::clone(&signalled);
    let mut stopping = tokio::spawn(async move {
        signal.await;
        signal_seen.store(true, std::sync::atomic::Ordering::Release);
        let deadline = tokio::time::Instant::now() + grace;
        tracing::info!(
            requests = in_flight.count(),
            "stopped accepting; letting requests in flight finish"
        );
        // Stops accepting at once, without actix-server's stop: its graceful stop can return
        // while a worker still serves requests (seen in `cargo xtask chaos --cases sigterm`:
        // one worker reported its connections, the other none, and the stop returned after
        // the first's 1 s check, tearing the other's requests down). So the accept thread is
        // paused for good, the listening socket shut down (new connections are refused at
        // once), and our own count of requests in flight decides when to go.
        gate_at_stop.close();
        if let Err(err) = rustix::net::shutdown(&listening, rustix::net::Shutdown::Both) {
            tracing::warn!(error = %err, "cannot shut the listening socket down");
        }
        in_flight.drained_by(deadline).await;
        log_cut(&in_flight, grace);
        // Nothing left to wait for: close the idle connections and end the workers.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), handle.stop(false)).await;
    });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => {
            result?;
            // Once signalled, the server future ends through the stop above: let it finish.
            if signalled.load(std::sync::atomic::Ordering::Acquire) {
                let _ = stopping.await;
            } else {
                stopping.abort();
            }
        }
        // Drained, or the grace is over (what is still running is cut when the process
        // exits, and was counted in the log).
        _ = &mut stopping => {}
    }
    Ok(())
}

/// One worker's service: the socket admitted by the gate and held to its connection's clock,
/// then HTTP/1.1 with actix's own timeouts, then the app behind the slow-client middleware.
fn http_service(
    app: App,
    bench_hello: bool,
    limits: ConnectionLimits,
    addr: SocketAddr,
    gate: Arc<Gate>,
    in_flight: InFlight,
) -> impl ServiceFactory<TcpStream, Config = (), Response = (), Error = DispatchError, InitError = ()>
{
    let body_timeout = limits.body_timeout;
    let mut service = actix_web::App::new().configure(auth_actix::mount(app));
    if bench_hello {
        service = service.route(
            BENCH_HELLO_PATH,
            actix_web::web::get().to(|| async { BENCH_HELLO_BODY }),
        );
    }
    let service = service.wrap(from_fn(move |request, next| {
        guard_request(body_timeout, in_flight.clone(), request, next)
    }));
    let http = HttpService::build()
        .client_request_timeout(limits.header_timeout)
        .keep_alive(KeepAlive::Timeout(limits.idle_timeout))
        // `HttpServer`'s default: how long a closing connection may take to flush.
        .client_disconnect_timeout(CLIENT_DISCONNECT_TIMEOUT)
        .local_addr(addr)
        .on_connect_ext(|io: &TimedStream<Admitted>, data| {
            data.insert(Arc::clone(io.clock()));
        })
        .finish(map_config(
            actix_service::IntoServiceFactory::into_factory(service)
                .map_err(|err: actix_web::Error| err.error_response()),
            // What `HttpServer` passes too, minus the host name it would make of the
            // address, which nothing here reads (no URL generation).
            |_| AppConfig::default(),
        ));
    fn_service(move |stream: TcpStream| ready(admit(&gate, stream, &limits))).and_then(http)
}

/// The connection for actix-http, or, past the limit, an error that drops (closes) it.
fn admit(
    gate: &Arc<Gate>,
    stream: TcpStream,
    limits: &ConnectionLimits,
) -> Result<(TimedStream<Admitted>, Protocol, Option<SocketAddr>), DispatchError> {
    let Some(slot) = gate.admit() else {
        tracing::debug!("connection limit reached: a connection is closed at once");
        return Err(DispatchError::Io(io::Error::other(
            "connection limit reached; closed at once",
        )));
    };
    let peer = stream.peer_addr().ok();
    let stream = Admitted {
        stream,
        _slot: slot,
    };
    let timed = TimedStream::new(stream, ConnectionClock::new(limits));
    Ok((timed, Protocol::Http1, peer))
}

/// The connection limit across all of actix's workers. At the limit it pauses accepting (new
/// connections wait in the listen queue) and resumes once a connection closes; a connection
/// accepted before the pause took effect is refused, closed at once.
#[derive(Debug)]
struct Gate {
    max: usize,
    state: Mutex<GateState>,
    /// The server to pause and resume; set as soon as it runs.
    server: OnceLock<ServerHandle>,
}

#[derive(Debug, Default)]
struct GateState {
    open: usize,
    paused: bool,
    /// Closed for good (shutting down): never resumes.
    closed: bool,
}

impl Gate {
    fn new(max: usize) -> Self {
        Self {
            max,
            state: Mutex::new(GateState::default()),
            server: OnceLock::new(),
        }
    }

    /// A slot for one more connection, or `None` at the limit.
    fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut state = self.lock();
        let admitted = state.open < self.max;
        if admitted {
            state.open += 1;
        }
        if state.open >= self.max {
            self.pause(&mut state);
        }
        admitted.then(|| Slot(Arc::clone(self)))
    }

    fn release(&self) {
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        if state.paused && !state.closed && state.open < self.max {
            state.paused = false;
            if let Some(server) = self.server.get() {
                // The command is sent at once; its acknowledgement is not needed.
                drop(server.resume());
            }
        }
    }

    /// Stops accepting for good (the server is shutting down).
    fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        self.pause(&mut state);
    }

    /// Pauses accepting, under the state's lock, so pauses and resumes reach the accept
    /// thread in the order of the counts they answer.
    fn pause(&self, state: &mut GateState) {
        if state.paused {
            return;
        }
        if let Some(server) = self.server.get() {
            tracing::debug!(max = self.max, "connection limit reached: not accepting");
            state.paused = true;
            drop(server.pause());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        // Two counters, valid after any panic of a holder.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One open connection's place in the [`Gate`], given back when dropped.
#[derive(Debug)]
struct Slot(Arc<Gate>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// A socket that holds its connection's [`Slot`] for as long as actix keeps it.
#[derive(Debug)]
struct Admitted {
    stream: TcpStream,
    _slot: Slot,
}

impl AsyncRead for Admitted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Admitted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// Keeps the connection's clock (a request is in flight until its answer is ready) and holds
/// the body to the body deadline: a body that misses it is answered 408, and the connection
/// closed.
async fn guard_request(
    body_timeout: std::time::Duration,
    counter: InFlight,
    mut request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let in_flight = request
        .conn_data::<Arc<ConnectionClock>>()
        .map(ConnectionClock::request_started);
    let counted = counter.start();
    let (deadline, missed) = BodyDeadline::start(body_timeout);
    match request.take_payload() {
        // No body (no length, not chunked): nothing to hold to a deadline.
        Payload::None => {}
        inner => {
            let timed = Box::pin(TimedPayload { inner, deadline });
            request.set_payload(Payload::from(timed as actix_http::BoxedPayloadStream));
        }
    }
    let response = next.call(request).await?;
    drop(in_flight);
    drop(counted);
    if !missed.is_set() {
        return Ok(response.map_into_left_body());
    }
    let (request, _) = response.into_parts();
    let late = actix_web::HttpResponse::RequestTimeout()
        .force_close()
        .finish();
    Ok(ServiceResponse::new(request, late).map_into_right_body())
}

/// A request payload held to its [`BodyDeadline`]: it fails once the deadline has passed.
struct TimedPayload {
    inner: Payload,
    deadline: BodyDeadline,
}

impl Stream for TimedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let late = || Poll::Ready(Some(Err(PayloadError::Io(BodyDeadline::error()))));
        if this.deadline.passed() {
            return late();
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending if this.deadline.poll_passed(cx) => late(),
            polled => polled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_admits_up_to_its_limit_and_again_after_a_close() {
        let gate = Arc::new(Gate::new(2));
        let first = gate.admit().expect("first slot");
        let _second = gate.admit().expect("second slot");
        assert!(
            gate.admit().is_none(),
            "a third connection past a limit of 2"
        );
        drop(first);
        let third = gate.admit();
        assert!(third.is_some(), "a slot again once one closed");
        assert!(gate.admit().is_none());
    }
}
