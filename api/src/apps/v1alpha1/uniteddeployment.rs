//! UnitedDeployment: one workload per subset (topology domain), each patched for its subset.
//!
//! Hub extension: a subset may name member clusters (`clusters`) or select ManagedClusters
//! (`clusterSelector`); `updateStrategy.waves` rolls a new revision out one subset or cluster at a time.

use k8s_openapi::api::apps::v1::{DeploymentSpec, StatefulSetSpec as AppsStatefulSetSpec};
use k8s_openapi::api::core::v1::{NodeSelectorTerm, Toleration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

use super::cloneset::CloneSetSpec;
use crate::apps::v1beta1::statefulset::StatefulSetSpec as AdvancedStatefulSetSpec;
use crate::schema::string_enum_schema;

/// `updateStrategy.type`: the only upstream value.
pub const MANUAL: &str = "Manual";
/// `scheduleStrategy.type`: replicas as specified.
pub const FIXED: &str = "Fixed";
/// `scheduleStrategy.type`: move pending pods to other subsets.
pub const ADAPTIVE: &str = "Adaptive";
/// `waves.unit`: each wave updates one subset (in all its clusters).
pub const WAVE_UNIT_SUBSET: &str = "Subset";
/// `waves.unit`: each wave updates one member cluster.
pub const WAVE_UNIT_CLUSTER: &str = "Cluster";

string_enum_schema!(update_type_schema, ["Manual"]);
string_enum_schema!(schedule_type_schema, ["Adaptive", "Fixed", ""]);
string_enum_schema!(wave_unit_schema, ["Subset", "Cluster"]);
string_enum_schema!(cluster_split_schema, ["Even", "Capacity"]);

/// Desired state of a UnitedDeployment.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
    derive = "PartialEq",
    derive = "Default",
    kind = "UnitedDeployment",
    namespaced,
    shortname = "ud",
    status = "UnitedDeploymentStatus",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.labelSelector"
    ),
    printcolumn(
        name = "DESIRED",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "The desired number of pods."
    ),
    printcolumn(
        name = "CURRENT",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "The number of currently all pods."
    ),
    printcolumn(
        name = "UPDATED",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "The number of pods updated."
    ),
    printcolumn(
        name = "READY",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "The number of pods ready."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    doc = "UnitedDeployment manages one workload per subset (a group of nodes, or of member clusters on the hub)."
)]
#[serde(rename_all = "camelCase")]
pub struct UnitedDeploymentSpec {
    /// Total desired pods over all subsets. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label query over pods. Must match the template labels.
    pub selector: LabelSelector,
    /// The subset workload template; exactly one kind must be set.
    #[serde(default)]
    pub template: SubsetTemplate,
    /// The subsets and how pods are scheduled over them.
    #[serde(default)]
    pub topology: Topology,
    /// How a new revision is rolled out over subsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<UnitedDeploymentUpdateStrategy>,
    /// Number of old revisions kept. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
}

/// The workload created per subset.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubsetTemplate {
    /// An apps/v1 StatefulSet per subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stateful_set_template: Option<StatefulSetTemplateSpec>,
    /// An Advanced StatefulSet per subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced_stateful_set_template: Option<AdvancedStatefulSetTemplateSpec>,
    /// A CloneSet per subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clone_set_template: Option<CloneSetTemplateSpec>,
    /// An apps/v1 Deployment per subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_template: Option<DeploymentTemplateSpec>,
}

/// apps/v1 StatefulSet template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetTemplateSpec {
    /// Labels and annotations of the subset workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub metadata: Option<ObjectMeta>,
    /// Spec of the subset workloads (replicas is set per subset).
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub spec: AppsStatefulSetSpec,
}

/// Advanced StatefulSet template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdvancedStatefulSetTemplateSpec {
    /// Labels and annotations of the subset workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub metadata: Option<ObjectMeta>,
    /// Spec of the subset workloads (replicas is set per subset).
    pub spec: AdvancedStatefulSetSpec,
}

/// CloneSet template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloneSetTemplateSpec {
    /// Labels and annotations of the subset workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub metadata: Option<ObjectMeta>,
    /// Spec of the subset workloads (replicas is set per subset).
    pub spec: CloneSetSpec,
}

/// apps/v1 Deployment template.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentTemplateSpec {
    /// Labels and annotations of the subset workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub metadata: Option<ObjectMeta>,
    /// Spec of the subset workloads (replicas is set per subset).
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub spec: DeploymentSpec,
}

/// Subsets and scheduling.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Topology {
    /// The subsets, in priority order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subsets: Option<Vec<Subset>>,
    /// `Fixed` (default) or `Adaptive` scheduling over subsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_strategy: Option<UnitedDeploymentScheduleStrategy>,
}

/// One topology domain.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subset {
    /// Unique DNS label; subset workloads are named `<ud>-<subset>-`.
    pub name: String,
    /// Node requirements appended to every required node-affinity term of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector_term: Option<NodeSelectorTerm>,
    /// Tolerations appended to the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Replicas of this subset: an int or a percentage of spec.replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<IntOrString>,
    /// Lower bound of this subset's replicas (int or percentage).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<IntOrString>,
    /// Upper bound of this subset's replicas (int or percentage); unset means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<IntOrString>,
    /// Strategic-merge patch applied to the subset's pod template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub patch: Option<Value>,
    /// Hub only: names of the ManagedClusters this subset runs in. Exclusive with clusterSelector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<String>>,
    /// Hub only: selects the ManagedClusters this subset runs in by label. Exclusive with clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
    /// Hub only: how the subset's replicas are divided over its clusters. `Even` (default): in
    /// equal shares by cluster name, the remainder to the first. `Capacity`: in proportion to each
    /// ManagedCluster's allocatable pods (cpu when pods is not reported; a cluster reporting
    /// neither weighs as the smallest), largest remainders first, ties by cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "cluster_split_schema")]
    pub cluster_split: Option<String>,
}

/// Scheduling over subsets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitedDeploymentScheduleStrategy {
    /// `Fixed` (default) or `Adaptive`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schedule_type_schema")]
    pub type_: Option<String>,
    /// Adaptive scheduling parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adaptive: Option<AdaptiveUnitedDeploymentStrategy>,
}

/// Adaptive scheduling parameters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdaptiveUnitedDeploymentStrategy {
    /// Seconds a pod may stay pending before it moves to another subset. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reschedule_critical_seconds: Option<i32>,
    /// Seconds a subset stays unschedulable once marked. Defaults to 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable_last_seconds: Option<i32>,
    /// Earlier name of `unschedulableLastSeconds`, still accepted; `unschedulableLastSeconds`
    /// wins when both are set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unschedulable_duration: Option<i32>,
    /// Keep unschedulable pods as reserved and run temporary substitutes elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve_unschedulable_pods: Option<bool>,
}

impl AdaptiveUnitedDeploymentStrategy {
    /// Seconds a subset stays unschedulable: `unschedulableLastSeconds`, else the earlier
    /// `unschedulableDuration`.
    pub fn unschedulable_seconds(&self) -> Option<i32> {
        self.unschedulable_last_seconds
            .or(self.unschedulable_duration)
    }
}

/// How a new revision reaches the subsets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitedDeploymentUpdateStrategy {
    /// `Manual` (the only type).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "update_type_schema")]
    pub type_: Option<String>,
    /// Per-subset partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manual_update: Option<ManualUpdate>,
    /// Hub only: automatic update waves. Exclusive with manualUpdate.partitions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<UpdateWaves>,
}

/// Per-subset partitions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManualUpdate {
    /// Subset name to the number of its pods kept on the old revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<BTreeMap<String, i32>>,
}

/// Automatic update waves: the new revision is rolled to one unit at a time; a unit must become
/// fully updated and available within the deadline before the next one starts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWaves {
    /// What one wave updates: `Subset` (default; all clusters of one subset) or `Cluster` (one member cluster).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "wave_unit_schema")]
    pub unit: Option<String>,
    /// Order of the waves by subset (or cluster) name; defaults to subset order, then cluster name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<Vec<String>>,
    /// Seconds a wave may take to become updated and available before the rollout halts. Defaults to 600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline_seconds: Option<i32>,
    /// Stop starting new waves; the running wave completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
}

/// Observed state of a UnitedDeployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitedDeploymentStatus {
    /// Generation most recently observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready pods over all subsets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Pods over all subsets.
    #[serde(default)]
    pub replicas: i32,
    /// Pods on the updated revision.
    #[serde(default)]
    pub updated_replicas: i32,
    /// Updated pods that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_ready_replicas: Option<i32>,
    /// Pods held as reserved (reservation scheduling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_pods: Option<i32>,
    /// Hash collision count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// Current revision name.
    #[serde(default)]
    pub current_revision: String,
    /// Replicas allocated per subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset_replicas: Option<BTreeMap<String, i32>>,
    /// Per-subset status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset_statuses: Option<Vec<UnitedDeploymentSubsetStatus>>,
    /// Conditions (`SubsetProvisioned`, `SubsetUpdated`, `SubsetFailure`, `UnitedDeploymentUpdated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<UnitedDeploymentCondition>>,
    /// Update progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_status: Option<UpdateStatus>,
    /// Selector in string form, for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Hub only: progress of update waves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave_status: Option<WaveStatus>,
    /// Hub only: one entry per (subset, member cluster), from that cluster's Work status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_statuses: Option<Vec<UnitedDeploymentClusterStatus>>,
}

/// Hub only: the part of a subset running in one member cluster, as its agent last reported.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitedDeploymentClusterStatus {
    /// ManagedCluster name.
    pub cluster: String,
    /// Subset name.
    pub subset: String,
    /// Replicas the hub asks of this cluster.
    pub desired_replicas: i32,
    /// Pods of the subset workload in the cluster.
    pub replicas: i32,
    /// Of those, Ready.
    pub ready_replicas: i32,
    /// On the update revision (0 while the report predates the current spec).
    pub updated_replicas: i32,
    /// On the update revision and Ready.
    pub updated_ready_replicas: i32,
    /// Pending because no node fits.
    pub unschedulable_replicas: i32,
}

/// Status of one subset.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitedDeploymentSubsetStatus {
    /// Subset name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Pods in the subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Ready pods in the subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Partition applied to the subset workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// Reserved pods in the subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserved_pods: Option<i32>,
    /// `Schedulable` condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<UnitedDeploymentCondition>>,
}

/// A UnitedDeployment (or subset) condition.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitedDeploymentCondition {
    /// Condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Last time the condition changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Reason for the last transition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Update progress.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStatus {
    /// Revision being rolled out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_revision: Option<String>,
    /// Partitions currently applied per subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_partitions: Option<BTreeMap<String, i32>>,
}

/// Progress of update waves (hub only).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaveStatus {
    /// Revision the waves roll out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// The subset or cluster the running wave updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    /// When the running wave started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// Units already updated, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Vec<String>>,
    /// Set when the running wave exceeded progressDeadlineSeconds; the rollout is halted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_exceeded: Option<bool>,
}
