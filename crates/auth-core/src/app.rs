//! The mounted application, the top of the core: profiles at prefixes, one dispatch
//! function for every adapter.

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;

use crate::error::Error;
use crate::http::{Body, Request, Response, is_json_media_type};
use crate::mount::{
    HEALTH_PATH, JWKS_PATH, LIVE_PATH, MountError, MountSpec, MountedProfile, OPENAPI_PATH,
    READY_PATH, mount_all,
};
use crate::principal::Principal;
use crate::profile::{self, Call, Route};
use crate::service::Auth;

/// Seconds a client is told to wait after a 503 of an unreachable database: the store's
/// breaker probes several times a second, so one second is enough to find it back.
const RETRY_AFTER_UNAVAILABLE: u64 = 1;

/// The application every adapter serves. Cheap to clone.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

/// The metrics' route labels that are no mounted route.
struct FixedLabels {
    health: Arc<str>,
    live: Arc<str>,
    ready: Arc<str>,
    jwks: Arc<str>,
    openapi: Arc<str>,
    preflight: Arc<str>,
    unmatched: Arc<str>,
}

impl FixedLabels {
    fn new() -> Self {
        Self {
            health: Arc::from(HEALTH_PATH),
            live: Arc::from(LIVE_PATH),
            ready: Arc::from(READY_PATH),
            jwks: Arc::from(JWKS_PATH),
            openapi: Arc::from(OPENAPI_PATH),
            preflight: Arc::from("preflight"),
            unmatched: Arc::from(crate::metrics::UNMATCHED_ROUTE),
        }
    }
}

struct Inner {
    auth: Arc<Auth>,
    /// The OpenAPI document of the mounts, rendered once.
    openapi: Response,
    /// Longest prefix first, so the most specific mount answers.
    mounts: Vec<MountedProfile>,
    /// The `route` label of each mount's routes (`mounts[i]`'s `routes[j]` at `[i][j]`), made
    /// once so that counting a request allocates nothing.
    route_labels: Vec<Vec<Arc<str>>>,
    /// The `route` label of the fixed paths, preflights and unmatched requests.
    fixed_labels: FixedLabels,
    /// Whether [`App::unknown_peer`] has warned yet (once per app: it is a set-up mistake,
    /// not an event).
    warned_unknown_peer: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("mounts", &self.inner.mounts)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Mounts the profiles. Refuses unknown profiles, bad prefixes, and two profiles that
    /// claim the same method and path (naming both).
    pub fn new(auth: Arc<Auth>, specs: &[MountSpec]) -> Result<Self, MountError> {
        let mounts = mount_all(specs)?;
        let openapi = Response::json(
            200,
            &crate::openapi::document(&mounts, auth.publishes_jwks(), auth.config()),
        );
        let route_labels = mounts
            .iter()
            .map(|mount| mount.routes().map(|r| Arc::from(r.full_path)).collect())
            .collect();
        Ok(Self {
            inner: Arc::new(Inner {
                auth,
                openapi,
                mounts,
                route_labels,
                fixed_labels: FixedLabels::new(),
                warned_unknown_peer: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// The core service.
    pub fn auth(&self) -> &Auth {
        &self.inner.auth
    }

    /// The mounted profiles, longest prefix first.
    pub fn mounts(&self) -> &[MountedProfile] {
        &self.inner.mounts
    }

    /// The distinct prefixes an adapter must route to [`App::handle`], plus the always-mounted
    /// paths ([`App::fixed_paths`]).
    pub fn prefixes(&self) -> Vec<String> {
        let mut prefixes: Vec<String> = self.mounts().iter().map(|m| m.prefix.clone()).collect();
        prefixes.sort();
        prefixes.dedup();
        prefixes
    }

    /// Paths served whatever the profiles: `/healthz`, `/livez`, `/readyz`, `/openapi.json`,
    /// and with EdDSA keys `/.well-known/jwks.json`.
    pub fn fixed_paths(&self) -> Vec<&'static str> {
        let mut paths = vec![HEALTH_PATH, LIVE_PATH, READY_PATH, OPENAPI_PATH];
        if self.auth().publishes_jwks() {
            paths.push(JWKS_PATH);
        }
        paths
    }

    /// Whether `path` is the core's to answer (under a prefix, or always mounted).
    pub fn serves(&self, path: &str) -> bool {
        self.fixed_paths().contains(&path)
            || self.mounts().iter().any(|m| m.relative(path).is_some())
    }

    /// Largest body accepted; adapters collect bodies with this limit.
    pub fn body_limit(&self) -> usize {
        self.auth().config().body_limit
    }

    /// Authenticates an `Authorization` header for an adapter's extractor; a refusal comes
    /// rendered in the first mounted profile's shape.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Response> {
        self.auth()
            .sessions()
            .authenticate(authorization)
            .await
            .map_err(|err| self.error_response(self.default_mount(), &err))
    }

    /// Authenticates the raw bytes of an `Authorization` header for an adapter's extractor.
    /// The bytes are read as [`App::handle`] reads them on the auth routes (through
    /// [`crate::http::RequestHeaders::from_pairs`], so bytes that are not UTF-8 fail as an
    /// invalid token): a user's own route answers the same header with the same 401.
    pub async fn authenticate_header(
        &self,
        authorization: Option<&[u8]>,
    ) -> Result<Principal, Response> {
        let headers = crate::http::RequestHeaders::from_pairs(
            authorization.map(|value| ("authorization", value)),
        );
        self.authenticate(headers.authorization.as_deref()).await
    }

    /// Authenticates a request for an adapter's extractor from its method and raw headers,
    /// exactly as the auth routes do ([`crate::service::Sessions::authenticate_request`]): the
    /// `Authorization` header; else, when the default mount (`native`'s) takes the cookie
    /// transport, the access cookie, with the CSRF check of state changes. A refusal comes
    /// rendered in that mount's shape, so a user's own route answers like the auth routes.
    pub async fn authenticate_request<'h>(
        &self,
        method: &str,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
    ) -> Result<Principal, Response> {
        let headers = crate::http::RequestHeaders::from_pairs(headers);
        let mount = self.default_mount();
        let cookies = mount.is_some_and(|m| m.profile.cookie_sessions);
        self.auth()
            .sessions()
            .authenticate_request(method, &headers, cookies)
            .await
            .map_err(|err| self.error_response(mount, &err))
    }

    /// [`App::authenticate_request`], then the role `role`: a user without it is refused with
    /// the 403 of [`crate::Error::Forbidden`] in the same shape. What the adapters' role
    /// guards call.
    pub async fn authenticate_with_role<'h>(
        &self,
        method: &str,
        headers: impl IntoIterator<Item = (&'h str, &'h [u8])>,
        role: &str,
    ) -> Result<Principal, Response> {
        let principal = self.authenticate_request(method, headers).await?;
        if principal.has_role(role) {
            Ok(principal)
        } else {
            Err(self.error_answer(&Error::Forbidden))
        }
    }

    /// `err` answered as the auth API answers it outside its own routes: in the default
    /// mount's error shape (`native`'s when mounted), with its status and headers. For a
    /// user's own handlers, so that their refusals look like the API's.
    pub fn error_answer(&self, err: &Error) -> Response {
        self.error_response(self.default_mount(), err)
    }

    /// Called by an adapter for a request whose client address it could not learn: warns
    /// once per app, naming the fix, since every such client then shares one rate-limit
    /// bucket (and one noisy client locks out all of them).
    pub fn unknown_peer(&self, fix: &str) {
        use std::sync::atomic::Ordering;
        if !self.inner.warned_unknown_peer.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                fix,
                "the client address of requests is unknown: every client shares one \
                 rate-limit bucket"
            );
        }
    }

    /// Answers one request. Never panics; every outcome is a JSON response. The answer
    /// carries the request's id (`X-Request-Id`: the one sent, when sane, or a new one), and
    /// every log line of the request names it.
    pub async fn handle(&self, request: Request) -> Response {
        use tracing::Instrument as _;
        let started = Instant::now();
        let id = crate::http::request_id::accept_or_make(request.headers.request_id.as_deref());
        let span = tracing::info_span!("request", request_id = %id);
        let (response, route) = self.answer(&request).instrument(span.clone()).await;
        let took = started.elapsed();
        self.auth()
            .metrics()
            .request(&request.method, route, response.status, took);
        span.in_scope(|| {
            tracing::info!(
                method = %request.method,
                path = %request.path,
                status = response.status,
                micros = took.as_micros() as u64,
                "request"
            );
        });
        response.with_header("x-request-id", id)
    }

    /// The answer to `request` and the route label it is counted under.
    async fn answer(&self, request: &Request) -> (Response, &Arc<str>) {
        let config = self.auth().config();
        let origin = crate::cors::allowed_origin(config, request);
        match origin {
            Some(origin) if crate::cors::is_preflight(request) && self.serves(&request.path) => (
                crate::cors::preflight(origin),
                &self.inner.fixed_labels.preflight,
            ),
            _ => {
                let (response, route) = self.dispatch(request).await;
                (crate::cors::decorate(config, origin, response), route)
            }
        }
    }

    async fn dispatch(&self, request: &Request) -> (Response, &Arc<str>) {
        let labels = &self.inner.fixed_labels;
        if request.path == HEALTH_PATH {
            return (self.health(request).await, &labels.health);
        }
        if request.path == LIVE_PATH || request.path == READY_PATH {
            let label = if request.path == LIVE_PATH {
                &labels.live
            } else {
                &labels.ready
            };
            return (self.probe(request).await, label);
        }
        if request.path == JWKS_PATH
            && let Some(jwks) = self.auth().current_jwks().await
        {
            let response = if method_matches("GET", &request.method) {
                Response::json(200, &jwks).with_header("cache-control", "public, max-age=60")
            } else {
                self.error_response(self.default_mount(), &Error::MethodNotAllowed(vec!["GET"]))
            };
            return (response, &labels.jwks);
        }
        if request.path == OPENAPI_PATH {
            let response = if method_matches("GET", &request.method) {
                self.inner.openapi.clone()
            } else {
                self.error_response(self.default_mount(), &Error::MethodNotAllowed(vec!["GET"]))
            };
            return (response, &labels.openapi);
        }
        let mut allowed: Vec<&'static str> = Vec::new();
        let mut not_found_shape = None;
        let mut not_allowed_shape = None;
        for (mount_index, mount) in self.mounts().iter().enumerate() {
            let Some(relative) = mount.relative(&request.path) else {
                continue;
            };
            not_found_shape.get_or_insert(mount);
            for (route_index, route) in mount.profile.routes.iter().enumerate() {
                let Some(params) = match_path(route.path, relative) else {
                    continue;
                };
                if method_matches(route.method, &request.method) {
                    let label = self
                        .inner
                        .route_labels
                        .get(mount_index)
                        .and_then(|routes| routes.get(route_index))
                        .unwrap_or(&labels.unmatched);
                    return (self.run(mount, route, request, &params).await, label);
                }
                not_allowed_shape.get_or_insert(mount);
                if !allowed.contains(&route.method) {
                    allowed.push(route.method);
                }
            }
        }
        let response = if allowed.is_empty() {
            let shape = not_found_shape.or(self.default_mount());
            self.error_response(shape, &Error::NotFound)
        } else {
            self.error_response(not_allowed_shape, &Error::MethodNotAllowed(allowed))
        };
        (response, &labels.unmatched)
    }

    async fn run(
        &self,
        mount: &MountedProfile,
        route: &Route,
        request: &Request,
        params: &[(&'static str, String)],
    ) -> Response {
        let checked = match &request.body {
            Body::TooLarge => Err(Error::PayloadTooLarge),
            Body::Complete(bytes)
                if !bytes.is_empty()
                    && !request
                        .headers
                        .content_type
                        .as_deref()
                        .is_some_and(is_json_media_type) =>
            {
                Err(Error::UnsupportedMediaType)
            }
            Body::Complete(_) => Ok(()),
        };
        let result = match checked {
            Ok(()) => {
                (route.handler)(Call {
                    auth: self.auth(),
                    request,
                    params,
                    access_ttl: mount.access_ttl,
                    profile: mount.profile,
                    prefix: &mount.prefix,
                })
                .await
            }
            Err(err) => Err(err),
        };
        // Route answers carry tokens, users or the refusal of one: no cache may keep them
        // (RFC 9111 `no-store`; issue 10, rule 11). Set here, once, for every profile.
        let response = result
            .unwrap_or_else(|err| self.error_response(Some(mount), &err))
            .with_header("cache-control", "no-store");
        if matches!(request.body, Body::TooLarge) {
            // The rest of the body was never read, so the connection cannot carry another
            // request: say so, or a client reusing it would write into a closed socket.
            response.with_header("connection", "close")
        } else {
            response
        }
    }

    async fn health(&self, request: &Request) -> Response {
        if !method_matches("GET", &request.method) {
            return self
                .error_response(self.default_mount(), &Error::MethodNotAllowed(vec!["GET"]));
        }
        if self.auth().healthy().await {
            Response::json(200, &json!({"status": "ok"}))
        } else {
            Response::json(503, &json!({"status": "unavailable"}))
        }
    }

    /// `/livez` (the process answers) and `/readyz` (the database answers: one store ping,
    /// which fails at once while the store's breaker is open). Never cached.
    async fn probe(&self, request: &Request) -> Response {
        if !method_matches("GET", &request.method) {
            return self
                .error_response(self.default_mount(), &Error::MethodNotAllowed(vec!["GET"]));
        }
        let response = if request.path == LIVE_PATH || self.auth().healthy().await {
            Response::json(200, &json!({"status": "ok"}))
        } else {
            Response::json(503, &json!({"status": "unavailable"}))
                .with_header("retry-after", RETRY_AFTER_UNAVAILABLE.to_string())
        };
        response.with_header("cache-control", "no-store")
    }

    /// The shape for errors outside any route: `native` when mounted, else the first mount.
    fn default_mount(&self) -> Option<&MountedProfile> {
        let mounts = self.mounts();
        mounts
            .iter()
            .find(|m| m.profile.name == profile::native::PROFILE.name)
            .or(mounts.first())
    }

    /// Renders an error in a mount's shape (native's when there is none) with the headers
    /// every profile shares: `WWW-Authenticate`, `Allow`, `Retry-After`.
    pub fn error_response(&self, mount: Option<&MountedProfile>, err: &Error) -> Response {
        let profile = mount.map_or(&profile::native::PROFILE, |m| m.profile);
        let named;
        let err = match err {
            Error::Invalid(..) => {
                named = err.clone().naming(profile.input_names);
                &named
            }
            other => other,
        };
        let rendered = (profile.render_error)(err);
        let response = Response::json_as(rendered.status, rendered.content_type, &rendered.body);
        match err {
            Error::MissingToken => response.with_header("www-authenticate", "Bearer"),
            Error::InvalidToken => {
                response.with_header("www-authenticate", r#"Bearer error="invalid_token""#)
            }
            Error::MethodNotAllowed(methods) => response.with_header("allow", methods.join(", ")),
            Error::RateLimited(wait) | Error::Overloaded(wait) => {
                response.with_header("retry-after", wait.as_secs().max(1).to_string())
            }
            Error::Unavailable => {
                response.with_header("retry-after", RETRY_AFTER_UNAVAILABLE.to_string())
            }
            _ => response,
        }
    }
}

fn method_matches(route_method: &str, request_method: &str) -> bool {
    route_method == request_method || (route_method == "GET" && request_method == "HEAD")
}

/// Matches a route pattern against a relative path; the parameters on success.
fn match_path(pattern: &'static str, path: &str) -> Option<Vec<(&'static str, String)>> {
    let mut params = Vec::new();
    let mut pattern_segments = pattern.split('/');
    let mut path_segments = path.split('/');
    loop {
        match (pattern_segments.next(), path_segments.next()) {
            (None, None) => return Some(params),
            (Some(expected), Some(actual)) => {
                match expected.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(_) if actual.is_empty() => return None,
                    Some(name) => params.push((name, actual.to_owned())),
                    None if expected != actual => return None,
                    None => {}
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_with_parameters() {
        assert_eq!(match_path("/me", "/me"), Some(vec![]));
        assert_eq!(match_path("/me", "/me/"), None);
        assert_eq!(match_path("/me", ""), None);
        assert_eq!(
            match_path("/sessions/{id}", "/sessions/abc"),
            Some(vec![("id", "abc".to_owned())])
        );
        assert_eq!(match_path("/sessions/{id}", "/sessions/"), None);
        assert_eq!(match_path("/sessions/{id}", "/sessions/a/b"), None);
    }
}
