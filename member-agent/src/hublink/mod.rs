//! The agent side of the hub link: join the hub with the cluster's token, keep one `Sync` stream,
//! apply the cluster's Works with server-side apply, acknowledge each applied revision, report
//! Work status and heartbeat with the cluster's capacity.
//!
//! The last applied revision and the objects each Work created are saved in a ConfigMap of the
//! member cluster, so after any disconnect (or a restart) the agent resumes from that revision and
//! receives only what changed meanwhile; when the hub no longer has that revision it sends a
//! snapshot and the agent prunes what it no longer should have. While the hub is unreachable the
//! agent keeps serving its cluster and reconnects with backoff, trying each hub endpoint in turn.

pub mod apply;
pub mod state;
pub mod status;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kruise_proto::federation::federation_client::FederationClient;
use kruise_proto::federation::{
    agent_message, hub_message, work_event, Ack, AgentMessage, Heartbeat, HubMessage, JoinRequest,
    SyncStart, WorkEvent, WorkStatus,
};
use kruise_proto::JoinFile;
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tracing::{debug, info, warn};

use apply::{Applier, ObjectRef};
use state::{LinkState, StateStore};

/// How the link runs.
#[derive(Clone, Debug)]
pub struct HubLinkConfig {
    /// The join file (re-read at every reconnect, so a rotated token is picked up).
    pub join_file: PathBuf,
    /// Namespace of the state ConfigMap.
    pub state_namespace: String,
    /// The agent's version, reported to the hub.
    pub agent_version: String,
    /// How often every applied Work's status is re-read and reported when changed.
    pub status_interval: Duration,
}

impl HubLinkConfig {
    /// Defaults for `join_file`: state in `kube-system`, status every 5 s.
    pub fn new(join_file: PathBuf) -> Self {
        HubLinkConfig {
            join_file,
            state_namespace: "kube-system".into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            status_interval: Duration::from_secs(5),
        }
    }
}

/// A failed hub session.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The join file is unusable.
    #[error(transparent)]
    JoinFile(#[from] kruise_proto::JoinFileError),
    /// The endpoint URL or TLS settings are invalid.
    #[error("hub endpoint {endpoint}: {source}")]
    Endpoint {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    /// The hub refused or failed a call.
    #[error("hub {operation}: {status}")]
    Hub {
        operation: &'static str,
        status: tonic::Status,
    },
    /// The member cluster's API failed.
    #[error("member cluster {operation}: {source}")]
    Cluster {
        operation: &'static str,
        #[source]
        source: kube::Error,
    },
}

impl LinkError {
    /// Whether reconnecting soon may help (a refused token needs an operator first).
    pub fn is_retryable(&self) -> bool {
        match self {
            LinkError::JoinFile(_) | LinkError::Endpoint { .. } => false,
            LinkError::Hub { status, .. } => !matches!(
                status.code(),
                tonic::Code::Unauthenticated | tonic::Code::PermissionDenied
            ),
            LinkError::Cluster { .. } => true,
        }
    }
}

/// The TLS channel to one hub endpoint.
pub async fn connect(join: &JoinFile, endpoint: &str) -> Result<Channel, LinkError> {
    let err = |source| LinkError::Endpoint {
        endpoint: endpoint.to_string(),
        source,
    };
    let host = join.server_name.clone().unwrap_or_else(|| {
        endpoint
            .split("://")
            .nth(1)
            .unwrap_or(endpoint)
            .rsplit_once(':')
            .map(|(h, _)| h.trim_matches(|c| c == '[' || c == ']').to_string())
            .unwrap_or_else(|| "localhost".into())
    });
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&join.ca_pem))
        .domain_name(host);
    Endpoint::from_shared(endpoint.to_string())
        .map_err(err)?
        .tls_config(tls)
        .map_err(err)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(err)
}

/// A `Federation` client that sends the cluster token with every call.
pub type HubClient = FederationClient<
    tonic::service::interceptor::InterceptedService<
        Channel,
        Box<
            dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>
                + Send
                + Sync,
        >,
    >,
>;

/// Wraps `channel` with the token interceptor.
pub fn hub_client(channel: Channel, token: &str) -> HubClient {
    let value: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> =
        format!("Bearer {token}").parse().ok();
    let interceptor: Box<
        dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send + Sync,
    > = Box::new(move |mut request: tonic::Request<()>| {
        if let Some(v) = value.clone() {
            request
                .metadata_mut()
                .insert(kruise_proto::AUTHORIZATION, v);
        }
        Ok(request)
    });
    FederationClient::with_interceptor(channel, interceptor)
}

/// The link's working state for one agent process.
struct Link {
    client: Client,
    applier: Applier,
    store: StateStore,
    state: LinkState,
    dirty: bool,
    /// Last status sent per Work, so unchanged statuses are not re-sent.
    reported: HashMap<String, (i64, bool, bool, Value)>,
    /// Hub revision of each Work's current spec.
    revisions: HashMap<String, i64>,
    config: HubLinkConfig,
}

fn msg(m: agent_message::Message) -> AgentMessage {
    AgentMessage { message: Some(m) }
}

impl Link {
    async fn capacity(&self) -> kruise_proto::federation::Capacity {
        let nodes = Api::<Node>::all(self.client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let version = self
            .client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .unwrap_or_default();
        status::capacity(&nodes, &version, &self.config.agent_version)
    }

    fn status_message(
        &mut self,
        key: &str,
        revision: i64,
        result: Result<&Value, String>,
    ) -> Option<AgentMessage> {
        let (namespace, name) = key.split_once('/')?;
        let (applied, available, workload, message) = match result {
            Ok(obj) => (
                true,
                status::available(obj),
                status::workload_status(obj),
                String::new(),
            ),
            Err(message) => (false, false, Value::Null, message),
        };
        let fingerprint = (revision, applied, available, workload.clone());
        if self.reported.get(key) == Some(&fingerprint) {
            return None;
        }
        self.reported.insert(key.to_string(), fingerprint);
        Some(msg(agent_message::Message::Status(WorkStatus {
            namespace: namespace.to_string(),
            name: name.to_string(),
            revision,
            applied,
            available,
            message,
            workload_status_json: if workload.is_null() {
                Vec::new()
            } else {
                serde_json::to_vec(&workload).unwrap_or_default()
            },
        })))
    }

    /// Applies one Work event; returns the status to report, if any.
    async fn handle_work(&mut self, ev: WorkEvent) -> Option<AgentMessage> {
        let key = format!("{}/{}", ev.namespace, ev.name);
        if ev.r#type == work_event::Type::Delete as i32 {
            if let Some(target) = self.state.works.remove(&key) {
                match self.applier.remove(&key, &target).await {
                    Ok(removed) => debug!(work = %key, removed, "Work deleted"),
                    Err(e) => warn!(work = %key, error = %e, "removing the workload failed"),
                }
            }
            self.revisions.remove(&key);
            self.reported.remove(&key);
            self.dirty = true;
            return None;
        }
        let work: Value = match serde_json::from_slice(&ev.work_json) {
            Ok(work) => work,
            Err(e) => {
                return self.status_message(
                    &key,
                    ev.revision,
                    Err(format!("Work is not JSON: {e}")),
                )
            }
        };
        let manifest = work
            .pointer("/spec/workload")
            .cloned()
            .unwrap_or(Value::Null);
        if let (Some(old), Some(new)) = (
            self.state.works.get(&key).cloned(),
            apply::object_ref(&manifest, &ev.namespace),
        ) {
            if old != new {
                // The Work now manages another object: remove the one it created before.
                let _ = self.applier.remove(&key, &old).await;
            }
        }
        self.revisions.insert(key.clone(), ev.revision);
        match self.applier.apply(&key, &ev.namespace, &manifest).await {
            Ok((target, applied)) => {
                self.state.works.insert(key.clone(), target);
                self.dirty = true;
                self.status_message(&key, ev.revision, Ok(&applied))
            }
            Err(e) => {
                warn!(work = %key, error = %e, "applying the Work failed");
                self.status_message(&key, ev.revision, Err(e.to_string()))
            }
        }
    }

    /// Re-reads every applied workload and returns the statuses that changed.
    async fn sweep(&mut self) -> Vec<AgentMessage> {
        let works: Vec<(String, ObjectRef)> = self
            .state
            .works
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = Vec::new();
        for (key, target) in works {
            let revision = self
                .revisions
                .get(&key)
                .copied()
                .unwrap_or(self.state.revision);
            if let Ok(Some(obj)) = self.applier.get(&key, &target).await {
                if let Some(m) = self.status_message(&key, revision, Ok(&obj)) {
                    out.push(m);
                }
            }
        }
        out
    }

    async fn save(&mut self) {
        if !self.dirty {
            return;
        }
        match self.store.save(&self.state).await {
            Ok(()) => self.dirty = false,
            Err(e) => debug!(error = %e, "saving the link state failed"),
        }
    }

    /// One connection: join, sync until the stream breaks or `shutdown` fires.
    async fn session<S: Future<Output = ()> + Unpin>(
        &mut self,
        join: &JoinFile,
        endpoint: &str,
        shutdown: &mut S,
    ) -> Result<bool, LinkError> {
        let channel = connect(join, endpoint).await?;
        let mut hub = hub_client(channel, &join.token);
        let kubernetes_version = self
            .client
            .apiserver_version()
            .await
            .map(|v| v.git_version)
            .unwrap_or_default();
        let joined = hub
            .join(JoinRequest {
                cluster_name: join.cluster.clone(),
                agent_version: self.config.agent_version.clone(),
                kubernetes_version,
            })
            .await
            .map_err(|status| LinkError::Hub {
                operation: "join",
                status,
            })?
            .into_inner();
        let (tx, rx) = mpsc::channel(256);
        let start = msg(agent_message::Message::Start(SyncStart {
            cluster_name: join.cluster.clone(),
            resume_revision: self.state.revision,
        }));
        let _ = tx.send(start).await;
        let mut inbound = hub
            .sync(ReceiverStream::new(rx))
            .await
            .map_err(|status| LinkError::Hub {
                operation: "sync",
                status,
            })?
            .into_inner();
        info!(endpoint, cluster = %join.cluster, resume = self.state.revision, "synced with the hub");
        let beat_every = Duration::from_secs(u64::from(joined.heartbeat_interval_seconds.max(1)));
        let mut beat = tokio::time::interval(beat_every);
        let mut sweep = tokio::time::interval(self.config.status_interval);
        let mut save = tokio::time::interval(Duration::from_millis(500));
        let mut snapshot: Option<HashSet<String>> = None;
        let send = |m: AgentMessage| {
            let tx = tx.clone();
            async move { tx.send(m).await.is_ok() }
        };
        loop {
            tokio::select! {
                _ = &mut *shutdown => {
                    self.save().await;
                    return Ok(true);
                }
                _ = beat.tick() => {
                    let capacity = self.capacity().await;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as i64)
                        .unwrap_or(0);
                    send(msg(agent_message::Message::Heartbeat(Heartbeat {
                        capacity: Some(capacity),
                        sent_unix_millis: now,
                    }))).await;
                }
                _ = sweep.tick() => {
                    for m in self.sweep().await {
                        send(m).await;
                    }
                }
                _ = save.tick() => self.save().await,
                next = inbound.message() => {
                    let next = next.map_err(|status| LinkError::Hub { operation: "sync", status })?;
                    let Some(HubMessage { message: Some(m) }) = next else {
                        if next.is_none() {
                            return Ok(false);
                        }
                        continue;
                    };
                    match m {
                        hub_message::Message::SnapshotStart(_) => snapshot = Some(HashSet::new()),
                        hub_message::Message::Work(ev) => {
                            let revision = ev.revision;
                            let key = format!("{}/{}", ev.namespace, ev.name);
                            if let Some(seen) = snapshot.as_mut() {
                                seen.insert(key);
                            }
                            if let Some(status) = self.handle_work(ev).await {
                                send(status).await;
                            }
                            if snapshot.is_none() {
                                self.state.revision = self.state.revision.max(revision);
                                self.dirty = true;
                                send(msg(agent_message::Message::Ack(Ack { revision }))).await;
                            }
                        }
                        hub_message::Message::SnapshotEnd(end) => {
                            let seen = snapshot.take().unwrap_or_default();
                            let stale: Vec<(String, ObjectRef)> = self
                                .state
                                .works
                                .iter()
                                .filter(|(k, _)| !seen.contains(*k))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect();
                            for (key, target) in stale {
                                info!(work = %key, "pruning a Work the hub no longer has");
                                let _ = self.applier.remove(&key, &target).await;
                                self.state.works.remove(&key);
                            }
                            self.state.revision = end.revision;
                            self.dirty = true;
                            self.save().await;
                            send(msg(agent_message::Message::Ack(Ack { revision: end.revision }))).await;
                        }
                    }
                }
            }
        }
    }
}

/// Runs the link until `shutdown` completes.
pub async fn run<S>(client: Client, config: HubLinkConfig, shutdown: S) -> Result<(), LinkError>
where
    S: Future<Output = ()> + Send,
{
    let first = JoinFile::read(&config.join_file)?;
    let store = StateStore::new(
        client.clone(),
        &config.state_namespace,
        &format!("kruise-hublink-{}", first.cluster),
    );
    let state = store.load().await.map_err(|source| LinkError::Cluster {
        operation: "load link state",
        source,
    })?;
    let mut link = Link {
        applier: Applier::new(client.clone()),
        client,
        store,
        state,
        dirty: false,
        reported: HashMap::new(),
        revisions: HashMap::new(),
        config,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Duration::from_millis(200);
    let mut attempt = 0usize;
    loop {
        let join = match JoinFile::read(&link.config.join_file) {
            Ok(join) => join,
            Err(e) => {
                warn!(error = %e, "cannot read the join file");
                first.clone()
            }
        };
        let endpoint = join.endpoints[attempt % join.endpoints.len()].clone();
        attempt += 1;
        let started = Instant::now();
        let mut shutdown_ref = shutdown.as_mut();
        let result = link.session(&join, &endpoint, &mut shutdown_ref).await;
        match result {
            Ok(true) => return Ok(()),
            Ok(false) => info!(endpoint, "hub closed the stream; reconnecting"),
            Err(e) if e.is_retryable() => {
                warn!(endpoint, error = %e, "hub link failed; reconnecting")
            }
            Err(e) => warn!(endpoint, error = %e, "hub refused the link; retrying later"),
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(200);
        }
        tokio::select! {
            _ = &mut shutdown => {
                link.save().await;
                return Ok(());
            }
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}
