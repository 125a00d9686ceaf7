//! Pod mutation: CloneSet pods get the `InPlaceUpdateReady` readiness gate.

use k8s_openapi::api::core::v1::Pod;

use super::{decode, Request, State, Verdict};
use crate::inplace;

/// Adds the `InPlaceUpdateReady` readiness gate to pods whose controller is a CloneSet.
pub fn mutate(req: &Request, _state: &State) -> Verdict {
    let pod: Pod = match decode(req.review.object.as_ref()) {
        Ok(Some(p)) => p,
        Ok(None) => return Verdict::Allow,
        Err(e) => return Verdict::Deny(e),
    };
    let owned_by_cloneset = pod.metadata.owner_references.iter().flatten().any(|o| {
        o.controller == Some(true)
            && o.kind == "CloneSet"
            && o.api_version.starts_with("apps.kruise.io/")
    });
    if !owned_by_cloneset {
        return Verdict::Allow;
    }
    let Some(mut spec) = pod.spec.clone() else {
        return Verdict::Allow;
    };
    if !inplace::inject_readiness_gate(&mut spec) {
        return Verdict::Allow;
    }
    let before = serde_json::to_value(&pod).unwrap_or_default();
    let mut after_pod = pod;
    after_pod.spec = Some(spec);
    let after = serde_json::to_value(&after_pod).unwrap_or_default();
    Verdict::Patch(json_patch::diff(&before, &after))
}
