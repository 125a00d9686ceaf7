//! The agent link: the `Federation` gRPC service every hub replica serves.
//!
//! Each call is authenticated by the cluster token in `authorization: Bearer` metadata; the token
//! names its cluster, and a cluster may only sync and read its own Works and report its own
//! status. Works are read from the shared store, so any replica serves any agent.

pub mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use chrono::Utc;
use kruise_apiserver::errors::ApiError;
use kruise_apiserver::store::Store;
use kruise_proto::federation::federation_server::{Federation, FederationServer};
use kruise_proto::federation::{
    agent_message, work_event, AgentMessage, GetWorkRequest, HubMessage, JoinRequest, JoinResponse,
    WorkEvent, WorkStatus,
};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::metadata::MetadataMap;
use tonic::transport::{Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use crate::metrics::HubMetrics;
use crate::registry::{set_condition, Registry, TokenError, MANAGED_CLUSTERS, WORKS};

/// The `Federation` service.
#[derive(Clone)]
pub struct LinkService {
    registry: Registry,
    store: Arc<dyn Store>,
    metrics: Arc<HubMetrics>,
    heartbeat_interval_seconds: u32,
    buffer: usize,
}

/// Decrements the open-stream gauge when a stream ends.
struct StreamGuard(Arc<HubMetrics>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.sync_streams.dec();
    }
}

fn authorization(metadata: &MetadataMap) -> Option<String> {
    metadata
        .get(kruise_proto::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn api_status(e: ApiError) -> Status {
    match e.code {
        404 => Status::not_found(e.to_string()),
        409 => Status::aborted(e.to_string()),
        400 | 422 => Status::invalid_argument(e.to_string()),
        _ => Status::unavailable(e.to_string()),
    }
}

impl LinkService {
    /// A service over the hub's store.
    pub fn new(
        registry: Registry,
        store: Arc<dyn Store>,
        metrics: Arc<HubMetrics>,
        heartbeat_interval_seconds: u32,
        buffer: usize,
    ) -> Self {
        LinkService {
            registry,
            store,
            metrics,
            heartbeat_interval_seconds,
            buffer: buffer.max(1),
        }
    }

    async fn authenticate(&self, metadata: &MetadataMap) -> Result<String, Status> {
        match self
            .registry
            .authenticate(authorization(metadata).as_deref())
            .await
        {
            Ok(cluster) => Ok(cluster),
            Err(e @ TokenError::Store { .. }) => Err(Status::unavailable(e.to_string())),
            Err(e) => {
                self.metrics.refused("unauthenticated");
                Err(Status::unauthenticated(e.to_string()))
            }
        }
    }

    fn deny(&self, message: String) -> Status {
        self.metrics.refused("permission_denied");
        Status::permission_denied(message)
    }

    /// Refuses access to a Work of another cluster.
    async fn own_work(&self, cluster: &str, namespace: &str, name: &str) -> Result<Value, Status> {
        let work = self
            .registry
            .client()
            .get(WORKS, Some(namespace), name)
            .await
            .map_err(api_status)?;
        let target = work
            .pointer("/spec/cluster")
            .and_then(Value::as_str)
            .unwrap_or("");
        if target != cluster {
            return Err(self.deny(format!(
                "cluster {cluster} may not access Work {namespace}/{name}: it belongs to another cluster"
            )));
        }
        Ok(work)
    }

    async fn write_status(&self, cluster: &str, report: WorkStatus) -> Result<(), Status> {
        self.own_work(cluster, &report.namespace, &report.name)
            .await?;
        let workload: Value = if report.workload_status_json.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&report.workload_status_json).map_err(|e| {
                Status::invalid_argument(format!("workload_status_json is not JSON: {e}"))
            })?
        };
        let stamp = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let flag = |b: bool| if b { "True" } else { "False" };
        let result = self
            .registry
            .client()
            .update(
                WORKS,
                Some(&report.namespace),
                &report.name,
                true,
                |current| {
                    let mut next = current.clone();
                    let mut status = next.get("status").cloned().unwrap_or_else(|| json!({}));
                    status["observedRevision"] = json!(report.revision.to_string());
                    status["workloadStatus"] = workload.clone();
                    status["lastReportTime"] = json!(stamp);
                    set_condition(
                        &mut status,
                        json!({"type": "Applied", "status": flag(report.applied),
                               "reason": if report.applied { "Applied" } else { "ApplyFailed" },
                               "message": report.message, "lastTransitionTime": stamp}),
                    );
                    set_condition(
                        &mut status,
                        json!({"type": "Available", "status": flag(report.available),
                               "reason": if report.available { "Available" } else { "NotAvailable" },
                               "message": "", "lastTransitionTime": stamp}),
                    );
                    next["status"] = status;
                    Ok(next)
                },
            )
            .await;
        match result {
            Ok(_) => {
                self.metrics.status_reports.inc();
                Ok(())
            }
            // Deleted meanwhile: nothing to report on.
            Err(ApiError { code: 404, .. }) => Ok(()),
            Err(e) => Err(api_status(e)),
        }
    }

    /// Handles the agent's messages until it closes its side or breaks a rule.
    async fn inbound(
        self,
        cluster: String,
        auth: Option<String>,
        mut messages: Streaming<AgentMessage>,
        tx: mpsc::Sender<Result<HubMessage, Status>>,
    ) {
        loop {
            let next = match messages.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return,
                Err(e) => {
                    debug!(cluster, error = %e, "agent stream ended");
                    return;
                }
            };
            let outcome = match next.message {
                Some(agent_message::Message::Ack(ack)) => {
                    debug!(cluster, revision = ack.revision, "agent applied");
                    Ok(())
                }
                Some(agent_message::Message::Status(report)) => {
                    self.write_status(&cluster, report).await
                }
                Some(agent_message::Message::Heartbeat(beat)) => {
                    // Re-check the token, so a revoked or rotated token ends open streams too.
                    let mut metadata = MetadataMap::new();
                    if let Some(value) = auth.as_deref().and_then(|a| a.parse().ok()) {
                        metadata.insert(kruise_proto::AUTHORIZATION, value);
                    }
                    match self.authenticate(&metadata).await {
                        Ok(_) if beat.cluster_unreachable => {
                            warn!(cluster, reason = %beat.unreachable_message, "agent cannot reach its cluster");
                            self.registry
                                .unreachable(&cluster, &beat.unreachable_message, Utc::now())
                                .await
                                .map_err(api_status)
                        }
                        Ok(_) => self
                            .registry
                            .heartbeat(&cluster, &beat.capacity.unwrap_or_default(), Utc::now())
                            .await
                            .map_err(api_status),
                        Err(e) => Err(e),
                    }
                }
                Some(agent_message::Message::Start(_)) => Err(Status::invalid_argument(
                    "SyncStart may only be the first message of a stream",
                )),
                None => Ok(()),
            };
            if let Err(status) = outcome {
                let fatal = matches!(
                    status.code(),
                    tonic::Code::Unauthenticated
                        | tonic::Code::PermissionDenied
                        | tonic::Code::InvalidArgument
                );
                if fatal {
                    warn!(cluster, status = %status.message(), "ending agent stream");
                    let _ = tx.send(Err(status)).await;
                    return;
                }
                debug!(cluster, status = %status, "agent message not applied");
            }
        }
    }
}

#[tonic::async_trait]
impl Federation for LinkService {
    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let cluster = self.authenticate(request.metadata()).await?;
        let join = request.into_inner();
        if join.cluster_name != cluster {
            return Err(self.deny(format!(
                "token of cluster {cluster} cannot join as cluster {}",
                join.cluster_name
            )));
        }
        self.registry
            .client()
            .get(MANAGED_CLUSTERS, None, &cluster)
            .await
            .map_err(api_status)?;
        let revision = self
            .store
            .current_revision()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        info!(cluster, agent = %join.agent_version, "agent joined");
        Ok(Response::new(JoinResponse {
            cluster_name: cluster,
            revision,
            heartbeat_interval_seconds: self.heartbeat_interval_seconds,
        }))
    }

    type SyncStream = ReceiverStream<Result<HubMessage, Status>>;

    async fn sync(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::SyncStream>, Status> {
        let cluster = self.authenticate(request.metadata()).await?;
        let auth = authorization(request.metadata());
        let mut messages = request.into_inner();
        let start = match messages.message().await? {
            Some(AgentMessage {
                message: Some(agent_message::Message::Start(start)),
            }) => start,
            _ => {
                return Err(Status::invalid_argument(
                    "the first message of a Sync stream must be SyncStart",
                ))
            }
        };
        if start.cluster_name != cluster {
            return Err(self.deny(format!(
                "cluster {cluster} may not sync the Works of cluster {}",
                start.cluster_name
            )));
        }
        let (tx, rx) = mpsc::channel(self.buffer);
        self.metrics.sync_streams.inc();
        let guard = StreamGuard(self.metrics.clone());
        let outbound = tokio::spawn({
            let (store, cluster, tx, metrics) = (
                self.store.clone(),
                cluster.clone(),
                tx.clone(),
                self.metrics.clone(),
            );
            async move {
                let err_tx = tx.clone();
                if let Err(e) =
                    stream::stream_works(store, cluster.clone(), start.resume_revision, tx, metrics)
                        .await
                {
                    debug!(cluster, error = %e, "work stream ended");
                    let _ = err_tx.send(Err(Status::unavailable(e.to_string()))).await;
                }
            }
        });
        let service = self.clone();
        tokio::spawn(async move {
            let _guard = guard;
            service.inbound(cluster, auth, messages, tx).await;
            outbound.abort();
        });
        info!(resume = start.resume_revision, "agent sync stream opened");
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn get_work(
        &self,
        request: Request<GetWorkRequest>,
    ) -> Result<Response<WorkEvent>, Status> {
        let cluster = self.authenticate(request.metadata()).await?;
        let GetWorkRequest { namespace, name } = request.into_inner();
        let work = self.own_work(&cluster, &namespace, &name).await?;
        let revision = work
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        Ok(Response::new(WorkEvent {
            r#type: work_event::Type::Upsert as i32,
            namespace,
            name,
            revision,
            work_json: serde_json::to_vec(&work).unwrap_or_default(),
        }))
    }
}

/// Serves the link over TLS on `listener` until `shutdown` turns true.
pub async fn serve(
    service: LinkService,
    listener: tokio::net::TcpListener,
    cert_pem: &str,
    key_pem: &str,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), tonic::transport::Error> {
    let tls = ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem));
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    info!(?addr, "agent link listening");
    Server::builder()
        .tls_config(tls)?
        .add_service(FederationServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
        })
        .await
}
