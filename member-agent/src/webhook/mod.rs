//! The admission webhook server (AdmissionReview v1). The HTTP layer only decodes and encodes;
//! verdicts come from the pure [`admit`], and every kind is registered once in [`HANDLERS`].

pub mod cert;
pub mod cloneset;
pub mod pod;
pub mod register;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::routing::post;
use axum::{Json, Router};
use k8s_openapi::api::core::v1::Pod;
use kruise_api::field::FieldError;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use kube::core::response::{StatusCause, StatusDetails, StatusSummary};
use kube::core::{DynamicObject, Status};
use kube::runtime::reflector::Store;
use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::gates::FeatureGates;
use crate::metrics::Metrics;

/// Everything a verdict may look at.
#[derive(Clone)]
pub struct State {
    /// Feature gates.
    pub gates: FeatureGates,
    /// Pods in the cluster (for `podsToDelete` checks); `None` skips those checks.
    pub pods: Option<Store<Pod>>,
    /// Metrics.
    pub metrics: Option<Arc<Metrics>>,
}

/// One admission request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// URL path the API server called.
    pub path: String,
    /// The decoded request.
    pub review: AdmissionRequest<DynamicObject>,
}

/// The answer to one admission request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Allowed as is.
    Allow,
    /// Allowed with this JSON patch (mutating webhooks).
    Patch(json_patch::Patch),
    /// Refused: invalid fields (HTTP 422, reason `Invalid`).
    Invalid(Vec<FieldError>),
    /// Refused for another reason (HTTP 400, reason `BadRequest`).
    Deny(String),
}

/// Whether a webhook mutates or validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookType {
    /// MutatingWebhookConfiguration.
    Mutating,
    /// ValidatingWebhookConfiguration.
    Validating,
}

/// One registered webhook.
pub struct Handler {
    /// Webhook name (`mcloneset.kb.io`).
    pub name: &'static str,
    /// URL path.
    pub path: &'static str,
    /// Mutating or validating.
    pub hook_type: HookType,
    /// API group of the resource.
    pub group: &'static str,
    /// API versions.
    pub versions: &'static [&'static str],
    /// Resource (plural).
    pub resource: &'static str,
    /// Operations intercepted.
    pub operations: &'static [&'static str],
    /// `Fail` or `Ignore`.
    pub failure_policy: &'static str,
    /// Only objects carrying this label key are sent (objectSelector `Exists`).
    pub object_label: Option<&'static str>,
    /// The verdict.
    pub admit: fn(&Request, &State) -> Verdict,
}

/// Every webhook the agent serves.
pub const HANDLERS: &[Handler] = &[
    Handler {
        name: "mcloneset.kb.io",
        path: "/mutate-apps-kruise-io-cloneset",
        hook_type: HookType::Mutating,
        group: "apps.kruise.io",
        versions: &["v1alpha1"],
        resource: "clonesets",
        operations: &["CREATE", "UPDATE"],
        failure_policy: "Fail",
        object_label: None,
        admit: cloneset::mutate,
    },
    Handler {
        name: "vcloneset.kb.io",
        path: "/validate-apps-kruise-io-cloneset",
        hook_type: HookType::Validating,
        group: "apps.kruise.io",
        versions: &["v1alpha1"],
        resource: "clonesets",
        operations: &["CREATE", "UPDATE", "DELETE"],
        failure_policy: "Fail",
        object_label: None,
        admit: cloneset::validate,
    },
    Handler {
        name: "mstatefulset.kb.io",
        path: "/mutate-apps-kruise-io-statefulset",
        hook_type: HookType::Mutating,
        group: "apps.kruise.io",
        versions: &["v1alpha1", "v1beta1"],
        resource: "statefulsets",
        operations: &["CREATE", "UPDATE"],
        failure_policy: "Fail",
        object_label: None,
        admit: crate::statefulset::webhook::mutate,
    },
    Handler {
        name: "vstatefulset.kb.io",
        path: "/validate-apps-kruise-io-statefulset",
        hook_type: HookType::Validating,
        group: "apps.kruise.io",
        versions: &["v1alpha1", "v1beta1"],
        resource: "statefulsets",
        operations: &["CREATE", "UPDATE"],
        failure_policy: "Fail",
        object_label: None,
        admit: crate::statefulset::webhook::validate,
    },
    // Every pod outside `control-plane` namespaces, as upstream. The CloneSet controller injects
    // its gates itself, so a missing webhook must not block pods.
    Handler {
        name: "mpod.kb.io",
        path: "/mutate-pod",
        hook_type: HookType::Mutating,
        group: "",
        versions: &["v1"],
        resource: "pods",
        operations: &["CREATE"],
        failure_policy: "Ignore",
        object_label: None,
        admit: pod::mutate,
    },
    Handler {
        name: "mcontainerrecreaterequest.kb.io",
        path: "/mutate-apps-kruise-io-containerrecreaterequest",
        hook_type: HookType::Mutating,
        group: "apps.kruise.io",
        versions: &["v1alpha1"],
        resource: "containerrecreaterequests",
        operations: &["CREATE", "UPDATE"],
        failure_policy: "Fail",
        object_label: None,
        admit: crate::crr::webhook::mutate,
    },
];

/// The verdict for one request: looks the path up in [`HANDLERS`].
pub fn admit(req: &Request, state: &State) -> Verdict {
    match HANDLERS.iter().find(|h| h.path == req.path) {
        Some(h) => (h.admit)(req, state),
        None => Verdict::Deny(format!("no webhook is served at {}", req.path)),
    }
}

/// Decodes the request's object into a typed value.
pub fn decode<T: serde::de::DeserializeOwned>(
    obj: Option<&DynamicObject>,
) -> Result<Option<T>, String> {
    let Some(obj) = obj else { return Ok(None) };
    let value = serde_json::to_value(obj).map_err(|e| e.to_string())?;
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| format!("decoding the object: {e}"))
}

/// A cause's message: the error without its leading `field: `, as Kubernetes writes causes.
fn cause_message(e: &FieldError) -> String {
    let full = e.to_string();
    full.strip_prefix(&format!("{}: ", e.field))
        .map(str::to_string)
        .unwrap_or(full)
}

fn aggregate(errs: &[FieldError]) -> String {
    match errs {
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Turns a verdict into the response for `req`.
pub fn respond(req: &AdmissionRequest<DynamicObject>, verdict: Verdict) -> AdmissionResponse {
    let resp = AdmissionResponse::from(req);
    match verdict {
        Verdict::Allow => resp,
        Verdict::Patch(p) if p.0.is_empty() => resp,
        Verdict::Patch(p) => match resp.with_patch(p) {
            Ok(r) => r,
            Err(e) => AdmissionResponse::from(req).deny(format!("encoding the patch: {e}")),
        },
        Verdict::Invalid(errs) => {
            let mut r = AdmissionResponse::from(req);
            r.allowed = false;
            r.result = Status {
                status: Some(StatusSummary::Failure),
                code: 422,
                message: aggregate(&errs),
                reason: "Invalid".into(),
                metadata: None,
                details: Some(StatusDetails {
                    name: req.name.clone(),
                    group: req.kind.group.clone(),
                    kind: req.kind.kind.clone(),
                    uid: String::new(),
                    causes: errs
                        .iter()
                        .map(|e| StatusCause {
                            reason: e.reason().to_string(),
                            // As upstream: the field lives in `field`, the message starts after it.
                            message: cause_message(e),
                            field: e.field.clone(),
                        })
                        .collect(),
                    retry_after_seconds: 0,
                }),
            };
            r
        }
        Verdict::Deny(msg) => {
            let mut r = AdmissionResponse::from(req).deny(msg);
            r.result.code = 400;
            r.result.reason = "BadRequest".into();
            r
        }
    }
}

/// Encodes a review for the wire. `patch` goes out as base64, the form Kubernetes uses for
/// `[]byte` (kube-core would write an array of numbers).
pub fn encode_review(review: AdmissionReview<DynamicObject>) -> serde_json::Value {
    use base64::Engine;
    let mut value = serde_json::to_value(&review).unwrap_or_default();
    if value.get("apiVersion").is_none() {
        value["apiVersion"] = "admission.k8s.io/v1".into();
        value["kind"] = "AdmissionReview".into();
    }
    if let Some(resp) = value.get_mut("response") {
        if let Some(serde_json::Value::Array(bytes)) = resp.get("patch") {
            let raw: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            resp["patch"] = base64::engine::general_purpose::STANDARD.encode(raw).into();
        }
    }
    value
}

async fn review(
    AxumState((path, state)): AxumState<(&'static str, Arc<State>)>,
    Json(body): Json<AdmissionReview<DynamicObject>>,
) -> Json<serde_json::Value> {
    if let Some(m) = &state.metrics {
        m.admissions.inc();
    }
    let req: AdmissionRequest<DynamicObject> = match body.try_into() {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "malformed AdmissionReview");
            return Json(encode_review(
                AdmissionResponse::invalid(e.to_string()).into_review(),
            ));
        }
    };
    let request = Request {
        path: path.to_string(),
        review: req,
    };
    let verdict = admit(&request, &state);
    debug!(path, ?verdict, "admission");
    Json(encode_review(
        respond(&request.review, verdict).into_review(),
    ))
}

/// The webhook router: one POST route per registered handler.
pub fn app(state: State) -> Router {
    let state = Arc::new(state);
    let mut router = Router::new();
    for h in HANDLERS {
        router = router.route(h.path, post(review).with_state((h.path, state.clone())));
    }
    router
}

/// Errors of the webhook server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Binding the listener failed.
    #[error("binding the webhook listener on {addr}: {source}")]
    Bind {
        /// Requested address.
        addr: SocketAddr,
        /// I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Certificates could not be created.
    #[error(transparent)]
    Cert(#[from] cert::CertError),
}

/// Binds the HTTPS listener; returns it with the bound address.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    Ok((listener, local))
}

/// Serves the router over TLS on the listener until the task is dropped.
pub async fn serve_tls(listener: TcpListener, tls: rustls::ServerConfig, router: Router) {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "webhook accept");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let router = router.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(s) => s,
                Err(e) => {
                    debug!(error = %e, %peer, "webhook TLS handshake");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(router);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                debug!(error = %e, %peer, "webhook connection");
            }
        });
    }
}

#[cfg(test)]
mod tests;
