//! The HTTP front: routing of Kubernetes URL shapes to discovery, OpenAPI and REST handlers,
//! with authentication and metrics around every request.

pub mod admission;
pub mod budgets;
pub mod delete;
pub mod discovery;
pub mod filter;
pub mod negotiate;
pub mod objects;
pub mod openapi;
pub mod paging;
pub mod patching;
pub mod rest;
pub mod reviews;
pub mod subresources;
pub mod table;
pub mod watch;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;

use crate::auth::TokenAuth;
use crate::errors::ApiError;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::Store;

/// Largest accepted request body (kube-apiserver's limit is 3 MiB for most writes).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Shared state of one API server.
pub struct ApiState {
    pub store: Arc<dyn Store>,
    pub registry: Registry,
    pub auth: TokenAuth,
    pub metrics: Arc<Metrics>,
    /// `host:port` clients reach the server at (discovery's serverAddressByClientCIDRs).
    pub advertise_address: Mutex<String>,
    /// How often a watch with `allowWatchBookmarks=true` gets a BOOKMARK.
    pub bookmark_interval: Duration,
    pub openapi: openapi::OpenApiCache,
    /// Resolves admission webhook `service` references (there is no cluster DNS).
    pub webhook_service_resolver: Option<crate::webhook::ServiceResolver>,
}

impl ApiState {
    /// State over a store and registry, with authentication as given.
    pub fn new(store: Arc<dyn Store>, registry: Registry, auth: TokenAuth) -> Self {
        ApiState {
            store,
            registry,
            auth,
            metrics: Arc::new(Metrics::default()),
            advertise_address: Mutex::new("127.0.0.1:6443".to_string()),
            bookmark_interval: Duration::from_secs(60),
            openapi: openapi::OpenApiCache::default(),
            webhook_service_resolver: None,
        }
    }
}

/// The version this server reports; minor 31 makes the kubectl dispatcher pick a JSON-speaking kubectl.
pub fn version_info() -> serde_json::Value {
    json!({
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.9",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z",
        "goVersion": "go1.22.12",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// Builds the router over shared state.
pub fn app(state: Arc<ApiState>) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate_and_measure,
        ))
        .with_state(state)
}

fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/healthz" | "/readyz" | "/livez" | "/version" | "/version/"
    )
}

async fn authenticate_and_measure(
    State(state): State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let is_watch = request
        .uri()
        .query()
        .is_some_and(|q| q.contains("watch=true") || q.contains("watch=1"));
    if state.auth.enabled() && !is_public(&path) {
        let header = request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if state.auth.authenticate(header).is_none() {
            let response = ApiError::unauthorized().into_response();
            state.metrics.observe(
                &method,
                &path,
                is_watch,
                response.status().as_u16(),
                started.elapsed(),
            );
            return response;
        }
    }
    let response = next.run(request).await;
    state.metrics.observe(
        &method,
        &path,
        is_watch,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A parsed resource URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

/// What a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Version,
    Health,
    Metrics,
    ApiVersions,
    ApiGroupList,
    ApiGroup(String),
    ResourceList { group: String, version: String },
    OpenApiIndex,
    OpenApiDoc(String),
    Resource(Target),
    NotFound,
}

/// Maps a request path onto a route.
pub fn route(path: &str) -> Route {
    let trimmed = path.trim_end_matches('/');
    let segments: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        ["version"] => Route::Version,
        ["healthz", ..] | ["readyz", ..] | ["livez", ..] => Route::Health,
        ["metrics"] => Route::Metrics,
        ["api"] => Route::ApiVersions,
        ["apis"] => Route::ApiGroupList,
        ["openapi", "v3"] => Route::OpenApiIndex,
        ["openapi", "v3", rest @ ..] => Route::OpenApiDoc(rest.join("/")),
        ["api", "v1"] => Route::ResourceList {
            group: String::new(),
            version: "v1".into(),
        },
        ["apis", group] => Route::ApiGroup(group.to_string()),
        ["apis", group, version] => Route::ResourceList {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", "v1", rest @ ..] => resource_route("", "v1", rest),
        ["apis", group, version, rest @ ..] => resource_route(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let target =
        |namespace: Option<&str>, resource: &str, name: Option<&str>, sub: Option<&str>| {
            Route::Resource(Target {
                group: group.to_string(),
                version: version.to_string(),
                namespace: namespace.map(String::from),
                resource: resource.to_string(),
                name: name.map(String::from),
                subresource: sub.map(String::from),
            })
        };
    match rest {
        ["namespaces", ns, "status" | "finalize"] if group.is_empty() => {
            target(None, "namespaces", Some(ns), rest.get(2).copied())
        }
        ["namespaces", ns, resource] => target(Some(ns), resource, None, None),
        ["namespaces", ns, resource, name] => target(Some(ns), resource, Some(name), None),
        ["namespaces", ns, resource, name, sub] => {
            target(Some(ns), resource, Some(name), Some(sub))
        }
        [resource] => target(None, resource, None, None),
        [resource, name] => target(None, resource, Some(name), None),
        [resource, name, sub] => target(None, resource, Some(name), Some(sub)),
        _ => Route::NotFound,
    }
}

async fn dispatch(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let result = match route(parts.uri.path()) {
        Route::Version => Ok(axum::Json(version_info()).into_response()),
        Route::Health => Ok((StatusCode::OK, "ok").into_response()),
        Route::Metrics => Ok(state.metrics.render_response()),
        Route::ApiVersions => Ok(discovery::api_versions(&state)),
        Route::ApiGroupList => Ok(discovery::api_group_list(&state)),
        Route::ApiGroup(group) => discovery::api_group(&state, &group),
        Route::ResourceList { group, version } => {
            discovery::resource_list(&state, &group, &version)
        }
        Route::OpenApiIndex => Ok(openapi::index(&state)),
        Route::OpenApiDoc(path) => openapi::document(&state, &path),
        Route::Resource(target) => {
            rest::handle(
                state.clone(),
                parts.method.clone(),
                target,
                parts.uri.clone(),
                parts.headers.clone(),
                body,
            )
            .await
        }
        Route::NotFound => Err(ApiError::path_not_found()),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// Reads a request body up to the size limit.
pub async fn read_body(body: Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large("Request entity too large: limit is 3145728"))
}

/// The method name used in messages.
pub fn verb_of(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "unknown",
    }
}

/// A header value as a string, if present and readable.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_kubernetes_paths() {
        assert_eq!(route("/version"), Route::Version);
        assert_eq!(
            route("/apis/apps/v1"),
            Route::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        match route("/api/v1/namespaces/default/pods/p1/status") {
            Route::Resource(t) => {
                assert_eq!(t.namespace.as_deref(), Some("default"));
                assert_eq!(t.resource, "pods");
                assert_eq!(t.name.as_deref(), Some("p1"));
                assert_eq!(t.subresource.as_deref(), Some("status"));
            }
            other => panic!("unexpected {other:?}"),
        }
        match route("/api/v1/namespaces/foo") {
            Route::Resource(t) => {
                assert_eq!(
                    (t.resource.as_str(), t.name.as_deref(), t.namespace),
                    ("namespaces", Some("foo"), None)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match route("/api/v1/namespaces/foo/finalize") {
            Route::Resource(t) => assert_eq!(t.subresource.as_deref(), Some("finalize")),
            other => panic!("unexpected {other:?}"),
        }
        match route("/apis/apps/v1/deployments") {
            Route::Resource(t) => assert_eq!((t.namespace, t.name), (None, None)),
            other => panic!("unexpected {other:?}"),
        }
    }
}
