//! The service's Prometheus metrics, rendered in the OpenMetrics text format by
//! [`Metrics::render`] (the server serves them on a listener of their own, `--metrics-bind`).
//!
//! Recording is always on and costs a few atomic operations per event: counters and
//! histograms of `prometheus-client`, labelled only by bounded sets (route templates, never
//! raw paths; outcome and bucket names; status codes), so a scanner requesting random paths
//! cannot grow them.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Request latency buckets: 100 µs to about 15 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.0001, 2.5, 14)
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: Arc<str>,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BucketLabels {
    bucket: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// The route label of requests that matched no route (404s, 405s), so that unmatched paths
/// share one series.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// What a store's connection pool holds right now, for [`Metrics::set_pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open (idle and in use).
    pub connections: u32,
    /// Of those, idle ones.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// The service's metrics (one registry per [`crate::Auth`]).
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    logins: Family<OutcomeLabels, Counter>,
    rate_limited: Family<BucketLabels, Counter>,
    cache: Family<ResultLabels, Counter>,
    pool: Family<StateLabels, Gauge>,
    pool_max: Gauge,
    /// Reads the store's pool at each rendering (set by whoever built the store).
    pool_probe: std::sync::OnceLock<PoolProbe>,
}

/// A reading of a store's connection pool.
type PoolProbe = Box<dyn Fn() -> PoolUse + Send + Sync>;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The hashing pool's instruments, owned by the hasher and registered by [`Metrics::new`].
#[derive(Debug, Clone)]
pub(crate) struct HashingInstruments {
    /// Requests waiting for a hashing slot.
    pub(crate) queue_depth: Gauge,
    /// How long requests waited for a slot.
    pub(crate) wait: Histogram,
}

impl Default for HashingInstruments {
    fn default() -> Self {
        Self {
            queue_depth: Gauge::default(),
            // 10 µs to about 10 s.
            wait: Histogram::new(exponential_buckets(0.00001, 4.0, 11)),
        }
    }
}

impl Metrics {
    /// A registry with every metric, the hasher's among them.
    pub(crate) fn new(hashing: &HashingInstruments) -> Self {
        let mut registry = Registry::with_prefix("auth");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "Requests answered, by method, route template and status",
            requests.clone(),
        );
        let latency: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(latency_buckets()));
        registry.register_with_unit(
            "http_request_duration",
            "Time from the request's arrival in the core to its answer, by route template",
            Unit::Seconds,
            latency.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "logins",
            "Password logins by outcome (success, invalid_credentials, inactive, \
             rate_limited, email_not_verified, unavailable, error)",
            logins.clone(),
        );
        let rate_limited = Family::<BucketLabels, Counter>::default();
        registry.register(
            "rate_limit_refusals",
            "Requests refused by a rate limit, by bucket",
            rate_limited.clone(),
        );
        registry.register(
            "hashing_queue_depth",
            "Requests waiting for a password-hashing slot",
            hashing.queue_depth.clone(),
        );
        registry.register_with_unit(
            "hashing_wait",
            "Time requests waited for a password-hashing slot",
            Unit::Seconds,
            hashing.wait.clone(),
        );
        let cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "principal_cache_lookups",
            "Lookups of the authenticated-principal cache, by result (hit, miss)",
            cache.clone(),
        );
        let pool = Family::<StateLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Database connections of the pool, by state (idle, in_use)",
            pool.clone(),
        );
        let pool_max = Gauge::default();
        registry.register(
            "db_pool_max_connections",
            "The most connections the pool opens",
            pool_max.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            logins,
            rate_limited,
            cache,
            pool,
            pool_max,
            pool_probe: std::sync::OnceLock::new(),
        }
    }

    /// Has every rendering read the pool gauges from `probe` first (the first probe set
    /// stays: one store per service).
    pub fn probe_pool(&self, probe: impl Fn() -> PoolUse + Send + Sync + 'static) {
        let _ = self.pool_probe.set(Box::new(probe));
    }

    /// Counts one answered request and its latency. `method` outside the usual ones is
    /// counted as `OTHER`.
    pub(crate) fn request(&self, method: &str, route: &Arc<str>, status: u16, took: Duration) {
        let method = match method {
            "GET" => "GET",
            "POST" => "POST",
            "PUT" => "PUT",
            "PATCH" => "PATCH",
            "DELETE" => "DELETE",
            "OPTIONS" => "OPTIONS",
            "HEAD" => "HEAD",
            _ => "OTHER",
        };
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route: Arc::clone(route),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: Arc::clone(route),
            })
            .observe(took.as_secs_f64());
    }

    /// Counts one password login by its outcome.
    pub(crate) fn login(&self, outcome: &'static str) {
        self.logins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Counts one refusal by the rate limit `bucket`.
    pub(crate) fn rate_limited(&self, bucket: &'static str) {
        self.rate_limited
            .get_or_create(&BucketLabels { bucket })
            .inc();
    }

    /// Counts one lookup of the principal cache.
    pub(crate) fn cache_lookup(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.cache.get_or_create(&ResultLabels { result }).inc();
    }

    /// Sets the pool gauges (the server calls it before each rendering).
    pub fn set_pool(&self, pool: PoolUse) {
        let in_use = pool.connections.saturating_sub(pool.idle);
        self.pool
            .get_or_create(&StateLabels { state: "idle" })
            .set(i64::from(pool.idle));
        self.pool
            .get_or_create(&StateLabels { state: "in_use" })
            .set(i64::from(in_use));
        self.pool_max.set(i64::from(pool.max));
    }

    /// Every metric in the OpenMetrics text format (`application/openmetrics-text;
    /// version=1.0.0; charset=utf-8`), ending with `# EOF`.
    pub fn render(&self) -> String {
        if let Some(probe) = self.pool_probe.get() {
            self.set_pool(probe());
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_bounded_labels() {
        let hashing = HashingInstruments::default();
        let metrics = Metrics::new(&hashing);
        let route: Arc<str> = Arc::from("/api/v1/auth/login");
        metrics.request("POST", &route, 200, Duration::from_millis(3));
        metrics.request("BREW", &route, 405, Duration::from_millis(1));
        metrics.login("success");
        metrics.rate_limited("login_ip");
        metrics.cache_lookup(true);
        metrics.set_pool(PoolUse {
            connections: 5,
            idle: 3,
            max: 8,
        });
        hashing.queue_depth.set(2);
        hashing.wait.observe(0.01);
        let text = metrics.render();
        for expected in [
            "auth_http_requests_total{method=\"POST\",route=\"/api/v1/auth/login\",status=\"200\"} 1",
            "auth_http_requests_total{method=\"OTHER\",route=\"/api/v1/auth/login\",status=\"405\"} 1",
            "auth_http_request_duration_seconds_count{route=\"/api/v1/auth/login\"} 2",
            "auth_logins_total{outcome=\"success\"} 1",
            "auth_rate_limit_refusals_total{bucket=\"login_ip\"} 1",
            "auth_principal_cache_lookups_total{result=\"hit\"} 1",
            "auth_db_pool_connections{state=\"in_use\"} 2",
            "auth_db_pool_max_connections 8",
            "auth_hashing_queue_depth 2",
            "auth_hashing_wait_seconds_count 1",
            "# EOF",
        ] {
            assert!(text.contains(expected), "{expected} missing from:\n{text}");
        }
    }
}
