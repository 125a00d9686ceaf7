//! An HTTPS admission webhook server for tests: axum over rustls with its own rcgen CA,
//! recording every AdmissionReview and answering by path (`allow-*`, `warn-*`, `deny-*`,
//! `denyplain-*`, `slow-*`, `wronguid`, `label-KEY`).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use serde_json::{json, Value};

/// One request the webhook server received.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub query: String,
    pub content_type: String,
    pub review: Value,
}

#[derive(Clone, Default)]
pub struct Hooks {
    received: Arc<Mutex<Vec<Received>>>,
}

impl Hooks {
    /// The requests received on `path`.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.received
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

/// A running HTTPS webhook server.
pub struct WebhookServer {
    pub addr: SocketAddr,
    /// The CA certificate, base64 PEM as `caBundle` carries it.
    pub ca_bundle: String,
    pub hooks: Hooks,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn allow(uid: &Value) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {"uid": uid, "allowed": true}})
}

async fn handle(
    State(hooks): State<Hooks>,
    Path(path): Path<String>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    Json(review): Json<Value>,
) -> Json<Value> {
    hooks.received.lock().expect("lock").push(Received {
        path: path.clone(),
        query: uri.query().unwrap_or("").to_string(),
        content_type: headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        review: review.clone(),
    });
    let uid = review
        .pointer("/request/uid")
        .cloned()
        .unwrap_or(Value::Null);
    let object = review
        .pointer("/request/object")
        .cloned()
        .unwrap_or(Value::Null);
    let (behaviour, arg) = path.split_once('-').unwrap_or((path.as_str(), ""));
    match behaviour {
        "allow" => Json(allow(&uid)),
        "warn" => {
            let mut body = allow(&uid);
            body["response"]["warnings"] = json!([format!("checked by {arg}")]);
            Json(body)
        }
        "denyplain" => Json(
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": false, "status": {"message": format!("{arg} must be labelled")}}}),
        ),
        "deny" => Json(
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": false, "status": {"code": 403, "reason": "Forbidden", "message": format!("no {arg} today")}}}),
        ),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Json(allow(&uid))
        }
        "wronguid" => Json(
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": "not-the-uid", "allowed": true}}),
        ),
        "label" => {
            let ops = match object.pointer("/metadata/labels") {
                Some(labels) if labels.get(arg).is_some() => json!([]),
                Some(_) => {
                    json!([{"op": "add", "path": format!("/metadata/labels/{arg}"), "value": "yes"}])
                }
                None => json!([{"op": "add", "path": "/metadata/labels", "value": {arg: "yes"}}]),
            };
            let mut body = allow(&uid);
            if ops.as_array().is_some_and(|o| !o.is_empty()) {
                body["response"]["patchType"] = json!("JSONPatch");
                body["response"]["patch"] =
                    json!(base64::engine::general_purpose::STANDARD.encode(ops.to_string()));
            }
            Json(body)
        }
        _ => Json(allow(&uid)),
    }
}

/// Starts a webhook server on 127.0.0.1 (certificate for the IP and `hooks.webhooks.svc`).
pub async fn start_webhook_server() -> WebhookServer {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.clone().self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf = CertificateParams::new(vec!["hooks.webhooks.svc".to_string()]).expect("leaf");
    leaf.subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().expect("ip")));
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf cert");
    let certs = vec![leaf_cert.der().clone()];
    let key =
        rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).expect("key der");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server tls");
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let hooks = Hooks::default();
    let app = Router::new()
        .route("/{path}", post(handle))
        .with_state(hooks.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let service = hyper_util::service::TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    WebhookServer {
        addr,
        ca_bundle: base64::engine::general_purpose::STANDARD.encode(ca_cert.pem()),
        hooks,
        task,
    }
}
