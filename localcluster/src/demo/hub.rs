//! The demo's hub: one `kruise-hub serve` on its embedded store, or three replicas sharing an
//! etcd; member clusters registered with `kruise-hub cluster add`, and the wait for them to report
//! Ready through their agents' heartbeats.

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::Client;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use kruise_apiserver::store::etcd_process::{etcd_binary, EtcdProcessError};

use super::layout::Layout;
use super::procs::{Procs, Role};
use super::{load_client, Deadline, DemoError};

/// How long a hub replica gets to serve after it is started.
const HUB_START_TIMEOUT: Duration = Duration::from_secs(60);

/// A hub the demo started.
pub struct Hub {
    /// The hub API of the first replica.
    pub client: Client,
    /// The admin kubeconfig of the first replica (the one printed for kubectl).
    pub kubeconfig: PathBuf,
    /// API URL per replica.
    pub urls: Vec<String>,
    /// The admin kubeconfigs of the other replicas (with `--etcd`), by replica id.
    pub other_kubeconfigs: Vec<(String, PathBuf)>,
}

/// How the hub is stored.
pub enum Storage<'a> {
    /// One replica, objects in an embedded store under the state directory.
    Embedded,
    /// `replicas` replicas over the etcd at `endpoint`.
    Etcd { endpoint: &'a str, replicas: usize },
}

/// A free loopback port (bound, then released) for a replica's health endpoint.
fn free_port() -> Result<u16, DemoError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| DemoError::Spawn {
            what: "choosing a port for the hub's health endpoint".into(),
            source,
        })
}

/// Whether `GET path` on a loopback port answers 200 (hub /readyz, etcd /health).
pub async fn http_ok(port: u16, path: &str) -> bool {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<bool, std::io::Error>(head.ends_with(b" 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(true))
    )
}

/// Starts etcd (Debian `etcd-server`) with its data under the state directory and waits for
/// `/health`; returns its client URL.
pub async fn start_etcd(procs: &mut Procs, layout: &Layout) -> Result<String, DemoError> {
    let bin = etcd_binary().ok_or(EtcdProcessError::NotInstalled)?;
    let dir = layout.root().join("etcd");
    let (client_port, peer_port) = (free_port()?, free_port()?);
    let client_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let args: Vec<String> = vec![
        "--name".into(),
        "demo".into(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
        "--listen-client-urls".into(),
        client_url.clone(),
        "--advertise-client-urls".into(),
        client_url.clone(),
        "--listen-peer-urls".into(),
        peer_url.clone(),
        "--initial-advertise-peer-urls".into(),
        peer_url.clone(),
        format!("--initial-cluster=demo={peer_url}"),
    ];
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::StateDir {
        path: dir.clone(),
        source,
    })?;
    let log = dir.join("etcd.log");
    procs.spawn(Role::Etcd, "etcd", &bin, &args, &[], &log)?;
    let deadline = Deadline::after(Duration::from_secs(30));
    while !http_ok(client_port, "/health").await {
        procs.check_alive()?;
        deadline.check(
            || "etcd answering /health".to_string(),
            || format!("see {}", layout.show(&log)),
        )?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(client_url)
}

/// Starts one replica and waits for its /readyz and kubeconfig.
async fn start_replica(
    procs: &mut Procs,
    layout: &Layout,
    bin: &Path,
    id: &str,
    etcd: Option<&str>,
    admin_token: Option<&str>,
    kubeconfig: &Path,
) -> Result<String, DemoError> {
    let state = layout.hub_dir().join(id);
    std::fs::create_dir_all(&state).map_err(|source| DemoError::StateDir {
        path: state.clone(),
        source,
    })?;
    let health_port = free_port()?;
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--grpc-listen".into(),
        "127.0.0.1:0".into(),
        "--health-listen".into(),
        format!("127.0.0.1:{health_port}"),
        "--replica-id".into(),
        id.into(),
        "--state-dir".into(),
        state.display().to_string(),
        "--pki-dir".into(),
        layout.hub_dir().join("pki").display().to_string(),
        "--kubeconfig-out".into(),
        kubeconfig.display().to_string(),
    ];
    if let Some(endpoint) = etcd {
        args.extend(["--etcd-endpoints".into(), endpoint.into()]);
    }
    let envs: Vec<(&str, &str)> = admin_token
        .map(|t| ("KRUISE_HUB_ADMIN_TOKEN", t))
        .into_iter()
        .collect();
    let log = layout.hub_dir().join(format!("{id}.log"));
    procs.spawn(
        Role::Hub,
        format!("kruise-hub {id}"),
        bin,
        &args,
        &envs,
        &log,
    )?;
    let deadline = Deadline::after(HUB_START_TIMEOUT);
    loop {
        procs.check_alive()?;
        if kubeconfig.exists() && http_ok(health_port, "/readyz").await {
            return Ok(server_url(kubeconfig));
        }
        deadline.check(
            || format!("hub replica {id} serving"),
            || format!("see {}", layout.show(&log)),
        )?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The API URL written in a kubeconfig (for messages).
pub fn server_url(kubeconfig: &Path) -> String {
    kube::config::Kubeconfig::read_from(kubeconfig)
        .ok()
        .and_then(|kc| kc.clusters.into_iter().next())
        .and_then(|c| c.cluster)
        .and_then(|c| c.server)
        .unwrap_or_else(|| "(unknown URL)".into())
}

/// Starts the hub and waits until every replica serves.
pub async fn start(
    procs: &mut Procs,
    layout: &Layout,
    bin: &Path,
    storage: Storage<'_>,
) -> Result<Hub, DemoError> {
    let kubeconfig = layout.hub_kubeconfig();
    let mut urls = Vec::new();
    let mut other_kubeconfigs = Vec::new();
    match storage {
        Storage::Embedded => {
            urls.push(start_replica(procs, layout, bin, "hub-1", None, None, &kubeconfig).await?);
        }
        Storage::Etcd { endpoint, replicas } => {
            // Replicas must agree on the admin token; the first one creates the shared PKI.
            let token = uuid::Uuid::new_v4().simple().to_string();
            for i in 1..=replicas.max(1) {
                let id = format!("hub-{i}");
                let kc = if i == 1 {
                    kubeconfig.clone()
                } else {
                    layout.root().join(format!("{id}.kubeconfig"))
                };
                let url = start_replica(procs, layout, bin, &id, Some(endpoint), Some(&token), &kc)
                    .await?;
                urls.push(url);
                if i > 1 {
                    other_kubeconfigs.push((id, kc));
                }
            }
        }
    }
    let client = load_client(&kubeconfig).await?;
    Ok(Hub {
        client,
        kubeconfig,
        urls,
        other_kubeconfigs,
    })
}

/// Registers a member cluster: `kruise-hub cluster add NAME --labels region=R --join-file J`.
pub async fn register_cluster(
    bin: &Path,
    hub_kubeconfig: &Path,
    name: &str,
    region: &str,
    join_file: &Path,
) -> Result<(), DemoError> {
    let output = tokio::process::Command::new(bin)
        .arg("cluster")
        .arg("--kubeconfig")
        .arg(hub_kubeconfig)
        .args(["add", name, "--labels", &format!("region={region}")])
        .arg("--join-file")
        .arg(join_file)
        .output()
        .await
        .map_err(|source| DemoError::Spawn {
            what: format!("kruise-hub cluster add {name}"),
            source,
        })?;
    if output.status.success() {
        Ok(())
    } else {
        Err(DemoError::RegisterCluster {
            cluster: name.into(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

/// The hub's ManagedClusters.
pub fn managed_clusters(client: &Client) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("federation.kruise.io", "v1alpha1", "ManagedCluster");
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(&gvk, "managedclusters"),
    )
}

/// Whether a ManagedCluster's `Ready` condition is `True`.
pub fn cluster_ready(cluster: &Value) -> bool {
    cluster
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// Names among `names` whose ManagedCluster is not Ready yet.
pub async fn not_ready(client: &Client, names: &[&str]) -> Result<Vec<String>, DemoError> {
    let list = managed_clusters(client)
        .list(&ListParams::default())
        .await
        .map_err(DemoError::api("listing ManagedClusters on the hub"))?;
    let ready: Vec<String> = list
        .items
        .iter()
        .filter_map(|c| {
            let value = serde_json::to_value(c).ok()?;
            cluster_ready(&value).then(|| c.metadata.name.clone().unwrap_or_default())
        })
        .collect();
    Ok(names
        .iter()
        .filter(|n| !ready.iter().any(|r| r == *n))
        .map(|n| n.to_string())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ready_needs_a_true_ready_condition() {
        assert!(cluster_ready(&json!({"status": {"conditions": [
            {"type": "Joined", "status": "True"}, {"type": "Ready", "status": "True"}]}})));
        assert!(!cluster_ready(&json!({"status": {"conditions": [
            {"type": "Ready", "status": "False"}]}})));
        assert!(!cluster_ready(&json!({"status": {}})));
        assert!(!cluster_ready(&json!({})));
    }
}
