//! CloneSet defaulting (spec sections 0.2, 2.2 and 19), applied by the mutating webhook and, in
//! memory, by the controller itself so that it never depends on the webhook having run.

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kruise_api::apps::common::InPlaceUpdateStrategy;
use kruise_api::apps::v1alpha1::cloneset::{CloneSet, CloneSetUpdateStrategy, RECREATE};

/// Kubernetes' pod-spec defaults, except that an empty `imagePullPolicy` becomes `Always`.
pub fn default_pod_spec(spec: &mut PodSpec) {
    spec.restart_policy.get_or_insert_with(|| "Always".into());
    spec.termination_grace_period_seconds.get_or_insert(30);
    spec.dns_policy.get_or_insert_with(|| "ClusterFirst".into());
    spec.security_context.get_or_insert_with(Default::default);
    spec.scheduler_name
        .get_or_insert_with(|| "default-scheduler".into());
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        c.image_pull_policy.get_or_insert_with(|| "Always".into());
        c.termination_message_path
            .get_or_insert_with(|| "/dev/termination-log".into());
        c.termination_message_policy
            .get_or_insert_with(|| "File".into());
        for p in c.ports.iter_mut().flatten() {
            p.protocol.get_or_insert_with(|| "TCP".into());
        }
        for e in c.env.iter_mut().flatten() {
            if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
                f.api_version.get_or_insert_with(|| "v1".into());
            }
        }
    }
}

/// Defaults a pod template in place.
pub fn default_template(t: &mut PodTemplateSpec) {
    default_pod_spec(t.spec.get_or_insert_with(Default::default));
}

/// Applies every CloneSet default. `template_defaults` is false with `TemplateNoDefaults`.
pub fn apply(cs: &mut CloneSet, template_defaults: bool) {
    let spec = &mut cs.spec;
    spec.replicas.get_or_insert(1);
    spec.revision_history_limit.get_or_insert(10);
    let us = spec
        .update_strategy
        .get_or_insert_with(CloneSetUpdateStrategy::default);
    let type_ = us.type_.get_or_insert_with(|| RECREATE.into()).clone();
    us.partition.get_or_insert(IntOrString::Int(0));
    us.max_unavailable
        .get_or_insert_with(|| IntOrString::String("20%".into()));
    us.max_surge.get_or_insert(IntOrString::Int(0));
    if type_ != RECREATE {
        us.in_place_update_strategy
            .get_or_insert_with(InPlaceUpdateStrategy::default);
    }
    if template_defaults {
        default_template(&mut spec.template);
    }
}

/// A defaulted copy.
pub fn defaulted(cs: &CloneSet, template_defaults: bool) -> CloneSet {
    let mut out = cs.clone();
    apply(&mut out, template_defaults);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_match_upstream_and_are_idempotent() {
        let cs: CloneSet = serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "a"},
            "spec": {"selector": {"matchLabels": {"app": "a"}},
                     "template": {"metadata": {"labels": {"app": "a"}},
                                  "spec": {"containers": [{"name": "c", "image": "i:v1",
                                           "ports": [{"containerPort": 80}]}]}},
                     "updateStrategy": {"type": "InPlaceIfPossible"}}
        }))
        .unwrap();
        let d = defaulted(&cs, true);
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["spec"]["replicas"], 1);
        assert_eq!(v["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(v["spec"]["updateStrategy"]["maxUnavailable"], "20%");
        assert_eq!(v["spec"]["updateStrategy"]["partition"], 0);
        assert_eq!(v["spec"]["updateStrategy"]["inPlaceUpdateStrategy"], json!({}));
        let c = &v["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(v["spec"]["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(defaulted(&d, true), d);
        let plain = defaulted(&cs, false);
        assert_eq!(plain.spec.template, cs.spec.template);
    }
}
