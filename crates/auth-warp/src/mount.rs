//! The filter serving the auth routes in front of the user's own.

use std::convert::Infallible;
use std::net::SocketAddr;

use auth_core::App;
use auth_core::http::{PeerAddr, Request as CoreRequest, RequestHeaders, collect_body};
use bytes::{Buf, Bytes};
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, Method};
use warp::path::FullPath;
use warp::{Filter, Rejection, Reply};

use crate::AuthRejection;
use crate::convert::into_response;

/// A filter answering every auth route of `app` (each profile prefix and everything below
/// it, and the fixed paths such as `/healthz`, all through [`App::handle`]), then `routes`
/// for every other path; an [`AuthRejection`] from [`crate::auth_user`] in `routes` becomes
/// its response, and every other rejection passes on, so you can `.or(..)` or `.recover(..)`
/// after it. The auth routes come first, so a catch-all in `routes` cannot hide them.
pub fn mount<F, R>(app: App, routes: F) -> BoxedFilter<(warp::reply::Response,)>
where
    F: Filter<Extract = (R,), Error = Rejection> + Clone + Send + Sync + 'static,
    R: Reply + 'static,
{
    auth_routes(app)
        .or(routes.map(Reply::into_response))
        .unify()
        .recover(recover)
        .unify()
        // Boxed: a nameable, `Send` type for `warp::serve` and for callers to store.
        .boxed()
}

/// The response of an [`AuthRejection`]; every other rejection passes on.
async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Rejection> {
    match rejection.find::<AuthRejection>() {
        Some(refusal) => Ok(refusal.clone().into_response()),
        None => Err(rejection),
    }
}

/// Every path the core serves, through [`App::handle`]; any other path is rejected as not
/// found, so the next filter is tried.
fn auth_routes(
    app: App,
) -> impl Filter<Extract = (warp::reply::Response,), Error = Rejection> + Clone {
    let guard_app = app.clone();
    warp::path::full()
        .and_then(move |path: FullPath| {
            let served = guard_app.serves(path.as_str());
            async move {
                if served {
                    Ok(path)
                } else {
                    Err(warp::reject::not_found())
                }
            }
        })
        .and(warp::method())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(peer_addr())
        .and(warp::body::stream().map(into_byte_stream))
        .then(
            move |path: FullPath,
                  method: Method,
                  query: String,
                  headers: HeaderMap,
                  remote: Option<SocketAddr>,
                  body: BoxStream<'static, Result<Bytes, warp::Error>>| {
                let app = app.clone();
                async move {
                    let headers = RequestHeaders::from_pairs(
                        headers
                            .iter()
                            .map(|(name, value)| (name.as_str(), value.as_bytes())),
                    );
                    let body = collect_body(body, app.body_limit(), headers.content_length).await;
                    if remote.is_none() {
                        app.unknown_peer(
                            "serve with `warp::serve`, or put a `PeerAddr` in each request's \
                             extensions",
                        );
                    }
                    let request = CoreRequest {
                        method: method.as_str().to_owned(),
                        path: path.as_str().to_owned(),
                        query: (!query.is_empty()).then_some(query),
                        headers,
                        client_ip: remote.map(|addr| addr.ip()),
                        body,
                    };
                    into_response(app.handle(request).await)
                }
            },
        )
}

/// The connection's peer address: `warp::serve`'s, or, when the filter runs as a service on
/// an accept loop of its own (`warp::service`, as auth-server does), the [`PeerAddr`] that
/// loop put in the request's extensions.
fn peer_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = Infallible> + Clone {
    warp::addr::remote()
        .and(warp::ext::optional::<PeerAddr>())
        .map(|remote: Option<SocketAddr>, peer: Option<PeerAddr>| {
            remote.or(peer.map(|PeerAddr(addr)| addr))
        })
}

/// warp's body chunks as `Bytes`, boxed so the filter's types can be named.
fn into_byte_stream<S, B>(stream: S) -> BoxStream<'static, Result<Bytes, warp::Error>>
where
    S: Stream<Item = Result<B, warp::Error>> + Send + 'static,
    B: Buf + Send + 'static,
{
    stream
        .map_ok(|mut chunk| chunk.copy_to_bytes(chunk.remaining()))
        .boxed()
}
