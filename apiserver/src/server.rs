//! The public entry point: configure, start (TLS listener, PKI, built-in namespaces, CRDs) and
//! stop an API server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::http::HeaderMap;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info};

use crate::auth::{random_token, TokenAuth, UserInfo};
use crate::errors::ApiError;
use crate::http::negotiate::{Output, Query};
use crate::http::rest::{create_object, write_update, Ctx};
use crate::http::{self as api_http, ApiState, Target};
use crate::metadata::WriteScope;
use crate::pki::Pki;
use crate::registry::Registry;
use crate::store::Store;

/// Namespaces every cluster has.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

/// How to run a server.
pub struct ServerConfig {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where objects live.
    pub store: Arc<dyn Store>,
    /// Directory holding the CA and serving certificate (created if missing, reused if present).
    pub pki_dir: PathBuf,
    /// Names the CA and the kubeconfig entries.
    pub cluster_name: String,
    /// Extra DNS names or IPs for the serving certificate.
    pub extra_hosts: Vec<String>,
    /// Accepted bearer tokens; empty disables authentication.
    pub tokens: TokenAuth,
    /// The token written into kubeconfigs; one is generated (and accepted) when `None`.
    pub admin_token: Option<String>,
    /// CustomResourceDefinition documents installed at start (created or updated).
    pub crds: Vec<Value>,
    /// Interval of watch bookmarks.
    pub bookmark_interval: Duration,
    /// Run the garbage collector and namespace finalizer in this process.
    pub garbage_collector: bool,
    /// Resolves admission webhook `clientConfig.service` references to addresses; without it
    /// `<name>.<namespace>.svc` is looked up in DNS.
    pub webhook_service_resolver: Option<crate::webhook::ServiceResolver>,
}

impl ServerConfig {
    /// A configuration with defaults: authentication with a generated admin token, no extra hosts or CRDs.
    pub fn new(listen: SocketAddr, store: Arc<dyn Store>, pki_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            listen,
            store,
            pki_dir: pki_dir.into(),
            cluster_name: "kruise".to_string(),
            extra_hosts: Vec::new(),
            tokens: TokenAuth::disabled(),
            admin_token: None,
            crds: Vec::new(),
            bookmark_interval: Duration::from_secs(60),
            garbage_collector: true,
            webhook_service_resolver: None,
        }
    }
}

/// A running server.
pub struct RunningServer {
    addr: SocketAddr,
    state: Arc<ApiState>,
    pki: Pki,
    admin_token: String,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
    controllers: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://host:port`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The CA certificate (PEM) clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_cert_pem
    }

    /// The admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The server's shared state (store, registry, metrics).
    pub fn state(&self) -> Arc<ApiState> {
        self.state.clone()
    }

    /// An in-process client over this server's objects.
    pub fn client(&self) -> crate::local::LocalClient {
        crate::local::LocalClient::new(self.state.clone())
    }

    /// A kubeconfig (YAML) that reaches this server as admin.
    pub fn kubeconfig(&self, cluster_name: &str) -> String {
        crate::kubeconfig::render(
            cluster_name,
            &self.url(),
            &self.pki.ca_cert_pem,
            Some(&self.admin_token),
        )
    }

    /// Writes the kubeconfig to `path` (atomically, mode 0600).
    pub fn write_kubeconfig(&self, path: &Path, cluster_name: &str) -> anyhow::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, self.kubeconfig(cluster_name))
            .with_context(|| format!("writing {}", tmp.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Stops accepting, closes open connections and waits for the listener task.
    pub async fn shutdown(self) {
        for controller in &self.controllers {
            controller.abort();
        }
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

fn internal_ctx(
    state: &Arc<ApiState>,
    group: &str,
    version: &str,
    plural: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<Ctx, ApiError> {
    let desc = state
        .registry
        .get(group, version, plural)
        .ok_or_else(ApiError::path_not_found)?;
    Ok(Ctx {
        state: state.clone(),
        desc,
        target: Target {
            group: group.into(),
            version: version.into(),
            namespace: namespace.map(String::from),
            resource: plural.into(),
            name: name.map(String::from),
            subresource: None,
        },
        query: Query::default(),
        headers: HeaderMap::new(),
        output: Output::Json,
    })
}

/// Creates an object through the normal admission path, or (with `update`) replaces the
/// existing one's spec. Used for built-in namespaces and configured CRDs.
pub async fn upsert(
    state: &Arc<ApiState>,
    group: &str,
    version: &str,
    plural: &str,
    obj: Value,
    update: bool,
) -> Result<Value, ApiError> {
    let namespace = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(String::from);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .map(String::from);
    let ctx = internal_ctx(state, group, version, plural, namespace.as_deref(), None)?;
    match create_object(&ctx, obj.clone()).await {
        Ok((created, _)) => Ok(created),
        Err(ApiError { code: 409, .. }) if update => {
            let ctx = internal_ctx(
                state,
                group,
                version,
                plural,
                namespace.as_deref(),
                name.as_deref(),
            )?;
            let (saved, _) = write_update(&ctx, WriteScope::Main, None, |current| {
                let mut next = obj.clone();
                if let (Some(meta), Some(cur_meta)) =
                    (next.get_mut("metadata"), current.get("metadata"))
                {
                    meta["resourceVersion"] = cur_meta
                        .get("resourceVersion")
                        .cloned()
                        .unwrap_or(Value::Null);
                }
                Ok(next)
            })
            .await?;
            Ok(saved)
        }
        Err(ApiError { code: 409, .. }) => Ok(obj),
        Err(e) => Err(e),
    }
}

/// Starts a server.
pub async fn start(config: ServerConfig) -> anyhow::Result<RunningServer> {
    let ServerConfig {
        listen,
        store,
        pki_dir,
        cluster_name,
        extra_hosts,
        mut tokens,
        admin_token,
        crds,
        bookmark_interval,
        garbage_collector,
        webhook_service_resolver,
    } = config;
    let pki =
        Pki::load_or_create(&pki_dir, &cluster_name, &extra_hosts).context("preparing the PKI")?;
    let admin_token = admin_token.unwrap_or_else(random_token);
    tokens.insert(
        admin_token.clone(),
        UserInfo {
            name: "kubernetes-admin".into(),
            uid: "admin".into(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        },
    );
    let mut state = ApiState::new(store, Registry::with_builtins(), tokens);
    state.bookmark_interval = bookmark_interval;
    state.webhook_service_resolver = webhook_service_resolver;
    let state = Arc::new(state);
    let loaded = crate::crds::load_stored(&state)
        .await
        .context("loading stored CRDs")?;
    debug!(loaded, "served stored CRDs");
    for ns in SYSTEM_NAMESPACES {
        upsert(
            &state,
            "",
            "v1",
            "namespaces",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            false,
        )
        .await
        .map_err(|e| anyhow::anyhow!("creating namespace {ns}: {e}"))?;
    }
    for crd in crds {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        upsert(
            &state,
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            crd,
            true,
        )
        .await
        .map_err(|e| anyhow::anyhow!("installing CRD {name}: {e}"))?;
    }
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    if let Ok(mut advertised) = state.advertise_address.lock() {
        *advertised = addr.to_string();
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config()?));
    let app = api_http::app(state.clone());
    let (shutdown, mut shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            tokio::select! {
                _ = shutdown_rx.changed() => break,
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let _ = tcp.set_nodelay(true);
                    let acceptor = acceptor.clone();
                    let service = hyper_util::service::TowerToHyperService::new(app.clone());
                    connections.spawn(async move {
                        let Ok(tls) = acceptor.accept(tcp).await else { return };
                        let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        if let Err(e) = builder.serve_connection_with_upgrades(TokioIo::new(tls), service).await {
                            debug!(error = %e, "connection ended with an error");
                        }
                    });
                }
            }
        }
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    });
    let mut controllers = Vec::new();
    if garbage_collector {
        let gc = Arc::new(crate::gc::GarbageCollector::new(
            crate::local::LocalClient::new(state.clone()),
        ));
        controllers.push(tokio::spawn(gc.run()));
    }
    info!(%addr, "API server listening");
    Ok(RunningServer {
        addr,
        state,
        pki,
        admin_token,
        shutdown,
        task,
        controllers,
    })
}
