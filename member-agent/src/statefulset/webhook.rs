//! Advanced StatefulSet defaulting and validation for the admission webhook (spec section 3.2).
//! Both served versions come here; v1alpha1 objects are defaulted in their own shape and
//! validated as v1beta1, as upstream converts them before validating.

use kruise_api::apps::v1alpha1::statefulset as alpha;
use kruise_api::apps::v1beta1::statefulset::{StatefulSet, IN_PLACE_ONLY};
use kruise_api::defaults::Defaulted;
use kruise_api::field::FieldError;
use kruise_api::validation::Validated;
use kube::core::admission::Operation;
use serde_json::Value;

use crate::gates::TEMPLATE_NO_DEFAULTS;
use crate::webhook::{decode, Request, State, Verdict};

const IMMUTABLE_MSG: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'lifecycle', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy', 'volumeClaimTemplates', 'volumeClaimUpdateStrategy', 'reserveOrdinals', 'updateStrategy' and 'scaleStrategy' are forbidden";

fn is_alpha(req: &Request) -> bool {
    req.review.kind.version == "v1alpha1"
}

/// The request's object (or old object) as v1beta1.
fn decode_beta(req: &Request, old: bool) -> Result<Option<StatefulSet>, String> {
    let obj = if old {
        req.review.old_object.as_ref()
    } else {
        req.review.object.as_ref()
    };
    if is_alpha(req) {
        Ok(decode::<alpha::StatefulSet>(obj)?.map(alpha::StatefulSet::into_v1beta1))
    } else {
        decode::<StatefulSet>(obj)
    }
}

fn patch_of<T: serde::Serialize>(before: &T, after: &T) -> Verdict {
    let b = serde_json::to_value(before).unwrap_or(Value::Null);
    let a = serde_json::to_value(after).unwrap_or(Value::Null);
    Verdict::Patch(json_patch::diff(&b, &a))
}

/// Mutating webhook: applies the defaults of the request's version and answers with a JSON patch.
pub fn mutate(req: &Request, state: &State) -> Verdict {
    if !matches!(req.review.operation, Operation::Create | Operation::Update) {
        return Verdict::Allow;
    }
    let template_defaults = !state.gates.enabled(TEMPLATE_NO_DEFAULTS);
    if is_alpha(req) {
        let set: alpha::StatefulSet = match decode(req.review.object.as_ref()) {
            Ok(Some(s)) => s,
            Ok(None) => return Verdict::Allow,
            Err(e) => return Verdict::Deny(e),
        };
        let mut out = set.clone();
        out.apply_defaults();
        if !template_defaults {
            out.spec.template = set.spec.template.clone();
        }
        return patch_of(&set, &out);
    }
    let set: StatefulSet = match decode(req.review.object.as_ref()) {
        Ok(Some(s)) => s,
        Ok(None) => return Verdict::Allow,
        Err(e) => return Verdict::Deny(e),
    };
    let out = super::defaulted(&set, template_defaults);
    patch_of(&set, &out)
}

fn immutable_changed(old: &StatefulSet, new: &StatefulSet) -> bool {
    let mut a = old.spec.clone();
    let b = &new.spec;
    a.replicas = b.replicas;
    a.ordinals = b.ordinals.clone();
    a.template = b.template.clone();
    a.lifecycle = b.lifecycle.clone();
    a.revision_history_limit = b.revision_history_limit;
    a.persistent_volume_claim_retention_policy = b.persistent_volume_claim_retention_policy.clone();
    a.volume_claim_templates = b.volume_claim_templates.clone();
    a.volume_claim_update_strategy = b.volume_claim_update_strategy.clone();
    a.reserve_ordinals = b.reserve_ordinals.clone();
    a.update_strategy = b.update_strategy.clone();
    a.scale_strategy = b.scale_strategy.clone();
    &a != b
}

/// Under InPlaceOnly only container images may change in the template.
fn in_place_only_violation(old: &StatefulSet, new: &StatefulSet) -> Option<String> {
    let old_t = serde_json::to_value(&old.spec.template.spec).unwrap_or(Value::Null);
    let new_t = serde_json::to_value(&new.spec.template.spec).unwrap_or(Value::Null);
    let patch = json_patch::diff(&old_t, &new_t);
    for op in &patch.0 {
        let (name, path) = match op {
            json_patch::PatchOperation::Add(o) => ("add", o.path.to_string()),
            json_patch::PatchOperation::Remove(o) => ("remove", o.path.to_string()),
            json_patch::PatchOperation::Replace(o) => ("replace", o.path.to_string()),
            json_patch::PatchOperation::Move(o) => ("move", o.path.to_string()),
            json_patch::PatchOperation::Copy(o) => ("copy", o.path.to_string()),
            json_patch::PatchOperation::Test(o) => ("test", o.path.to_string()),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let image = parts.len() == 4
            && parts[1] == "containers"
            && parts[2].parse::<usize>().is_ok()
            && parts[3] == "image";
        if name != "replace" || !image {
            return Some(format!(
                "invalid template modified with {IN_PLACE_ONLY} strategy: {name} {path}"
            ));
        }
    }
    None
}

/// Validating webhook: create-time rules from `kruise-api`, plus the update-time rules
/// (immutable fields, InPlaceOnly).
pub fn validate(req: &Request, state: &State) -> Verdict {
    let op = req.review.operation.clone();
    if matches!(op, Operation::Delete | Operation::Connect) {
        return Verdict::Allow;
    }
    let new = match decode_beta(req, false) {
        Ok(Some(s)) => s,
        Ok(None) => return Verdict::Allow,
        Err(e) => return Verdict::Deny(e),
    };
    let template_defaults = !state.gates.enabled(TEMPLATE_NO_DEFAULTS);
    let new_d = super::defaulted(&new, template_defaults);
    let mut errs = new_d.validate();
    if op == Operation::Update {
        let old = match decode_beta(req, true) {
            Ok(o) => o,
            Err(e) => return Verdict::Deny(e),
        };
        if let Some(old) = old {
            let old_d = super::defaulted(&old, template_defaults);
            if immutable_changed(&old_d, &new_d) {
                errs.push(FieldError::forbidden("spec", IMMUTABLE_MSG));
            }
            let policy = new_d
                .spec
                .update_strategy
                .as_ref()
                .and_then(|s| s.rolling_update.as_ref())
                .and_then(|r| r.pod_update_policy.as_deref());
            if policy == Some(IN_PLACE_ONLY) {
                if let Some(msg) = in_place_only_violation(&old_d, &new_d) {
                    errs.push(FieldError::forbidden("spec.template", msg));
                }
            }
        }
    }
    if errs.is_empty() {
        Verdict::Allow
    } else {
        Verdict::Invalid(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::admission::AdmissionRequest;
    use kube::core::DynamicObject;
    use serde_json::json;

    fn request(path: &str, version: &str, op: &str, obj: Value, old: Option<Value>) -> Request {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {
                "uid": "u1",
                "kind": {"group": "apps.kruise.io", "version": version, "kind": "StatefulSet"},
                "resource": {"group": "apps.kruise.io", "version": version, "resource": "statefulsets"},
                "name": "web", "namespace": "default", "operation": op,
                "userInfo": {}, "object": obj, "oldObject": old, "dryRun": false
            }
        });
        let review: kube::core::admission::AdmissionReview<DynamicObject> =
            serde_json::from_value(review).unwrap();
        let req: AdmissionRequest<DynamicObject> = review.try_into().unwrap();
        Request {
            path: path.into(),
            review: req,
        }
    }

    fn state() -> State {
        State {
            gates: Default::default(),
            pods: None,
            metrics: None,
        }
    }

    fn sts(version: &str, spec: Value) -> Value {
        let mut v = json!({
            "apiVersion": format!("apps.kruise.io/{version}"), "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "i:v1"}]}}}
        });
        for (k, val) in spec.as_object().unwrap() {
            v["spec"][k] = val.clone();
        }
        v
    }

    #[test]
    fn in_place_policy_requires_the_readiness_gate() {
        let obj = sts(
            "v1beta1",
            json!({"podManagementPolicy": "Parallel", "updateStrategy":
            {"type": "RollingUpdate", "rollingUpdate": {"podUpdatePolicy": "InPlaceIfPossible", "maxUnavailable": 2}}}),
        );
        let v = validate(&request("/v", "v1beta1", "CREATE", obj, None), &state());
        let Verdict::Invalid(errs) = v else {
            panic!("expected Invalid, got {v:?}")
        };
        assert!(
            errs.iter()
                .any(|e| e.field == "spec.template.spec.readinessGates"),
            "{errs:?}"
        );
    }

    #[test]
    fn max_unavailable_needs_parallel_and_alpha_is_validated_as_beta() {
        let obj = sts(
            "v1alpha1",
            json!({"updateStrategy":
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 2}}}),
        );
        let v = validate(&request("/v", "v1alpha1", "CREATE", obj, None), &state());
        let Verdict::Invalid(errs) = v else {
            panic!("expected Invalid, got {v:?}")
        };
        assert_eq!(
            errs[0].field,
            "spec.updateStrategy.rollingUpdate.maxUnavailable"
        );
        let ok = sts("v1alpha1", json!({}));
        assert_eq!(
            validate(&request("/v", "v1alpha1", "CREATE", ok, None), &state()),
            Verdict::Allow
        );
    }

    #[test]
    fn updates_keep_immutable_fields_and_in_place_only() {
        let old = sts("v1beta1", json!({}));
        let mut new = old.clone();
        new["spec"]["podManagementPolicy"] = json!("Parallel");
        let v = validate(
            &request("/v", "v1beta1", "UPDATE", new, Some(old.clone())),
            &state(),
        );
        assert!(
            matches!(v, Verdict::Invalid(ref e) if e[0].field == "spec"),
            "{v:?}"
        );

        let gate = json!([{"conditionType": "InPlaceUpdateReady"}]);
        let mut old = sts(
            "v1beta1",
            json!({"updateStrategy": {"rollingUpdate": {"podUpdatePolicy": "InPlaceOnly", "maxUnavailable": 1}}}),
        );
        old["spec"]["template"]["spec"]["readinessGates"] = gate;
        let mut image = old.clone();
        image["spec"]["template"]["spec"]["containers"][0]["image"] = json!("i:v2");
        assert_eq!(
            validate(
                &request("/v", "v1beta1", "UPDATE", image, Some(old.clone())),
                &state()
            ),
            Verdict::Allow
        );
        let mut env = old.clone();
        env["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "A", "value": "1"}]);
        let v = validate(
            &request("/v", "v1beta1", "UPDATE", env, Some(old)),
            &state(),
        );
        assert!(
            matches!(v, Verdict::Invalid(ref e) if e[0].field == "spec.template"),
            "{v:?}"
        );
    }

    #[test]
    fn mutate_defaults_each_version_in_its_own_shape() {
        let v = mutate(
            &request("/m", "v1beta1", "CREATE", sts("v1beta1", json!({})), None),
            &state(),
        );
        let Verdict::Patch(p) = v else {
            panic!("{v:?}")
        };
        let mut doc = sts("v1beta1", json!({}));
        json_patch::patch(&mut doc, &p).unwrap();
        assert_eq!(doc["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            doc["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            1
        );
        assert_eq!(
            doc["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"],
            "Retain"
        );

        let v = mutate(
            &request("/m", "v1alpha1", "CREATE", sts("v1alpha1", json!({})), None),
            &state(),
        );
        let Verdict::Patch(p) = v else {
            panic!("{v:?}")
        };
        let mut doc = sts("v1alpha1", json!({}));
        json_patch::patch(&mut doc, &p).unwrap();
        assert_eq!(doc["spec"]["podManagementPolicy"], "OrderedReady");
        assert!(doc["spec"]
            .get("persistentVolumeClaimRetentionPolicy")
            .is_none());
    }
}
