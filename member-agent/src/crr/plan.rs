//! Pure decisions of the ContainerRecreateRequest controller (spec section 11.4, the manager
//! side): complete requests whose pod went away, whose daemon never answered or whose deadline
//! passed; keep the lookup labels; hold the pod not-ready during `unreadyGracePeriodSeconds`;
//! clean up and TTL-delete finished requests.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kruise_api::apps::v1alpha1::containerrecreaterequest::{
    ContainerRecreateRequest, ACTIVE_LABEL, NODE_NAME_LABEL, POD_UID_LABEL,
};
use kube::ResourceExt;

/// Phase of a finished request.
pub const COMPLETED: &str = "Completed";
/// Phase while the daemon works.
pub const RECREATING: &str = "Recreating";
/// Label naming the pod.
pub const POD_NAME_LABEL: &str = "crr.apps.kruise.io/pod-name";
/// Annotation/finalizer recording that the pod was marked not-ready for this request.
pub const UNREADY_ACQUIRED: &str = "crr.apps.kruise.io/unready-acquired";
/// Annotation with the pod's container statuses while recreating.
pub const SYNC_CONTAINER_STATUSES: &str = "crr.apps.kruise.io/sync-container-statuses";
/// Readiness gate condition the request flips.
pub const KRUISE_POD_READY: &str = "KruisePodReady";

/// Message: the pod is missing, terminating or was replaced.
pub const POD_GONE: &str = "pod has gone";
/// Message: no daemon set a phase in time.
pub const DAEMON_TIMEOUT: &str = "daemon has not responded for a long time";
/// Message: `activeDeadlineSeconds` passed.
pub const DEADLINE: &str = "recreating has exceeded the activeDeadlineSeconds";

/// What to do with one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Add or fix labels first (merge patch of these keys).
    Label(BTreeMap<String, String>),
    /// Mark it Completed with this message.
    Complete(String),
    /// Mark the pod not-ready and record it (unreadyGracePeriodSeconds).
    AcquireUnready,
    /// Finished: drop the `active` label, release the pod's readiness, maybe delete after TTL.
    Finish {
        /// Remove the `active` label.
        drop_active: bool,
        /// Give the pod its readiness back.
        release_unready: bool,
        /// Time left before TTL deletion (`Some(0)` = delete now).
        ttl_left: Option<Duration>,
    },
    /// Nothing to do; look again after this long.
    Wait(Duration),
}

fn secs_since(t: Timestamp, now: Timestamp) -> f64 {
    now.duration_since(t).as_secs_f64()
}

/// Decides the next step for `crr` given its pod (if any) at `now`. `daemon_timeout` is
/// upstream's one minute.
pub fn decide(
    crr: &ContainerRecreateRequest,
    pod: Option<&Pod>,
    now: Timestamp,
    daemon_timeout: Duration,
) -> Decision {
    let status = crr.status.clone().unwrap_or_default();
    let labels = crr.labels();
    if status.phase == COMPLETED {
        let ttl_left = crr.spec.ttl_seconds_after_finished.map(|ttl| {
            let done = status.completion_time.as_ref().map_or(now, |t| t.0);
            Duration::from_secs_f64((f64::from(ttl.max(0)) - secs_since(done, now)).max(0.0))
        });
        let drop_active = labels.contains_key(ACTIVE_LABEL);
        let release_unready = crr.finalizers().iter().any(|f| f == UNREADY_ACQUIRED);
        return Decision::Finish {
            drop_active,
            release_unready,
            ttl_left,
        };
    }
    let pod = pod.filter(|p| {
        p.metadata.deletion_timestamp.is_none()
            && labels
                .get(POD_UID_LABEL)
                .is_none_or(|uid| Some(uid) == p.metadata.uid.as_ref())
    });
    let Some(pod) = pod else {
        return Decision::Complete(POD_GONE.into());
    };
    let mut want = BTreeMap::new();
    if !labels.contains_key(POD_UID_LABEL) {
        want.insert(POD_UID_LABEL.to_string(), pod.uid().unwrap_or_default());
    }
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        if !labels.contains_key(NODE_NAME_LABEL) {
            want.insert(NODE_NAME_LABEL.to_string(), node);
        }
    }
    if !labels.contains_key(POD_NAME_LABEL) {
        want.insert(POD_NAME_LABEL.to_string(), crr.spec.pod_name.clone());
    }
    if !labels.contains_key(ACTIVE_LABEL) {
        want.insert(ACTIVE_LABEL.to_string(), "true".into());
    }
    if !want.is_empty() {
        return Decision::Label(want);
    }
    let created = crr
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    let age = secs_since(created, now);
    if let Some(deadline) = crr.spec.active_deadline_seconds {
        if age >= deadline as f64 {
            return Decision::Complete(DEADLINE.into());
        }
    }
    if status.phase.is_empty() && age >= daemon_timeout.as_secs_f64() {
        return Decision::Complete(DAEMON_TIMEOUT.into());
    }
    let wants_unready = crr
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.unready_grace_period_seconds)
        .is_some();
    if wants_unready && !crr.annotations().contains_key(UNREADY_ACQUIRED) {
        return Decision::AcquireUnready;
    }
    let mut wait = Duration::from_secs(1);
    if status.phase.is_empty() {
        wait = wait.min(Duration::from_secs_f64(
            (daemon_timeout.as_secs_f64() - age).max(0.05),
        ));
    }
    Decision::Wait(wait)
}

/// The `sync-container-statuses` annotation value for the request's containers.
pub fn container_statuses(crr: &ContainerRecreateRequest, pod: &Pod) -> String {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    let rows: Vec<serde_json::Value> = crr
        .spec
        .containers
        .iter()
        .filter_map(|c| statuses?.iter().find(|s| s.name == c.name))
        .map(|s| {
            serde_json::json!({
                "name": s.name, "ready": s.ready, "restartCount": s.restart_count,
                "containerID": s.container_id.clone().unwrap_or_default()
            })
        })
        .collect();
    serde_json::Value::Array(rows).to_string()
}

/// Whether the pod declares the `KruisePodReady` readiness gate (only then does flipping the
/// condition make it not-ready).
pub fn has_kruise_readiness_gate(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|g| g.iter().any(|g| g.condition_type == KRUISE_POD_READY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn crr(v: serde_json::Value) -> ContainerRecreateRequest {
        let mut base = json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ContainerRecreateRequest",
            "metadata": {"name": "r", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {POD_UID_LABEL: "u1", NODE_NAME_LABEL: "n1", POD_NAME_LABEL: "p", ACTIVE_LABEL: "true"}},
            "spec": {"podName": "p", "containers": [{"name": "a"}]}
        });
        json_patch::merge(&mut base, &v);
        serde_json::from_value(base).unwrap()
    }

    fn pod(uid: &str, terminating: bool) -> Pod {
        let mut p: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "uid": uid}, "spec": {"nodeName": "n1", "containers": []}})).unwrap();
        if terminating {
            p.metadata.deletion_timestamp = Some(
                k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(at("2026-01-01T00:00:01Z")),
            );
        }
        p
    }

    #[test]
    fn completes_when_the_pod_is_gone_replaced_or_terminating() {
        let now = at("2026-01-01T00:00:05Z");
        let t = Duration::from_secs(60);
        let r = crr(json!({}));
        let gone = Decision::Complete(POD_GONE.into());
        assert_eq!(decide(&r, None, now, t), gone);
        assert_eq!(decide(&r, Some(&pod("u2", false)), now, t), gone);
        assert_eq!(decide(&r, Some(&pod("u1", true)), now, t), gone);
        assert!(matches!(
            decide(&r, Some(&pod("u1", false)), now, t),
            Decision::Wait(_)
        ));
    }

    #[test]
    fn steps_of_a_request_nobody_answers() {
        let p = pod("u1", false);
        let t = Duration::from_secs(60);
        let r = crr(json!({"metadata": {"labels": {POD_UID_LABEL: null, NODE_NAME_LABEL: null}}}));
        // step 1: the controller fills the lookup labels itself
        let want: BTreeMap<String, String> = [
            (POD_UID_LABEL.to_string(), "u1".to_string()),
            (NODE_NAME_LABEL.to_string(), "n1".to_string()),
        ]
        .into();
        assert_eq!(
            decide(&r, Some(&p), at("2026-01-01T00:00:01Z"), t),
            Decision::Label(want)
        );
        // step 2: labelled, waiting for the daemon until the minute is up
        let r = crr(json!({}));
        assert_eq!(
            decide(&r, Some(&p), at("2026-01-01T00:00:30Z"), t),
            Decision::Wait(Duration::from_secs(1))
        );
        // step 3: a minute without a phase
        assert_eq!(
            decide(&r, Some(&p), at("2026-01-01T00:01:00Z"), t),
            Decision::Complete(DAEMON_TIMEOUT.into())
        );
        // a daemon that answered is not timed out
        let r = crr(json!({"status": {"phase": RECREATING}}));
        assert!(matches!(
            decide(&r, Some(&p), at("2026-01-01T00:05:00Z"), t),
            Decision::Wait(_)
        ));
    }

    #[test]
    fn deadline_unready_and_finish() {
        let p = pod("u1", false);
        let t = Duration::from_secs(60);
        let r =
            crr(json!({"spec": {"activeDeadlineSeconds": 10}, "status": {"phase": RECREATING}}));
        assert_eq!(
            decide(&r, Some(&p), at("2026-01-01T00:00:10Z"), t),
            Decision::Complete(DEADLINE.into())
        );
        let r = crr(json!({"spec": {"strategy": {"unreadyGracePeriodSeconds": 3}}}));
        assert_eq!(
            decide(&r, Some(&p), at("2026-01-01T00:00:01Z"), t),
            Decision::AcquireUnready
        );
        let r = crr(
            json!({"metadata": {"finalizers": [UNREADY_ACQUIRED]}, "spec": {"ttlSecondsAfterFinished": 5},
            "status": {"phase": COMPLETED, "completionTime": "2026-01-01T00:00:10Z"}}),
        );
        assert_eq!(
            decide(&r, None, at("2026-01-01T00:00:12Z"), t),
            Decision::Finish {
                drop_active: true,
                release_unready: true,
                ttl_left: Some(Duration::from_secs(3))
            }
        );
        assert_eq!(
            decide(&r, None, at("2026-01-01T00:01:00Z"), t),
            Decision::Finish {
                drop_active: true,
                release_unready: true,
                ttl_left: Some(Duration::ZERO)
            }
        );
    }
}
