//! Starts an API server over loopback TLS for a test and builds a kube client for it.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use kruise_apiserver::store::{MemoryStore, Store};
use kruise_apiserver::{RunningServer, ServerConfig};
use serde_json::Value;

/// A running server, a client and the temp dir holding its PKI.
pub struct TestServer {
    pub server: RunningServer,
    pub client: kube::Client,
    pub kubeconfig: String,
    _dir: tempfile::TempDir,
}

/// The CloneSet-like CRD fixture (group `test.kruise.io`).
pub fn cloneset_crd() -> Value {
    serde_yaml::from_str(include_str!("../fixtures/cloneset-crd.yaml")).expect("fixture CRD parses")
}

/// Starts a server over a fresh memory store with the fixture CRD installed.
pub async fn start() -> TestServer {
    start_with(Arc::new(MemoryStore::new()), vec![cloneset_crd()]).await
}

/// Starts a server over `store` with `crds` installed.
pub async fn start_with(store: Arc<dyn Store>, crds: Vec<Value>) -> TestServer {
    start_custom(store, crds, std::time::Duration::from_secs(60)).await
}

/// Starts a server with a chosen bookmark interval.
pub async fn start_custom(
    store: Arc<dyn Store>,
    crds: Vec<Value>,
    bookmark_interval: std::time::Duration,
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let mut config = ServerConfig::new(listen, store, dir.path().join("pki"));
    config.cluster_name = "test".into();
    config.crds = crds;
    config.bookmark_interval = bookmark_interval;
    let server = kruise_apiserver::start(config)
        .await
        .expect("server starts");
    let kubeconfig = server.kubeconfig("test");
    let client = client_for(&kubeconfig).await;
    TestServer {
        server,
        client,
        kubeconfig,
        _dir: dir,
    }
}

/// A kube client from kubeconfig text alone.
pub async fn client_for(kubeconfig: &str) -> kube::Client {
    let parsed = kube::config::Kubeconfig::from_yaml(kubeconfig).expect("kubeconfig parses");
    let config =
        kube::Config::from_custom_kubeconfig(parsed, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig usable");
    kube::Client::try_from(config).expect("client")
}

/// Polls `check` until it returns true or `secs` pass.
pub async fn eventually<F, Fut>(secs: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}
