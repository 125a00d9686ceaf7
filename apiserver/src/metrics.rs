//! Prometheus metrics of the API server: requests by verb, resource and code, latency, watchers.

use std::sync::atomic::AtomicI64;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{header, Method};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Labels of one request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub verb: String,
    pub resource: String,
    pub code: String,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    pub verb: String,
}

/// The server's metrics and their registry.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<VerbLabels, Histogram>,
    pub watchers: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<VerbLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let watchers = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "apiserver_request",
            "API requests by verb, resource and HTTP code",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "API request latency by verb (watches: time to stream end)",
            latency.clone(),
        );
        registry.register(
            "apiserver_registered_watchers",
            "Open watch streams",
            watchers.clone(),
        );
        Metrics {
            registry: Mutex::new(registry),
            requests,
            latency,
            watchers,
        }
    }
}

/// The Kubernetes verb of a request (closed set, used as a label).
pub fn request_verb(method: &Method, path: &str, is_watch: bool) -> &'static str {
    let resource_path = path.starts_with("/api/") || path.starts_with("/apis/");
    match *method {
        Method::GET if is_watch => "WATCH",
        Method::GET if resource_path => "GET",
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}

/// The resource (plural) of a path, or a fixed label for non-resource paths.
fn resource_label(path: &str) -> String {
    match crate::http::route(path) {
        crate::http::Route::Resource(t) => match t.subresource {
            Some(sub) => format!("{}/{sub}", t.resource),
            None => t.resource,
        },
        _ => "nonresource".to_string(),
    }
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(
        &self,
        method: &Method,
        path: &str,
        is_watch: bool,
        code: u16,
        elapsed: Duration,
    ) {
        let verb = request_verb(method, path, is_watch).to_string();
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.clone(),
                resource: resource_label(path),
                code: code.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&VerbLabels { verb })
            .observe(elapsed.as_secs_f64());
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }

    /// `/metrics` response.
    pub fn render_response(&self) -> Response {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            self.render(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_requests() {
        let metrics = Metrics::default();
        metrics.observe(
            &Method::GET,
            "/api/v1/namespaces/default/pods",
            false,
            200,
            Duration::from_millis(3),
        );
        let text = metrics.render();
        assert!(
            text.contains("apiserver_request_total{verb=\"GET\",resource=\"pods\",code=\"200\"} 1"),
            "{text}"
        );
    }
}
