//! Advanced StatefulSet served at `apps.kruise.io/v1alpha1`: the narrower, older schema.
//!
//! Stored objects are v1beta1; [`StatefulSet::into_v1beta1`] lifts a v1alpha1 object losslessly.

use k8s_openapi::api::apps::v1::StatefulSetCondition;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::v1beta1::statefulset as beta;

/// Desired state of an Advanced StatefulSet (v1alpha1 schema).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
    derive = "PartialEq",
    derive = "Default",
    kind = "StatefulSet",
    namespaced,
    shortname = "sts",
    shortname = "asts",
    status = "StatefulSetStatus",
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
    printcolumn(
        name = "CONTAINERS",
        type_ = "string",
        json_path = ".spec.template.spec.containers[*].name",
        priority = 1,
        description = "The containers of currently advanced statefulset."
    ),
    printcolumn(
        name = "IMAGES",
        type_ = "string",
        json_path = ".spec.template.spec.containers[*].image",
        priority = 1,
        description = "The images of currently advanced statefulset."
    ),
    doc = "StatefulSet (Advanced, v1alpha1 schema) is a superset of apps/v1 StatefulSet with in-place and parallel updates."
)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetSpec {
    /// Desired number of pods. Defaults to 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Label query over pods. Must match the template labels.
    pub selector: LabelSelector,
    /// Pod template.
    #[schemars(schema_with = "crate::schema::preserve_unknown_object")]
    pub template: PodTemplateSpec,
    /// Claims each pod gets, named `<template>-<set>-<ordinal>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::preserve_unknown_object_list")]
    pub volume_claim_templates: Option<Vec<PersistentVolumeClaim>>,
    /// Name of the governing headless Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// `OrderedReady` (default) or `Parallel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "beta::pod_management_policy_schema")]
    pub pod_management_policy: Option<String>,
    /// How pods are updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<beta::StatefulSetUpdateStrategy>,
    /// Number of old revisions kept. Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i32>,
}

/// Observed state of an Advanced StatefulSet (v1alpha1 schema).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetStatus {
    /// Generation most recently observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Number of pods.
    #[serde(default)]
    pub replicas: i32,
    /// Ready pods.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Available pods.
    #[serde(default)]
    pub available_replicas: i32,
    /// Pods on currentRevision.
    #[serde(default)]
    pub current_replicas: i32,
    /// Pods on updateRevision.
    #[serde(default)]
    pub updated_replicas: i32,
    /// Revision of pods in [0, currentReplicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
    /// Revision of pods being updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// Hash collision count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// Conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<StatefulSetCondition>>,
    /// Selector in string form, for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

impl StatefulSet {
    /// Converts to the v1beta1 storage shape; every v1alpha1 field has a v1beta1 counterpart.
    pub fn into_v1beta1(self) -> beta::StatefulSet {
        let spec = self.spec;
        beta::StatefulSet {
            metadata: self.metadata,
            spec: beta::StatefulSetSpec {
                replicas: spec.replicas,
                selector: spec.selector,
                template: spec.template,
                volume_claim_templates: spec.volume_claim_templates,
                service_name: spec.service_name,
                pod_management_policy: spec.pod_management_policy,
                update_strategy: spec.update_strategy,
                revision_history_limit: spec.revision_history_limit,
                ..Default::default()
            },
            status: self.status.map(|s| beta::StatefulSetStatus {
                observed_generation: s.observed_generation,
                replicas: s.replicas,
                ready_replicas: s.ready_replicas,
                available_replicas: s.available_replicas,
                current_replicas: s.current_replicas,
                updated_replicas: s.updated_replicas,
                current_revision: s.current_revision,
                update_revision: s.update_revision,
                collision_count: s.collision_count,
                conditions: s.conditions,
                label_selector: s.label_selector,
                ..Default::default()
            }),
        }
    }
}
