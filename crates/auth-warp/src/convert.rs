//! Request and response conversion, and mounting.

use std::net::SocketAddr;

use auth_core::App;
use auth_core::http::{
    Request as CoreRequest, RequestHeaders, Response as CoreResponse, collect_body,
};
use bytes::Buf;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt as _, TryStreamExt as _};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use warp::path::FullPath;

/// A filter answering every path under a mounted profile prefix and the fixed paths
/// (`/healthz`) through [`App::handle`]; any other path is rejected as not found, so your
/// own filters can follow with `.or(...)`.
pub fn routes(app: App) -> BoxedFilter<(warp::reply::Response,)> {
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
        .and(warp::addr::remote())
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
        .boxed()
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

/// Writes a core response as a warp response, unchanged.
pub(crate) fn into_response(response: CoreResponse) -> warp::reply::Response {
    let mut out = warp::reply::Response::new(response.body.into());
    *out.status_mut() =
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            out.headers_mut().insert(name, value);
        }
    }
    out
}
