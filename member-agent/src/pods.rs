//! Pod readiness and availability, as the workload controllers judge them.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::jiff::Timestamp;

use crate::lifecycle::{self, LifecycleState};

/// Pod condition and readiness gate that is False while an in-place update runs.
pub const IN_PLACE_UPDATE_READY: &str = "InPlaceUpdateReady";
/// Label asking the owning workload to delete the pod (presence of the key).
pub const SPECIFIED_DELETE_LABEL: &str = "apps.kruise.io/specified-delete";
/// Annotation ranking pods for scale-in (lower cost goes first).
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// The named condition of a pod, if present.
pub fn condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Not being deleted and not in a terminal phase.
pub fn is_active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase(pod), "Succeeded" | "Failed")
}

/// The pod phase, `""` when unknown.
pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Bound to a node.
pub fn is_assigned(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Running with the Ready condition True.
pub fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running" && condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

/// Running, Ready, and not in the middle of an in-place update (`InPlaceUpdateReady` not False).
pub fn is_ready(pod: &Pod) -> bool {
    is_running_and_ready(pod)
        && !condition(pod, IN_PLACE_UPDATE_READY).is_some_and(|c| c.status == "False")
}

/// When the pod last became Ready.
pub fn ready_since(pod: &Pod) -> Option<Timestamp> {
    condition(pod, "Ready")
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

/// How long until a ready pod becomes available; `None` when not ready, zero when available now.
pub fn time_to_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> Option<Duration> {
    if !is_ready(pod) {
        return None;
    }
    if min_ready_seconds <= 0 {
        return Some(Duration::ZERO);
    }
    let Some(since) = ready_since(pod) else {
        return Some(Duration::ZERO);
    };
    let elapsed = now.duration_since(since).as_secs_f64().max(0.0);
    let need = f64::from(min_ready_seconds);
    Some(Duration::from_secs_f64((need - elapsed).max(0.0)))
}

/// Ready for at least `min_ready_seconds`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    time_to_available(pod, min_ready_seconds, now).is_some_and(|d| d.is_zero())
}

/// Available and in lifecycle state empty or `Normal` (how CloneSet counts availability).
pub fn is_available_normal(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    matches!(
        lifecycle::state(pod),
        LifecycleState::None | LifecycleState::Normal
    ) && is_available(pod, min_ready_seconds, now)
}

/// A label value of the pod.
pub fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

/// An annotation value of the pod.
pub fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Carries the specified-delete label (any value).
pub fn is_specified_delete(pod: &Pod) -> bool {
    label(pod, SPECIFIED_DELETE_LABEL).is_some()
}

/// Sum of container restart counts.
pub fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).sum())
        .unwrap_or(0)
}

/// The pod's name, `""` when unset.
pub fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}

#[cfg(test)]
pub(crate) mod testing {
    //! Pod builders for table tests.
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use std::collections::BTreeMap;

    /// A pod named `name` on `revision`, Running and Ready since `ready_at` when `ready`.
    pub fn pod(name: &str, revision: &str, ready: bool) -> Pod {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("valid timestamp");
        let mut labels = BTreeMap::new();
        labels.insert(
            crate::revision::CONTROLLER_REVISION_HASH.to_string(),
            revision.to_string(),
        );
        Pod {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                namespace: Some("default".into()),
                uid: Some(format!("uid-{name}")),
                labels: Some(labels),
                creation_timestamp: Some(Time(t0)),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("node-1".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some(if ready { "Running" } else { "Pending" }.into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    last_transition_time: Some(Time(t0)),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
        }
    }

    /// Sets a label on a pod.
    pub fn with_label(mut pod: Pod, key: &str, value: &str) -> Pod {
        pod.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
        pod
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    #[test]
    fn availability_honours_min_ready_seconds_and_inplace_condition() {
        let now: Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
        let p = pod("a", "r1", true);
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 5, now));
        assert!(!is_available(&p, 10, now));
        assert_eq!(time_to_available(&p, 10, now), Some(Duration::from_secs(5)));
        let mut q = p.clone();
        q.status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()
            .push(PodCondition {
                type_: IN_PLACE_UPDATE_READY.into(),
                status: "False".into(),
                last_transition_time: Some(Time(now)),
                ..Default::default()
            });
        assert!(is_running_and_ready(&q));
        assert!(!is_ready(&q));
        assert!(!is_available(&pod("b", "r1", false), 0, now));
    }

    #[test]
    fn lifecycle_state_gates_cloneset_availability() {
        let now: Timestamp = "2026-01-01T00:00:05Z".parse().unwrap();
        let p = with_label(
            pod("a", "r1", true),
            lifecycle::STATE_LABEL,
            "PreparingNormal",
        );
        assert!(!is_available_normal(&p, 0, now));
        let p = with_label(p, lifecycle::STATE_LABEL, "Normal");
        assert!(is_available_normal(&p, 0, now));
    }
}
