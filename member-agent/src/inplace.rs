//! The in-place update engine (spec section 1.3): which template changes can be applied to a
//! running pod, and the pod mutations that carry them out. Everything here is pure; callers write
//! the mutated pods back.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodReadinessGate, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::pods::{self, IN_PLACE_UPDATE_READY};

/// Annotation with the JSON [`InPlaceUpdateState`].
pub const STATE_ANNOTATION: &str = "apps.kruise.io/inplace-update-state";
/// Old key of the state annotation, still read.
pub const STATE_ANNOTATION_OLD: &str = "inplace-update-state";
/// Annotation with the pending [`UpdateSpec`] while a grace period runs.
pub const GRACE_ANNOTATION: &str = "apps.kruise.io/inplace-update-grace";
/// Old key of the grace annotation, still read.
pub const GRACE_ANNOTATION_OLD: &str = "inplace-update-grace";
/// Reason of the `InPlaceUpdateReady=False` condition.
pub const REASON_START: &str = "StartInPlaceUpdate";

/// The image a container had before the update.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LastContainerStatus {
    /// Image ID reported before the update.
    #[serde(rename = "imageID", default)]
    pub image_id: String,
}

/// One batch of containers patched together.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ContainerBatch {
    /// When the batch was patched.
    pub timestamp: String,
    /// Container names.
    pub containers: Vec<String>,
}

/// Upstream's `InPlaceUpdateState`, stored in [`STATE_ANNOTATION`].
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InPlaceUpdateState {
    /// Target revision.
    pub revision: String,
    /// When the update started (RFC3339).
    pub update_timestamp: String,
    /// Whether images change.
    #[serde(default)]
    pub update_images: bool,
    /// Whether env from metadata changes.
    #[serde(default)]
    pub update_env_from_metadata: bool,
    /// Image IDs before the update, per container.
    #[serde(default)]
    pub last_container_statuses: BTreeMap<String, LastContainerStatus>,
    /// Batches patched so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_batches_record: Vec<ContainerBatch>,
}

/// What an in-place update changes on a pod.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct UpdateSpec {
    /// Target revision name.
    pub revision: String,
    /// New image per container name.
    #[serde(default)]
    pub container_images: BTreeMap<String, String>,
    /// Labels to set (`Some`) or remove (`None`).
    #[serde(default)]
    pub labels: BTreeMap<String, Option<String>>,
    /// Annotations to set (`Some`) or remove (`None`).
    #[serde(default)]
    pub annotations: BTreeMap<String, Option<String>>,
    /// Grace period in seconds before images are patched.
    #[serde(default)]
    pub grace_seconds: i32,
}

fn map_diff(
    old: Option<&BTreeMap<String, String>>,
    new: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, Option<String>> {
    let empty = BTreeMap::new();
    let old = old.unwrap_or(&empty);
    let new = new.unwrap_or(&empty);
    let mut out = BTreeMap::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.insert(k.clone(), Some(v.clone()));
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            out.insert(k.clone(), None);
        }
    }
    out
}

/// The update that moves a pod from `old` to `new` in place, or `None` when it needs a recreate:
/// only container images and template labels/annotations may differ.
pub fn calculate_spec(
    old: &PodTemplateSpec,
    new: &PodTemplateSpec,
    revision: &str,
    grace_seconds: i32,
) -> Option<UpdateSpec> {
    let mut old_meta = old.metadata.clone().unwrap_or_default();
    let mut new_meta = new.metadata.clone().unwrap_or_default();
    let labels = map_diff(old_meta.labels.as_ref(), new_meta.labels.as_ref());
    let annotations = map_diff(old_meta.annotations.as_ref(), new_meta.annotations.as_ref());
    for m in [&mut old_meta, &mut new_meta] {
        m.labels = None;
        m.annotations = None;
    }
    if old_meta != new_meta {
        return None;
    }
    let old_spec = old.spec.clone().unwrap_or_default();
    let new_spec = new.spec.clone().unwrap_or_default();
    if old_spec.containers.len() != new_spec.containers.len() {
        return None;
    }
    let mut patched = old_spec.clone();
    let mut images = BTreeMap::new();
    for (o, n) in patched.containers.iter_mut().zip(&new_spec.containers) {
        if o.name != n.name {
            return None;
        }
        if o.image != n.image {
            images.insert(n.name.clone(), n.image.clone().unwrap_or_default());
            o.image = n.image.clone();
        }
    }
    if patched != new_spec {
        return None;
    }
    Some(UpdateSpec {
        revision: revision.to_string(),
        container_images: images,
        labels,
        annotations,
        grace_seconds: grace_seconds.max(0),
    })
}

/// Reads the state annotation (new key first).
pub fn state(pod: &Pod) -> Option<InPlaceUpdateState> {
    let raw = pods::annotation(pod, STATE_ANNOTATION)
        .or_else(|| pods::annotation(pod, STATE_ANNOTATION_OLD))?;
    serde_json::from_str(raw).ok()
}

/// Reads the pending grace spec (new key first).
pub fn grace_spec(pod: &Pod) -> Option<UpdateSpec> {
    let raw = pods::annotation(pod, GRACE_ANNOTATION)
        .or_else(|| pods::annotation(pod, GRACE_ANNOTATION_OLD))?;
    serde_json::from_str(raw).ok()
}

/// Whether the pod has the `InPlaceUpdateReady` readiness gate.
pub fn has_readiness_gate(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|g| g.iter().any(|g| g.condition_type == IN_PLACE_UPDATE_READY))
}

/// Adds the `InPlaceUpdateReady` readiness gate to a pod spec if missing; true when added.
pub fn inject_readiness_gate(spec: &mut k8s_openapi::api::core::v1::PodSpec) -> bool {
    let gates = spec.readiness_gates.get_or_insert_with(Vec::new);
    if gates
        .iter()
        .any(|g| g.condition_type == IN_PLACE_UPDATE_READY)
    {
        return false;
    }
    gates.push(PodReadinessGate {
        condition_type: IN_PLACE_UPDATE_READY.to_string(),
    });
    true
}

/// Sets a pod condition in memory; true when anything changed.
pub fn set_condition(
    pod: &mut Pod,
    type_: &str,
    status: bool,
    reason: Option<&str>,
    now: Timestamp,
) -> bool {
    let value = if status { "True" } else { "False" };
    let conds = pod
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new);
    match conds.iter_mut().find(|c| c.type_ == type_) {
        Some(c) if c.status == value && c.reason.as_deref() == reason => false,
        Some(c) => {
            if c.status != value {
                c.last_transition_time = Some(Time(now));
            }
            c.status = value.to_string();
            c.reason = reason.map(str::to_string);
            true
        }
        None => {
            conds.push(PodCondition {
                type_: type_.to_string(),
                status: value.to_string(),
                reason: reason.map(str::to_string),
                last_transition_time: Some(Time(now)),
                ..Default::default()
            });
            true
        }
    }
}

fn set_map(map: &mut Option<BTreeMap<String, String>>, changes: &BTreeMap<String, Option<String>>) {
    let m = map.get_or_insert_with(Default::default);
    for (k, v) in changes {
        match v {
            Some(v) => m.insert(k.clone(), v.clone()),
            None => m.remove(k),
        };
    }
}

fn patch_images(pod: &mut Pod, images: &BTreeMap<String, String>) {
    if let Some(spec) = pod.spec.as_mut() {
        for c in &mut spec.containers {
            if let Some(img) = images.get(&c.name) {
                c.image = Some(img.clone());
            }
        }
    }
}

/// Starts an in-place update on a pod object: metadata, revision labels and state annotation now;
/// images now, or after the grace period when one is set. `revision_labels` are the labels that
/// identify the target revision (controller-revision-hash, pod-template-hash).
pub fn begin_update(
    pod: &mut Pod,
    spec: &UpdateSpec,
    revision_labels: &BTreeMap<String, String>,
    now: Timestamp,
) {
    let statuses: BTreeMap<String, LastContainerStatus> = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter(|c| spec.container_images.contains_key(&c.name))
        .map(|c| {
            (
                c.name.clone(),
                LastContainerStatus {
                    image_id: c.image_id.clone(),
                },
            )
        })
        .collect();
    let mut state = InPlaceUpdateState {
        revision: spec.revision.clone(),
        update_timestamp: now.to_string(),
        update_images: !spec.container_images.is_empty(),
        last_container_statuses: statuses,
        ..Default::default()
    };
    set_map(&mut pod.metadata.labels, &spec.labels);
    set_map(&mut pod.metadata.annotations, &spec.annotations);
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    for (k, v) in revision_labels {
        labels.insert(k.clone(), v.clone());
    }
    let annotations = pod
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.remove(STATE_ANNOTATION_OLD);
    annotations.remove(GRACE_ANNOTATION_OLD);
    if spec.grace_seconds > 0 && !spec.container_images.is_empty() {
        annotations.insert(
            GRACE_ANNOTATION.to_string(),
            serde_json::to_string(spec).unwrap_or_default(),
        );
    } else {
        state.container_batches_record.push(ContainerBatch {
            timestamp: now.to_string(),
            containers: spec.container_images.keys().cloned().collect(),
        });
        patch_images(pod, &spec.container_images);
    }
    pod.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(
            STATE_ANNOTATION.to_string(),
            serde_json::to_string(&state).unwrap_or_default(),
        );
}

/// How long until the pending grace period of a pod ends; `None` when there is none.
pub fn grace_remaining(pod: &Pod, now: Timestamp) -> Option<Duration> {
    let spec = grace_spec(pod)?;
    let started: Timestamp = state(pod)?.update_timestamp.parse().ok()?;
    let elapsed = now.duration_since(started).as_secs_f64().max(0.0);
    Some(Duration::from_secs_f64(
        (f64::from(spec.grace_seconds) - elapsed).max(0.0),
    ))
}

/// Applies the images held back by a finished grace period; true when the pod changed.
pub fn finish_grace(pod: &mut Pod, now: Timestamp) -> bool {
    let Some(spec) = grace_spec(pod) else {
        return false;
    };
    if grace_remaining(pod, now).is_some_and(|d| !d.is_zero()) {
        return false;
    }
    patch_images(pod, &spec.container_images);
    let mut st = state(pod).unwrap_or_default();
    st.container_batches_record.push(ContainerBatch {
        timestamp: now.to_string(),
        containers: spec.container_images.keys().cloned().collect(),
    });
    if let Some(a) = pod.metadata.annotations.as_mut() {
        a.remove(GRACE_ANNOTATION);
        a.remove(GRACE_ANNOTATION_OLD);
        a.insert(
            STATE_ANNOTATION.to_string(),
            serde_json::to_string(&st).unwrap_or_default(),
        );
    }
    true
}

fn with_default_tag(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// Whether the in-place update recorded on the pod has finished: no grace pending and every
/// updated container reports a new image ID (or already reports the spec image).
pub fn is_completed(pod: &Pod) -> bool {
    if grace_spec(pod).is_some() {
        return false;
    }
    let Some(st) = state(pod) else { return true };
    let spec_images: BTreeMap<&str, String> = pod
        .spec
        .as_ref()
        .map(|s| {
            s.containers
                .iter()
                .map(|c| {
                    (
                        c.name.as_str(),
                        with_default_tag(c.image.as_deref().unwrap_or("")),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    for (name, last) in &st.last_container_statuses {
        let Some(cs) = statuses.and_then(|all| all.iter().find(|c| &c.name == name)) else {
            return false;
        };
        if cs.image_id == last.image_id
            && spec_images.get(name.as_str()) != Some(&with_default_tag(&cs.image))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests;
