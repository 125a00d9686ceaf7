//! The /metrics, /healthz and /readyz endpoints.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus_client::registry::Registry;

/// Shared state of the telemetry endpoints.
#[derive(Clone)]
pub struct Telemetry {
    /// The metrics registry.
    pub registry: Arc<Registry>,
    /// Set once the agent can serve (webhook up, caches started).
    pub ready: Arc<AtomicBool>,
}

async fn metrics(State(t): State<Telemetry>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        crate::metrics::render(&t.registry),
    )
}

async fn readyz(State(t): State<Telemetry>) -> impl IntoResponse {
    if t.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// The telemetry router.
pub fn app(t: Telemetry) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn endpoints_answer() {
        let mut reg = Registry::default();
        let m = crate::metrics::Metrics::new(&mut reg);
        m.leader.set(1);
        let t = Telemetry {
            registry: Arc::new(reg),
            ready: Arc::new(AtomicBool::new(false)),
        };
        let get = |path: &str| axum::http::Request::get(path).body(Body::empty()).unwrap();
        let r = app(t.clone()).oneshot(get("/readyz")).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        t.ready.store(true, Ordering::SeqCst);
        let r = app(t.clone()).oneshot(get("/readyz")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let r = app(t.clone()).oneshot(get("/metrics")).await.unwrap();
        let body = r.into_body().collect().await.unwrap().to_bytes();
        assert!(String::from_utf8_lossy(&body).contains("kruise_agent_leader 1"));
        let r = app(t).oneshot(get("/healthz")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}
