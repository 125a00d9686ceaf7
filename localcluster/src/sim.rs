//! Starts the simulated node components of a local cluster against its API server: one CRI
//! endpoint per node, the scheduler and the kubelet simulator. They talk to the API server over
//! HTTPS with the admin kubeconfig, like real components.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args as ClapArgs;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::watcher;
use kube::Client;
use serde_json::json;
use tokio::task::JoinHandle;

use crate::cri::CriService;
use crate::latency::LatencyModel;
use crate::runtime::Runtimes;
use crate::{kubelet, scheduler};

/// Node annotation that makes a simulated node NotReady (`"true"`), as a lost kubelet would.
pub const NOT_READY_ANNOTATION: &str = "kruise-local.kruise.io/not-ready";

/// Latency model flags of `kruise-local run`.
#[derive(ClapArgs, Debug, Clone)]
pub struct LatencyArgs {
    /// Simulated image pull time per megabyte (images declare their size as `size-<N>mb` in the name).
    #[arg(long, env = "KRUISE_LOCAL_IMAGE_PULL_MS_PER_MB", default_value_t = 2)]
    pub image_pull_ms_per_mb: u64,
    /// Simulated size of images that declare none.
    #[arg(long, env = "KRUISE_LOCAL_DEFAULT_IMAGE_MB", default_value_t = 50)]
    pub default_image_mb: u64,
    /// Time from container creation to start.
    #[arg(long, env = "KRUISE_LOCAL_CONTAINER_START_MS", default_value_t = 100)]
    pub container_start_ms: u64,
    /// Time from container start to ready.
    #[arg(long, env = "KRUISE_LOCAL_READINESS_DELAY_MS", default_value_t = 200)]
    pub readiness_delay_ms: u64,
    /// Delay before the scheduler binds a new pod.
    #[arg(long, env = "KRUISE_LOCAL_SCHEDULE_DELAY_MS", default_value_t = 0)]
    pub schedule_delay_ms: u64,
    /// Time a container takes to stop (bounded by its grace period).
    #[arg(long, env = "KRUISE_LOCAL_CONTAINER_STOP_MS", default_value_t = 100)]
    pub container_stop_ms: u64,
}

impl From<&LatencyArgs> for LatencyModel {
    fn from(a: &LatencyArgs) -> Self {
        LatencyModel {
            image_pull_ms_per_mb: a.image_pull_ms_per_mb,
            default_image_mb: a.default_image_mb,
            container_start_ms: a.container_start_ms,
            readiness_delay_ms: a.readiness_delay_ms,
            schedule_delay_ms: a.schedule_delay_ms,
            container_stop_ms: a.container_stop_ms,
        }
    }
}

/// The running node components; dropping it stops nothing, call [`Simulation::stop`].
pub struct Simulation {
    pub runtimes: Runtimes,
    tasks: Vec<JoinHandle<()>>,
}

impl Simulation {
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
    }
}

/// Where a node's CRI socket lives under the state directory.
pub fn cri_socket(state_dir: &Path, node: &str) -> PathBuf {
    state_dir.join("nodes").join(node).join("cri.sock")
}

/// A kube client from a kubeconfig file.
pub async fn client_from_kubeconfig(path: &Path) -> anyhow::Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(path)?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok(Client::try_from(config)?)
}

/// Starts CRI endpoints for every Node in the cluster, then the scheduler and the kubelet.
pub async fn start(
    kubeconfig: &Path,
    state_dir: &Path,
    model: LatencyModel,
) -> anyhow::Result<Simulation> {
    let client = client_from_kubeconfig(kubeconfig).await?;
    let nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    let layout: Vec<(String, String)> = nodes
        .items
        .iter()
        .map(|n| {
            let name = n.metadata.name.clone().unwrap_or_default();
            let ip = n
                .status
                .as_ref()
                .and_then(|s| s.addresses.as_ref())
                .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
                .map(|a| a.address.clone())
                .unwrap_or_else(|| "127.0.0.1".into());
            (name, ip)
        })
        .collect();
    let (runtimes, changes) = Runtimes::new(&layout);
    let mut tasks = Vec::new();
    for (node, _) in &layout {
        let svc = CriService::new(
            runtimes.get(node).expect("runtime for every node").clone(),
            model.clone(),
        );
        let path = cri_socket(state_dir, node);
        tasks.push(tokio::spawn(async move {
            if let Err(err) = svc.serve(&path).await {
                tracing::error!(%err, socket = %path.display(), "CRI endpoint stopped");
            }
        }));
    }
    tasks.push(tokio::spawn(node_lifecycle(
        client.clone(),
        runtimes.clone(),
    )));
    tasks.push(tokio::spawn(scheduler::run(client.clone(), model.clone())));
    tasks.push(tokio::spawn(kubelet::run(
        client,
        runtimes.clone(),
        model,
        changes,
    )));
    tracing::info!(
        nodes = layout.len(),
        "scheduler, kubelet and CRI simulators started"
    );
    Ok(Simulation { runtimes, tasks })
}

/// Follows the not-ready annotation of every node: flips the node's `Ready` condition and the
/// readiness of the pods on it, as a node losing its kubelet does.
async fn node_lifecycle(client: Client, runtimes: Runtimes) {
    let api: Api<Node> = Api::all(client);
    let mut events = Box::pin(watcher::watcher(api.clone(), watcher::Config::default()));
    while let Some(ev) = events.next().await {
        let node = match ev {
            Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n)) => n,
            Ok(_) => continue,
            Err(err) => {
                tracing::debug!(%err, "node watch failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let name = node.metadata.name.clone().unwrap_or_default();
        let Some(rt) = runtimes.get(&name) else {
            continue;
        };
        let want_ready = node
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(NOT_READY_ANNOTATION))
            .is_none_or(|v| v != "true");
        rt.set_ready(want_ready);
        let is_ready = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
            .is_some_and(|c| c.status == "True");
        if is_ready == want_ready {
            continue;
        }
        let now = Timestamp::now().to_string();
        let (status, reason, message) = if want_ready {
            ("True", "KubeletReady", "kubelet is posting ready status")
        } else {
            (
                "Unknown",
                "NodeStatusUnknown",
                "Kubelet stopped posting node status.",
            )
        };
        let patch = json!({"status": {"conditions": [{
            "type": "Ready", "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }]}});
        if let Err(err) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            tracing::warn!(%err, node = %name, "updating node readiness failed");
        }
    }
}
