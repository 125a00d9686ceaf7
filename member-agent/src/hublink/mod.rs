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
pub mod watch;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Node, Pod};
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
use watch::Watches;

/// How the link runs.
#[derive(Clone, Debug)]
pub struct HubLinkConfig {
    /// The join file (re-read at every reconnect, so a rotated token is picked up).
    pub join_file: PathBuf,
    /// Namespace of the state ConfigMap.
    pub state_namespace: String,
    /// The agent's version, reported to the hub.
    pub agent_version: String,
    /// How often every applied Work's status is re-read and reported when changed: a safety net
    /// behind the watches, which report a change within `status_debounce`.
    pub status_interval: Duration,
    /// How long changes are collected before the changed Works are re-read and reported, so a
    /// rollout sends at most one report per Work per window.
    pub status_debounce: Duration,
    /// How long the member cluster's API server may take to answer the probe made before every
    /// heartbeat; without an answer the heartbeat reports the cluster unreachable.
    pub probe_timeout: Duration,
}

impl HubLinkConfig {
    /// Defaults for `join_file`: state in `kube-system`, changes reported after 150 ms, a full
    /// sweep every 30 s, a 2 s cluster probe.
    pub fn new(join_file: PathBuf) -> Self {
        HubLinkConfig {
            join_file,
            state_namespace: "kube-system".into(),
            agent_version: env!("CARGO_PKG_VERSION").into(),
            status_interval: Duration::from_secs(30),
            status_debounce: Duration::from_millis(150),
            probe_timeout: Duration::from_secs(2),
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

/// The interceptor adding the cluster token to every call.
pub type TokenInterceptor =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send + Sync>;

/// A `Federation` client that sends the cluster token with every call.
pub type HubClient =
    FederationClient<tonic::service::interceptor::InterceptedService<Channel, TokenInterceptor>>;

/// Wraps `channel` with the token interceptor.
pub fn hub_client(channel: Channel, token: &str) -> HubClient {
    let value: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> =
        format!("Bearer {token}").parse().ok();
    let interceptor: TokenInterceptor = Box::new(move |mut request: tonic::Request<()>| {
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
    /// Watches of the applied workloads and their pods.
    watches: Watches,
    /// Works whose last apply failed in a way that may pass later (the cluster was down), by
    /// key: applied again at the next heartbeat that finds the cluster reachable.
    retry: HashMap<String, WorkEvent>,
    config: HubLinkConfig,
}

fn msg(m: agent_message::Message) -> AgentMessage {
    AgentMessage { message: Some(m) }
}

impl Link {
    /// Whether the member cluster's API server answers within the probe timeout; the error
    /// says why not.
    async fn probe(&self) -> Result<(), String> {
        match tokio::time::timeout(self.config.probe_timeout, self.client.apiserver_version()).await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {} ms",
                self.config.probe_timeout.as_millis()
            )),
        }
    }

    /// The heartbeat to send now: capacity when the cluster answers, unreachable otherwise.
    async fn heartbeat(&mut self) -> Heartbeat {
        let sent_unix_millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        match self.probe().await {
            Ok(()) => Heartbeat {
                capacity: Some(self.capacity().await),
                sent_unix_millis,
                cluster_unreachable: false,
                unreachable_message: String::new(),
            },
            Err(message) => Heartbeat {
                capacity: None,
                sent_unix_millis,
                cluster_unreachable: true,
                unreachable_message: message,
            },
        }
    }

    /// The workload status to report for `obj`, with its unschedulable pods counted.
    async fn observe(&self, obj: &Value) -> Value {
        let namespace = obj.pointer("/metadata/namespace").and_then(Value::as_str);
        let unschedulable = match (namespace, status::pod_selector(obj)) {
            (Some(ns), Some(selector)) => {
                let pods = Api::<Pod>::namespaced(self.client.clone(), ns);
                let listed = tokio::time::timeout(
                    self.config.probe_timeout,
                    pods.list(&ListParams::default().labels(&selector)),
                )
                .await;
                match listed {
                    Ok(Ok(list)) => status::count_unschedulable(&list.items),
                    Ok(Err(e)) => {
                        debug!(error = %e, "listing the workload's pods failed");
                        0
                    }
                    Err(_) => 0,
                }
            }
            _ => 0,
        };
        status::workload_status(obj, unschedulable)
    }

    async fn capacity(&self) -> kruise_proto::federation::Capacity {
        let timeout = self.config.probe_timeout;
        let nodes = tokio::time::timeout(
            timeout,
            Api::<Node>::all(self.client.clone()).list(&ListParams::default()),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .map(|l| l.items)
        .unwrap_or_default();
        let version = tokio::time::timeout(timeout, self.client.apiserver_version())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|v| v.git_version)
            .unwrap_or_default();
        status::capacity(&nodes, &version, &self.config.agent_version)
    }

    fn status_message(
        &mut self,
        key: &str,
        revision: i64,
        result: Result<(&Value, Value), String>,
    ) -> Option<AgentMessage> {
        let (namespace, name) = key.split_once('/')?;
        let (applied, available, workload, message) = match result {
            Ok((obj, workload)) => (true, status::available(obj), workload, String::new()),
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
            self.retry.remove(&key);
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
        self.retry.remove(&key);
        match self.applier.apply(&key, &ev.namespace, &manifest).await {
            Ok((target, applied)) => {
                if let Ok(resource) = self.applier.resource(&key, &target).await {
                    self.watches.ensure(&resource);
                }
                self.state.works.insert(key.clone(), target);
                self.dirty = true;
                let workload = self.observe(&applied).await;
                self.status_message(&key, ev.revision, Ok((&applied, workload)))
            }
            Err(e) => {
                warn!(work = %key, error = %e, "applying the Work failed");
                let message = e.to_string();
                if e.is_retryable() {
                    self.retry.insert(key.clone(), ev.clone());
                }
                self.status_message(&key, ev.revision, Err(message))
            }
        }
    }

    /// Re-reads every applied workload and returns the statuses that changed.
    async fn sweep(&mut self) -> Vec<AgentMessage> {
        let keys: Vec<String> = self.state.works.keys().cloned().collect();
        self.report(keys).await
    }

    /// Re-reads the workloads of the Works whose objects or pods changed since the last call and
    /// returns the statuses that changed.
    async fn report_changes(&mut self) -> Vec<AgentMessage> {
        let changes = self.watches.marks().drain();
        let namespaces: HashMap<String, String> = self
            .state
            .works
            .iter()
            .map(|(k, t)| (k.clone(), t.namespace.clone()))
            .collect();
        let keys = watch::affected(&changes, &namespaces);
        self.report(keys).await
    }

    /// Re-reads the workloads of `keys` and returns the statuses that differ from the last sent.
    async fn report(&mut self, keys: Vec<String>) -> Vec<AgentMessage> {
        let works: Vec<(String, ObjectRef)> = keys
            .into_iter()
            .filter_map(|k| self.state.works.get(&k).cloned().map(|t| (k, t)))
            .collect();
        let mut out = Vec::new();
        for (key, target) in works {
            let revision = self
                .revisions
                .get(&key)
                .copied()
                .unwrap_or(self.state.revision);
            if let Ok(resource) = self.applier.resource(&key, &target).await {
                self.watches.ensure(&resource);
            }
            if let Ok(Some(obj)) = self.applier.get(&key, &target).await {
                let workload = self.observe(&obj).await;
                if let Some(m) = self.status_message(&key, revision, Ok((&obj, workload))) {
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
        let marks = self.watches.marks();
        let mut flush_at: Option<tokio::time::Instant> = None;
        let mut reachable = true;
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
                    let heartbeat = self.heartbeat().await;
                    if heartbeat.cluster_unreachable == reachable {
                        reachable = !heartbeat.cluster_unreachable;
                        if reachable {
                            info!("member cluster reachable again");
                        } else {
                            warn!(reason = %heartbeat.unreachable_message, "member cluster unreachable");
                        }
                    }
                    send(msg(agent_message::Message::Heartbeat(heartbeat))).await;
                    if reachable && !self.retry.is_empty() {
                        let failed: Vec<WorkEvent> = self.retry.drain().map(|(_, ev)| ev).collect();
                        for ev in failed {
                            if let Some(status) = self.handle_work(ev).await {
                                send(status).await;
                            }
                        }
                    }
                }
                _ = marks.changed(), if flush_at.is_none() => {
                    flush_at = Some(tokio::time::Instant::now() + self.config.status_debounce);
                }
                _ = tokio::time::sleep_until(flush_at.unwrap_or_else(tokio::time::Instant::now)), if flush_at.is_some() => {
                    flush_at = None;
                    for m in self.report_changes().await {
                        send(m).await;
                    }
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
        watches: Watches::new(client.clone()),
        retry: HashMap::new(),
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
