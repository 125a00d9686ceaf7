//! The `KruisePodReady` readiness gate: a multi-writer "not ready" switch (spec 1.1).
//!
//! The condition's `message` holds a JSON list of `{userAgent, key}` holders; the condition is
//! True exactly when the list is empty. The pod webhook injects the gate; [`run`] (upstream's
//! `podreadiness` controller) initialises the condition to True so a gated pod never waits for
//! it, whoever created the pod; lifecycle hooks with `markPodNotReady` add and remove holders.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodReadinessGate, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Client, ResourceExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::pods;

/// Condition type and readiness gate.
pub const KRUISE_POD_READY: &str = "KruisePodReady";
/// User agent of the holders lifecycle hooks add.
pub const LIFECYCLE_USER_AGENT: &str = "Lifecycle";
/// Holder key while a preDelete hook with markPodNotReady holds the pod.
pub const PRE_DELETE_KEY: &str = "preDeleteHook";
/// Holder key while an inPlaceUpdate hook with markPodNotReady holds the pod.
pub const PRE_UPDATE_KEY: &str = "preUpdateHook";

/// One holder of the "not ready" switch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Who holds it (`Lifecycle`, `ContainerRecreateRequest`, ...).
    pub user_agent: String,
    /// What for.
    pub key: String,
}

impl Message {
    /// A lifecycle holder.
    pub fn lifecycle(key: &str) -> Self {
        Message {
            user_agent: LIFECYCLE_USER_AGENT.into(),
            key: key.into(),
        }
    }
}

/// The pod spec carries the `KruisePodReady` readiness gate.
pub fn has_gate(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|g| g.iter().any(|g| g.condition_type == KRUISE_POD_READY))
}

/// Adds the gate to a pod spec if missing; true when added.
pub fn inject_gate(spec: &mut PodSpec) -> bool {
    let gates = spec.readiness_gates.get_or_insert_with(Vec::new);
    if gates.iter().any(|g| g.condition_type == KRUISE_POD_READY) {
        return false;
    }
    gates.push(PodReadinessGate {
        condition_type: KRUISE_POD_READY.into(),
    });
    true
}

/// The holders listed in the condition (an unreadable message counts as none, as upstream).
pub fn holders(pod: &Pod) -> Vec<Message> {
    pods::condition(pod, KRUISE_POD_READY)
        .and_then(|c| c.message.as_deref())
        .filter(|m| !m.is_empty())
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default()
}

/// Keys held by `user_agent`, sorted.
pub fn keys_of(pod: &Pod, user_agent: &str) -> Vec<String> {
    let mut keys: Vec<String> = holders(pod)
        .into_iter()
        .filter(|m| m.user_agent == user_agent)
        .map(|m| m.key)
        .collect();
    keys.sort();
    keys
}

/// Makes `user_agent`'s holders exactly `keys` (other holders are kept) and sets the condition
/// to match: True with an empty message when nobody holds it, else False with the JSON list.
/// Creates the condition when missing. Becoming not ready also forces the pod's `Ready`
/// condition False at once, as upstream does, so endpoints drop the pod without waiting for the
/// kubelet. Only pods with the gate are touched. True when anything changed.
pub fn set_keys(pod: &mut Pod, user_agent: &str, keys: &[&str], now: Timestamp) -> bool {
    if !has_gate(pod) {
        return false;
    }
    let mut list: Vec<Message> = holders(pod)
        .into_iter()
        .filter(|m| m.user_agent != user_agent)
        .collect();
    for k in keys {
        let m = Message {
            user_agent: user_agent.into(),
            key: (*k).into(),
        };
        if !list.contains(&m) {
            list.push(m);
        }
    }
    let status = if list.is_empty() { "True" } else { "False" };
    let message = serde_json::to_string(&list).unwrap_or_default();
    let had_holders = !holders(pod).is_empty();
    let conds = pod
        .status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new);
    let changed = match conds.iter_mut().find(|c| c.type_ == KRUISE_POD_READY) {
        Some(c) => {
            // An emptied list is written as "[]" (not dropped) so a merge patch clears it.
            let same_message = if list.is_empty() {
                !had_holders
            } else {
                c.message.as_deref() == Some(message.as_str())
            };
            if c.status == status && same_message {
                false
            } else {
                if c.status != status {
                    c.last_transition_time = Some(Time(now));
                }
                c.status = status.into();
                if !same_message {
                    c.message = Some(message);
                }
                true
            }
        }
        None => {
            conds.push(PodCondition {
                type_: KRUISE_POD_READY.into(),
                status: status.into(),
                message: (!list.is_empty()).then_some(message),
                last_transition_time: Some(Time(now)),
                ..Default::default()
            });
            true
        }
    };
    if changed && status == "False" {
        if let Some(ready) = conds.iter_mut().find(|c| c.type_ == "Ready") {
            if ready.status != "False" {
                ready.status = "False".into();
                ready.last_transition_time = Some(Time(now));
            }
        }
    }
    changed
}

/// A gated pod whose condition is missing: it must be initialised (to True) or it never
/// becomes Ready.
pub fn needs_init(pod: &Pod) -> bool {
    has_gate(pod) && pods::condition(pod, KRUISE_POD_READY).is_none()
}

/// A status patch setting each of `types` True (readiness-gate conditions nobody holds). A
/// strategic merge of the conditions by type, so the kubelet's and other writers' conditions are
/// left alone.
pub fn conditions_true_patch(types: &[&str], now: Timestamp) -> serde_json::Value {
    let conditions: Vec<serde_json::Value> = types
        .iter()
        .map(|t| json!({"type": t, "status": "True", "lastTransitionTime": Time(now)}))
        .collect();
    json!({"status": {"conditions": conditions}})
}

/// Pods initialised at once.
const IN_FLIGHT: usize = 16;

/// Whether the pod's controller is an `apps.kruise.io` object of one of `kinds`.
fn controlled_by_kind(pod: &Pod, kinds: &[&str]) -> bool {
    crate::controllerref::controller_of(&pod.metadata).is_some_and(|o| {
        o.api_version.starts_with("apps.kruise.io/") && kinds.contains(&o.kind.as_str())
    })
}

/// Upstream's `podreadiness` controller: watches every pod and initialises `KruisePodReady` on
/// gated pods that lack it, until `shutdown` resolves. Pods controlled by a kind in `skip_kinds`
/// are left to their own controller, which initialises the condition in the same write as its
/// other pod housekeeping (the CloneSet controller, when it runs in this agent).
pub async fn run(
    client: Client,
    write_timeout: Duration,
    skip_kinds: &'static [&'static str],
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let pods = watcher(Api::<Pod>::all(client.clone()), watcher::Config::default())
        .default_backoff()
        .applied_objects()
        .filter_map(|res| async move {
            match res {
                Ok(p)
                    if needs_init(&p)
                        && p.metadata.deletion_timestamp.is_none()
                        && !controlled_by_kind(&p, skip_kinds) =>
                {
                    Some(p)
                }
                Ok(_) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "pod watch");
                    None
                }
            }
        })
        .take_until(shutdown);
    pods.for_each_concurrent(IN_FLIGHT, |pod| {
        let client = client.clone();
        async move {
            let api: Api<Pod> = Api::namespaced(client, &pod.namespace().unwrap_or_default());
            let patch =
                Patch::Strategic(conditions_true_patch(&[KRUISE_POD_READY], Timestamp::now()));
            let res = tokio::time::timeout(
                write_timeout,
                api.patch_status(&pod.name_any(), &PatchParams::default(), &patch),
            )
            .await;
            match res {
                Ok(Ok(_)) => tracing::debug!(pod = %pod.name_any(), "KruisePodReady initialised"),
                Ok(Err(kube::Error::Api(e))) if e.code == 404 => {}
                Ok(Err(e)) => {
                    tracing::warn!(pod = %pod.name_any(), error = %e, "initialising KruisePodReady")
                }
                Err(_) => {
                    tracing::warn!(pod = %pod.name_any(), "initialising KruisePodReady timed out")
                }
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;

    fn gated() -> Pod {
        let mut p = pod("a", "r", true);
        inject_gate(p.spec.as_mut().unwrap());
        p
    }

    #[test]
    fn gate_injection_is_idempotent() {
        let mut p = pod("a", "r", true);
        assert!(!has_gate(&p));
        assert!(inject_gate(p.spec.as_mut().unwrap()));
        assert!(!inject_gate(p.spec.as_mut().unwrap()));
        assert!(has_gate(&p));
    }

    #[test]
    fn holders_switch_the_condition() {
        let now = Timestamp::UNIX_EPOCH;
        let mut p = gated();
        assert!(needs_init(&p));
        assert!(set_keys(&mut p, LIFECYCLE_USER_AGENT, &[], now));
        assert!(!needs_init(&p));
        let c = pods::condition(&p, KRUISE_POD_READY).unwrap();
        assert_eq!((c.status.as_str(), c.message.as_deref()), ("True", None));
        assert!(!set_keys(&mut p, LIFECYCLE_USER_AGENT, &[], now));

        // another writer's holder survives lifecycle changes
        p.status.as_mut().unwrap().conditions.as_mut().unwrap()[1].message =
            Some(r#"[{"userAgent":"ContainerRecreateRequest","key":"ns/crr"}]"#.into());
        assert!(set_keys(
            &mut p,
            LIFECYCLE_USER_AGENT,
            &[PRE_DELETE_KEY],
            now
        ));
        let c = pods::condition(&p, KRUISE_POD_READY).unwrap();
        assert_eq!(c.status, "False");
        assert_eq!(
            c.message.as_deref(),
            Some(
                r#"[{"userAgent":"ContainerRecreateRequest","key":"ns/crr"},{"userAgent":"Lifecycle","key":"preDeleteHook"}]"#
            )
        );
        assert_eq!(pods::condition(&p, "Ready").unwrap().status, "False");
        assert_eq!(keys_of(&p, LIFECYCLE_USER_AGENT), vec![PRE_DELETE_KEY]);
        assert!(!set_keys(
            &mut p,
            LIFECYCLE_USER_AGENT,
            &[PRE_DELETE_KEY],
            now
        ));

        assert!(set_keys(&mut p, LIFECYCLE_USER_AGENT, &[], now));
        let c = pods::condition(&p, KRUISE_POD_READY).unwrap();
        assert_eq!(c.status, "False");
        assert_eq!(holders(&p).len(), 1);
        assert!(set_keys(&mut p, "ContainerRecreateRequest", &[], now));
        let c = pods::condition(&p, KRUISE_POD_READY).unwrap();
        assert_eq!(
            (c.status.as_str(), c.message.as_deref()),
            ("True", Some("[]"))
        );
        assert!(holders(&p).is_empty());
        assert!(!set_keys(&mut p, LIFECYCLE_USER_AGENT, &[], now));
    }

    #[test]
    fn ungated_pods_are_left_alone() {
        let mut p = pod("a", "r", true);
        assert!(!needs_init(&p));
        assert!(!set_keys(
            &mut p,
            LIFECYCLE_USER_AGENT,
            &[PRE_DELETE_KEY],
            Timestamp::UNIX_EPOCH
        ));
        assert!(pods::condition(&p, KRUISE_POD_READY).is_none());
    }
}
