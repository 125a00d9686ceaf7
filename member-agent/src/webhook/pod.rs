//! Pod mutation: readiness gates. CloneSet pods get `InPlaceUpdateReady`; pods whose controller
//! is in `apps.kruise.io` (or every pod, with gate `KruisePodReadinessGate`) get `KruisePodReady`.

use k8s_openapi::api::core::v1::Pod;

use super::{decode, Request, State, Verdict};
use crate::gates::KRUISE_POD_READINESS_GATE;
use crate::{inplace, podreadiness};

/// Adds the readiness gates a pod should carry (see the module docs); `Allow` when none is missing.
pub fn mutate(req: &Request, state: &State) -> Verdict {
    let pod: Pod = match decode(req.review.object.as_ref()) {
        Ok(Some(p)) => p,
        Ok(None) => return Verdict::Allow,
        Err(e) => return Verdict::Deny(e),
    };
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let kruise_owned = controller.is_some_and(|o| o.api_version.starts_with("apps.kruise.io/"));
    let owned_by_cloneset = kruise_owned && controller.is_some_and(|o| o.kind == "CloneSet");
    let Some(mut spec) = pod.spec.clone() else {
        return Verdict::Allow;
    };
    let mut changed = false;
    if owned_by_cloneset {
        changed |= inplace::inject_readiness_gate(&mut spec);
    }
    if kruise_owned || state.gates.enabled(KRUISE_POD_READINESS_GATE) {
        changed |= podreadiness::inject_gate(&mut spec);
    }
    if !changed {
        return Verdict::Allow;
    }
    let before = serde_json::to_value(&pod).unwrap_or_default();
    let mut after_pod = pod;
    after_pod.spec = Some(spec);
    let after = serde_json::to_value(&after_pod).unwrap_or_default();
    Verdict::Patch(json_patch::diff(&before, &after))
}
