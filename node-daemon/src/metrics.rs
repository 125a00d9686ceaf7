//! The daemon's Prometheus metrics and its `/healthz`, `/readyz`, `/metrics` endpoints.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::{text::encode, EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// How a container recreate request ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Outcome {
    Succeeded,
    Failed,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: Outcome,
}

/// Every metric the daemon exports.
pub struct Metrics {
    pub pulls_started: Counter,
    pub pulls_succeeded: Counter,
    pub pulls_failed: Counter,
    pub pulled_bytes: Counter,
    pub recreate_requests: Family<OutcomeLabels, Counter>,
    registry: Registry,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kruise_daemon");
        let m = Metrics {
            pulls_started: Counter::default(),
            pulls_succeeded: Counter::default(),
            pulls_failed: Counter::default(),
            pulled_bytes: Counter::default(),
            recreate_requests: Family::default(),
            registry: Registry::default(),
            ready: AtomicBool::new(false),
        };
        registry.register(
            "image_pulls_started",
            "Image pulls started through CRI",
            m.pulls_started.clone(),
        );
        registry.register(
            "image_pulls_succeeded",
            "Image pulls that succeeded",
            m.pulls_succeeded.clone(),
        );
        registry.register(
            "image_pulls_failed",
            "Image pull tasks that failed after their retries",
            m.pulls_failed.clone(),
        );
        registry.register(
            "image_pulled_bytes",
            "Bytes of images pulled, as the runtime reports their size",
            m.pulled_bytes.clone(),
        );
        registry.register(
            "container_recreate_requests",
            "Container recreate requests finished, by outcome",
            m.recreate_requests.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Marks the daemon ready (connected to its runtime and the API server).
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::SeqCst);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Encoding into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

async fn metrics(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}

async fn readyz(State(m): State<Arc<Metrics>>) -> impl IntoResponse {
    if m.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: runtime or API server not connected yet",
        )
    }
}

/// The health and metrics router.
pub fn app(m: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(m)
}

/// Serves [`app`] on `addr` until the future is dropped.
pub async fn serve(addr: SocketAddr, m: Arc<Metrics>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, app(m)).await?;
    Ok(())
}
