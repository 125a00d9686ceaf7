//! ManagedCluster: a member cluster registered with the hub.
//!
//! Region and zone come from the labels `topology.kubernetes.io/region` and
//! `topology.kubernetes.io/zone`; subsets select clusters by these and other labels.

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Label holding the cluster's region.
pub const REGION_LABEL: &str = "topology.kubernetes.io/region";
/// Label holding the cluster's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";
/// Condition: heartbeats arrive in time.
pub const CONDITION_READY: &str = "Ready";
/// Condition: the agent has completed registration.
pub const CONDITION_JOINED: &str = "Joined";

/// Desired state of a ManagedCluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "federation.kruise.io",
    version = "v1alpha1",
    derive = "PartialEq",
    derive = "Default",
    kind = "ManagedCluster",
    shortname = "mcl",
    status = "ManagedClusterStatus",
    printcolumn(
        name = "REGION",
        type_ = "string",
        json_path = ".metadata.labels.topology\\.kubernetes\\.io/region",
        description = "Region of the cluster."
    ),
    printcolumn(
        name = "ZONE",
        type_ = "string",
        json_path = ".metadata.labels.topology\\.kubernetes\\.io/zone",
        description = "Zone of the cluster."
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "Whether the cluster's agent is heartbeating."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "KUBERNETES",
        type_ = "string",
        json_path = ".status.capacity.kubernetesVersion",
        priority = 1,
        description = "Kubernetes version of the cluster."
    ),
    printcolumn(
        name = "NODES",
        type_ = "integer",
        json_path = ".status.capacity.nodes",
        priority = 1,
        description = "Number of nodes."
    ),
    doc = "ManagedCluster is a member cluster registered with the hub; its labels carry region and zone."
)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterSpec {
    /// Taints keep Works off the cluster unless the workload tolerates them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taints: Option<Vec<Taint>>,
    /// When true, no new Works are placed on the cluster (existing ones stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable: Option<bool>,
}

/// Observed state of a ManagedCluster, reported by its agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedClusterStatus {
    /// Resources and versions of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<ClusterCapacity>,
    /// `Ready` and `Joined` conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// When the agent last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heartbeat_time: Option<Time>,
}

/// Resources and versions of a member cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCapacity {
    /// Allocatable resources summed over nodes (`cpu`, `memory`, `pods`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allocatable: Option<BTreeMap<String, Quantity>>,
    /// Number of nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nodes: Option<i32>,
    /// Kubernetes version of the cluster's API server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes_version: Option<String>,
    /// Version of the kruise agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
}
