//! Simulated Node objects: labels for topology, allocatable resources, a Ready condition kept
//! fresh by heartbeats.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kruise_apiserver::errors::ApiError;
use kruise_apiserver::local::{Gvr, LocalClient};
use kruise_apiserver::metadata::timestamp;
use serde_json::{json, Value};
use tracing::warn;

const NODES: Gvr<'static> = Gvr::core("nodes");

/// How many nodes a cluster has and where they are.
#[derive(Clone, Debug)]
pub struct NodeLayout {
    pub cluster: String,
    pub count: usize,
    pub region: String,
    pub zones: Vec<String>,
}

impl NodeLayout {
    /// Name of the i-th node (1-based).
    pub fn node_name(&self, index: usize) -> String {
        format!("{}-worker-{index}", self.cluster)
    }

    /// Zone of the i-th node (round-robin).
    pub fn zone(&self, index: usize) -> String {
        if self.zones.is_empty() {
            return format!("{}-a", self.region);
        }
        self.zones[(index - 1) % self.zones.len()].clone()
    }
}

fn ready_conditions(now: &str) -> Value {
    let condition = |t: &str, status: &str, reason: &str, message: &str| json!({"type": t, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": now, "reason": reason, "message": message});
    json!([
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

/// The Node object of the i-th node.
pub fn node_object(layout: &NodeLayout, index: usize, now: DateTime<Utc>) -> Value {
    let name = layout.node_name(index);
    let zone = layout.zone(index);
    let now = timestamp(now);
    let resources =
        json!({"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"});
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "beta.kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/region": layout.region,
                "topology.kubernetes.io/zone": zone,
            },
        },
        "spec": {"podCIDR": format!("10.244.{index}.0/24"), "podCIDRs": [format!("10.244.{index}.0/24")]},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": ready_conditions(&now),
            "addresses": [
                {"type": "InternalIP", "address": format!("172.18.0.{}", index + 1)},
                {"type": "Hostname", "address": name},
            ],
            "nodeInfo": {
                "kubeletVersion": "v1.31.9",
                "kubeProxyVersion": "v1.31.9",
                "containerRuntimeVersion": "kruise-local://1.0.0",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "osImage": "kruise-local simulated node",
                "kernelVersion": "6.1.0",
                "machineID": format!("{name}-machine"),
                "systemUUID": format!("{name}-system"),
                "bootID": format!("{name}-boot"),
            },
            "phase": "Running",
        },
    })
}

/// Creates (or refreshes) every node; returns their names.
pub async fn register(
    client: &LocalClient,
    layout: &NodeLayout,
    now: DateTime<Utc>,
) -> Result<Vec<String>, ApiError> {
    let mut names = Vec::new();
    for index in 1..=layout.count {
        let node = node_object(layout, index, now);
        let status = node.get("status").cloned().unwrap_or(Value::Null);
        match client.create(NODES, node).await {
            Ok(_) | Err(ApiError { code: 409, .. }) => {}
            Err(e) => return Err(e),
        }
        let name = layout.node_name(index);
        // Node status is a subresource: write it separately, as a kubelet does.
        client
            .update(NODES, None, &name, true, |current| {
                let mut next = current.clone();
                next["status"] = status.clone();
                Ok(next)
            })
            .await?;
        names.push(name);
    }
    Ok(names)
}

/// Refreshes `lastHeartbeatTime` of every node's conditions.
pub async fn beat(client: &LocalClient, names: &[String], now: DateTime<Utc>) {
    let now = timestamp(now);
    for name in names {
        let result = client
            .update(NODES, None, name, true, |current| {
                let mut next = current.clone();
                if let Some(conditions) = next
                    .pointer_mut("/status/conditions")
                    .and_then(Value::as_array_mut)
                {
                    for condition in conditions {
                        condition["lastHeartbeatTime"] = json!(now);
                    }
                }
                Ok(next)
            })
            .await;
        if let Err(e) = result {
            warn!(node = name, error = %e, "node heartbeat failed");
        }
    }
}

/// Runs heartbeats forever at `interval`.
pub async fn heartbeat(client: LocalClient, names: Vec<String>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    loop {
        ticker.tick().await;
        beat(&client, &names, Utc::now()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_spread_over_zones() {
        let layout = NodeLayout {
            cluster: "c1".into(),
            count: 4,
            region: "r1".into(),
            zones: vec!["a".into(), "b".into(), "c".into()],
        };
        let zones: Vec<String> = (1..=4).map(|i| layout.zone(i)).collect();
        assert_eq!(zones, vec!["a", "b", "c", "a"]);
        let node = node_object(&layout, 2, Utc::now());
        assert_eq!(node["metadata"]["name"], "c1-worker-2");
        assert_eq!(
            node["metadata"]["labels"]["topology.kubernetes.io/zone"],
            "b"
        );
        assert_eq!(node["status"]["allocatable"]["pods"], "110");
        assert_eq!(node["status"]["conditions"][3]["type"], "Ready");
    }
}
