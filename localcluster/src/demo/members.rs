//! The demo's member clusters: a `kruise-local run` per region with the kruise CRDs, then a
//! `kruise-agent` joined to the hub and a `kruise-daemon` per simulated node.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::Client;

use super::layout::Layout;
use super::placement::ZONE_LABEL;
use super::procs::{Procs, Role};
use super::{load_client, Deadline, DemoError};
use crate::sim::cri_socket;

/// How long a member cluster's API server gets to answer after it is started.
const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// A member cluster of the demo.
pub struct Member {
    /// Cluster name on the hub (the example's subsets name these).
    pub name: &'static str,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// Client for the cluster's API.
    pub client: Client,
    /// Its simulated nodes.
    pub nodes: Vec<String>,
    /// The zones its nodes are in.
    pub zones: Vec<String>,
}

/// The zones of a region: `r1-a`, `r1-b`, `r1-c`.
pub fn zones(region: &str) -> String {
    format!("{region}-a,{region}-b,{region}-c")
}

/// Starts `kruise-local run` for one member cluster (returns at once).
pub fn spawn(
    procs: &mut Procs,
    layout: &Layout,
    exe: &Path,
    name: &str,
    region: &str,
    nodes: usize,
) -> Result<(), DemoError> {
    let dir = layout.cluster_dir(name);
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::StateDir {
        path: dir.clone(),
        source,
    })?;
    let args: Vec<String> = vec![
        "run".into(),
        "--name".into(),
        name.into(),
        "--region".into(),
        region.into(),
        "--zones".into(),
        zones(region),
        "--nodes".into(),
        nodes.to_string(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--kubeconfig-out".into(),
        layout.cluster_kubeconfig(name).display().to_string(),
        "--state-dir".into(),
        dir.display().to_string(),
    ];
    procs.spawn(
        Role::Cluster,
        format!("cluster {name}"),
        exe,
        &args,
        &[],
        &dir.join("kruise-local.log"),
    )?;
    Ok(())
}

/// Waits for a member's API, installs the kruise CRDs and lists its nodes.
pub async fn connect(
    procs: &mut Procs,
    layout: &Layout,
    name: &'static str,
) -> Result<(Member, usize), DemoError> {
    let kubeconfig = layout.cluster_kubeconfig(name);
    let deadline = Deadline::after(CLUSTER_START_TIMEOUT);
    let client = loop {
        procs.check_alive()?;
        if kubeconfig.exists() {
            if let Ok(client) = load_client(&kubeconfig).await {
                if client.apiserver_version().await.is_ok() {
                    break client;
                }
            }
        }
        deadline.check(
            || format!("the API server of {name} answering"),
            || {
                format!(
                    "see {}",
                    layout.show(&layout.cluster_dir(name).join("kruise-local.log"))
                )
            },
        )?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let crds = install_crds(&client, name).await?;
    let listed = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(DemoError::api(format!("listing the nodes of {name}")))?
        .items;
    let mut zones: Vec<String> = listed
        .iter()
        .filter_map(|n| n.metadata.labels.as_ref()?.get(ZONE_LABEL).cloned())
        .collect();
    zones.sort();
    zones.dedup();
    let member = Member {
        name,
        kubeconfig,
        client,
        nodes: listed.into_iter().filter_map(|n| n.metadata.name).collect(),
        zones,
    };
    Ok((member, crds))
}

async fn install_crds(client: &Client, cluster: &str) -> Result<usize, DemoError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crds = kruise_api::member_crds();
    let params = PatchParams::apply("kruise-local-demo").force();
    for crd in &crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(&name, &params, &Patch::Apply(crd))
            .await
            .map_err(DemoError::api(format!(
                "installing CRD {name} in {cluster}"
            )))?;
    }
    Ok(crds.len())
}

/// Starts the member's agent, joined to the hub with `join_file`.
pub fn start_agent(
    procs: &mut Procs,
    layout: &Layout,
    bin: &Path,
    member: &Member,
    join_file: &Path,
) -> Result<(), DemoError> {
    let args: Vec<String> = vec![
        "--kubeconfig".into(),
        member.kubeconfig.display().to_string(),
        "--hub-join-file".into(),
        join_file.display().to_string(),
        "--metrics-addr".into(),
        "127.0.0.1:0".into(),
    ];
    procs.spawn(
        Role::Agent,
        format!("kruise-agent of {}", member.name),
        bin,
        &args,
        &[],
        &layout.cluster_dir(member.name).join("kruise-agent.log"),
    )?;
    Ok(())
}

/// Starts a `kruise-daemon` per node once the node's CRI socket exists.
pub async fn start_daemons(
    procs: &mut Procs,
    layout: &Layout,
    bin: &Path,
    member: &Member,
) -> Result<usize, DemoError> {
    let dir = layout.cluster_dir(member.name);
    let deadline = Deadline::after(Duration::from_secs(30));
    for node in &member.nodes {
        let socket = cri_socket(&dir, node);
        while !socket.exists() {
            procs.check_alive()?;
            deadline.check(
                || format!("the CRI socket {} appearing", layout.show(&socket)),
                || format!("see {}", layout.show(&dir.join("kruise-local.log"))),
            )?;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let args: Vec<String> = vec![
            "--node-name".into(),
            node.clone(),
            "--runtime-endpoint".into(),
            format!("unix://{}", socket.display()),
            "--kubeconfig".into(),
            member.kubeconfig.display().to_string(),
            "--health-addr".into(),
            "127.0.0.1:0".into(),
        ];
        procs.spawn(
            Role::Agent,
            format!("kruise-daemon on {node}"),
            bin,
            &args,
            &[],
            &socket.with_file_name("kruise-daemon.log"),
        )?;
    }
    Ok(member.nodes.len())
}
