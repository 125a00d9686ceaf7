//! ContainerRecreateRequest admission (spec section 11.2): on create, validate and inject the
//! pod's context (labels, grace period, container IDs and restart counts, preStop hooks); on
//! update, keep the spec and the lookup labels immutable. Messages are upstream's.

use k8s_openapi::api::core::v1::Pod;
use kruise_api::apps::v1alpha1::containerrecreaterequest::{
    ContainerRecreateRequest, ContainerRecreateRequestContainerContext,
    ContainerRecreateRequestStrategy, ACTIVE_LABEL, NODE_NAME_LABEL, POD_UID_LABEL,
};
use kube::core::admission::Operation;
use serde_json::Value;

use super::plan::POD_NAME_LABEL;
use crate::webhook::{decode, Request, State, Verdict};

/// Feature gate the request kind depends on.
pub const KRUISE_DAEMON_GATE: &str = "KruiseDaemon";

/// Smallest `activeDeadlineSeconds` upstream accepts.
pub const MIN_DEADLINE_SECONDS: i64 = 3;

/// Upstream's `IsPodActive`: not Succeeded/Failed and not being deleted.
fn is_active(pod: &Pod) -> bool {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default();
    phase != "Succeeded" && phase != "Failed" && pod.metadata.deletion_timestamp.is_none()
}

/// Checks the request's own fields and applies the strategy defaults.
pub fn validate_and_default(crr: &mut ContainerRecreateRequest) -> Result<(), String> {
    if crr.spec.pod_name.is_empty() {
        return Err("podName can not be empty".into());
    }
    if crr.spec.containers.is_empty() {
        return Err("containers list can not be null".into());
    }
    if crr
        .spec
        .active_deadline_seconds
        .is_some_and(|d| d < MIN_DEADLINE_SECONDS)
    {
        return Err(format!(
            "activeDeadlineSeconds can not be less than {MIN_DEADLINE_SECONDS}s"
        ));
    }
    let strategy = crr
        .spec
        .strategy
        .get_or_insert_with(ContainerRecreateRequestStrategy::default);
    if strategy
        .termination_grace_period_seconds
        .is_some_and(|s| s < 0)
    {
        return Err("terminationGracePeriodSeconds must be non-negative integer".into());
    }
    if strategy.unready_grace_period_seconds.is_some_and(|s| s < 0) {
        return Err("unreadyGracePeriodSeconds must be non-negative integer".into());
    }
    match strategy.failure_policy.as_deref() {
        None | Some("") => strategy.failure_policy = Some("Fail".into()),
        Some("Fail") | Some("Ignore") => {}
        Some(other) => return Err(format!("unknown failurePolicy {other}")),
    }
    let mut seen = std::collections::BTreeSet::new();
    for c in &crr.spec.containers {
        if !seen.insert(c.name.as_str()) {
            return Err(format!("can not recreate {} multi times", c.name));
        }
        if c.pre_stop.is_some() || c.ports.is_some() || c.status_context.is_some() {
            return Err("preStop, ports, statusContext in container are ready-only fields".into());
        }
    }
    Ok(())
}

/// Copies the pod's context into the request (upstream's `injectPodIntoContainerRecreateRequest`).
pub fn inject_pod(crr: &mut ContainerRecreateRequest, pod: &Pod) -> Result<(), String> {
    if !is_active(pod) {
        return Err("not allowed to recreate containers in an inactive Pod".into());
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let Some(node) = spec.node_name.clone().filter(|n| !n.is_empty()) else {
        return Err("not allowed to recreate containers in a pending Pod".into());
    };
    let labels = crr.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), crr.spec.pod_name.clone());
    labels.insert(ACTIVE_LABEL.into(), "true".into());
    labels.insert(NODE_NAME_LABEL.into(), node);
    labels.insert(
        POD_UID_LABEL.into(),
        pod.metadata.uid.clone().unwrap_or_default(),
    );
    if let Some(s) = crr.spec.strategy.as_mut() {
        if s.termination_grace_period_seconds.is_none() {
            s.termination_grace_period_seconds =
                Some(spec.termination_grace_period_seconds.unwrap_or(30));
        }
    }
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default();
    for c in crr.spec.containers.iter_mut() {
        let Some(pc) = spec.containers.iter().find(|pc| pc.name == c.name) else {
            return Err(format!("container {} not found in Pod", c.name));
        };
        let Some(st) = statuses.iter().find(|s| s.name == c.name) else {
            return Err(format!(
                "not found {} containerStatus in Pod Status",
                c.name
            ));
        };
        let Some(id) = st.container_id.clone().filter(|id| !id.is_empty()) else {
            return Err(format!("no containerID in {} containerStatus, maybe the container has not been initialized", c.name));
        };
        c.status_context = Some(ContainerRecreateRequestContainerContext {
            container_id: id,
            restart_count: st.restart_count,
        });
        c.pre_stop = pc.lifecycle.as_ref().and_then(|l| l.pre_stop.clone());
        if c.pre_stop.as_ref().is_some_and(|p| p.http_get.is_some()) {
            c.ports = pc.ports.clone();
        }
    }
    Ok(())
}

/// Update checks: the spec and the lookup labels never change.
pub fn check_update(
    old: &ContainerRecreateRequest,
    new: &ContainerRecreateRequest,
) -> Result<(), String> {
    if old.spec != new.spec {
        return Err("spec of ContainerRecreateRequest is immutable".into());
    }
    for key in [POD_NAME_LABEL, POD_UID_LABEL, NODE_NAME_LABEL] {
        let get = |c: &ContainerRecreateRequest| {
            c.metadata.labels.as_ref().and_then(|l| l.get(key).cloned())
        };
        if get(old) != get(new) {
            return Err(format!("not allowed to update immutable label {key}"));
        }
    }
    Ok(())
}

fn find_pod(state: &State, ns: &str, name: &str) -> Option<std::sync::Arc<Pod>> {
    state.pods.as_ref()?.state().into_iter().find(|p| {
        p.metadata.name.as_deref() == Some(name) && p.metadata.namespace.as_deref() == Some(ns)
    })
}

/// Mutating webhook `mcontainerrecreaterequest.kb.io`.
pub fn mutate(req: &Request, state: &State) -> Verdict {
    if !state.gates.enabled(KRUISE_DAEMON_GATE) {
        return Verdict::Deny(format!(
            "feature-gate {} is not enabled",
            KRUISE_DAEMON_GATE
        ));
    }
    let new: ContainerRecreateRequest = match decode(req.review.object.as_ref()) {
        Ok(Some(c)) => c,
        Ok(None) => return Verdict::Allow,
        Err(e) => return Verdict::Deny(e),
    };
    match req.review.operation {
        Operation::Update => {
            let old: ContainerRecreateRequest = match decode(req.review.old_object.as_ref()) {
                Ok(Some(c)) => c,
                Ok(None) => return Verdict::Allow,
                Err(e) => return Verdict::Deny(e),
            };
            match check_update(&old, &new) {
                Ok(()) => Verdict::Allow,
                Err(e) => Verdict::Deny(e),
            }
        }
        Operation::Create => {
            let mut out = new.clone();
            if let Err(e) = validate_and_default(&mut out) {
                return Verdict::Deny(e);
            }
            let ns = req
                .review
                .namespace
                .clone()
                .or_else(|| out.metadata.namespace.clone())
                .unwrap_or_default();
            // Without a pod cache the controller fills in the labels later.
            if state.pods.is_some() {
                let Some(pod) = find_pod(state, &ns, &out.spec.pod_name) else {
                    return Verdict::Deny(format!("no found Pod named {}", out.spec.pod_name));
                };
                if let Err(e) = inject_pod(&mut out, &pod) {
                    return Verdict::Deny(e);
                }
            }
            let before = serde_json::to_value(&new).unwrap_or(Value::Null);
            let after = serde_json::to_value(&out).unwrap_or(Value::Null);
            Verdict::Patch(json_patch::diff(&before, &after))
        }
        _ => Verdict::Allow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crr(spec: Value) -> ContainerRecreateRequest {
        serde_json::from_value(
            json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "ContainerRecreateRequest",
            "metadata": {"name": "r", "namespace": "default"}, "spec": spec}),
        )
        .unwrap()
    }

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 7, "containers": [
                {"name": "a", "image": "x", "lifecycle": {"preStop": {"httpGet": {"port": 80}}}, "ports": [{"containerPort": 80}]},
                {"name": "b", "image": "x"}]},
            "status": {"phase": "Running", "containerStatuses": [
                {"name": "a", "containerID": "containerd://aaa", "restartCount": 2, "ready": true, "image": "x", "imageID": ""},
                {"name": "b", "containerID": "", "restartCount": 0, "ready": false, "image": "x", "imageID": ""}]}
        })).unwrap()
    }

    #[test]
    fn field_checks_use_upstream_messages() {
        let cases = [
            (
                json!({"podName": "", "containers": [{"name": "a"}]}),
                "podName can not be empty",
            ),
            (
                json!({"podName": "p", "containers": []}),
                "containers list can not be null",
            ),
            (
                json!({"podName": "p", "containers": [{"name": "a"}], "activeDeadlineSeconds": 2}),
                "activeDeadlineSeconds can not be less than 3s",
            ),
            (
                json!({"podName": "p", "containers": [{"name": "a"}, {"name": "a"}]}),
                "can not recreate a multi times",
            ),
            (
                json!({"podName": "p", "containers": [{"name": "a", "statusContext": {"containerID": "x", "restartCount": 0}}]}),
                "preStop, ports, statusContext in container are ready-only fields",
            ),
            (
                json!({"podName": "p", "containers": [{"name": "a"}], "strategy": {"failurePolicy": "Maybe"}}),
                "unknown failurePolicy Maybe",
            ),
            (
                json!({"podName": "p", "containers": [{"name": "a"}], "strategy": {"unreadyGracePeriodSeconds": -1}}),
                "unreadyGracePeriodSeconds must be non-negative integer",
            ),
        ];
        for (spec, msg) in cases {
            assert_eq!(
                validate_and_default(&mut crr(spec.clone())),
                Err(msg.to_string()),
                "{spec}"
            );
        }
        let mut ok = crr(json!({"podName": "p", "containers": [{"name": "a"}]}));
        assert_eq!(validate_and_default(&mut ok), Ok(()));
        assert_eq!(
            ok.spec.strategy.unwrap().failure_policy.as_deref(),
            Some("Fail")
        );
    }

    #[test]
    fn injects_the_pod_context() {
        let mut r = crr(json!({"podName": "p", "containers": [{"name": "a"}]}));
        validate_and_default(&mut r).unwrap();
        inject_pod(&mut r, &pod()).unwrap();
        let labels = r.metadata.labels.clone().unwrap();
        assert_eq!(labels[POD_UID_LABEL], "u1");
        assert_eq!(labels[NODE_NAME_LABEL], "n1");
        assert_eq!(labels[ACTIVE_LABEL], "true");
        assert_eq!(
            r.spec
                .strategy
                .as_ref()
                .unwrap()
                .termination_grace_period_seconds,
            Some(7)
        );
        let c = &r.spec.containers[0];
        let ctx = c.status_context.as_ref().unwrap();
        assert_eq!(
            (ctx.container_id.as_str(), ctx.restart_count),
            ("containerd://aaa", 2)
        );
        assert!(c.pre_stop.as_ref().unwrap().http_get.is_some());
        assert_eq!(c.ports.as_ref().unwrap()[0].container_port, 80);

        let mut r = crr(json!({"podName": "p", "containers": [{"name": "b"}]}));
        assert_eq!(
            inject_pod(&mut r, &pod()),
            Err(
                "no containerID in b containerStatus, maybe the container has not been initialized"
                    .into()
            )
        );
        let mut r = crr(json!({"podName": "p", "containers": [{"name": "z"}]}));
        assert_eq!(
            inject_pod(&mut r, &pod()),
            Err("container z not found in Pod".into())
        );
        let mut pending = pod();
        pending.spec.as_mut().unwrap().node_name = None;
        let mut r = crr(json!({"podName": "p", "containers": [{"name": "a"}]}));
        assert_eq!(
            inject_pod(&mut r, &pending),
            Err("not allowed to recreate containers in a pending Pod".into())
        );
    }

    #[test]
    fn spec_and_labels_are_immutable() {
        let mut old = crr(json!({"podName": "p", "containers": [{"name": "a"}]}));
        old.metadata.labels = Some([(NODE_NAME_LABEL.to_string(), "n1".to_string())].into());
        let mut new = old.clone();
        assert_eq!(check_update(&old, &new), Ok(()));
        new.spec.active_deadline_seconds = Some(10);
        assert_eq!(
            check_update(&old, &new),
            Err("spec of ContainerRecreateRequest is immutable".into())
        );
        let mut new = old.clone();
        new.metadata.labels = Some([(NODE_NAME_LABEL.to_string(), "n2".to_string())].into());
        assert_eq!(
            check_update(&old, &new),
            Err(format!(
                "not allowed to update immutable label {NODE_NAME_LABEL}"
            ))
        );
    }
}
