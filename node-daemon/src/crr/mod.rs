//! Container recreation: executes the ContainerRecreateRequests of pods on this node through the
//! CRI RuntimeService — stops the named containers (in order when asked), waits for the kubelet
//! to start new ones, and reports each container's state.

pub mod plan;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_cri::v1 as cri;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::containerrecreaterequest::{
    ContainerRecreateRequest, ContainerRecreateRequestStatus, NODE_NAME_LABEL, POD_UID_LABEL,
};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::cri::CriClients;
use crate::metrics::{Metrics, Outcome, OutcomeLabels};
use plan::RuntimeContainer;

/// How often a running request re-reads the runtime.
const POLL: Duration = Duration::from_millis(200);

/// Executes recreate requests for pods on one node.
#[derive(Clone)]
pub struct Recreator {
    pub client: Client,
    pub cri: CriClients,
    pub node: String,
    pub metrics: Arc<Metrics>,
}

impl Recreator {
    /// Watches every request and runs the ones for pods on this node, one at a time per pod.
    pub async fn run(self) {
        let api: Api<ContainerRecreateRequest> = Api::all(self.client.clone());
        let mut events = Box::pin(watcher::watcher(api, watcher::Config::default()));
        let running: Arc<Mutex<HashSet<String>>> = Arc::default();
        let pod_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = Arc::default();
        while let Some(ev) = events.next().await {
            let crr = match ev {
                Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) => c,
                Ok(_) => continue,
                Err(err) => {
                    tracing::warn!(%err, "ContainerRecreateRequest watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if crr
                .status
                .as_ref()
                .is_some_and(|s| s.phase == plan::COMPLETED)
                || crr.metadata.deletion_timestamp.is_some()
            {
                continue;
            }
            if crr
                .labels()
                .get(NODE_NAME_LABEL)
                .is_some_and(|n| *n != self.node)
            {
                continue;
            }
            let uid = crr.uid().unwrap_or_default();
            if !running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(uid.clone())
            {
                continue;
            }
            let (me, running, pod_locks) = (self.clone(), running.clone(), pod_locks.clone());
            tokio::spawn(async move {
                me.execute(crr, pod_locks).await;
                running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&uid);
            });
        }
    }

    async fn execute(
        &self,
        crr: ContainerRecreateRequest,
        pod_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    ) {
        let ns = crr.namespace().unwrap_or_default();
        let name = crr.name_any();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let pod = match pods.get_opt(&crr.spec.pod_name).await {
            Ok(Some(p)) => p,
            // The agent's controller fails requests whose pod is gone.
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(%err, crr = %name, "reading the request's pod failed");
                return;
            }
        };
        if pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(self.node.as_str()) {
            return;
        }
        let pod_uid = crr
            .labels()
            .get(POD_UID_LABEL)
            .cloned()
            .or_else(|| pod.uid())
            .unwrap_or_default();
        let lock = pod_locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(pod_uid.clone())
            .or_default()
            .clone();
        let _one_at_a_time = lock.lock().await;
        let grace = crr
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30);
        let api: Api<ContainerRecreateRequest> = Api::namespaced(self.client.clone(), &ns);
        let mut states = crr
            .status
            .as_ref()
            .and_then(|s| s.container_recreate_states.clone())
            .unwrap_or_else(|| plan::initial_states(&crr.spec));
        if !self.wait_unready_grace(&api, &crr).await {
            return;
        }
        let mut base: Option<BTreeMap<String, String>> = None;
        let mut last_written: Option<ContainerRecreateRequestStatus> = None;
        loop {
            // Stop when the request is gone or the agent completed it (deadline, pod gone).
            match api.get_opt(&name).await {
                Ok(Some(c))
                    if c.uid() == crr.uid()
                        && c.status.as_ref().is_none_or(|s| s.phase != plan::COMPLETED) => {}
                Ok(_) => return,
                Err(err) => {
                    tracing::warn!(%err, crr = %name, "re-reading request failed");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            }
            let observed = match self.observe(&pod_uid).await {
                Ok(o) => o,
                Err(err) => {
                    tracing::warn!(%err, crr = %name, "listing containers through CRI failed");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            let base = base.get_or_insert_with(|| plan::baseline(&crr.spec, &observed));
            let step = plan::step(
                &crr.spec,
                &mut states,
                base,
                &observed,
                Timestamp::now().as_nanosecond() as i64,
            );
            let status = ContainerRecreateRequestStatus {
                phase: if step.done {
                    plan::COMPLETED
                } else {
                    plan::RECREATING
                }
                .to_string(),
                completion_time: step.done.then(|| Time(Timestamp::now())),
                message: step.done.then(|| {
                    if states.iter().all(|s| s.phase == plan::SUCCEEDED) {
                        "Recreation succeeded".to_string()
                    } else {
                        "Recreation failed".to_string()
                    }
                }),
                container_recreate_states: Some(states.clone()),
            };
            if last_written.as_ref() != Some(&status) {
                let patch = Patch::Merge(json!({"status": status}));
                match api
                    .patch_status(&name, &PatchParams::default(), &patch)
                    .await
                {
                    Ok(_) => last_written = Some(status.clone()),
                    Err(err) => tracing::warn!(%err, crr = %name, "writing request status failed"),
                }
            }
            let kills = step.kill.iter().map(|(container, id)| {
                let mut runtime = self.cri.runtime.clone();
                let req = cri::StopContainerRequest { container_id: id.clone(), timeout: grace };
                let container = container.clone();
                async move {
                    tracing::info!(%container, "stopping container for recreation");
                    if let Err(status) = runtime.stop_container(req).await {
                        tracing::warn!(%container, error = %status.message(), "StopContainer failed");
                    }
                }
            });
            futures::future::join_all(kills).await;
            if step.done {
                let outcome = if states.iter().all(|s| s.phase == plan::SUCCEEDED) {
                    Outcome::Succeeded
                } else {
                    Outcome::Failed
                };
                self.metrics
                    .recreate_requests
                    .get_or_create(&OutcomeLabels { outcome })
                    .inc();
                return;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// With `unreadyGracePeriodSeconds`, waits until the agent has marked the pod not-ready
    /// (annotation [`plan::UNREADY_ACQUIRED`]) and the grace period has passed since. False when
    /// the request went away or was completed meanwhile.
    async fn wait_unready_grace(
        &self,
        api: &Api<ContainerRecreateRequest>,
        crr: &ContainerRecreateRequest,
    ) -> bool {
        let Some(grace) = crr
            .spec
            .strategy
            .as_ref()
            .and_then(|s| s.unready_grace_period_seconds)
        else {
            return true;
        };
        loop {
            match api.get_opt(&crr.name_any()).await {
                Ok(Some(c))
                    if c.uid() == crr.uid()
                        && c.status.as_ref().is_none_or(|s| s.phase != plan::COMPLETED) =>
                {
                    let acquired = c
                        .annotations()
                        .get(plan::UNREADY_ACQUIRED)
                        .and_then(|t| t.parse::<Timestamp>().ok());
                    if plan::unready_grace_passed(acquired, grace, Timestamp::now()) {
                        return true;
                    }
                }
                Ok(_) => return false,
                Err(err) => {
                    tracing::warn!(%err, crr = %crr.name_any(), "re-reading request failed")
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The pod's current containers by name, from the runtime.
    async fn observe(
        &self,
        pod_uid: &str,
    ) -> Result<BTreeMap<String, RuntimeContainer>, tonic::Status> {
        let filter = cri::ContainerFilter {
            label_selector: [("io.kubernetes.pod.uid".to_string(), pod_uid.to_string())].into(),
            ..Default::default()
        };
        let list = self
            .cri
            .runtime
            .clone()
            .list_containers(cri::ListContainersRequest {
                filter: Some(filter),
            })
            .await?
            .into_inner();
        let mut out: BTreeMap<String, (u32, RuntimeContainer)> = BTreeMap::new();
        for c in list.containers {
            let Some(meta) = c.metadata else { continue };
            let running = c.state == cri::ContainerState::ContainerRunning as i32;
            let started_at = if running {
                let st = self
                    .cri
                    .runtime
                    .clone()
                    .container_status(cri::ContainerStatusRequest {
                        container_id: c.id.clone(),
                        verbose: false,
                    })
                    .await?
                    .into_inner();
                st.status.map_or(0, |s| s.started_at)
            } else {
                0
            };
            // A real runtime keeps exited containers; the newest attempt is the current one.
            let newer = out
                .get(&meta.name)
                .is_none_or(|(attempt, _)| meta.attempt >= *attempt);
            if newer {
                out.insert(
                    meta.name,
                    (
                        meta.attempt,
                        RuntimeContainer {
                            id: c.id,
                            running,
                            started_at,
                        },
                    ),
                );
            }
        }
        Ok(out.into_iter().map(|(k, (_, v))| (k, v)).collect())
    }
}
