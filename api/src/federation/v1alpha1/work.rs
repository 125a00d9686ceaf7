//! Work: one workload manifest the hub places on one member cluster.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::schema::string_enum_schema;

/// Condition: the manifest was applied to the member cluster.
pub const CONDITION_APPLIED: &str = "Applied";
/// Condition: the workload reports all replicas available.
pub const CONDITION_AVAILABLE: &str = "Available";
/// Deletion propagation values.
pub const PROPAGATION_POLICIES: [&str; 3] = ["Foreground", "Background", "Orphan"];

string_enum_schema!(propagation_schema, ["Foreground", "Background", "Orphan"]);

/// Desired state of a Work.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "federation.kruise.io",
    version = "v1alpha1",
    derive = "PartialEq",
    derive = "Default",
    kind = "Work",
    namespaced,
    status = "WorkStatus",
    printcolumn(
        name = "CLUSTER",
        type_ = "string",
        json_path = ".spec.cluster",
        description = "Member cluster the workload runs in."
    ),
    printcolumn(
        name = "KIND",
        type_ = "string",
        json_path = ".spec.workload.kind",
        description = "Kind of the workload."
    ),
    printcolumn(
        name = "APPLIED",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Applied\")].status",
        description = "Whether the manifest was applied."
    ),
    printcolumn(
        name = "AVAILABLE",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Available\")].status",
        description = "Whether the workload is available."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    doc = "Work is one workload manifest placed by the hub on one member cluster, with the status reported back."
)]
#[serde(rename_all = "camelCase")]
pub struct WorkSpec {
    /// Name of the target ManagedCluster.
    pub cluster: String,
    /// The manifest applied to the member cluster (apiVersion, kind, metadata, spec).
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub workload: Value,
    /// What happens to the workload when the Work is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_option: Option<DeleteOption>,
}

/// Deletion behaviour of the applied workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOption {
    /// `Background` (default), `Foreground` or `Orphan` (leave the workload running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "propagation_schema")]
    pub propagation_policy: Option<String>,
}

/// Observed state of a Work, reported by the member agent.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkStatus {
    /// `Applied` and `Available` conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
    /// Hub resourceVersion of the Work the agent last applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_revision: Option<String>,
    /// Status of the applied workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_status: Option<WorkloadStatus>,
    /// When the agent last reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_report_time: Option<Time>,
}

/// Replica counts of the applied workload.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    /// Pods.
    #[serde(default)]
    pub replicas: i32,
    /// Ready pods.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pods on the latest revision.
    #[serde(default)]
    pub updated_replicas: i32,
    /// Updated pods that are ready.
    #[serde(default)]
    pub updated_ready_replicas: i32,
    /// Available pods.
    #[serde(default)]
    pub available_replicas: i32,
    /// Pods that cannot be scheduled in the member cluster.
    #[serde(default)]
    pub unschedulable_replicas: i32,
    /// Generation of the workload its controller has observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions of the workload, copied as reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<WorkloadConditionSummary>>,
}

/// A workload condition copied from the member cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadConditionSummary {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
}
