//! `/healthz`, `/readyz` and `/metrics` on a small axum server.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

use crate::metrics::HubMetrics;

/// What the health endpoints report.
#[derive(Clone)]
pub struct HealthState {
    /// Metrics rendered on `/metrics`.
    pub metrics: Arc<HubMetrics>,
    /// Set once the hub API and the agent link serve.
    pub ready: Arc<AtomicBool>,
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<HealthState>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "starting")
    }
}

async fn metrics(State(state): State<HealthState>) -> String {
    state.metrics.render()
}

/// The router.
pub fn app(state: HealthState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn readyz_follows_the_flag_and_metrics_render() {
        let state = HealthState {
            metrics: Arc::new(HubMetrics::default()),
            ready: Arc::new(AtomicBool::new(false)),
        };
        state.metrics.owned_shards.set(7);
        let call = |path: &'static str| {
            let app = app(state.clone());
            async move {
                let resp = app
                    .oneshot(Request::get(path).body(Body::empty()).expect("request"))
                    .await
                    .expect("response");
                let status = resp.status();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                    .await
                    .expect("body");
                (status, String::from_utf8_lossy(&body).to_string())
            }
        };
        assert_eq!(call("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        state.ready.store(true, Ordering::Relaxed);
        assert_eq!(call("/readyz").await.0, StatusCode::OK);
        assert_eq!(call("/healthz").await.0, StatusCode::OK);
        let (_, text) = call("/metrics").await;
        assert!(text.contains("kruise_hub_owned_shards 7"), "{text}");
    }
}
