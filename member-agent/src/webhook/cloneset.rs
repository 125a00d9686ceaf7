//! CloneSet defaulting and validation (spec section 2.2).

use k8s_openapi::api::core::v1::Pod;
use kruise_api::apps::v1alpha1::cloneset::{CloneSet, IN_PLACE_ONLY};
use kruise_api::field::FieldError;
use kruise_api::validation::Validated;
use kube::core::admission::Operation;
use serde_json::Value;

use super::{decode, Request, State, Verdict};
use crate::cloneset::defaults;
use crate::gates::TEMPLATE_NO_DEFAULTS;

/// Mutating webhook: applies the CloneSet defaults and answers with a JSON patch.
pub fn mutate(req: &Request, state: &State) -> Verdict {
    if !matches!(req.review.operation, Operation::Create | Operation::Update) {
        return Verdict::Allow;
    }
    let cs: CloneSet = match decode(req.review.object.as_ref()) {
        Ok(Some(cs)) => cs,
        Ok(None) => return Verdict::Allow,
        Err(e) => return Verdict::Deny(e),
    };
    let template_defaults = !state.gates.enabled(TEMPLATE_NO_DEFAULTS);
    let out = defaults::defaulted(&cs, template_defaults);
    let before = serde_json::to_value(&cs).unwrap_or(Value::Null);
    let after = serde_json::to_value(&out).unwrap_or(Value::Null);
    Verdict::Patch(json_patch::diff(&before, &after))
}

const MUTABLE_MSG: &str = "updates to cloneset spec for fields other than 'replicas', 'template', 'lifecycle', 'scaleStrategy', 'updateStrategy', 'minReadySeconds', 'volumeClaimTemplates' and 'revisionHistoryLimit' are forbidden";

/// Upstream's `ValidateCloneSetUpdate` for InPlaceOnly: only `replace` of container images.
fn in_place_only_violation(old: &CloneSet, new: &CloneSet) -> Option<String> {
    let old_spec = serde_json::to_value(&old.spec.template.spec).unwrap_or(Value::Null);
    let new_spec = serde_json::to_value(&new.spec.template.spec).unwrap_or(Value::Null);
    let patch = json_patch::diff(&old_spec, &new_spec);
    let image_path = |p: &str| {
        let parts: Vec<&str> = p.split('/').collect();
        parts.len() == 4
            && parts[1] == "containers"
            && parts[2].parse::<usize>().is_ok()
            && parts[3] == "image"
    };
    for op in &patch.0 {
        let (name, path) = match op {
            json_patch::PatchOperation::Add(o) => ("add", o.path.to_string()),
            json_patch::PatchOperation::Remove(o) => ("remove", o.path.to_string()),
            json_patch::PatchOperation::Replace(o) => ("replace", o.path.to_string()),
            json_patch::PatchOperation::Move(o) => ("move", o.path.to_string()),
            json_patch::PatchOperation::Copy(o) => ("copy", o.path.to_string()),
            json_patch::PatchOperation::Test(o) => ("test", o.path.to_string()),
        };
        if name != "replace" || !image_path(&path) {
            return Some(format!(
                "only allowed to update images in spec for {IN_PLACE_ONLY}, but found {name} {path}"
            ));
        }
    }
    None
}

fn immutable_changed(old: &CloneSet, new: &CloneSet) -> bool {
    let mut a = old.spec.clone();
    let b = &new.spec;
    a.replicas = b.replicas;
    a.template = b.template.clone();
    a.lifecycle = b.lifecycle.clone();
    a.scale_strategy = b.scale_strategy.clone();
    a.update_strategy = b.update_strategy.clone();
    a.min_ready_seconds = b.min_ready_seconds;
    a.volume_claim_templates = b.volume_claim_templates.clone();
    a.revision_history_limit = b.revision_history_limit;
    a.progress_deadline_seconds = b.progress_deadline_seconds;
    &a != b
}

fn pods_to_delete_errors(old: Option<&CloneSet>, new: &CloneSet, state: &State) -> Vec<FieldError> {
    let Some(store) = &state.pods else {
        return vec![];
    };
    let before: Vec<String> = old
        .and_then(|o| o.spec.scale_strategy.as_ref())
        .and_then(|s| s.pods_to_delete.clone())
        .unwrap_or_default();
    let ns = new.metadata.namespace.clone().unwrap_or_default();
    let uid = new.metadata.uid.clone().unwrap_or_default();
    let path = "spec.scaleStrategy.podsToDelete";
    let mut errs = Vec::new();
    for name in new
        .spec
        .scale_strategy
        .iter()
        .flat_map(|s| s.pods_to_delete.iter().flatten())
        .filter(|n| !before.contains(n))
    {
        let found: Option<std::sync::Arc<Pod>> = store.state().into_iter().find(|p| {
            p.metadata.name.as_deref() == Some(name.as_str())
                && p.metadata.namespace.as_deref() == Some(ns.as_str())
        });
        let msg = match found {
            None => Some(format!("find pod {name} failed")),
            Some(p) if p.metadata.deletion_timestamp.is_some() => {
                Some(format!("find pod {name} already terminating"))
            }
            Some(p) if !crate::cloneset::owned_by(p.metadata.owner_references.as_deref(), &uid) => {
                Some(format!("find pod {name} owner is not this CloneSet"))
            }
            Some(_) => None,
        };
        if let Some(m) = msg {
            errs.push(FieldError::invalid(path, name.clone(), m));
        }
    }
    errs
}

/// Validating webhook: create-time rules from `kruise-api`, plus the update-time rules
/// (immutable fields, InPlaceOnly, newly listed `podsToDelete`).
pub fn validate(req: &Request, state: &State) -> Verdict {
    let op = req.review.operation.clone();
    if matches!(op, Operation::Delete | Operation::Connect) {
        return Verdict::Allow;
    }
    let new: CloneSet = match decode(req.review.object.as_ref()) {
        Ok(Some(cs)) => cs,
        Ok(None) => return Verdict::Allow,
        Err(e) => return Verdict::Deny(e),
    };
    let old: Option<CloneSet> = match decode(req.review.old_object.as_ref()) {
        Ok(o) => o,
        Err(e) => return Verdict::Deny(e),
    };
    let template_defaults = !state.gates.enabled(TEMPLATE_NO_DEFAULTS);
    let new_d = defaults::defaulted(&new, template_defaults);
    let mut errs = new_d.validate();
    if let (Operation::Update, Some(old)) = (op, old.as_ref()) {
        let old_d = defaults::defaulted(old, template_defaults);
        if immutable_changed(&old_d, &new_d) {
            errs.push(FieldError::forbidden("spec", MUTABLE_MSG));
        }
        let in_place_only = new_d
            .spec
            .update_strategy
            .as_ref()
            .and_then(|s| s.type_.as_deref())
            == Some(IN_PLACE_ONLY);
        if in_place_only {
            if let Some(msg) = in_place_only_violation(&old_d, &new_d) {
                errs.push(FieldError::forbidden("spec", msg));
            }
        }
    }
    errs.extend(pods_to_delete_errors(old.as_ref(), &new, state));
    if errs.is_empty() {
        Verdict::Allow
    } else {
        Verdict::Invalid(errs)
    }
}
